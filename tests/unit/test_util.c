/*
 * Unit tests of MAC and hex helpers: no server, no database. Each case is its own CTest
 * test (label unit).
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
#include "db/db.h"
#include "harness.h"
#include "unit_support.h"

static void mac_and_hex(void)
{
	char m[13];
	uint8_t b[4];
	CHECK(mac_normalize(m, "7cdfa1000001", 12) && strcmp(m, "7CDFA1000001") == 0);
	CHECK(mac_normalize(m, "7c:df:a1:00:00:01", 17) && strcmp(m, "7CDFA1000001") == 0);
	CHECK(mac_normalize(m, "7C-DF-A1-00-00-01", 17));
	CHECK(!mac_normalize(m, "7C:DF-A1:00:00:01", 17));
	CHECK(!mac_normalize(m, "7CDFA100000", 11));
	CHECK(!mac_normalize(m, "7CDFA100000G", 12));
	CHECK(!mac_normalize(m, "7C:DF:A1:00:00:0", 16));
	CHECK(hex_decode(b, 4, "00 01 0a FF", 11, true) && b[2] == 10 && b[3] == 255);
	CHECK(!hex_decode(b, 4, "00 01 0a FF", 11, false));
	CHECK(!hex_decode(b, 4, "00010aF", 7, false));
	CHECK(!hex_decode(b, 4, "00010aFF00", 10, false));
	char p[33];
	CHECK(platform_normalize(p, "ESP32S3", 7) && strcmp(p, "esp32s3") == 0);
	CHECK(!platform_normalize(p, "esp 32", 6) && !platform_normalize(p, "", 0));
}

/* db_redact(): every spelling of the password a libpq message could quote is masked,
 * the rest of the message kept; a long message is cut after the masking. */
static void password_redaction(void)
{
	static const struct {
		const char *url, *msg, *want;
	} c[] = {
	    {"postgresql://u:pw%zz@/db", "invalid percent-encoded token: \"pw%zz\"",
	     "invalid percent-encoded token: \"********\""},
	    {"postgresql://u:p%40ss@h/db", "password p@ss and p%40ss",
	     "password ******** and ********"},
	    {"postgresql://u:first@second@nohost/db",
	     "could not translate host name \"second@nohost\" to address",
	     "could not translate host name \"********@nohost\" to address"},
	    {"postgresql:///db?host=/s&password=q%zzr", "token \"q%zzr\"", "token \"********\""},
	    {"postgresql:///db?%70asswor%64=k%zz", "token \"k%zz\"", "token \"********\""},
	    {"postgresql:///db?password=k#l%zz", "token \"k#l%zz\"", "token \"********\""},
	    {"postgresql://u:p?w%zz@h/db", "invalid percent-encoded token: \"p?w%zz\"",
	     "invalid percent-encoded token: \"********\""},
	    {"host=h password='a b\\'c' dbname=x", "a b'c or a b\\'c", "******** or ********"},
	    {"host=h password=plain dbname=x", "was plain", "was ********"},
	    {"host=h dbname=x", "nothing to hide", "nothing to hide"},
	    {NULL, "no url", "no url"},
	};
	char out[128];
	for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++) {
		db_redact(out, sizeof(out), c[i].msg, c[i].url);
		CHECKF(strcmp(out, c[i].want) == 0, "%zu: %s", i, out);
	}
	/* Cut short: never a prefix of the password at the end. */
	db_redact(out, 12, "xx secretpassword", "host=h password=secretpassword");
	CHECKF(strcmp(out, "xx ********") == 0, "%s", out);
	db_redact(out, 8, "xx secretpassword", "host=h password=secretpassword");
	CHECKF(!strstr(out, "sec"), "%s", out);
}

static const struct t_case cases[] = {
    {"mac_and_hex", mac_and_hex},
    {"password_redaction", password_redaction},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
