/*
 * auth_id = base64url(version | expiry u32 BE | MAC (6) | nonce (16) | tag (16)).
 * 58 characters of [A-Za-z0-9_-], within the firmware's 63; the nonce gives 128 bits of
 * unpredictability and the tag makes it unforgeable without the secrets key.
 */
#include "core/authid.h"

#include <string.h>

#define BODY 27 /* 1 + 4 + 6 + 16 */
#define RAW  (BODY + 16)

static void derive_challenge(const struct secrets *s, const uint8_t body[BODY],
                             char challenge[CHALLENGE_LEN + 1])
{
	uint8_t c[32];
	secrets_challenge(s, body, BODY, c);
	hex_encode_lower(challenge, c, sizeof(c));
}

void authid_issue(const struct secrets *s, const char *mac, int64_t expires,
                  char auth_id[AUTHID_LEN + 1], char challenge[CHALLENGE_LEN + 1])
{
	uint8_t raw[RAW];
	uint32_t e = expires < 0 ? 0 : expires > UINT32_MAX ? UINT32_MAX : (uint32_t)expires;

	raw[0] = 1;
	raw[1] = (uint8_t)(e >> 24);
	raw[2] = (uint8_t)(e >> 16);
	raw[3] = (uint8_t)(e >> 8);
	raw[4] = (uint8_t)e;
	mac_to_bytes(raw + 5, mac);
	secure_random(raw + 11, 16);
	secrets_authid_tag(s, raw, BODY, raw + BODY);
	b64url_encode(auth_id, AUTHID_LEN + 1, raw, RAW);
	derive_challenge(s, raw, challenge);
}

enum claimd_err authid_check(const struct secrets *s, const char *auth_id, size_t len, int64_t now,
                             char mac[MAC_LEN + 1], int64_t *expires,
                             char challenge[CHALLENGE_LEN + 1])
{
	uint8_t raw[RAW + 2], tag[16];
	size_t n = 0;

	if (len != AUTHID_LEN || !b64url_decode(raw, sizeof(raw), &n, auth_id, len) || n != RAW ||
	    raw[0] != 1)
		return CE_AUTHID_INVALID;
	secrets_authid_tag(s, raw, BODY, tag);
	if (!secure_equal(tag, raw + BODY, 16))
		return CE_AUTHID_INVALID;
	*expires = (int64_t)raw[1] << 24 | (int64_t)raw[2] << 16 | (int64_t)raw[3] << 8 | raw[4];
	mac_from_bytes(mac, raw + 5);
	derive_challenge(s, raw, challenge);
	if (now > *expires)
		return CE_AUTHID_EXPIRED;
	return CE_OK;
}
