/*
 * Unit tests of the device CSV reader: no server, no database. Each case is its own CTest
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
#include "harness.h"
#include "unit_support.h"

/* ---- CSV ---- */

struct csv_t {
	int rows;
	int errors;
	long lines[16];
	char reasons[16][640];
	struct csv_row last;
};

static int csv_row_cb(void *arg, const struct csv_row *r)
{
	struct csv_t *t = arg;
	t->rows++;
	t->last = *r;
	return 0;
}

static void csv_err_cb(void *arg, long line, const char *reason)
{
	struct csv_t *t = arg;
	if (t->errors < 16) {
		t->lines[t->errors] = line;
		snprintf(t->reasons[t->errors], sizeof(t->reasons[0]), "%s", reason);
	}
	t->errors++;
}

static int csv_run(const char *text, struct csv_t *t)
{
	struct csv_result res;
	memset(t, 0, sizeof(*t));
	return csv_read_buffer(text, strlen(text), NULL, csv_row_cb, csv_err_cb, t, &res);
}

static void csv_reader(void)
{
	struct csv_t t;
	CHECK(csv_run(
	          "mac,platform,efuse_key\n7CDFA1000001,esp32s3,000102030405060708090A0B0C0D0E0F\n",
	          &t) == 0);
	CHECK(t.rows == 1 && t.errors == 0);
	CHECK(strcmp(t.last.mac, "7CDFA1000001") == 0 && t.last.efuse_key[15] == 15);
	/* Any column order, extra columns, quotes, spaces in the key, CRLF, any case. */
	CHECK(
	    csv_run("serial,EFUSE_KEY,Platform,MAC\r\nA1,\"00 01 02 03 04 05 06 07 08 09 0a 0b 0c "
	            "0d 0e 0f\",ESP32C3,7c:df:a1:00:00:02\r\n\r\n",
	            &t) == 0);
	CHECK(t.rows == 1 && t.errors == 0 && strcmp(t.last.platform, "esp32c3") == 0 &&
	      strcmp(t.last.mac, "7CDFA1000002") == 0 && t.last.line == 2);
	/* Bad rows are reported with their line and the valid ones still come through. */
	CHECK(csv_run("mac,platform,efuse_key\n"
	              "7CDFA1000001,esp32s3,000102030405060708090A0B0C0D0E0F\n"
	              "\n"
	              "XYZ,esp32s3,000102030405060708090A0B0C0D0E0F\n"
	              "7CDFA1000003,esp32s3,0001\n"
	              "7CDFA1000004,esp 32,000102030405060708090A0B0C0D0E0F\n"
	              "7CDFA1000005,\"esp32s3,000102030405060708090A0B0C0D0E0F\n"
	              "7CDFA1000006,esp32s3\n",
	              &t) == 0);
	CHECK(t.rows == 1 && t.errors == 5);
	CHECK(t.lines[0] == 4 && strstr(t.reasons[0], "mac:"));
	CHECK(t.lines[1] == 5 && strstr(t.reasons[1], "efuse_key:"));
	CHECK(t.lines[2] == 6 && strstr(t.reasons[2], "platform:"));
	CHECK(t.lines[3] == 7 && strstr(t.reasons[3], "malformed"));
	CHECK(t.lines[4] == 8 && strstr(t.reasons[4], "missing fields"));
	/* Unusable headers stop the read. */
	CHECK(csv_run("mac,platform\n7CDFA1000001,esp32s3\n", &t) < 0 && t.lines[0] == 1);
	CHECK(csv_run("", &t) < 0 && strstr(t.reasons[0], "empty"));
	CHECK(csv_run("mac,mac,platform,efuse_key\n", &t) < 0 && strstr(t.reasons[0], "twice"));
}

/* Every spelling through the CSV reader: a byte-order mark, CRLF, header names in any
 * case, platforms as the flashing tools write them, unknown targets refused with their
 * line, extra platforms honoured. */
static void csv_spellings(void)
{
	struct csv_t t;
	struct csv_result res;
	static char x9[] = "esp32x9";
	static char *const extra[] = {x9, NULL};
	const char *rows =
	    "7cdfa1000001,ESP32-S3," K1HEX_UNIT "\r\n"
	    "7C:DF:A1:00:00:02,esp32_s3," K1HEX_UNIT "\r\n"
	    "7C-DF-A1-00-00-03,Esp32C61,00 01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f\r\n";
	static const char *headers[] = {"mac,platform,efuse_key", "MAC,PLATFORM,EFUSE_KEY",
	                                "Mac, Platform , eFuse_Key",
	                                "\xEF\xBB\xBFmac,platform,efuse_key",
	                                "\xEF\xBB\xBF"
	                                "MAC,Platform,EFUSE_KEY"};
	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		char *text = NULL;
		REQUIRE(asprintf(&text, "%s\r\n%s", headers[i], rows) > 0);
		CHECKF(csv_run(text, &t) == 0 && t.rows == 3 && t.errors == 0, "header %zu: %s", i,
		       t.errors ? t.reasons[0] : "");
		CHECK(strcmp(t.last.mac, "7CDFA1000003") == 0 &&
		      strcmp(t.last.platform, "esp32c61") == 0 && t.last.line == 4 &&
		      t.last.efuse_key[15] == 15);
		free(text);
	}
	/* The canonical platform of every row, in order. */
	memset(&t, 0, sizeof(t));
	const char *two = "mac,platform,efuse_key\n7CDFA1000001,ESP32-S3," K1HEX_UNIT "\n";
	CHECK(csv_read_buffer(two, strlen(two), NULL, csv_row_cb, csv_err_cb, &t, &res) == 0 &&
	      t.rows == 1 && strcmp(t.last.platform, "esp32s3") == 0);
	/* A BOM is only a BOM at the very start. */
	CHECK(csv_run("mac,platform,efuse_key\n\xEF\xBB\xBF"
	              "7CDFA1000001,esp32s3," K1HEX_UNIT "\n",
	              &t) == 0 &&
	      t.rows == 0 && t.errors == 1 && strstr(t.reasons[0], "mac: "));
	/* Unknown targets: refused with the line and what was found; the others pass. */
	const char *x = "mac,platform,efuse_key\n"
	                "7CDFA1000001,esp99," K1HEX_UNIT "\n"
	                "7CDFA1000002,ESP32-X9," K1HEX_UNIT "\n"
	                "7CDFA1000003,esp32s3," K1HEX_UNIT "\n";
	CHECK(csv_run(x, &t) == 0 && t.rows == 1 && t.errors == 2);
	CHECKF(t.lines[0] == 2 && strstr(t.reasons[0], "platform: not a known IDF target") &&
	           strstr(t.reasons[0], "\"esp99\""),
	       "%s", t.reasons[0]);
	CHECK(t.lines[1] == 3 && strstr(t.reasons[1], "\"ESP32-X9\""));
	memset(&t, 0, sizeof(t));
	CHECK(csv_read_buffer(x, strlen(x), extra, csv_row_cb, csv_err_cb, &t, &res) == 0 &&
	      t.rows == 2 && t.errors == 1 && t.lines[0] == 2 &&
	      strcmp(t.last.mac, "7CDFA1000003") == 0);
	/* The key is never quoted back; the MAC is. */
	CHECK(csv_run("mac,platform,efuse_key\n7CDFA10000,esp32s3," K1HEX_UNIT "\n"
	              "7CDFA1000001,esp32s3,00SECRET\n",
	              &t) == 0 &&
	      t.errors == 2 && strstr(t.reasons[0], "\"7CDFA10000\"") &&
	      strstr(t.reasons[1], "efuse_key: ") && !strstr(t.reasons[1], "SECRET"));
	/* A header that is not ours says what it found. */
	CHECK(csv_run("MAC Address;Platform;Key\n", &t) < 0 && t.lines[0] == 1);
	CHECKF(strstr(t.reasons[0], "header: ") &&
	           strstr(t.reasons[0], "found: \"MAC Address;Platform;Key\""),
	       "%s", t.reasons[0]);
	CHECK(csv_run("\xEF\xBB\xBFserial,mac,platform\r\n", &t) < 0);
	CHECKF(strstr(t.reasons[0], "found: \"serial\", \"mac\", \"platform\""), "%s",
	       t.reasons[0]);
}

static const struct t_case cases[] = {
    {"csv_reader", csv_reader},
    {"csv_spellings", csv_spellings},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
