/*
 * Unit tests of the libsodium wrapper and the secrets key: HMAC, sealing, key files: no server, no
 * database. Each case is its own CTest test (label unit).
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
#include <pthread.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

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

/*
 * Unit tests of the core library: no server, no database. Each case is its own CTest
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

static void hmac_vector(void)
{
	/* docs/protocol.md section 2.2, checked with openssl. */
	uint8_t key[16];
	char out[129];
	REQUIRE(hex_decode(key, 16, "000102030405060708090A0B0C0D0E0F", 32, false));
	sim_challenge_response(
	    key, "4f7c1e0a9b2d3c5e6f708192a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6", out);
	CHECK(strcmp(out, "92E9DAB07E0F5344694FBC2F9D883FC572A1F59EF5BDBA726AC74FA250C7C7312BF7"
	                  "9187F92458F080B0F509F48B5B3D72EA72A6AB8DB9E46FCB2CEC209BED08") == 0);
}

static void seal_roundtrip(void)
{
	struct secrets *s = test_secrets(7), *other = test_secrets(8);
	uint8_t key[16], sealed[SEALED_EFUSE_BYTES], sealed2[SEALED_EFUSE_BYTES], out[16];
	uint8_t t1[16], t2[16], t3[16];

	secure_random(key, sizeof(key));
	efuse_seal(s, "7CDFA1000001", key, sealed);
	CHECK(efuse_open(s, "7CDFA1000001", sealed, sizeof(sealed), out));
	CHECK(memcmp(out, key, 16) == 0);
	/* Fresh nonce each time: the same key never seals to the same bytes. */
	efuse_seal(s, "7CDFA1000001", key, sealed2);
	CHECK(memcmp(sealed, sealed2, sizeof(sealed)) != 0);
	/* Bound to the MAC, to the key, and tamper-evident in every byte. */
	CHECK(!efuse_open(s, "7CDFA1000002", sealed, sizeof(sealed), out));
	CHECK(!efuse_open(other, "7CDFA1000001", sealed, sizeof(sealed), out));
	for (size_t i = 0; i < sizeof(sealed); i++) {
		sealed[i] ^= 0x01;
		CHECKF(!efuse_open(s, "7CDFA1000001", sealed, sizeof(sealed), out), "byte %zu", i);
		sealed[i] ^= 0x01;
	}
	CHECK(!efuse_open(s, "7CDFA1000001", sealed, sizeof(sealed) - 1, out));
	/* Tags: equal for equal inputs, different otherwise. */
	efuse_tag(s, "7CDFA1000001", key, t1);
	efuse_tag(s, "7CDFA1000001", key, t2);
	key[0] ^= 1;
	efuse_tag(s, "7CDFA1000001", key, t3);
	CHECK(memcmp(t1, t2, 16) == 0 && memcmp(t1, t3, 16) != 0);
	secrets_free(s);
	secrets_free(other);
}

static void secrets_file_rules(void)
{
	char err[256];
	char k[64];
	secrets_keygen(k, sizeof(k));
	strcat(k, "\n");
	const char *p = write_tmp("s.key", k);
	chmod(p, 0644);
	struct secrets *s = secrets_load(p, err, sizeof(err));
	CHECK(s == NULL && strstr(err, "group- or world-accessible"));
	chmod(p, 0600);
	s = secrets_load(p, err, sizeof(err));
	CHECKF(s != NULL, "%s", err);
	secrets_free(s);
	p = write_tmp("bad.key", "bm90IDMyIGJ5dGVz\n");
	chmod(p, 0600);
	CHECK(secrets_load(p, err, sizeof(err)) == NULL && strstr(err, "32 bytes"));
}

/* secure_random(): small draws through the per-thread pool never repeat, a thread has
 * a pool of its own, and a fork's child does not hand out its parent's next bytes. */
static void *draw_in_thread(void *arg)
{
	secure_random(arg, 16);
	return NULL;
}

static void random_pool(void)
{
	enum { N = 2000 };
	static uint8_t ids[N][8];
	uint8_t a[16], b[16], big[300], zero[300] = {0};

	REQUIRE(secure_init() == 0);
	for (int i = 0; i < N; i++)
		secure_random(ids[i], sizeof(ids[i]));
	int same = 0;
	for (int i = 0; i < N; i++)
		for (int j = i + 1; j < N; j++)
			same += memcmp(ids[i], ids[j], sizeof(ids[i])) == 0;
	CHECKF(same == 0, "%d repeated 8-byte draws in %d", same, N);
	/* A draw in another thread is not this thread's next bytes. */
	pthread_t t;
	REQUIRE(pthread_create(&t, NULL, draw_in_thread, b) == 0);
	pthread_join(t, NULL);
	secure_random(a, sizeof(a));
	CHECK(memcmp(a, b, sizeof(a)) != 0);
	/* Parent and child after a fork: the child's first draw is not the parent's next. */
	int pfd[2];
	REQUIRE(pipe(pfd) == 0);
	secure_random(a, 1); /* the pool now holds bytes both would inherit */
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		secure_random(b, sizeof(b));
		_exit(write(pfd[1], b, sizeof(b)) == (ssize_t)sizeof(b) ? 0 : 1);
	}
	secure_random(a, sizeof(a));
	REQUIRE(read(pfd[0], b, sizeof(b)) == (ssize_t)sizeof(b));
	waitpid(pid, NULL, 0);
	close(pfd[0]);
	close(pfd[1]);
	CHECK(memcmp(a, b, sizeof(a)) != 0);
	/* A draw larger than the pool's limit is filled whole. */
	secure_random(big, sizeof(big));
	CHECK(memcmp(big + sizeof(big) - 32, zero, 32) != 0 && memcmp(big, zero, 32) != 0);
}

static const struct t_case cases[] = {
    {"random_pool", random_pool},
    {"hmac_vector", hmac_vector},
    {"seal_roundtrip", seal_roundtrip},
    {"secrets_file_rules", secrets_file_rules},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
