/*
 * The DER writer (der_write.h).
 */
#include "x509/der_write.h"

#include <stdlib.h>
#include <string.h>

#define DER_MAX 65535

static bool reserve(struct der *d, size_t n)
{
	if (d->bad || d->len + n > DER_MAX) {
		d->bad = true;
		return false;
	}
	if (d->len + n <= d->cap)
		return true;
	size_t cap = d->cap ? d->cap : 256;
	while (cap < d->len + n)
		cap *= 2;
	uint8_t *p = realloc(d->p, cap);
	if (!p) {
		d->bad = true;
		return false;
	}
	d->p = p;
	d->cap = cap;
	return true;
}

void der_put(struct der *d, const void *src, size_t n)
{
	if (!reserve(d, n))
		return;
	if (n)
		memcpy(d->p + d->len, src, n);
	d->len += n;
}

/* The identifier and length octets of a value of @p n content bytes (X.690 8.1.3: the
 * short form below 128, else the fewest length octets). Writes 2 to 4 bytes. */
static size_t head(uint8_t out[4], uint8_t tag, size_t n)
{
	out[0] = tag;
	if (n < 0x80) {
		out[1] = (uint8_t)n;
		return 2;
	}
	if (n < 0x100) {
		out[1] = 0x81;
		out[2] = (uint8_t)n;
		return 3;
	}
	out[1] = 0x82;
	out[2] = (uint8_t)(n >> 8);
	out[3] = (uint8_t)n;
	return 4;
}

void der_put_tlv(struct der *d, uint8_t tag, const void *src, size_t n)
{
	uint8_t h[4];

	if (n > DER_MAX) {
		d->bad = true;
		return;
	}
	der_put(d, h, head(h, tag, n));
	der_put(d, src, n);
}

size_t der_open(struct der *d)
{
	return d->len;
}

void der_close(struct der *d, size_t start, uint8_t tag)
{
	uint8_t h[4];

	if (d->bad || start > d->len)
		return;
	size_t n = d->len - start, hl = head(h, tag, n);
	if (!reserve(d, hl))
		return;
	memmove(d->p + start + hl, d->p + start, n);
	memcpy(d->p + start, h, hl);
	d->len += hl;
}

void der_free(struct der *d)
{
	free(d->p);
	*d = (struct der){0};
}
