/*
 * Fuzz target: access-token checking (header, key choice, algorithm pinning, libjwt's
 * signature check, claims). The JWKS is a fixed public key; its seeds were signed by
 * the matching private key, which is not kept anywhere.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/auth.h"
#include "lib/secure.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char jwks_json[] =
    "{\"keys\":[{\"kty\":\"EC\",\"use\":\"sig\",\"alg\":\"ES256\",\"kid\":\"fuzz-1\",\"crv\":\"P-"
    "256\",\"x\":\"hRacUCVpnf8FjRsGHuTnkaXzaaq9WrFvU527fc80gEw\",\"y\":"
    "\"7FFZ2cbnk50yQrq5YQCm73KRTr_PkYokglU6SW6sBKg\"}]}";

static struct jwks *keys(void)
{
	static struct jwks *k;
	char path[] = "/tmp/claimd-fuzz-jwks-XXXXXX", err[256];
	if (k)
		return k;
	secure_init();
	int fd = mkstemp(path);
	if (fd < 0 || write(fd, jwks_json, strlen(jwks_json)) < 0)
		abort();
	close(fd);
	k = jwks_load(path, err, sizeof(err));
	unlink(path);
	if (!k)
		abort();
	return k;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char header[TOKEN_MAX + 16], user[USER_ID_MAX + 1];
	const char *why;
	struct auth_policy p = {keys(), "https://idp.fuzz.invalid/", "claimd", "sub", 1800000000,
	                        "aud"};
	if (size >= sizeof(header))
		return 0;
	memcpy(header, data, size);
	header[size] = '\0'; /* header values are C strings */
	(void)auth_user(&p, header, user, &why);
	return 0;
}
