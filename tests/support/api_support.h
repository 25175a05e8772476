/*
 * Shared API-test helpers (see api_support.c).
 */
#ifndef CLAIMD_TEST_API_SUPPORT_H
#define CLAIMD_TEST_API_SUPPORT_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>

#include "sim/httpc.h"
#include "sim/sim.h"
#include "harness.h"

#define MAC1  "7CDFA1000001"
#define MAC2  "7CDFA1000002"
#define K1HEX "000102030405060708090A0B0C0D0E0F"

extern uint8_t K1[16];

struct fx {
	struct tenv t;
	struct daemon d;
};

struct session {
	char auth_id[64];
	char challenge[130];
};

/** A case's world: database, CA, MAC1 (esp32s3) and MAC2 (esp32c3) registered, claimd. */
bool fx_up(struct fx *f, const char *name, const struct topts *o);
/**
 * A case's world for the user flow: database, CA and config from @p o, a development
 * identity provider of @p keytype ("ec" or "rsa"; its key file's path in @p idp, for
 * test_token()), claimd. No device is registered.
 */
bool fx_users_up(struct fx *f, const char *name, const struct topts *o, const char *keytype,
                 char idp[1200]);
/** Stops claimd (expecting exit 0, and dumping its log after a failure). */
void fx_down(struct fx *f);
/** POSTs @p body to @p path with extra header lines; 0 or -1. */
int post(struct daemon *d, const char *path, const char *extra, const char *body,
         struct http_response *r);
/** POSTs @p body to @p path with a user's access token @p token (raw); 0 or -1. */
int user_post(struct daemon *d, const char *token, const char *path, const char *body,
              struct http_response *r);
/** The reason code of @p serial (hex) on @p crl: -1 absent, 0 listed without a reason. */
int crl_reason_of(X509_CRL *crl, const char *serial);
/** Sends raw bytes; 0 or -1. */
int raw(struct daemon *d, const char *req, struct http_response *r);
/**
 * The value of the series @p series (a metric name with its labels as /metrics writes
 * them, e.g. claimd_db_transactions_total{outcome="busy"}) on @p d's public /metrics;
 * -1 when the page or the series is missing.
 */
long metric(struct daemon *d, const char *series);
struct signer;
/* A fresh P-256 device key and its SubjectPublicKeyInfo (DER), for issue_checked(). */
struct dev_key {
	EVP_PKEY *k;
	unsigned char *spki;
	size_t spki_len;
};
/** Makes @p d; false when OpenSSL could not (dev_key_free() is safe either way). */
bool dev_key_new(struct dev_key *d);
/** Frees what dev_key_new() made in @p d. */
void dev_key_free(struct dev_key *d);
/**
 * One device ISSUE through signer client @p s for key @p d and CN @p cn, valid for a
 * day: signer_issue()'s result; on SIGNER_OK *@p mine says whether the certificate is
 * for @p d's key and @p cn.
 */
int issue_checked(struct signer *s, const struct dev_key *d, const char *cn, bool *mine);
/** Content-Length > 0 and right, not chunked, <= 3071 bytes, ASCII. */
void check_framing(const struct http_response *r);
/**
 * Opens @p c (its url set, fd -1) and sends a self-claim initiate for 7CDFA1000001 less
 * its last @p short_by bytes, then half-closes (FIN). @p t0 gets the time of the first
 * byte. With @p short_by 0 it reads the one reply into @p r and checks its framing and
 * that it is a 200 with an auth_id. False (said on stderr) on any failure.
 */
bool initiate_then_fin(struct http_conn *c, size_t short_by, struct timespec *t0,
                       struct http_response *r);
/**
 * A certificate reply is byte for byte what cert_reply_body() makes of the certificates
 * it carries, with exactly the hosts @p mqtt_host and @p mqtt_cred_host (NULL: absent).
 */
void check_cert_reply(const char *body, size_t len, const char *mqtt_host,
                      const char *mqtt_cred_host);
/** The failure body with @p status and a description containing @p desc. */
void check_failure(const struct http_response *r, int status, const char *desc);
/** A firmware-style self initiate; true on 200. */
bool initiate(struct daemon *d, const char *mac, const char *platform, struct session *s);
/** A firmware-style verify body (caller frees). */
char *verify_body(const struct session *s, const uint8_t key[16], EVP_PKEY *k, const char *cn);
/** POSTs a verify body. */
int verify(struct daemon *d, const char *body, struct http_response *r);
/** A simulated device with eFuse key K1 and a new key of @p keytype. */
struct sim_device device(const char *mac, const char *platform, const char *keytype);

/** A firmware-style self claim of device @p dv against the case's daemon; true on 200. */
bool fx_self_claim(struct fx *f, const struct sim_device *dv);
/** Runs claimctl with @p args on the case's config: exit status, output in *@p out. */
int fx_claimctl(struct fx *f, char **out, const char *args);

/* The development identity provider the user-flow tests share. */
#define TEST_ISSUER   "https://idp.test.invalid/"
#define TEST_AUDIENCE "claimd"

/**
 * The users: section of a config trusting the case's development IdP (idp/jwks.json,
 * TEST_ISSUER, TEST_AUDIENCE) with @p quota, into @p buf.
 */
void test_users_yaml(char *buf, size_t bufsz, unsigned quota);
/**
 * Makes the case's development IdP (key type @p keytype, kid "k1") in T->dir/idp and
 * writes its private key's path to @p key (1200 bytes). False after printing why.
 */
bool test_idp_create(const struct tenv *t, const char *keytype, char key[1200]);
/** A 10-minute access token of @p user from the IdP whose key is @p key (caller frees). */
char *test_token(const char *key, const char *user);

#endif
