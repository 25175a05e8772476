/*
 * Unit tests of the signer's codec (src/signer/wire.c): the bytes of each message are
 * spelled out here by hand, so a change to the wire format fails even though the
 * client, the server, test_signer and fuzz_signer all share the codec. No server, no
 * database.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/util.h"
#include "signer/wire.h"
#include "harness.h"

/* Expected bytes, written out independently of wire.c. */
struct frame {
	uint8_t b[512];
	size_t n;
};

static void fr_put(struct frame *f, const void *p, size_t n)
{
	if (f->n + n <= sizeof(f->b)) {
		memcpy(f->b + f->n, p, n);
		f->n += n;
	}
}

static void fr_u32(struct frame *f, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	fr_put(f, b, 4);
}

static void fr_i64(struct frame *f, int64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
	fr_put(f, b, 8);
}

static void fr_str(struct frame *f, const void *p, size_t n)
{
	fr_u32(f, (uint32_t)n);
	fr_put(f, p, n);
}

/* @p w holds exactly the bytes of @p f. */
static bool same(const struct wire_out *w, const struct frame *f)
{
	return !w->bad && w->n == f->n && memcmp(w->p, f->b, f->n) == 0;
}

static void wire_bytes(void)
{
	static const uint8_t spki[5] = {0x30, 0x03, 0x01, 0x02, 0x03};
	struct cert_request rq = {
	    .profile = CERT_PROFILE_MATTER_DAC,
	    .spki = spki,
	    .spki_len = sizeof(spki),
	    .cn = "7CDFA1000001",
	    .vendor_id = "131B",
	    .product_id = "8000",
	    .serial = {0x41, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
	    .not_before = 1700000000,
	    .not_after = -2,
	};
	struct frame f = {.n = 0};
	struct wire_out w = {0};

	/* ISSUE: profile u32, not_before i64, not_after i64, serial[16], cn, vid, pid, spki. */
	fr_u32(&f, 2);
	fr_i64(&f, 1700000000);
	fr_i64(&f, -2);
	fr_put(&f, rq.serial, 16);
	fr_str(&f, "7CDFA1000001", 12);
	fr_str(&f, "131B", 4);
	fr_str(&f, "8000", 4);
	fr_str(&f, spki, sizeof(spki));
	wire_put_issue(&w, &rq);
	CHECK(same(&w, &f));
	struct wire_in in = {w.p, w.n, false};
	struct wire_issue got;
	CHECK(wire_get_issue(&in, &got) && got.rq.profile == CERT_PROFILE_MATTER_DAC &&
	      got.rq.not_after == -2 && strcmp(got.cn, "7CDFA1000001") == 0 &&
	      strcmp(got.product_id, "8000") == 0 && got.rq.spki_len == sizeof(spki));
	wire_out_clear(&w);

	/* CRL: number, this_update, next_update (i64), count u32, then each entry: the
	 * serial's 32 hex digits, revoked_at i64, reason i64. */
	struct revoked_entry e[2] = {{"41000000000000000000000000000001", 1699990000, 1},
	                             {"41000000000000000000000000000002", 1699990001, 0}};
	struct crl_request crl = {7, 1700000000, 1700086400, e, 2};
	f.n = 0;
	fr_i64(&f, 7);
	fr_i64(&f, 1700000000);
	fr_i64(&f, 1700086400);
	fr_u32(&f, 2);
	for (int i = 0; i < 2; i++) {
		fr_put(&f, e[i].serial, 32);
		fr_i64(&f, e[i].revoked_at);
		fr_i64(&f, e[i].reason);
	}
	wire_put_crl(&w, &crl);
	CHECK(same(&w, &f));
	wire_out_clear(&w);

	/* CHECK: mac[12], sealed[56], challenge[64], response[64], no lengths. */
	uint8_t sealed[SEALED_EFUSE_BYTES], response[HMAC_SHA512_BYTES];
	char challenge[SIGNER_CHALLENGE_HEX + 1];
	memset(sealed, 0xa5, sizeof(sealed));
	memset(response, 0x5a, sizeof(response));
	memset(challenge, 'c', SIGNER_CHALLENGE_HEX);
	challenge[SIGNER_CHALLENGE_HEX] = '\0';
	f.n = 0;
	fr_put(&f, "7CDFA1000001", 12);
	fr_put(&f, sealed, sizeof(sealed));
	fr_put(&f, challenge, 64);
	fr_put(&f, response, sizeof(response));
	CHECK(f.n == 12 + 56 + 64 + 64);
	wire_put_check(&w, "7CDFA1000001", sealed, challenge, response);
	CHECK(same(&w, &f));
	wire_out_clear(&w);

	/* SEAL: mac[12], key[16]. */
	uint8_t key[EFUSE_KEY_BYTES];
	memset(key, 0x11, sizeof(key));
	f.n = 0;
	fr_put(&f, "7CDFA1000001", 12);
	fr_put(&f, key, sizeof(key));
	wire_put_seal(&w, "7CDFA1000001", key);
	CHECK(same(&w, &f));
	wire_out_clear(&w);

	/* HELLO: key type, chain, largest leaf (strings), the 64 auth_id key bytes, then a
	 * u32 flag and, when set, the PAI and the largest DAC. */
	struct signer_hello h = {.key_type = "ec", .chain = "C", .largest_leaf = "LL"};
	memset(h.authid_keys, 0x42, sizeof(h.authid_keys));
	f.n = 0;
	fr_str(&f, "ec", 2);
	fr_str(&f, "C", 1);
	fr_str(&f, "LL", 2);
	fr_put(&f, h.authid_keys, 64);
	fr_u32(&f, 0);
	wire_put_hello(&w, &h);
	CHECK(same(&w, &f));
	wire_out_clear(&w);
}

/* A frame: code u32 and payload length u32, big-endian, then the payload. */
static void wire_framing(void)
{
	int sv[2];
	uint8_t got[64];
	struct wire_out w = {0};
	static const uint8_t want[] = {0, 0, 0, 3, 0, 0, 0, 3, 'a', 'b', 'c'};

	REQUIRE(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	wire_put(&w, "abc", 3);
	CHECK(wire_send(sv[0], SIGNER_OP_CHECK, &w, now_ms_monotonic() + 1000) == 0);
	CHECK(read(sv[1], got, sizeof(got)) == (ssize_t)sizeof(want) &&
	      memcmp(got, want, sizeof(want)) == 0);
	/* And back: the reader takes the same bytes. */
	CHECK(write(sv[1], want, sizeof(want)) == (ssize_t)sizeof(want));
	uint32_t code = 0;
	uint8_t *p = NULL;
	size_t n = 0;
	CHECK(wire_recv(sv[0], &code, &p, &n, now_ms_monotonic() + 1000) == 0 && code == 3 &&
	      n == 3 && memcmp(p, "abc", 3) == 0);
	free(p);
	/* A length over SIGNER_MSG_MAX is refused before anything is allocated. */
	const uint32_t big = (uint32_t)SIGNER_MSG_MAX + 1;
	const uint8_t over[8] = {
	    0,           0, 0, 1, (uint8_t)(big >> 24), (uint8_t)(big >> 16), (uint8_t)(big >> 8),
	    (uint8_t)big};
	CHECK(write(sv[1], over, sizeof(over)) == (ssize_t)sizeof(over));
	CHECK(wire_recv(sv[0], &code, &p, &n, now_ms_monotonic() + 1000) < 0 && !p);
	wire_out_clear(&w);
	close(sv[0]);
	close(sv[1]);
}

static const struct t_case cases[] = {
    {"wire_bytes", wire_bytes},
    {"wire_framing", wire_framing},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
