/*
 * Unit tests of the config file: keys, defaults, errors with their line, the example in step: no
 * server, no database. Each case is its own CTest test (label unit).
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

#define REQUIRED_KEYS "ca:\n  certificate: ca.pem\n  key: ca.key\nsecrets:\n  key_file: s.key\n"

/* Loads @p text and expects failure with @p want somewhere in the message. */
static void config_fails(const char *text, const char *want)
{
	char err[512];
	const char *path = write_tmp("c.yaml", text);
	struct claimd_config *c = config_load(path, err, sizeof(err));
	CHECKF(c == NULL, "config unexpectedly accepted: %s", text);
	CHECKF(c || strstr(err, want), "error '%s' lacks '%s'", err, want);
	config_free(c);
}

static void config_errors(void)
{
	config_fails("server:\n  listen: \"127.0.0.1:80\"\n  bogus: 1\n" REQUIRED_KEYS,
	             "c.yaml:3:3: unknown key 'server.bogus'");
	config_fails("server:\n  threads: 010\n" REQUIRED_KEYS,
	             "c.yaml:2:12: server.threads: expected a whole number");
	config_fails("server:\n  threads: 0x10\n" REQUIRED_KEYS, "c.yaml:2:12:");
	config_fails("server:\n  threads: -1\n" REQUIRED_KEYS, "expected a whole number");
	config_fails("ca:\n  certificate: a\n", "ca.key: required");
	config_fails("server: [1, 2]\n" REQUIRED_KEYS, "c.yaml:1:9: server: expected a mapping");
	config_fails("server:\n  listen: [a]\n" REQUIRED_KEYS,
	             "c.yaml:2:11: server.listen: expected a single value");
	config_fails("server:\n  listen: \"nohost\"\n" REQUIRED_KEYS, "expected host:port");
	config_fails("server:\n  listen: \"a:99999\"\n" REQUIRED_KEYS, "port must be");
	config_fails("server:\n  trusted_proxies: [\"10.0.0.0/33\"]\n" REQUIRED_KEYS,
	             "is not an address or CIDR");
	config_fails("claim:\n  mqtt_host: \"mqtts://x:8883\"\n" REQUIRED_KEYS, "bare hostname");
	config_fails("server:\n  threads: 2\n  threads: 3\n" REQUIRED_KEYS,
	             "c.yaml:3:3: server.threads: duplicate key");
	config_fails("server:\n  listen: \"a\n" REQUIRED_KEYS, "c.yaml:");
	config_fails("", "empty file");
	config_fails("- a\n", "expected a mapping at the top level");
	config_fails("users:\n  jwt:\n    jwks_file: j.json\n" REQUIRED_KEYS,
	             "users.jwt.issuer: required");
	config_fails("server:\n  log_level: loud\n" REQUIRED_KEYS, "log_level");
	/* Words are exact: "Release" or "no" is no policy. */
	config_fails("claim:\n  transfer: Release\n" REQUIRED_KEYS,
	             "c.yaml:2:13: claim.transfer: expected release, keep or refuse");
	config_fails("claim:\n  transfer: no\n" REQUIRED_KEYS, "claim.transfer: expected");
}

static void config_defaults_and_paths(void)
{
	char err[512];
	const char *path = write_tmp("ok.yaml", REQUIRED_KEYS "claim:\n  mqtt_host: mqtt.x.com\n");
	struct claimd_config *c = config_load(path, err, sizeof(err));
	REQUIRE(c != NULL);
	CHECK(strcmp(c->listen_host, "127.0.0.1") == 0 && c->listen_port == 8080);
	CHECK(c->challenge_ttl == 300 && c->validity_days == 3650 && c->quota == 5);
	CHECK(c->n_trusted_proxies == 2);
	CHECK(strcmp(c->mqtt_host, "mqtt.x.com") == 0);
	CHECK(c->transfer_value == TRANSFER_RELEASE);
	/* Relative paths are relative to the config file's folder. */
	char want[1100];
	snprintf(want, sizeof(want), "%s/ca.pem", tmpdir);
	CHECKF(strcmp(c->ca_certificate, want) == 0, "%s", c->ca_certificate);
	config_free(c);
}

static void config_example_in_step(void)
{
	/* The committed example is exactly what the key table generates, and it loads. */
	char *gen = NULL, *committed = NULL, err[512];
	CHECK(t_run(&gen, "'%s' config-example", t_bin("claimctl")) == 0);
	size_t n;
	committed = file_read_all(CLAIMD_SOURCE_DIR "/config/claimd.example.yaml", 1 << 20, &n);
	REQUIRE(gen && committed);
	CHECKF(strcmp(gen, committed) == 0,
	       "config/claimd.example.yaml is stale: regenerate with claimctl config-example");
	const char *path = write_tmp("example.yaml", committed);
	struct claimd_config *c = config_load(path, err, sizeof(err));
	CHECKF(c != NULL, "%s", err);
	config_free(c);
	free(gen);
	free(committed);
}

static void config_restart_keys(void)
{
	/* Only keys read at start-up are named, each once, in table order. */
	static const char a[] = "server:\n  listen: \"127.0.0.1:8080\"\n  threads: 4\n"
	                        "database:\n  url: \"host=/a\"\n"
	                        "claim:\n  mqtt_host: one.example.com\n" REQUIRED_KEYS;
	static const char b[] = "server:\n  listen: \"127.0.0.1:8081\"\n  threads: 5\n"
	                        "database:\n  url: \"host=/b\"\n"
	                        "claim:\n  mqtt_host: two.example.com\n" REQUIRED_KEYS;
	static const char *want[] = {"server.listen", "server.threads", "database.url"};
	char err[512];
	struct claimd_config *x = config_load_buffer("a.yaml", a, strlen(a), err, sizeof(err));
	struct claimd_config *y = config_load_buffer("b.yaml", b, strlen(b), err, sizeof(err));
	const char *key;
	size_t pos = 0, n = 0;

	REQUIRE(x && y);
	while ((key = config_next_restart_change(x, y, &pos)))
		CHECKF(n < 3 && strcmp(key, want[n++]) == 0, "%s", key);
	CHECK(n == 3);
	pos = 0;
	CHECK(config_next_restart_change(x, x, &pos) == NULL);
	config_free(x);
	config_free(y);
}

/* claim.extra_platforms: a list, stored canonical, each item a platform name. */
static void config_extra_platforms(void)
{
	char err[512];
	const char *path = write_tmp("xp.yaml", REQUIRED_KEYS "claim:\n  extra_platforms: "
	                                                      "[\"ESP32-X9\", \"linux_host\"]\n");
	struct claimd_config *c = config_load(path, err, sizeof(err)), *d;
	REQUIRE(c != NULL);
	CHECK(c->n_extra_platforms == 2 && strcmp(c->extra_platforms[0], "esp32x9") == 0 &&
	      strcmp(c->extra_platforms[1], "linuxhost") == 0 && c->extra_platforms[2] == NULL);
	CHECK(platform_known("esp32x9", c->extra_platforms));
	/* The default is an empty list; changing it is a reload, not a restart. */
	path = write_tmp("xp0.yaml", REQUIRED_KEYS);
	d = config_load(path, err, sizeof(err));
	REQUIRE(d != NULL);
	CHECK(d->n_extra_platforms == 0 && d->extra_platforms && d->extra_platforms[0] == NULL);
	CHECK(!platform_known("esp32x9", d->extra_platforms));
	size_t pos = 0;
	CHECK(config_next_restart_change(d, c, &pos) == NULL);
	config_free(c);
	config_free(d);
	config_fails("claim:\n  extra_platforms: [\"esp 32\"]\n" REQUIRED_KEYS,
	             "c.yaml:2:20: claim.extra_platforms: 'esp 32' is not a platform name");
	config_fails("claim:\n  extra_platforms: esp32x9\n" REQUIRED_KEYS,
	             "c.yaml:2:20: claim.extra_platforms: expected a list");
}

static const struct t_case cases[] = {
    {"config_errors", config_errors},
    {"config_defaults_and_paths", config_defaults_and_paths},
    {"config_example_in_step", config_example_in_step},
    {"config_restart_keys", config_restart_keys},
    {"config_extra_platforms", config_extra_platforms},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
