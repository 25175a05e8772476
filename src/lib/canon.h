/*
 * The canonical forms of a device's manufacturing identifiers: its MAC, its platform
 * (IDF target) and its eFuse key; and of the serials of the certificates it gets. Every entry point
 * (the CSV import, the management API's device registration, the claim requests, claimctl's
 * arguments) reads them through these functions, so a spelling accepted in one place means the same
 * device in every other. Pure: no I/O, no configuration file, no database.
 */
#ifndef CLAIMD_CANON_H
#define CLAIMD_CANON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lib/secure.h"
#include "lib/errors.h"
#include "lib/vocab.h"

#define PLATFORM_MAX 32 /* characters of a platform as written, and so of its canonical form */

/** A device as stored: canonical MAC and platform, the key's 16 bytes. */
struct canon_device {
	char mac[MAC_LEN + 1];
	char platform[PLATFORM_MAX + 1];
	uint8_t efuse_key[EFUSE_KEY_BYTES];
};

/**
 * Canonicalises a MAC address: 12 hex digits in any case, either bare or in six pairs
 * separated by ':' or '-' (one kind throughout), as docs/protocol.md 2.1 and the
 * interface's "Manufacturing CSV" allow. Writes 12 upper-case digits and a NUL to
 * @p out (13 bytes). Returns false for anything else.
 */
bool mac_normalize(char out[MAC_LEN + 1], const char *in, size_t len);

/**
 * Canonicalises a platform (IDF target) name: 1 to PLATFORM_MAX characters of
 * [A-Za-z0-9_-], written to @p out (PLATFORM_MAX + 1 bytes) in lower case with every
 * '-' and '_' removed, so "ESP32-S3", "esp32_s3" and "esp32s3" are all "esp32s3"
 * (README.md, "Registering chips at manufacturing"). Returns false for anything else,
 * including a name that is only separators. Says nothing about whether the target
 * exists: see platform_known().
 */
bool platform_normalize(char out[PLATFORM_MAX + 1], const char *in, size_t len);

/**
 * Whether @p canonical (a platform_normalize() result) is a known IDF target: esp32,
 * esp32s2, esp32s3, esp32c2, esp32c3, esp32c5, esp32c6, esp32c61, esp32h2, esp32p4, or
 * one of @p extra (the config's claim.extra_platforms, already canonical; a
 * NULL-terminated list, or NULL for none).
 */
bool platform_known(const char *canonical, char *const *extra);

/**
 * Reads an eFuse OPTIONAL_UNIQUE_ID: 32 hex digits in any case, byte 0 first (as
 * `espefuse.py summary` prints it), ASCII spaces allowed anywhere. Writes the 16 bytes
 * to @p out. Returns false for anything else.
 */
bool efuse_key_parse(uint8_t out[EFUSE_KEY_BYTES], const char *in, size_t len);

/**
 * Canonicalises one manufactured device for registration (the CSV import, the
 * management API's POST /admin/v1/devices): @p mac, @p platform and @p key are
 * NUL-terminated as given, surrounding spaces already removed; @p extra is as for
 * platform_known(). Fills @p out and returns CE_OK, or the first field that is wrong:
 * CE_DEVICE_MAC, CE_DEVICE_PLATFORM (not a platform name at all),
 * CE_DEVICE_PLATFORM_UNKNOWN (a name, but no known IDF target) or CE_DEVICE_EFUSE_KEY,
 * whose descriptions (err_description()) name the field and the rule.
 */
enum claimd_err canon_device(const char *mac, const char *platform, const char *key,
                             char *const *extra, struct canon_device *out);

/*
 * How long a claimd serial is when written out. claimd draws every serial as 16 random
 * bytes with the first byte 0x01-0x7F (cert_random_serial(), ca.h), so its value lies
 * in [2^120, 2^127): 31 or 32 hex digits without leading zeros, 37 to 39 decimal
 * digits. The two ranges do not meet, which is what lets a string of decimal digits be
 * read without a prefix (cert_serial_parse()).
 */
#define SERIAL_HEX_DIGITS_MIN 31
#define SERIAL_DEC_DIGITS_MIN 37
#define SERIAL_DEC_DIGITS_MAX 39

/**
 * Reads a certificate serial as operators copy it from the tools that print one, for
 * every entry point that takes a serial (the management API's
 * /admin/v1/certificates/{serial}/..., `claimctl certs revoke` and `certs list
 * --serial`). @p in is @p len bytes; ASCII white space around it is ignored, and so is
 * an `openssl x509 -serial` prefix "serial=". The rule (README.md, "Revocation"):
 *   - hex: a "0x" prefix, or any of a-f/A-F, or separators, makes it hex: 1-32
 *     significant digits in any case, leading zeros optional; between bytes one kind of
 *     separator throughout, ':' (OpenSSL, browsers), ' ' (certutil) or '-', every group
 *     after the first an even number of digits (whole bytes), so "1:ab:cd" is 0x1ABCD;
 *   - only decimal digits, no prefix and no separator: hex when 31 or 32 digits long,
 *     decimal when 37 to 39 (SERIAL_DEC_DIGITS_*; at most 2^128 - 1), which are the
 *     lengths a claimd serial has in each base; any other length could be either and is
 *     refused as ambiguous rather than guessed.
 * Writes the value as claimd stores and prints serials: 32 upper-case hex digits,
 * zero-padded, and a NUL. Returns CE_OK; CE_ADMIN_SERIAL_AMBIGUOUS, or CE_ADMIN_SERIAL
 * for anything else (empty, a character that is no digit, separators mixed, doubled or
 * at an end, a group of an odd number of digits, more than 16 bytes), each with a
 * sentence in @p why (@p whysz bytes) that names the form and what to write instead.
 */
enum claimd_err cert_serial_parse(char out[SERIAL_HEX_LEN + 1], const char *in, size_t len,
                                  char *why, size_t whysz);

#endif
