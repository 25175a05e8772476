/*
 * Unit tests of the canonicaliser: request fields, MACs, platforms and policies as every entry
 * point reads them: no server, no database. Each case is its own CTest test (label unit).
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

/* The canonical forms, every spelling the field produces, for each of the three fields
 * and for a whole device (README.md, "Registering chips at manufacturing"). */
static void canon_fields(void)
{
	static const char *macs[] = {"7CDFA1000001", "7cdfa1000001", "7c:df:a1:00:00:01",
	                             "7C-DF-A1-00-00-01", "7C:df:A1:00:00:01"};
	static const char *bad_macs[] = {"",
	                                 "7CDFA100000",
	                                 "7CDFA10000011",
	                                 "7C:DF-A1:00:00:01",
	                                 "7C:DF:A1:00:00:0G",
	                                 "7CDFA1 000001",
	                                 "7C.DF.A1.00.00.01",
	                                 " 7CDFA1000001"};
	static const char *s3[] = {"esp32s3",  "ESP32S3",  "ESP32-S3",
	                           "esp32_s3", "Esp32-S3", "esp-32-s3"};
	static const char *bad_platforms[] = {"",
	                                      "--",
	                                      "esp 32",
	                                      "esp32.s3",
	                                      "esp32s3\n",
	                                      "ésp32",
	                                      "abcdefghijklmnopqrstuvwxyz0123456"};
	char m[MAC_LEN + 1], p[PLATFORM_MAX + 1];
	uint8_t k[EFUSE_KEY_BYTES];
	struct canon_device d;
	static char x9[] = "esp32x9";
	static char *const extra[] = {x9, NULL};

	for (size_t i = 0; i < sizeof(macs) / sizeof(macs[0]); i++)
		CHECKF(mac_normalize(m, macs[i], strlen(macs[i])) && strcmp(m, "7CDFA1000001") == 0,
		       "%s", macs[i]);
	for (size_t i = 0; i < sizeof(bad_macs) / sizeof(bad_macs[0]); i++)
		CHECKF(!mac_normalize(m, bad_macs[i], strlen(bad_macs[i])), "%s", bad_macs[i]);
	for (size_t i = 0; i < sizeof(s3) / sizeof(s3[0]); i++) {
		CHECKF(platform_normalize(p, s3[i], strlen(s3[i])) && strcmp(p, "esp32s3") == 0,
		       "%s", s3[i]);
		CHECK(canon_device("7CDFA1000001", s3[i], K1HEX_UNIT, NULL, &d) == CE_OK &&
		      strcmp(d.platform, "esp32s3") == 0);
	}
	for (size_t i = 0; i < sizeof(bad_platforms) / sizeof(bad_platforms[0]); i++)
		CHECKF(!platform_normalize(p, bad_platforms[i], strlen(bad_platforms[i])), "%s",
		       bad_platforms[i]);
	/* 32 characters is the limit, separators counted as written. */
	CHECK(platform_normalize(p, "abcdefghijklmnopqrstuvwxyz012345", 32));
	CHECK(platform_normalize(p, "ESP32C61", 8) && strcmp(p, "esp32c61") == 0);
	/* "host" (what the CLI sends) is a platform name, but no IDF target. */
	CHECK(platform_normalize(p, "host", 4) && !platform_known(p, NULL));
	static const char *targets[] = {"esp32",   "esp32s2", "esp32s3",  "esp32c2", "esp32c3",
	                                "esp32c5", "esp32c6", "esp32c61", "esp32h2", "esp32p4"};
	for (size_t i = 0; i < sizeof(targets) / sizeof(targets[0]); i++)
		CHECKF(platform_known(targets[i], NULL), "%s", targets[i]);
	CHECK(!platform_known("esp99", NULL) && !platform_known("esp32s", NULL) &&
	      !platform_known("esp32x9", NULL) && platform_known("esp32x9", extra) &&
	      platform_known("esp32s3", extra) && !platform_known("esp99", extra));
	/* Keys: 32 hex digits, any case, spaces anywhere. */
	CHECK(efuse_key_parse(k, "000102030405060708090a0b0c0d0e0F", 32) && k[0] == 0 &&
	      k[10] == 10 && k[15] == 15);
	CHECK(efuse_key_parse(k, "00 01 02 03 04 05 06 07 08 09 0A 0B 0C 0D 0E 0F", 47) &&
	      k[15] == 15);
	CHECK(!efuse_key_parse(k, "000102030405060708090A0B0C0D0E", 30));
	CHECK(!efuse_key_parse(k, "000102030405060708090A0B0C0D0E0F00", 34));
	CHECK(!efuse_key_parse(k, "000102030405060708090A0B0C0D0E0G", 32));
	CHECK(!efuse_key_parse(k, "00:01:02:03:04:05:06:07:08:09:0A:0B:0C:0D:0E:0F", 47));
	/* A whole device: the first wrong field decides, each with its own code. */
	CHECK(canon_device("7c-df-a1-00-00-01", "ESP32-C6",
	                   "00 01 02 03 04 05 06 07 08 09 0a 0b "
	                   "0c 0d 0e 0f",
	                   NULL, &d) == CE_OK &&
	      strcmp(d.mac, "7CDFA1000001") == 0 && strcmp(d.platform, "esp32c6") == 0 &&
	      d.efuse_key[15] == 15);
	CHECK(canon_device("7CDFA10000", "esp99", "x", NULL, &d) == CE_DEVICE_MAC);
	CHECK(canon_device("7CDFA1000001", "esp 32", "x", NULL, &d) == CE_DEVICE_PLATFORM);
	CHECK(canon_device("7CDFA1000001", "esp99", "x", NULL, &d) == CE_DEVICE_PLATFORM_UNKNOWN);
	CHECK(canon_device("7CDFA1000001", "ESP32_X9", K1HEX_UNIT, extra, &d) == CE_OK &&
	      strcmp(d.platform, "esp32x9") == 0);
	CHECK(canon_device("7CDFA1000001", "esp32s3", "0001", NULL, &d) == CE_DEVICE_EFUSE_KEY);
	/* The initiate fields: canonical, any platform name ("host" too), no target check. */
	static const char *bodies[][3] = {
	    {"{\"mac_addr\":\"7c:df:a1:00:00:01\",\"platform\":\"ESP32-S3\"}", "7CDFA1000001",
	     "esp32s3"},
	    {"{\"mac_addr\": \"7C-DF-A1-00-00-01\", \"platform\": \"host\"}", "7CDFA1000001",
	     "host"},
	    {"{\"mac_addr\":\"7CDFA1000001\",\"platform\":\"esp99\"}", "7CDFA1000001", "esp99"}};
	for (size_t i = 0; i < 3; i++) {
		struct initiate_fields in;
		json_t *j = fields_parse(bodies[i][0], strlen(bodies[i][0]));
		CHECKF(j && fields_initiate(j, &in) == CE_OK && strcmp(in.mac, bodies[i][1]) == 0 &&
		           strcmp(in.platform, bodies[i][2]) == 0,
		       "%s", bodies[i][0]);
		json_decref(j);
	}
	json_t *j = fields_parse("{\"mac_addr\":\"7CDFA1000001\",\"platform\":\"-_\"}", 43);
	struct initiate_fields in;
	CHECK(j && fields_initiate(j, &in) == CE_PLATFORM_FORMAT);
	json_decref(j);
	CHECK(strncmp(err_description(CE_DEVICE_PLATFORM_UNKNOWN), "platform: ", 10) == 0 &&
	      strncmp(err_description(CE_DEVICE_MAC), "mac: ", 5) == 0 &&
	      strncmp(err_description(CE_DEVICE_EFUSE_KEY), "efuse_key: ", 11) == 0);
}

/* node_policies lists (protocol.md 7): canonical text and bits, and what is refused. */
static void policies_lists(void)
{
	static const struct {
		const char *in;
		const char *text; /* NULL: refused */
	} cases[] = {
	    {"", "mqtt"},
	    {"mqtt", "mqtt"},
	    {"videostream", "videostream"},
	    {"videostream,mqtt", "mqtt,videostream"},
	    {" MQTT , VideoStream ", "mqtt,videostream"},
	    {"mqtt,mqtt", "mqtt"},
	    {"camera", NULL},
	    {"mqtt,", NULL},
	    {",mqtt", NULL},
	    {"mqtt,,videostream", NULL},
	    {"mqttvideostream", NULL},
	    {"mqtt;videostream", NULL},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct policies p;
		enum claimd_err e = policies_parse(cases[i].in, strlen(cases[i].in), &p);
		if (cases[i].text)
			CHECKF(e == CE_OK && strcmp(p.text, cases[i].text) == 0 &&
			           !!(p.bits & POLICY_VIDEOSTREAM) ==
			               !!strstr(cases[i].text, "video"),
			       "'%s': %s '%s'", cases[i].in, err_name(e), p.text);
		else
			CHECKF(e == CE_POLICIES_VALUE, "'%s' accepted", cases[i].in);
	}
}

/* Certificate serials in every form the tools operators copy from print them
 * (cert_serial_parse(): README.md, "Revocation"), and the forms refused with the reason. */
static void serial_forms(void)
{
	/* 0x0A1B...E8F9: first byte below 0x10, so 31 hex digits without the leading zero. */
#define S1 "0A1B2C3D4E5F60718293A4B5C6D7E8F9"
	static const struct {
		const char *in, *want;
	} ok[] = {
	    {S1, S1},
	    {"0a1b2c3d4e5f60718293a4b5c6d7e8f9", S1},
	    {"A1B2C3D4E5F60718293A4B5C6D7E8F9", S1}, /* Java keytool: no leading zero */
	    {"0x0a1b2c3d4e5f60718293a4b5c6d7e8f9", S1},
	    {"0XA1B2C3D4E5F60718293A4B5C6D7E8F9", S1},
	    {"0a:1b:2c:3d:4e:5f:60:71:82:93:a4:b5:c6:d7:e8:f9", S1}, /* OpenSSL -text */
	    {"0A 1B 2C 3D 4E 5F 60 71 82 93 A4 B5 C6 D7 E8 F9", S1}, /* certutil */
	    {"0a-1b-2c-3d-4e-5f-60-71-82-93-a4-b5-c6-d7-e8-f9", S1},
	    {"a:1b:2c:3d:4e:5f:60:71:82:93:a4:b5:c6:d7:e8:f9", S1}, /* first group short */
	    {"serial=0A1B2C3D4E5F60718293A4B5C6D7E8F9", S1},        /* openssl x509 -serial */
	    {"  " S1 "\n", S1},                                     /* pasted with a line end */
	    {"13433369256225207278633426983318972665", S1},         /* decimal, 38 digits */
	    {"168811955464684315858783496655603804929", "7F00000000000000000000000000AB01"},
	    {"1329227995784915872903807060280344576", "01000000000000000000000000000000"},
	    {"340282366920938463463374607431768211455", "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF"},
	    /* Decimal digits only, 31 or 32 of them: hex (as decimal, far below 2^120). */
	    {"1234567890123456789012345678901", "01234567890123456789012345678901"},
	    {"12345678901234567890123456789012", "12345678901234567890123456789012"},
	    /* Unambiguous hex that is no claimd serial: read, and simply not found later. */
	    {"0x1234", "00000000000000000000000000001234"},
	    {"ab", "000000000000000000000000000000AB"},
	    {"12:34", "00000000000000000000000000001234"},
	    {"0x00000000000000000000000000000000000000ff", "000000000000000000000000000000FF"},
	};
	static const struct {
		const char *in, *why;
		enum claimd_err e;
	} bad[] = {
	    {"", "empty", CE_ADMIN_SERIAL},
	    {"   ", "empty", CE_ADMIN_SERIAL},
	    {"0x", "empty", CE_ADMIN_SERIAL},
	    {"1234", "1234 (4 decimal digits) could be hex or decimal", CE_ADMIN_SERIAL_AMBIGUOUS},
	    {"1234", "write hex with 0x (0x1234)", CE_ADMIN_SERIAL_AMBIGUOUS},
	    {"123456789012345678901234567890", "30 decimal digits", CE_ADMIN_SERIAL_AMBIGUOUS},
	    {"1234567890123456789012345678901234", "34 decimal digits", CE_ADMIN_SERIAL_AMBIGUOUS},
	    {"1234567890123456789012345678901234567890", "40 decimal digits",
	     CE_ADMIN_SERIAL_AMBIGUOUS},
	    {"340282366920938463463374607431768211456", "more than 16 bytes", CE_ADMIN_SERIAL},
	    {"1" S1, "more than 16 bytes", CE_ADMIN_SERIAL},
	    {"0a:1b-2c", "mixes the separators ':' and '-'", CE_ADMIN_SERIAL},
	    {"0a::1b", "whole bytes", CE_ADMIN_SERIAL},
	    {":0a:1b", "whole bytes", CE_ADMIN_SERIAL},
	    {"0a:1b:", "whole bytes", CE_ADMIN_SERIAL},
	    {"ab:1:cd", "whole bytes", CE_ADMIN_SERIAL},
	    {"ab:cd:e", "whole bytes", CE_ADMIN_SERIAL},
	    {"0x:ab", "whole bytes", CE_ADMIN_SERIAL},
	    {"0A1B2C3D4E5F6071829G", "'G' is neither a hex digit", CE_ADMIN_SERIAL},
	    {"-12345", "whole bytes", CE_ADMIN_SERIAL},
	    {"12.345", "'.' is neither", CE_ADMIN_SERIAL},
	    {"0a\t1b", "neither", CE_ADMIN_SERIAL},
	};
	char out[SERIAL_HEX_LEN + 1], why[256];
	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
		why[0] = '\0';
		enum claimd_err e =
		    cert_serial_parse(out, ok[i].in, strlen(ok[i].in), why, sizeof(why));
		CHECKF(e == CE_OK && strcmp(out, ok[i].want) == 0, "'%s': %s %s (%s)", ok[i].in,
		       err_name(e), e == CE_OK ? out : "", why);
	}
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why[0] = '\0';
		enum claimd_err e =
		    cert_serial_parse(out, bad[i].in, strlen(bad[i].in), why, sizeof(why));
		CHECKF(e == bad[i].e && strstr(why, bad[i].why), "'%s': %s '%s'", bad[i].in,
		       err_name(e), why);
	}
	/* A path segment or argument is not NUL-terminated where the length says. */
	CHECK(cert_serial_parse(out, S1 "zz", SERIAL_HEX_LEN, why, sizeof(why)) == CE_OK &&
	      strcmp(out, S1) == 0);
	/* Longer than anything a tool prints: refused without reading it all. */
	char longest[300];
	memset(longest, 'a', sizeof(longest) - 1);
	longest[sizeof(longest) - 1] = '\0';
	CHECK(cert_serial_parse(out, longest, strlen(longest), why, sizeof(why)) ==
	      CE_ADMIN_SERIAL);
	/* Every serial claimd draws reads back from each of its printed forms. */
	for (int i = 0; i < 200; i++) {
		uint8_t b[16];
		char hex[SERIAL_HEX_LEN + 1], spaced[64], *o = spaced;
		cert_random_serial(b);
		hex_encode_lower(hex, b, sizeof(b));
		for (int k = 0; k < SERIAL_HEX_LEN; k += 2)
			o += sprintf(o, "%s%.2s", k ? " " : "", hex + k);
		BIGNUM *bn = BN_bin2bn(b, sizeof(b), NULL);
		char *dec = bn ? BN_bn2dec(bn) : NULL, *bare = bn ? BN_bn2hex(bn) : NULL;
		REQUIRE(dec && bare);
		const char *forms[] = {hex, spaced, dec, bare};
		char want[SERIAL_HEX_LEN + 1];
		hex_encode_upper(want, b, sizeof(b));
		for (size_t k = 0; k < 4; k++)
			CHECKF(cert_serial_parse(out, forms[k], strlen(forms[k]), why,
			                         sizeof(why)) == CE_OK &&
			           strcmp(out, want) == 0,
			       "'%s' (%s): %s", forms[k], want, why);
		OPENSSL_free(dec);
		OPENSSL_free(bare);
		BN_free(bn);
	}
#undef S1
}

static const struct t_case cases[] = {
    {"policies_lists", policies_lists},
    {"canon_fields", canon_fields},
    {"serial_forms", serial_forms},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
