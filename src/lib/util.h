/*
 * Small pure helpers: hex, MAC bytes, whole-file reads, clocks. Nothing here touches
 * the network, the database or a secret's lifetime. How a MAC or platform is spelt once
 * accepted is canon.h's, included here for the callers that found mac_normalize() here.
 */
#ifndef CLAIMD_UTIL_H
#define CLAIMD_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>
#include <stdint.h>

#include "lib/canon.h"

/** The value 0-15 of hex digit @p c (either case), or -1. */
int hex_value(char c);
/** Writes 2*n upper-case hex digits of @p in plus a NUL into @p out. */
void hex_encode_upper(char *out, const uint8_t *in, size_t n);
/** Writes 2*n lower-case hex digits of @p in plus a NUL into @p out. */
void hex_encode_lower(char *out, const uint8_t *in, size_t n);
/**
 * Decodes exactly 2*@p n hex digits (either case) from @p in of length @p len into
 * @p out, skipping ASCII spaces when @p allow_spaces. Returns false on any other byte
 * or a wrong count.
 */
bool hex_decode(uint8_t *out, size_t n, const char *in, size_t len, bool allow_spaces);
/** Parses a normalised MAC into 6 bytes. */
void mac_to_bytes(uint8_t out[6], const char mac[MAC_LEN + 1]);
/** Formats 6 bytes as a normalised MAC. */
void mac_from_bytes(char out[MAC_LEN + 1], const uint8_t in[6]);
/**
 * Reads a whole file (at most @p max bytes) into a NUL-terminated buffer the caller
 * frees. Returns NULL and sets errno on failure (EFBIG when larger than @p max).
 */
char *file_read_all(const char *path, size_t max, size_t *len_out);
/**
 * The name of user @p uid for messages, or "uid N" when it has none, written into
 * @p buf (@p bufsz bytes, truncated to fit). Returns @p buf.
 */
const char *user_name(uid_t uid, char *buf, size_t bufsz);
/**
 * Whether this process may read the key file @p path (whose stat is @p st): 0, or -1
 * with @p why saying "permission denied", which user this process runs as, who owns
 * the file and its mode, and the owner it needs (this process's user, mode 0600).
 * Key loaders call it before parsing, so that a file they cannot read is not reported
 * as one they cannot parse.
 */
int key_file_access(const char *path, const struct stat *st, char *why, size_t whysz);
/** Milliseconds from a monotonic clock. */
uint64_t now_ms_monotonic(void);
/** Microseconds from the same monotonic clock. */
uint64_t now_us_monotonic(void);
/** Seconds since the epoch. */
int64_t now_unix(void);

#endif
