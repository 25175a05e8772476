/*
 * The manufacturing CSV reader: header-driven columns (mac, platform, efuse_key in any
 * order and any case, extras ignored), per-row validation with line numbers, the
 * fields canonicalised by canon_device(). It only parses and validates; sealing and
 * storing are the caller's (claimctl), so it can be fuzzed.
 */
#ifndef CLAIMD_CSVIMPORT_H
#define CLAIMD_CSVIMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/canon.h"

#define CSV_MAX_LINE 4096

struct csv_row {
	long line;
	char mac[MAC_LEN + 1];           /* canonical (canon.h) */
	char platform[PLATFORM_MAX + 1]; /* canonical, a known IDF target */
	uint8_t efuse_key[EFUSE_KEY_BYTES];
};

/** Receives each valid row; return -1 to stop reading. */
typedef int (*csv_row_fn)(void *arg, const struct csv_row *row);
/**
 * Receives each invalid line's number and reason: "mac: ...", "platform: ...",
 * "efuse_key: ..." (err_description() of canon_device()'s code, with the MAC or platform
 * as found), "missing fields", "malformed CSV ...", "line too long", or for line 1
 * "header: ..." (naming the header fields found).
 */
typedef void (*csv_error_fn)(void *arg, long line, const char *reason);

struct csv_result {
	long rows;    /* valid rows */
	long errors;  /* invalid lines */
	bool stopped; /* a callback asked to stop */
};

/**
 * Reads CSV from @p f to the end: UTF-8, optionally starting with a byte-order mark,
 * lines ended by LF or CR LF (README.md, "Registering chips at manufacturing").
 * @p extra_platforms are the config's claim.extra_platforms (NULL-terminated, or NULL).
 * Returns 0, or -1 when the header is unusable or a read fails (reported through
 * @p on_error with line 1 or the failing line).
 */
int csv_read_stream(FILE *f, char *const *extra_platforms, csv_row_fn on_row, csv_error_fn on_error,
                    void *arg, struct csv_result *res);
/** The same over a memory buffer (fuzzing, tests). */
int csv_read_buffer(const char *buf, size_t n, char *const *extra_platforms, csv_row_fn on_row,
                    csv_error_fn on_error, void *arg, struct csv_result *res);

#endif
