/*
 * The one place that decides how a MAC, a platform, an eFuse key and a certificate
 * serial are spelt once accepted. It must stay pure and table-free beyond the list of IDF targets:
 * callers bring their own configuration (claim.extra_platforms) and report errors their way.
 */
#include "lib/canon.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "lib/util.h"

/* The IDF targets README.md names ("Registering chips at manufacturing"), canonical. A
 * newer chip is registered through claim.extra_platforms until it is added here. */
static const char *const idf_targets[] = {
    "esp32",   "esp32s2", "esp32s3",  "esp32c2", "esp32c3",
    "esp32c5", "esp32c6", "esp32c61", "esp32h2", "esp32p4",
};

static bool is_hex(char c)
{
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

bool mac_normalize(char out[MAC_LEN + 1], const char *in, size_t len)
{
	size_t o = 0;
	char sep = 0;

	if (len == 17) {
		sep = in[2];
		if (sep != ':' && sep != '-')
			return false;
	} else if (len != 12) {
		return false;
	}
	for (size_t i = 0; i < len; i++) {
		if (sep && i % 3 == 2) {
			if (in[i] != sep)
				return false;
			continue;
		}
		if (!is_hex(in[i]))
			return false;
		out[o++] = (char)toupper((unsigned char)in[i]);
	}
	out[o] = '\0';
	return o == MAC_LEN;
}

bool platform_normalize(char out[PLATFORM_MAX + 1], const char *in, size_t len)
{
	size_t o = 0;

	if (len == 0 || len > PLATFORM_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c == '-' || c == '_')
			continue;
		/* isalnum() would follow the locale; the alphabet is ASCII. */
		if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
			return false;
		out[o++] = (char)tolower(c);
	}
	out[o] = '\0';
	return o > 0;
}

bool platform_known(const char *canonical, char *const *extra)
{
	for (size_t i = 0; i < sizeof(idf_targets) / sizeof(idf_targets[0]); i++)
		if (strcmp(canonical, idf_targets[i]) == 0)
			return true;
	for (; extra && *extra; extra++)
		if (strcmp(canonical, *extra) == 0)
			return true;
	return false;
}

bool efuse_key_parse(uint8_t out[EFUSE_KEY_BYTES], const char *in, size_t len)
{
	return hex_decode(out, EFUSE_KEY_BYTES, in, len, true);
}

enum claimd_err canon_device(const char *mac, const char *platform, const char *key,
                             char *const *extra, struct canon_device *out)
{
	if (!mac_normalize(out->mac, mac, strlen(mac)))
		return CE_DEVICE_MAC;
	if (!platform_normalize(out->platform, platform, strlen(platform)))
		return CE_DEVICE_PLATFORM;
	if (!platform_known(out->platform, extra))
		return CE_DEVICE_PLATFORM_UNKNOWN;
	if (!efuse_key_parse(out->efuse_key, key, strlen(key)))
		return CE_DEVICE_EFUSE_KEY;
	return CE_OK;
}

/* @p len decimal digits at @p d into 16 big-endian bytes; false past 2^128 - 1. */
static bool decimal_to_bytes(uint8_t out[16], const char *d, size_t len)
{
	memset(out, 0, 16);
	for (size_t i = 0; i < len; i++) {
		unsigned carry = (unsigned)(d[i] - '0');
		for (int b = 15; b >= 0; b--) {
			carry += out[b] * 10u;
			out[b] = (uint8_t)carry;
			carry >>= 8;
		}
		if (carry)
			return false;
	}
	return true;
}

/* Hex digits @p h (@p len of them, separators already gone) right-aligned into 32
 * upper-case digits; false when more than 32 are significant. */
static bool hex_to_serial(char out[SERIAL_HEX_LEN + 1], const char *h, size_t len)
{
	while (len > 0 && *h == '0') {
		h++;
		len--;
	}
	if (len > SERIAL_HEX_LEN)
		return false;
	memset(out, '0', SERIAL_HEX_LEN - len);
	for (size_t i = 0; i < len; i++)
		out[SERIAL_HEX_LEN - len + i] = (char)toupper((unsigned char)h[i]);
	out[SERIAL_HEX_LEN] = '\0';
	return true;
}

enum claimd_err cert_serial_parse(char out[SERIAL_HEX_LEN + 1], const char *in, size_t len,
                                  char *why, size_t whysz)
{
	/* Digits only, separators taken out: at most 128 characters are looked at. */
	char digits[129];
	size_t n = 0, group = 0, groups = 0;
	bool prefix = false, letters = false;
	char sep = 0;

	while (len > 0 && isspace((unsigned char)in[0])) {
		in++;
		len--;
	}
	while (len > 0 && isspace((unsigned char)in[len - 1]))
		len--;
	if (len >= 7 && strncasecmp(in, "serial=", 7) == 0) {
		in += 7;
		len -= 7;
	}
	if (len >= 2 && in[0] == '0' && (in[1] == 'x' || in[1] == 'X')) {
		prefix = true;
		in += 2;
		len -= 2;
	}
	if (len == 0 || len >= sizeof(digits)) {
		snprintf(why, whysz, "%s", len ? "longer than any serial" : "empty");
		return CE_ADMIN_SERIAL;
	}
	for (size_t i = 0; i < len; i++) {
		char ch = in[i];
		if (ch == ':' || ch == ' ' || ch == '-') {
			if (sep && ch != sep) {
				snprintf(why, whysz, "mixes the separators '%c' and '%c'", sep, ch);
				return CE_ADMIN_SERIAL;
			}
			/* A group after the first is whole bytes: "ab:1:cd" could be ab01cd or
			 * ab1cd, so it is refused rather than read either way. */
			if (group == 0 || (groups > 0 && group % 2 != 0)) {
				snprintf(
				    why, whysz,
				    "'%c' must stand between whole bytes (two hex digits each)",
				    ch);
				return CE_ADMIN_SERIAL;
			}
			sep = ch;
			groups++;
			group = 0;
			continue;
		}
		if (!is_hex(ch)) {
			snprintf(why, whysz,
			         "'%c' is neither a hex digit nor a separator (':', ' ', '-')",
			         isprint((unsigned char)ch) ? ch : '?');
			return CE_ADMIN_SERIAL;
		}
		letters |= !(ch >= '0' && ch <= '9');
		digits[n++] = ch;
		group++;
	}
	if (group == 0 || (groups > 0 && group % 2 != 0)) {
		snprintf(why, whysz, "'%c' must stand between whole bytes (two hex digits each)",
		         sep);
		return CE_ADMIN_SERIAL;
	}
	if (prefix || letters || sep) {
		if (!hex_to_serial(out, digits, n)) {
			snprintf(why, whysz, "more than 16 bytes (32 hex digits)");
			return CE_ADMIN_SERIAL;
		}
		return CE_OK;
	}
	/* Decimal digits only: the length says the base, as it does for claimd's serials. */
	if (n == SERIAL_HEX_DIGITS_MIN || n == SERIAL_HEX_LEN)
		return hex_to_serial(out, digits, n) ? CE_OK : CE_ADMIN_SERIAL;
	if (n >= SERIAL_DEC_DIGITS_MIN && n <= SERIAL_DEC_DIGITS_MAX) {
		uint8_t b[16];
		if (!decimal_to_bytes(b, digits, n)) {
			snprintf(why, whysz, "%zu decimal digits: more than 16 bytes", n);
			return CE_ADMIN_SERIAL;
		}
		hex_encode_upper(out, b, sizeof(b));
		out[SERIAL_HEX_LEN] = '\0';
		return CE_OK;
	}
	snprintf(why, whysz,
	         "%.*s (%zu decimal digits) could be hex or decimal: a claimd serial is %d-%d hex "
	         "digits or %d-%d decimal digits; write hex with 0x (0x%.*s)",
	         (int)n, digits, n, SERIAL_HEX_DIGITS_MIN, SERIAL_HEX_LEN, SERIAL_DEC_DIGITS_MIN,
	         SERIAL_DEC_DIGITS_MAX, (int)n, digits);
	return CE_ADMIN_SERIAL_AMBIGUOUS;
}
