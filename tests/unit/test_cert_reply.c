/*
 * Unit tests of the certificate reply: its exact bytes and its size limits: no server, no database.
 * Each case is its own CTest test (label unit).
 */
#include <jansson.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/authid.h"
#include "x509/ca.h"
#include "lib/canon.h"
#include "core/cert_reply.h"
#include "lib/config.h"
#include "lib/secure.h"
#include "lib/csvimport.h"
#include "sim/devca.h"
#include "daemon/request_fields.h"
#include "sim/sim.h"
#include "lib/util.h"
#include "harness.h"
#include "unit_support.h"

/* ---- The certificate reply ---- */

/* The reply as the handler built it with jansson before cert_reply.c existed. */
static char *reply_by_jansson(const char *leaf, const char *chain, const char *mqtt_host,
                              const char *mqtt_cred_host)
{
	char *cert = NULL, *text = NULL;
	json_t *o = NULL;

	if (asprintf(&cert, "%s\n%s", leaf, chain) < 0)
		return NULL;
	if ((o = json_pack("{s:s}", "certificate", cert))) {
		if (mqtt_host)
			json_object_set_new(o, "mqtt_host", json_string(mqtt_host));
		if (mqtt_cred_host)
			json_object_set_new(o, "mqtt_cred_host", json_string(mqtt_cred_host));
		text = json_dumps(o, JSON_COMPACT);
	}
	json_decref(o);
	free(cert);
	return text;
}

/*
 * One reply: its predicted length is its length, its bytes are what jansson made of the
 * same fields, '\n' is the only escape, the string has no trailing newline, and exactly
 * the expected hosts are in it.
 */
static void check_reply(const char *leaf, const char *chain, const struct claimd_config *cfg,
                        unsigned hosts, const char *want_mqtt, const char *want_cred)
{
	size_t n = cert_reply_len(leaf, chain, cfg, hosts);
	char *body = cert_reply_body(leaf, chain, cfg, hosts), *want = NULL, *cert = NULL;
	json_t *j = NULL;

	want = reply_by_jansson(leaf, chain, want_mqtt, want_cred);
	CHECKF(body && want && n == strlen(body), "predicted %zu, built %zu", n,
	       body ? strlen(body) : 0);
	CHECKF(body && want && strcmp(body, want) == 0, "built:\n%s\nwant:\n%s", body ? body : "",
	       want ? want : "");
	for (const char *p = body ? body : ""; (p = strchr(p, '\\')); p += 2)
		CHECKF(p[1] == 'n', "escape \\%c", p[1]);
	CHECK(body && !strstr(body, "\\n\""));
	if (body && (j = json_loads(body, 0, NULL)) && asprintf(&cert, "%s\n%s", leaf, chain) > 0) {
		const char *m = json_string_value(json_object_get(j, "mqtt_host"));
		const char *cr = json_string_value(json_object_get(j, "mqtt_cred_host"));
		CHECK(strcmp(json_string_value(json_object_get(j, "certificate")) ?: "", cert) ==
		      0);
		CHECK(json_object_size(j) == 1u + (want_mqtt != NULL) + (want_cred != NULL));
		CHECK(want_mqtt ? m && strcmp(m, want_mqtt) == 0 : !m);
		CHECK(want_cred ? cr && strcmp(cr, want_cred) == 0 : !cr);
	} else {
		CHECKF(0, "not JSON: %s", body);
	}
	json_decref(j);
	free(cert);
	free(want);
	free(body);
}

/* A leaf of @p ca for device key @p k with subject CN=@p cn. */
static char *leaf_for(struct ca *ca, EVP_PKEY *k, const char *cn)
{
	char *pem = sim_csr_pem(k, cn, false), got[NODE_ID_MAX + 1], *leaf = NULL;
	struct csr *c = NULL;
	struct issued is = {0};

	if (pem && csr_check(pem, strlen(pem), &c, got) == CE_OK &&
	    ca_sign_local(ca, c, cn, 3650, &is) == 0) {
		leaf = is.pem;
		is.pem = NULL;
	}
	issued_clear(&is);
	csr_free(c);
	free(pem);
	return leaf;
}

static void cert_reply_exact(void)
{
	static const char *ca_types[] = {"ec", "rsa2048", "rsa3072"};
	static const char *key_types[] = {"ec", "rsa"};
	/* Self claims are named by their MAC, user claims by a 22-character node_id. */
	static const char *cns[] = {"7CDFA1000001", "AbCdEfGhIjKlMnOpQrStUv"};
	struct claimd_config none = {.mqtt_host = "", .mqtt_cred_host = ""};
	struct claimd_config both = {.mqtt_host = "mqtt.example.com",
	                             .mqtt_cred_host = "creds.example.com"};
	struct claimd_config one = {.mqtt_host = "mqtt.example.com", .mqtt_cred_host = ""};
	EVP_PKEY *keys[2] = {sim_key_new(key_types[0]), sim_key_new(key_types[1])};

	for (size_t t = 0; t < 3 && keys[0] && keys[1]; t++) {
		char dir[700], cert[800], key[800], root[800], err[256];
		snprintf(dir, sizeof(dir), "%s/tmp/unit/reply-%s",
		         getenv("CLAIMD_BUILD_DIR") ?: ".", ca_types[t]);
		t_run(NULL, "mkdir -p '%s'", dir);
		REQUIRE(devca_create(dir, ca_types[t], err, sizeof(err)) == 0);
		snprintf(cert, sizeof(cert), "%s/intermediate.pem", dir);
		snprintf(key, sizeof(key), "%s/intermediate.key", dir);
		snprintf(root, sizeof(root), "%s/root.pem", dir);
		/* The issuing CA alone, and with the root appended as ca.chain. */
		for (int with_chain = 0; with_chain < 2; with_chain++) {
			struct ca *ca =
			    ca_load(cert, key, with_chain ? root : NULL, err, sizeof(err));
			REQUIRE(ca);
			const char *chain = ca_chain_pem(ca);
			for (size_t k = 0; k < 2; k++) {
				for (size_t c = 0; c < 2; c++) {
					char *leaf = leaf_for(ca, keys[k], cns[c]);
					REQUIRE(leaf);
					/* The self flow: every configured host. */
					check_reply(leaf, chain, &both, CERT_REPLY_ALL_HOSTS,
					            "mqtt.example.com", "creds.example.com");
					check_reply(leaf, chain, &one, CERT_REPLY_ALL_HOSTS,
					            "mqtt.example.com", NULL);
					check_reply(leaf, chain, &none, CERT_REPLY_ALL_HOSTS, NULL,
					            NULL);
					/* The user flow: mqtt_host when asked for, never
					 * mqtt_cred_host. */
					check_reply(leaf, chain, &both, CERT_REPLY_MQTT_HOST,
					            "mqtt.example.com", NULL);
					check_reply(leaf, chain, &both, CERT_REPLY_NO_HOSTS, NULL,
					            NULL);
					check_reply(leaf, chain, &none, CERT_REPLY_MQTT_HOST, NULL,
					            NULL);
					/* The start-up check's leaf (an RSA-2048 key, the
					 * longest node_id) bounds an RSA CA's real ones; an EC
					 * CA's signatures vary by a byte or two. */
					if (t > 0)
						CHECKF(cert_reply_len(leaf, chain, &both,
						                      CERT_REPLY_ALL_HOSTS) <=
						           cert_reply_len(ca_largest_leaf_pem(ca),
						                          chain, &both,
						                          CERT_REPLY_ALL_HOSTS),
						       "CA %s, key %s", ca_types[t], key_types[k]);
					free(leaf);
				}
			}
			check_reply(ca_largest_leaf_pem(ca), chain, &both, CERT_REPLY_ALL_HOSTS,
			            "mqtt.example.com", "creds.example.com");
			ca_free(ca);
		}
	}
	CHECK(keys[0] && keys[1]);
	EVP_PKEY_free(keys[0]);
	EVP_PKEY_free(keys[1]);
}

static void cert_reply_refusals(void)
{
	/* Anything that would need an escape other than \n is refused, not escaped. */
	static const char *bad[] = {
	    "", "A\n", "\nA", "A\n\nB", "A\r\nB", "A\"B", "A\\B", "A\tB", "A/\x7f", "A\xc3\xa9",
	};
	struct claimd_config cfg = {.mqtt_host = "", .mqtt_cred_host = ""};
	struct claimd_config quoted = {.mqtt_host = "a\"b", .mqtt_cred_host = ""};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECKF(cert_reply_len(bad[i], "C", &cfg, CERT_REPLY_ALL_HOSTS) == SIZE_MAX,
		       "leaf %zu", i);
		CHECKF(cert_reply_len("L", bad[i], &cfg, CERT_REPLY_ALL_HOSTS) == SIZE_MAX,
		       "chain %zu", i);
		CHECKF(cert_reply_body(bad[i], "C", &cfg, CERT_REPLY_ALL_HOSTS) == NULL, "leaf %zu",
		       i);
	}
	CHECK(cert_reply_len("L", "C", &quoted, CERT_REPLY_ALL_HOSTS) == SIZE_MAX);
	/* A host that is not asked for is not looked at. */
	CHECK(cert_reply_len("L", "C", &quoted, CERT_REPLY_NO_HOSTS) ==
	      strlen("{\"certificate\":\"L\\nC\"}"));
	char *b = cert_reply_body("L1\nL2", "C", &cfg, CERT_REPLY_ALL_HOSTS);
	CHECK(b && strcmp(b, "{\"certificate\":\"L1\\nL2\\nC\"}") == 0);
	free(b);
}

static const struct t_case cases[] = {
    {"cert_reply_exact", cert_reply_exact},
    {"cert_reply_refusals", cert_reply_refusals},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
