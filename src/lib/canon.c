/*
 * The one place that decides how a MAC, a platform and an eFuse key are spelt once
 * accepted. It must stay pure and table-free beyond the list of IDF targets: callers
 * bring their own configuration (claim.extra_platforms) and report errors their way.
 */
#include "lib/canon.h"

#include <ctype.h>
#include <string.h>

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
