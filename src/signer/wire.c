/*
 * The signer protocol's codec (wire.h): a growing writer, a bounds-checked reader,
 * framing on a stream descriptor, and one writer and one reader per message. A short
 * or long payload is a refusal, never a guess. No policy and no keys here.
 */
#include "signer/wire.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "lib/util.h"

/* ---- payloads ---- */

void wire_put(struct wire_out *w, const void *b, size_t n)
{
	if (w->bad || n > SIGNER_MSG_MAX - w->n) {
		w->bad = true;
		return;
	}
	if (w->n + n > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap < w->n + n)
			cap *= 2;
		uint8_t *q = realloc(w->p, cap);
		if (!q) {
			w->bad = true;
			return;
		}
		w->p = q;
		w->cap = cap;
	}
	memcpy(w->p + w->n, b, n);
	w->n += n;
}

void wire_put_u32(struct wire_out *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	wire_put(w, b, 4);
}

void wire_put_i64(struct wire_out *w, int64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
	wire_put(w, b, 8);
}

void wire_put_str(struct wire_out *w, const void *s, size_t n)
{
	wire_put_u32(w, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n);
	wire_put(w, s, n);
}

void wire_out_clear(struct wire_out *w)
{
	if (w->p)
		secure_wipe(w->p, w->n);
	free(w->p);
	*w = (struct wire_out){0};
}

static const uint8_t *take(struct wire_in *r, size_t n)
{
	if (r->bad || n > r->n) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += n;
	r->n -= n;
	return p;
}

void wire_get(struct wire_in *r, void *out, size_t n)
{
	const uint8_t *p = take(r, n);
	if (p)
		memcpy(out, p, n);
	else
		memset(out, 0, n);
}

uint32_t wire_get_u32(struct wire_in *r)
{
	uint8_t b[4];
	wire_get(r, b, 4);
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

int64_t wire_get_i64(struct wire_in *r)
{
	uint8_t b[8];
	uint64_t v = 0;
	wire_get(r, b, 8);
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return (int64_t)v;
}

const uint8_t *wire_get_str(struct wire_in *r, size_t max, size_t *len)
{
	uint32_t n = wire_get_u32(r);
	if (n > max) {
		r->bad = true;
		return NULL;
	}
	*len = n;
	return take(r, n);
}

char *wire_get_cstr(struct wire_in *r, size_t max)
{
	size_t n = 0;
	const uint8_t *p = wire_get_str(r, max, &n);
	char *s = p ? malloc(n + 1) : NULL;
	if (!s) {
		r->bad = true;
		return NULL;
	}
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* A wire_get_str() field of at most @p max bytes into @p out (NUL-terminated). */
static void get_text(struct wire_in *r, char *out, size_t max)
{
	size_t n = 0;
	const uint8_t *p = wire_get_str(r, max, &n);
	if (!p)
		n = 0;
	memcpy(out, p ? (const void *)p : "", n);
	out[n] = '\0';
}

bool wire_done(const struct wire_in *r)
{
	return !r->bad && r->n == 0;
}

/* ---- framing ---- */

static bool wait_fd(int fd, short ev, uint64_t deadline)
{
	for (;;) {
		int ms = -1;
		if (deadline) {
			uint64_t now = now_ms_monotonic();
			if (now >= deadline)
				return false;
			ms = (int)(deadline - now);
		}
		struct pollfd p = {fd, ev, 0};
		int r = poll(&p, 1, ms);
		if (r > 0)
			return true;
		if (r == 0 || errno != EINTR)
			return false;
	}
}

/*
 * Sends (@p out) or receives @p n bytes at @p b: 0, or -1 on end-of-file, an error or
 * the deadline. The descriptor is waited for only when it has said EAGAIN, or first when
 * @p wait says the bytes cannot have come yet: each poll() is a system call, and a
 * frame's payload arrives with its header.
 */
static int io_all(int fd, uint8_t *b, size_t n, bool out, bool wait, uint64_t deadline)
{
	while (n > 0) {
		if (wait && !wait_fd(fd, out ? POLLOUT : POLLIN, deadline))
			return -1;
		ssize_t r = out ? send(fd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT)
		                : recv(fd, b, n, MSG_DONTWAIT);
		wait = r < 0 && errno == EAGAIN;
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

/* A frame up to this size is sent in one piece, so the peer wakes once, to all of it. */
#define FRAME_ONE_SEND 4096

int wire_send(int fd, uint32_t code, const struct wire_out *w, uint64_t deadline)
{
	uint8_t h[FRAME_ONE_SEND];
	uint32_t n = (uint32_t)w->n;
	int rc;

	h[0] = (uint8_t)(code >> 24);
	h[1] = (uint8_t)(code >> 16);
	h[2] = (uint8_t)(code >> 8);
	h[3] = (uint8_t)code;
	h[4] = (uint8_t)(n >> 24);
	h[5] = (uint8_t)(n >> 16);
	h[6] = (uint8_t)(n >> 8);
	h[7] = (uint8_t)n;
	if (w->bad)
		return -1;
	if (w->n > sizeof(h) - 8)
		return io_all(fd, h, 8, true, false, deadline) < 0 ||
		               io_all(fd, w->p, w->n, true, false, deadline) < 0
		           ? -1
		           : 0;
	if (w->n)
		memcpy(h + 8, w->p, w->n);
	rc = io_all(fd, h, 8 + w->n, true, false, deadline);
	secure_wipe(h + 8, w->n); /* a payload may carry a key (SEAL) */
	return rc;
}

int wire_recv(int fd, uint32_t *code, uint8_t **p, size_t *n, uint64_t deadline)
{
	uint8_t h[8];
	*p = NULL;
	*n = 0;
	if (io_all(fd, h, 8, false, true, deadline) < 0)
		return -1;
	*code = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	size_t len = (size_t)h[4] << 24 | (size_t)h[5] << 16 | (size_t)h[6] << 8 | h[7];
	if (len > SIGNER_MSG_MAX || !(*p = malloc(len ? len : 1)))
		return -1;
	if (io_all(fd, *p, len, false, false, deadline) < 0) {
		free(*p);
		*p = NULL;
		return -1;
	}
	*n = len;
	return 0;
}

/* ---- messages ---- */

void wire_put_issue(struct wire_out *w, const struct cert_request *rq)
{
	size_t cn = strlen(rq->cn), vid = strlen(rq->vendor_id), pid = strlen(rq->product_id);

	wire_put_u32(w, (uint32_t)rq->profile);
	wire_put_i64(w, rq->not_before);
	wire_put_i64(w, rq->not_after);
	wire_put(w, rq->serial, sizeof(rq->serial));
	wire_put_str(w, rq->cn, cn);
	wire_put_str(w, rq->vendor_id, vid);
	wire_put_str(w, rq->product_id, pid);
	wire_put_str(w, rq->spki, rq->spki_len);
	if (cn > NODE_ID_MAX || vid > MATTER_ID_LEN || pid > MATTER_ID_LEN ||
	    rq->spki_len > SIGNER_SPKI_MAX)
		w->bad = true;
}

bool wire_get_issue(struct wire_in *r, struct wire_issue *out)
{
	struct cert_request *rq = &out->rq;

	memset(out, 0, sizeof(*out));
	rq->profile = (enum cert_profile)wire_get_u32(r);
	rq->not_before = wire_get_i64(r);
	rq->not_after = wire_get_i64(r);
	wire_get(r, rq->serial, sizeof(rq->serial));
	get_text(r, out->cn, NODE_ID_MAX);
	get_text(r, out->vendor_id, MATTER_ID_LEN);
	get_text(r, out->product_id, MATTER_ID_LEN);
	rq->spki = wire_get_str(r, SIGNER_SPKI_MAX, &rq->spki_len);
	rq->cn = out->cn;
	rq->vendor_id = out->vendor_id;
	rq->product_id = out->product_id;
	return wire_done(r);
}

void wire_put_crl(struct wire_out *w, const struct crl_request *rq)
{
	wire_put_i64(w, rq->number);
	wire_put_i64(w, rq->this_update);
	wire_put_i64(w, rq->next_update);
	wire_put_u32(w, rq->n > UINT32_MAX ? UINT32_MAX : (uint32_t)rq->n);
	for (size_t i = 0; i < rq->n && !w->bad; i++) {
		if (strlen(rq->e[i].serial) != SERIAL_HEX_LEN)
			w->bad = true;
		wire_put(w, rq->e[i].serial, SERIAL_HEX_LEN);
		wire_put_i64(w, rq->e[i].revoked_at);
		wire_put_i64(w, rq->e[i].reason);
	}
}

bool wire_get_crl(struct wire_in *r, struct crl_request *rq, struct revoked_entry **e)
{
	*e = NULL;
	memset(rq, 0, sizeof(*rq));
	rq->number = wire_get_i64(r);
	rq->this_update = wire_get_i64(r);
	rq->next_update = wire_get_i64(r);
	rq->n = wire_get_u32(r);
	/* The count must match the payload before anything is allocated for it. */
	if (r->bad || rq->n != r->n / SIGNER_CRL_ENTRY_LEN || r->n % SIGNER_CRL_ENTRY_LEN)
		return false;
	if (rq->n && !(*e = calloc(rq->n, sizeof(**e))))
		return false;
	for (size_t i = 0; i < rq->n; i++) {
		wire_get(r, (*e)[i].serial, SERIAL_HEX_LEN);
		(*e)[i].serial[SERIAL_HEX_LEN] = '\0';
		(*e)[i].revoked_at = wire_get_i64(r);
		(*e)[i].reason = wire_get_i64(r);
	}
	rq->e = *e;
	return wire_done(r);
}

void wire_put_check(struct wire_out *w, const char mac[MAC_LEN + 1],
                    const uint8_t sealed[SEALED_EFUSE_BYTES], const char *challenge,
                    const uint8_t response[HMAC_SHA512_BYTES])
{
	if (strlen(challenge) != SIGNER_CHALLENGE_HEX) {
		w->bad = true;
		return;
	}
	wire_put(w, mac, MAC_LEN);
	wire_put(w, sealed, SEALED_EFUSE_BYTES);
	wire_put(w, challenge, SIGNER_CHALLENGE_HEX);
	wire_put(w, response, HMAC_SHA512_BYTES);
}

bool wire_get_check(struct wire_in *r, char mac[MAC_LEN + 1], uint8_t sealed[SEALED_EFUSE_BYTES],
                    char challenge[SIGNER_CHALLENGE_HEX], uint8_t response[HMAC_SHA512_BYTES])
{
	wire_get(r, mac, MAC_LEN);
	mac[MAC_LEN] = '\0';
	wire_get(r, sealed, SEALED_EFUSE_BYTES);
	wire_get(r, challenge, SIGNER_CHALLENGE_HEX);
	wire_get(r, response, HMAC_SHA512_BYTES);
	return wire_done(r);
}

void wire_put_seal(struct wire_out *w, const char mac[MAC_LEN + 1],
                   const uint8_t key[EFUSE_KEY_BYTES])
{
	wire_put(w, mac, MAC_LEN);
	wire_put(w, key, EFUSE_KEY_BYTES);
}

bool wire_get_seal(struct wire_in *r, char mac[MAC_LEN + 1], uint8_t key[EFUSE_KEY_BYTES])
{
	wire_get(r, mac, MAC_LEN);
	mac[MAC_LEN] = '\0';
	wire_get(r, key, EFUSE_KEY_BYTES);
	return wire_done(r);
}

void wire_put_hello(struct wire_out *w, const struct signer_hello *h)
{
	wire_put_str(w, h->key_type, strlen(h->key_type));
	wire_put_str(w, h->chain, strlen(h->chain));
	wire_put_str(w, h->largest_leaf, strlen(h->largest_leaf));
	wire_put(w, h->authid_keys, sizeof(h->authid_keys));
	wire_put_u32(w, h->pai ? 1 : 0);
	if (h->pai) {
		wire_put_str(w, h->pai, strlen(h->pai));
		wire_put_str(w, h->largest_dac, strlen(h->largest_dac));
	}
}

bool wire_get_hello(struct wire_in *r, struct signer_hello *h)
{
	memset(h, 0, sizeof(*h));
	h->key_type = wire_get_cstr(r, 32);
	h->chain = wire_get_cstr(r, SIGNER_MSG_MAX);
	h->largest_leaf = wire_get_cstr(r, SIGNER_MSG_MAX);
	wire_get(r, h->authid_keys, sizeof(h->authid_keys));
	if (wire_get_u32(r)) {
		h->pai = wire_get_cstr(r, SIGNER_MSG_MAX);
		h->largest_dac = wire_get_cstr(r, SIGNER_MSG_MAX);
	}
	return wire_done(r);
}

void signer_hello_clear(struct signer_hello *h)
{
	/* const for the writer, which lends them; the reader's are its own. */
	free((char *)h->key_type);
	free((char *)h->chain);
	free((char *)h->largest_leaf);
	free((char *)h->pai);
	free((char *)h->largest_dac);
	secure_wipe(h->authid_keys, sizeof(h->authid_keys));
	memset(h, 0, sizeof(*h));
}
