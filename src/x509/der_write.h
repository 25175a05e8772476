/*
 * A small DER writer (ITU-T X.690 10, definite lengths) for the device leaf, whose
 * shape is fixed (ca.c, ca_issue()): contents are appended, and a constructed value is
 * closed once its contents are written, its tag and length put in front of them.
 * Lengths up to 65,535 bytes; a leaf is at most a few kilobytes (RESPONSE_MAX).
 */
#ifndef CLAIMD_DER_WRITE_H
#define CLAIMD_DER_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A buffer being written. Any failure (out of memory, a length over 65,535) sets bad
 * and makes later calls do nothing. */
struct der {
	uint8_t *p;
	size_t len, cap;
	bool bad;
};

/** Appends @p n bytes (already DER) to @p d. */
void der_put(struct der *d, const void *src, size_t n);
/** Appends the value @p tag with contents @p src (@p n bytes). */
void der_put_tlv(struct der *d, uint8_t tag, const void *src, size_t n);
/** Starts a constructed value: returns where its contents begin, for der_close(). */
size_t der_open(struct der *d);
/** Ends the value opened at @p start: puts @p tag and the contents' length before them. */
void der_close(struct der *d, size_t start, uint8_t tag);
/** Frees @p d's buffer and empties it. */
void der_free(struct der *d);

#endif
