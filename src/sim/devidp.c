/*
 * Development identity provider. Tool-side code (claimctl, tests): OpenSSL for keys,
 * jansson for the JWKS, libjwt to sign tokens. The daemon never runs it.
 */
#include "sim/devidp.h"

#include <fcntl.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/secure.h"
#include "lib/util.h"

static char *b64url_bn(EVP_PKEY *k, const char *param)
{
	BIGNUM *bn = NULL;
	uint8_t buf[1024];
	char *out = NULL;
	if (EVP_PKEY_get_bn_param(k, param, &bn)) {
		int n = BN_bn2bin(bn, buf);
		out = malloc(2 * (size_t)n + 4);
		if (out)
			b64url_encode(out, 2 * (size_t)n + 4, buf, (size_t)n);
	}
	BN_free(bn);
	return out;
}

static json_t *jwk_of(EVP_PKEY *k, const char *type, const char *kid)
{
	if (strcmp(type, "rsa") == 0) {
		char *n = b64url_bn(k, OSSL_PKEY_PARAM_RSA_N),
		     *e = b64url_bn(k, OSSL_PKEY_PARAM_RSA_E);
		json_t *j = n && e
		                ? json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "RSA", "use",
		                            "sig", "alg", "RS256", "kid", kid, "n", n, "e", e)
		                : NULL;
		free(n);
		free(e);
		return j;
	}
	uint8_t pub[65];
	size_t len = 0;
	char x[64], y[64];
	if (!EVP_PKEY_get_octet_string_param(k, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof(pub), &len) ||
	    len != 65)
		return NULL;
	b64url_encode(x, sizeof(x), pub + 1, 32);
	b64url_encode(y, sizeof(y), pub + 33, 32);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "kty", "EC", "use", "sig", "alg",
	                 "ES256", "kid", kid, "crv", "P-256", "x", x, "y", y);
}

int devidp_create(const char *dir, const char *type, const char *kid, char *err, size_t errsz)
{
	EVP_PKEY *k = strcmp(type, "rsa") == 0  ? EVP_RSA_gen(2048)
	              : strcmp(type, "ec") == 0 ? EVP_EC_gen("P-256")
	                                        : NULL;
	json_t *jwk = NULL, *jwks = NULL;
	char path[4096];
	FILE *f = NULL;
	int fd, rc = -1;

	if (!k) {
		snprintf(err, errsz, "key type must be ec or rsa");
		return -1;
	}
	mkdir(dir, 0755);
	snprintf(path, sizeof(path), "%s/idp.key", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w")) ||
	    !PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL)) {
		snprintf(err, errsz, "%s: cannot write", path);
		if (f)
			fclose(f);
		else if (fd >= 0)
			close(fd);
		goto out;
	}
	fclose(f);
	if (!(jwk = jwk_of(k, type, kid)) || !(jwks = json_pack("{s:[O]}", "keys", jwk))) {
		snprintf(err, errsz, "cannot build the JWKS");
		goto out;
	}
	snprintf(path, sizeof(path), "%s/jwks.json", dir);
	if (json_dump_file(jwks, path, JSON_INDENT(2)) != 0) {
		snprintf(err, errsz, "%s: cannot write", path);
		goto out;
	}
	rc = 0;
out:
	json_decref(jwk);
	json_decref(jwks);
	EVP_PKEY_free(k);
	return rc;
}

char *devidp_token(const struct devtoken *t, char *err, size_t errsz)
{
	size_t len = 0;
	char *pem = file_read_all(t->key_file, 65536, &len), *tok = NULL;
	jwt_t *jwt = NULL;
	long now = (long)time(NULL);

	if (!pem) {
		snprintf(err, errsz, "%s: cannot read", t->key_file);
		return NULL;
	}
	BIO *b = BIO_new_mem_buf(pem, (int)len);
	EVP_PKEY *k = b ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL) : NULL;
	jwt_alg_t alg = k && EVP_PKEY_is_a(k, "RSA") ? JWT_ALG_RS256 : JWT_ALG_ES256;
	EVP_PKEY_free(k);
	BIO_free(b);
	if (jwt_new(&jwt) != 0 || jwt_add_header(jwt, "kid", t->kid) != 0 ||
	    jwt_add_grant(jwt, "iss", t->issuer) != 0 ||
	    jwt_add_grant(jwt, t->user_claim ? t->user_claim : "sub", t->user) != 0 ||
	    jwt_add_grant_int(jwt, "iat", now) != 0 ||
	    jwt_add_grant_int(jwt, "exp", now + t->ttl) != 0 ||
	    (t->audience && t->audience[0] && jwt_add_grant(jwt, "aud", t->audience) != 0) ||
	    jwt_set_alg(jwt, alg, (const unsigned char *)pem, (int)len) != 0 ||
	    !(tok = jwt_encode_str(jwt)))
		snprintf(err, errsz, "cannot sign the token");
	jwt_free(jwt);
	secure_wipe(pem, len);
	free(pem);
	return tok;
}
