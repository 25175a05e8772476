/*
 * JWT verification. libjwt 1.10 (Debian 12) verifies signatures but lets the token's
 * header choose the algorithm and knows nothing of JWKS, so this file picks the key by
 * "kid", refuses any algorithm the key was not made for (so "none" and HS256-with-a-
 * public-key are impossible), converts JWKs to PEM with OpenSSL at load time, and
 * checks the claims itself with jansson.
 */
#include "core/auth.h"

#include <ctype.h>
#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/secure.h"
#include "lib/log.h"

struct jwk {
	char kid[128];
	jwt_alg_t algs[3];
	int nalgs;
	char *pem;
};

struct jwks {
	struct jwk *keys;
	size_t n;
};

static bool b64url_field(json_t *jwk, const char *name, uint8_t *out, size_t outsz, size_t *len)
{
	const char *s = json_string_value(json_object_get(jwk, name));
	return s && b64url_decode(out, outsz, len, s, strlen(s)) && *len > 0;
}

static EVP_PKEY *from_params(const char *type, OSSL_PARAM_BLD *bld)
{
	OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
	EVP_PKEY *k = NULL;
	if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
	    EVP_PKEY_fromdata(ctx, &k, EVP_PKEY_PUBLIC_KEY, params) <= 0)
		k = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	return k;
}

static EVP_PKEY *rsa_key(json_t *jwk)
{
	uint8_t n[1024], e[16];
	size_t nl, el;
	BIGNUM *bn = NULL, *be = NULL;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *k = NULL;

	if (bld && b64url_field(jwk, "n", n, sizeof(n), &nl) && nl >= 256 &&
	    b64url_field(jwk, "e", e, sizeof(e), &el) && (bn = BN_bin2bn(n, (int)nl, NULL)) &&
	    (be = BN_bin2bn(e, (int)el, NULL)) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
		k = from_params("RSA", bld);
	BN_free(bn);
	BN_free(be);
	OSSL_PARAM_BLD_free(bld);
	return k;
}

static EVP_PKEY *ec_key(json_t *jwk, const char *group, size_t coord)
{
	uint8_t x[66], y[66], pub[1 + 2 * 66];
	size_t xl, yl;
	OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
	EVP_PKEY *k = NULL;

	if (bld && b64url_field(jwk, "x", x, sizeof(x), &xl) && xl == coord &&
	    b64url_field(jwk, "y", y, sizeof(y), &yl) && yl == coord) {
		pub[0] = 0x04; /* uncompressed point */
		memcpy(pub + 1, x, coord);
		memcpy(pub + 1 + coord, y, coord);
		if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, group, 0) &&
		    OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, pub,
		                                     1 + 2 * coord))
			k = from_params("EC", bld);
	}
	OSSL_PARAM_BLD_free(bld);
	return k;
}

static char *pubkey_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	char *data, *out = NULL;
	if (b && PEM_write_bio_PUBKEY(b, k)) {
		long n = BIO_get_mem_data(b, &data);
		out = strndup(data, (size_t)n);
	}
	BIO_free(b);
	return out;
}

/* Fills @p out from one JWK; false (with a warning) for keys we cannot or will not use. */
static bool load_one(json_t *jwk, struct jwk *out, size_t index)
{
	const char *kty = json_string_value(json_object_get(jwk, "kty"));
	const char *alg = json_string_value(json_object_get(jwk, "alg"));
	const char *use = json_string_value(json_object_get(jwk, "use"));
	const char *kid = json_string_value(json_object_get(jwk, "kid"));
	const char *crv = json_string_value(json_object_get(jwk, "crv"));
	EVP_PKEY *k = NULL;

	memset(out, 0, sizeof(*out));
	if (use && strcmp(use, "sig") != 0)
		return false;
	if (kid)
		snprintf(out->kid, sizeof(out->kid), "%s", kid);
	if (kty && strcmp(kty, "RSA") == 0) {
		k = rsa_key(jwk);
		static const jwt_alg_t rs[] = {JWT_ALG_RS256, JWT_ALG_RS384, JWT_ALG_RS512};
		memcpy(out->algs, rs, sizeof(rs));
		out->nalgs = 3;
	} else if (kty && strcmp(kty, "EC") == 0 && crv && strcmp(crv, "P-256") == 0) {
		k = ec_key(jwk, "prime256v1", 32);
		out->algs[0] = JWT_ALG_ES256;
		out->nalgs = 1;
	} else if (kty && strcmp(kty, "EC") == 0 && crv && strcmp(crv, "P-384") == 0) {
		k = ec_key(jwk, "secp384r1", 48);
		out->algs[0] = JWT_ALG_ES384;
		out->nalgs = 1;
	}
	if (!k) {
		log_warn("jwks: key %zu (kid '%s'): unsupported or malformed, skipped", index,
		         out->kid);
		ERR_clear_error();
		return false;
	}
	if (alg) {
		/* A JWK that names its algorithm allows only that one. */
		jwt_alg_t a = jwt_str_alg(alg);
		bool ok = false;
		for (int i = 0; i < out->nalgs; i++)
			ok |= out->algs[i] == a;
		if (!ok) {
			log_warn("jwks: key %zu: alg %s does not fit its key type, skipped", index,
			         alg);
			EVP_PKEY_free(k);
			return false;
		}
		out->algs[0] = a;
		out->nalgs = 1;
	}
	out->pem = pubkey_pem(k);
	EVP_PKEY_free(k);
	return out->pem != NULL;
}

struct jwks *jwks_load(const char *path, char *err, size_t errsz)
{
	json_error_t jerr;
	json_t *root = NULL, *arr;
	struct jwks *k = NULL;
	size_t i;
	json_t *v;
	/* Opened here, so a missing file says why in words (jansson reports it at line -1). */
	FILE *f = fopen(path, "r");

	if (!f) {
		snprintf(err, errsz, "users.jwt.jwks_file: %s: cannot open: %s", path,
		         strerror(errno));
		return NULL;
	}
	root = json_loadf(f, JSON_REJECT_DUPLICATES, &jerr);
	fclose(f);
	if (!root) {
		snprintf(err, errsz, "%s:%d:%d: %s", path, jerr.line, jerr.column, jerr.text);
		return NULL;
	}
	arr = json_object_get(root, "keys");
	if (!json_is_array(arr)) {
		snprintf(err, errsz, "%s: expected a JWKS object {\"keys\": [...]}", path);
		goto out;
	}
	k = calloc(1, sizeof(*k));
	if (!k || !(k->keys = calloc(json_array_size(arr) + 1, sizeof(*k->keys)))) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	json_array_foreach(arr, i, v)
	{
		if (json_is_object(v) && load_one(v, &k->keys[k->n], i))
			k->n++;
	}
	if (k->n == 0) {
		snprintf(err, errsz, "%s: no usable key (RSA, EC P-256 or P-384)", path);
		goto fail;
	}
	goto out;
fail:
	jwks_free(k);
	k = NULL;
out:
	json_decref(root);
	return k;
}

void jwks_free(struct jwks *k)
{
	if (!k)
		return;
	for (size_t i = 0; i < k->n; i++)
		free(k->keys[i].pem);
	free(k->keys);
	free(k);
}

size_t jwks_count(const struct jwks *k)
{
	return k ? k->n : 0;
}

static json_t *segment_json(const char *s, size_t n)
{
	uint8_t buf[TOKEN_MAX];
	size_t len;
	if (!b64url_decode(buf, sizeof(buf), &len, s, n))
		return NULL;
	json_t *j = json_loadb((const char *)buf, len, JSON_REJECT_DUPLICATES, NULL);
	if (j && !json_is_object(j)) {
		json_decref(j);
		return NULL;
	}
	return j;
}

static bool audience_ok(json_t *aud, const char *want)
{
	size_t i;
	json_t *v;
	if (json_is_string(aud))
		return strcmp(json_string_value(aud), want) == 0;
	if (json_is_array(aud))
		json_array_foreach(aud, i,
		                   v) if (json_is_string(v) &&
		                          strcmp(json_string_value(v), want) == 0) return true;
	return false;
}

enum claimd_err auth_user(const struct auth_policy *p, const char *authorization,
                          char user[USER_ID_MAX + 1], const char **why)
{
	const char *tok = authorization, *dot1, *dot2;
	json_t *head = NULL, *claims = NULL;
	const struct jwk *key = NULL;
	jwt_t *jwt = NULL;
	enum claimd_err rc = CE_UNAUTHORIZED;
	jwt_alg_t alg;

	*why = "no identity provider configured";
	if (!p->keys)
		return CE_UNAUTHORIZED;
	/* The apps send the raw token; accept "Bearer <token>" too. */
	if (strncasecmp(tok, "Bearer ", 7) == 0)
		tok += 7;
	while (*tok == ' ')
		tok++;
	size_t n = strlen(tok);
	*why = "malformed token";
	if (n == 0 || n > TOKEN_MAX)
		return CE_UNAUTHORIZED;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)tok[i]) && tok[i] != '-' && tok[i] != '_' &&
		    tok[i] != '.')
			return CE_UNAUTHORIZED;
	dot1 = strchr(tok, '.');
	dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
	if (!dot1 || !dot2 || strchr(dot2 + 1, '.') || dot2[1] == '\0')
		return CE_UNAUTHORIZED;
	if (!(head = segment_json(tok, (size_t)(dot1 - tok))))
		goto out;
	const char *algs = json_string_value(json_object_get(head, "alg"));
	const char *kid = json_string_value(json_object_get(head, "kid"));
	alg = algs ? jwt_str_alg(algs) : JWT_ALG_INVAL;
	*why = "no key for this token";
	for (size_t i = 0; i < p->keys->n && !key; i++) {
		const struct jwk *k = &p->keys->keys[i];
		if (kid ? strcmp(k->kid, kid) != 0 : p->keys->n != 1)
			continue;
		key = k;
	}
	if (!key)
		goto out;
	*why = "algorithm not allowed for this key";
	bool allowed = false;
	for (int i = 0; i < key->nalgs; i++)
		allowed |= key->algs[i] == alg;
	if (!allowed)
		goto out;
	*why = "bad signature";
	if (jwt_decode(&jwt, tok, (const unsigned char *)key->pem, (int)strlen(key->pem)) != 0 ||
	    jwt_get_alg(jwt) != alg)
		goto out;
	*why = "malformed claims";
	if (!(claims = segment_json(dot1 + 1, (size_t)(dot2 - dot1 - 1))))
		goto out;
	json_t *exp = json_object_get(claims, "exp"), *nbf = json_object_get(claims, "nbf");
	*why = "expired or no exp";
	if (!json_is_number(exp) || json_number_value(exp) + AUTH_LEEWAY_SECONDS < (double)p->now)
		goto out;
	*why = "not yet valid";
	if (nbf &&
	    (!json_is_number(nbf) || json_number_value(nbf) - AUTH_LEEWAY_SECONDS > (double)p->now))
		goto out;
	*why = "wrong issuer";
	const char *iss = json_string_value(json_object_get(claims, "iss"));
	if (!iss || strcmp(iss, p->issuer) != 0)
		goto out;
	/* A token without the claim is told apart from one naming someone else. */
	json_t *aud = json_object_get(claims, p->audience_claim ? p->audience_claim : "aud");
	*why = aud ? "wrong audience" : "missing audience";
	if (p->audience[0] && !audience_ok(aud, p->audience))
		goto out;
	*why = "no user claim";
	json_t *u = json_object_get(claims, p->user_claim);
	if (!json_is_string(u) || json_string_length(u) == 0 ||
	    json_string_length(u) > USER_ID_MAX ||
	    strlen(json_string_value(u)) != json_string_length(u))
		goto out;
	memcpy(user, json_string_value(u), json_string_length(u) + 1);
	*why = "ok";
	rc = CE_OK;
out:
	jwt_free(jwt);
	json_decref(head);
	json_decref(claims);
	return rc;
}
