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

static const struct t_case cases[] = {
    {"mac_and_hex", mac_and_hex},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
