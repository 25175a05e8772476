/*
 * The manufacturing CSV reader: header-driven columns (mac, platform, efuse_key in any
 * order, extras ignored), strict per-row validation with line numbers. It only parses
 * and validates; sealing and storing are the caller's (claimctl), so it can be fuzzed.
 */
#ifndef CLAIMD_CSVIMPORT_H
#define CLAIMD_CSVIMPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "claimd/crypto.h"
#include "claimd/util.h"

#define CSV_MAX_LINE 4096

struct csv_row {
	long line;
	char mac[MAC_LEN + 1];
	char platform[33];
	uint8_t efuse_key[EFUSE_KEY_BYTES];
};

/* What is wrong with a device's fields, the first problem found. */
enum device_fields {
	DEVICE_FIELDS_OK,
	DEVICE_BAD_MAC,
	DEVICE_BAD_PLATFORM,
	DEVICE_BAD_KEY,
};

/**
 * The one validation of a device to register, shared by every entry point (the CSV
 * rows here, the management API): @p mac, @p platform and @p key (hex, spaces allowed),
 * already trimmed, normalised into @p out's mac, platform and efuse_key (not line).
 */
enum device_fields device_fields_check(const char *mac, const char *platform, const char *key,
                                       struct csv_row *out);

/** Receives each valid row; return -1 to stop reading. */
typedef int (*csv_row_fn)(void *arg, const struct csv_row *row);
/** Receives each invalid line's number and reason. */
typedef void (*csv_error_fn)(void *arg, long line, const char *reason);

struct csv_result {
	long rows;    /* valid rows */
	long errors;  /* invalid lines */
	bool stopped; /* a callback asked to stop */
};

/**
 * Reads CSV from @p f to the end. Returns 0, or -1 when the header is unusable or a
 * read fails (reported through @p on_error with line 1 or the failing line).
 */
int csv_read_stream(FILE *f, csv_row_fn on_row, csv_error_fn on_error, void *arg,
                    struct csv_result *res);
/** The same over a memory buffer (fuzzing, tests). */
int csv_read_buffer(const char *buf, size_t n, csv_row_fn on_row, csv_error_fn on_error, void *arg,
                    struct csv_result *res);

#endif
