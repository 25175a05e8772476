/*
 * Unit tests of loading the CA: which keys and certificates are refused: no server, no database.
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

static void ca_load_rules(void)
{
	char dir[700], cert[800], key[800], err[256];
	snprintf(dir, sizeof(dir), "%s/tmp/unit/ca-rules", getenv("CLAIMD_BUILD_DIR") ?: ".");
	t_run(NULL, "mkdir -p '%s'", dir);
	REQUIRE(devca_create(dir, "ec", err, sizeof(err)) == 0);
	snprintf(cert, sizeof(cert), "%s/intermediate.pem", dir);
	snprintf(key, sizeof(key), "%s/intermediate.key", dir);
	chmod(key, 0640);
	CHECK(ca_load(cert, key, NULL, err, sizeof(err)) == NULL &&
	      strstr(err, "group- or world-accessible"));
	chmod(key, 0600);
	/* The root's key does not match the intermediate's certificate. */
	char rootkey[800];
	snprintf(rootkey, sizeof(rootkey), "%s/root.key", dir);
	CHECK(ca_load(cert, rootkey, NULL, err, sizeof(err)) == NULL &&
	      strstr(err, "does not match"));
	struct ca *ca = ca_load(cert, key, NULL, err, sizeof(err));
	REQUIRE(ca);
	const char *chain = ca_chain_pem(ca);
	CHECK(chain[strlen(chain) - 1] != '\n' && !strchr(chain, '\r'));
	CHECK(strcmp(ca_key_type(ca), "ec-p256") == 0);
	ca_free(ca);
}

static const struct t_case cases[] = {
    {"ca_load_rules", ca_load_rules},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
