/*
 * A simulated ESP RainMaker device for claimsim and the tests: it builds requests
 * byte-for-byte as the firmware does and checks replies as strictly as the firmware's
 * fragile parser would (and then some: it verifies what it receives).
 */
#ifndef CLAIMD_SIM_H
#define CLAIMD_SIM_H

#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/vocab.h"
#include "sim/httpc.h"

#define SIM_RESPONSE_MAX 3071

struct sim_device {
	char mac[MAC_LEN + 1];
	char platform[33];
	uint8_t efuse_key[16];
	EVP_PKEY *key;
};

/** A new device key: "ec" (P-256) or "rsa" (2048). NULL on failure. */
EVP_PKEY *sim_key_new(const char *type);
/** Loads a PEM private key from @p path, or creates one of @p type and saves it (0600). */
EVP_PKEY *sim_key_load_or_create(const char *path, const char *type);
/**
 * A CSR for @p cn signed by @p key, PEM. @p cli_style adds what the CLI's CSRs carry
 * (a critical basicConstraints CA:false request and a trailing newline); the firmware's
 * have no extensions and no trailing newline. The caller frees the result.
 */
char *sim_csr_pem(EVP_PKEY *key, const char *cn, bool cli_style);
/** The firmware's escape of a PEM for JSON: drop one trailing '\n', every '\n' -> "\\n". */
char *sim_firmware_escape(const char *pem);
/**
 * Extracts a string field the way the firmware's parser does (raw bytes between the
 * quotes, at most @p max - 1 of them) and, when @p unescape, turns "\\n" into newlines
 * as the firmware does. Fails if the field is missing, too long, or if what the
 * firmware would read differs from the JSON value (an escape it cannot handle).
 */
bool sim_firmware_string(const char *body, const char *key, char *out, size_t max, bool unescape);
/**
 * Checks a received chain: leaf key equals @p key, subject is exactly CN=@p cn, leaf is
 * signed by the next certificate, client-auth profile present, no trailing newline.
 * With @p root_file, also verifies the whole path to that root. Returns 0 or -1 + @p err.
 */
int sim_check_chain(const char *chain_pem, EVP_PKEY *key, const char *cn, const char *root_file,
                    char *err, size_t errsz);
/**
 * The serial number of the first certificate in @p chain_pem as claimd writes serials:
 * upper-case hex without separators, two digits a byte (README.md, "Registering chips at
 * manufacturing"). False if there is no certificate or its serial does not fit @p outsz.
 */
bool sim_leaf_serial(const char *chain_pem, char *out, size_t outsz);
/** HMAC-SHA512(efuse_key, challenge) as 128 upper-case hex digits plus NUL. */
void sim_challenge_response(const uint8_t efuse_key[16], const char *challenge, char out[129]);

struct sim_result {
	int stage;         /* 1 initiate, 2 verify, 3 checking */
	int status;        /* the HTTP status of the failing exchange */
	char *certificate; /* the received chain, PEM (caller frees) */
	char err[512];
};

/**
 * A complete firmware-style self claim against @p u. @p policies adds
 * "node_policies" as the firmware build option does (NULL: none). Returns 0 on success.
 */
int sim_self_claim(const struct http_url *u, const struct sim_device *d, const char *policies,
                   const char *root_file, struct sim_result *res);

enum sim_client {
	SIM_ANDROID, /* Gson: escapes = < > & ' as \u00XX; sends send_mqtt_host */
	SIM_IOS,     /* JSONSerialization: escapes / as \/; sends send_mqtt_host */
	SIM_CLI,     /* Python json.dumps: ", " and ": " separators, ?matter=False */
};

/** JSON string literal of @p s (with quotes) as @p client would write it; caller frees. */
char *sim_json_string(const char *s, enum sim_client client);

struct sim_user_result {
	int stage;
	int status;
	char node_id[NODE_ID_MAX + 1];
	char *certificate; /* caller frees */
	char *body;        /* the verify reply, as the app would forward it; caller frees */
	char err[512];
};

/**
 * A complete assisted (app) or host-driven (CLI) claim for @p mac with the user's
 * access token, checking what comes back as the device would (the app forwards the
 * verify reply to it). Returns 0 on success.
 */
int sim_user_claim(const struct http_url *u, enum sim_client client, const char *token,
                   const char *mac, const char *platform, EVP_PKEY *key, const char *root_file,
                   struct sim_user_result *res);

/**
 * A Matter CSR as the CLI's --matter makes it: subject CN=@p cn then the Matter vendor
 * and product id attributes (each left out when NULL, for negative tests), one RDN
 * each, all UTF8String; a critical basicConstraints CA:false request; SHA-256; PEM
 * with its trailing newline. The caller frees the result.
 */
char *sim_matter_csr_pem(EVP_PKEY *key, const char *cn, const char *vendor_id,
                         const char *product_id);

struct sim_matter_result {
	struct sim_user_result u; /* stage, status, node_id, err; certificate = the reply's */
	uint8_t *dac, *pai;       /* the two certificates as the CLI writes them: DER */
	size_t dac_len, pai_len;
};

/**
 * A host-driven Matter claim as `esp-rainmaker-cli claim --matter` makes it: initiate,
 * then verify?matter=True&test=True with the Matter CSR (json.dumps spacing); the reply
 * is split at the second BEGIN line into exactly two certificates, DER. Checks that the
 * DAC holds @p key and is signed by the PAI, and with @p paa_file that DAC -> PAI ->
 * PAA verifies. 0 on success; free @p res with sim_matter_result_free() either way.
 */
int sim_matter_claim(const struct http_url *u, const char *token, const char *mac,
                     const char *platform, EVP_PKEY *key, const char *vendor_id,
                     const char *product_id, const char *paa_file, struct sim_matter_result *res);
/** Frees what sim_matter_claim() put in @p res. */
void sim_matter_result_free(struct sim_matter_result *res);

#endif
