/*
 * The signer protocol's messages, both ways, and nothing else: the one codec the
 * client (client.c), the signer (server.c), the tests and the fuzz target use. No
 * policy here (server.c decides what it signs) and no transport beyond framing a
 * message on a stream descriptor.
 *
 * A frame, both ways: a header of two big-endian u32 (request: the operation, enum
 * signer_op; reply: 0 = done, 1 = refused) and the payload length, at most
 * SIGNER_MSG_MAX, then the payload. Integers are big-endian, i64 two's complement;
 * every field has a fixed size or a u32 length before it, and a reader refuses a
 * payload whose parts do not add up to its length exactly.
 *
 * Payloads (requests; the replies follow each):
 *   HELLO (signer to claimd, once, unasked): str key_type, str chain, str largest leaf,
 *         64 bytes auth_id subkeys, u32 has_pai, [str PAI, str largest DAC];
 *         refused: str message
 *   ISSUE u32 profile, i64 not_before, i64 not_after, 16 bytes serial (ignored: the
 *         signer draws every serial itself), str cn, str vendor_id, str product_id,
 *         str spki                  -> 16 bytes the serial drawn, the certificate, DER
 *   CRL   i64 number, i64 this_update, i64 next_update, u32 n,
 *         n * (32 bytes serial hex, i64 revoked_at, i64 reason)  -> the CRL, DER
 *   CHECK 12 bytes MAC, sealed key, 64 bytes challenge hex, HMAC-SHA512 response
 *                                                      -> 1 byte, enum signer_verdict
 *   SEAL  12 bytes MAC, eFuse key                       -> sealed key, tag
 *   PING  nothing                                       -> nothing (readiness, /readyz)
 */
#ifndef CLAIMD_SIGNER_WIRE_H
#define CLAIMD_SIGNER_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/secure.h"
#include "lib/vocab.h"
#include "x509/ca.h"

#define SIGNER_FD            3 /* the signer's end of the channel, in the signer process */
#define SIGNER_MSG_MAX       (16u << 20) /* a CRL of some 340,000 entries */
#define SIGNER_SPKI_MAX      2048        /* an RSA-4096 SubjectPublicKeyInfo is 550 bytes */
#define SIGNER_CHALLENGE_HEX 64          /* authid.h's CHALLENGE_LEN: 32 bytes as hex */
#define SIGNER_CRL_ENTRY_LEN (SERIAL_HEX_LEN + 8 + 8)

/* The operations; the numbers travel on the wire, so a value is never reused. */
enum signer_op {
	SIGNER_OP_HELLO = 0,
	SIGNER_OP_ISSUE = 1,
	SIGNER_OP_CRL = 2,
	SIGNER_OP_CHECK = 3,
	SIGNER_OP_SEAL = 4,
	SIGNER_OP_PING = 5,
	/* A CHECK payload then an ISSUE payload; the certificate is made only for a
	 * right response: one exchange per claim instead of two. */
	SIGNER_OP_CHECK_ISSUE = 6,
};

/* What the signer found for a challenge response (CHECK's reply byte). */
enum signer_verdict { SIGNER_RIGHT = 0, SIGNER_WRONG = 1, SIGNER_UNOPENABLE = 2 };

/* A payload being written: grows as needed; bad once memory ran out or it passed
 * SIGNER_MSG_MAX (then it is never sent). Start from {0}. */
struct wire_out {
	uint8_t *p;
	size_t n, cap;
	bool bad;
};

/* A payload being read: bad once a read went past its end (later reads give zeros). */
struct wire_in {
	const uint8_t *p;
	size_t n;
	bool bad;
};

/** Appends @p n bytes at @p b. */
void wire_put(struct wire_out *w, const void *b, size_t n);
/** Appends a big-endian u32. */
void wire_put_u32(struct wire_out *w, uint32_t v);
/** Appends a big-endian i64 (two's complement). */
void wire_put_i64(struct wire_out *w, int64_t v);
/** Appends a u32 length, then the @p n bytes at @p s. */
void wire_put_str(struct wire_out *w, const void *s, size_t n);
/** Wipes (secure_wipe()) and frees @p w's payload and resets it to {0}. */
void wire_out_clear(struct wire_out *w);

/** Reads @p n bytes into @p out (zeros past the end, which marks @p r bad). */
void wire_get(struct wire_in *r, void *out, size_t n);
/** Reads a big-endian u32 (0 past the end). */
uint32_t wire_get_u32(struct wire_in *r);
/** Reads a big-endian i64 (0 past the end). */
int64_t wire_get_i64(struct wire_in *r);
/**
 * Reads a u32 length of at most @p max and that many bytes, returned in place (not
 * NUL-terminated) with their count in *@p len; NULL (and @p r bad) when longer or short.
 */
const uint8_t *wire_get_str(struct wire_in *r, size_t max, size_t *len);
/** A malloc'd NUL-terminated copy of a wire_get_str() field; NULL (and bad) on failure. */
char *wire_get_cstr(struct wire_in *r, size_t max);
/** Whether @p r was read exactly to its end, never past it. */
bool wire_done(const struct wire_in *r);

/**
 * Sends one frame (@p code, then @p w's payload) on stream @p fd before @p deadline
 * (monotonic milliseconds, now_ms_monotonic(); 0 = no deadline). 0, or -1 (a bad
 * payload, an error, the peer gone, or the deadline).
 */
int wire_send(int fd, uint32_t code, const struct wire_out *w, uint64_t deadline);
/**
 * Receives one frame: its code and a malloc'd payload (*@p p, *@p n bytes; the caller
 * frees it). -1 with *@p p NULL on end-of-file, an error, the deadline (as wire_send())
 * or a length over SIGNER_MSG_MAX.
 */
int wire_recv(int fd, uint32_t *code, uint8_t **p, size_t *n, uint64_t deadline);

/** Writes an ISSUE request; marks @p w bad when a field is over its limit. */
void wire_put_issue(struct wire_out *w, const struct cert_request *rq);
/* An ISSUE request as read: @p rq's strings point into the arrays beside it and its
 * spki into the payload read. */
struct wire_issue {
	struct cert_request rq;
	char cn[NODE_ID_MAX + 1];
	char vendor_id[MATTER_ID_LEN + 1], product_id[MATTER_ID_LEN + 1];
};
/** Reads a whole ISSUE payload into @p out. False when it is malformed (the fields do
 * not add up to the payload, or one is over its limit). */
bool wire_get_issue(struct wire_in *r, struct wire_issue *out);

/** Writes a CRL request; marks @p w bad when an entry's serial is not SERIAL_HEX_LEN
 * long or the request does not fit SIGNER_MSG_MAX. */
void wire_put_crl(struct wire_out *w, const struct crl_request *rq);
/** Reads a whole CRL payload into @p rq, its entries a malloc'd array in *@p e (the
 * caller frees it; NULL for none). False when malformed (the count does not match the
 * payload, checked before anything is allocated) or out of memory. */
bool wire_get_crl(struct wire_in *r, struct crl_request *rq, struct revoked_entry **e);

/** Writes a CHECK request; marks @p w bad when @p challenge is not SIGNER_CHALLENGE_HEX
 * characters. */
void wire_put_check(struct wire_out *w, const char mac[MAC_LEN + 1],
                    const uint8_t sealed[SEALED_EFUSE_BYTES], const char *challenge,
                    const uint8_t response[HMAC_SHA512_BYTES]);
/* A CHECK payload's length: it has fixed fields only, so CHECK_ISSUE's ISSUE part
 * starts this far in. */
#define WIRE_CHECK_LEN (MAC_LEN + SEALED_EFUSE_BYTES + SIGNER_CHALLENGE_HEX + HMAC_SHA512_BYTES)
/** Reads a whole CHECK payload (@p mac NUL-terminated, not yet checked). False when
 * malformed. */
bool wire_get_check(struct wire_in *r, char mac[MAC_LEN + 1], uint8_t sealed[SEALED_EFUSE_BYTES],
                    char challenge[SIGNER_CHALLENGE_HEX], uint8_t response[HMAC_SHA512_BYTES]);

/** Writes a SEAL request (the caller wipes @p w with wire_out_clear()). */
void wire_put_seal(struct wire_out *w, const char mac[MAC_LEN + 1],
                   const uint8_t key[EFUSE_KEY_BYTES]);
/** Reads a whole SEAL payload (@p mac NUL-terminated, not yet checked). False when
 * malformed. */
bool wire_get_seal(struct wire_in *r, char mac[MAC_LEN + 1], uint8_t key[EFUSE_KEY_BYTES]);

/* The signer's hello: the public side of its keys and the auth_id subkeys. */
struct signer_hello {
	const char *key_type, *chain, *largest_leaf; /* the CA (ca_public()) */
	uint8_t authid_keys[64];                     /* secrets_authid_keys(): auth_id, challenge */
	const char *pai, *largest_dac;               /* NULL: no Matter PAI configured */
};
/** Writes @p h. */
void wire_put_hello(struct wire_out *w, const struct signer_hello *h);
/** Reads a whole hello into @p h (its strings malloc'd; signer_hello_clear() frees them).
 * False when malformed or out of memory. */
bool wire_get_hello(struct wire_in *r, struct signer_hello *h);
/** Frees the strings wire_get_hello() put in @p h and wipes its keys. */
void signer_hello_clear(struct signer_hello *h);

#endif
