/*
 * RFC 7512 URIs and libp11: the one place <libp11.h> is included. Chosen over the
 * OpenSSL engine (libengine-pkcs11-openssl, itself libp11 underneath) because the
 * ENGINE API is deprecated in OpenSSL 3 and needs an openssl.cnf or dynamic loading
 * by name; Debian 12 has no PKCS#11 provider for OpenSSL 3. The URI parser is ours,
 * small and strict: an attribute we do not know is refused, not ignored.
 */
#include "x509/pkcs11.h"

#include <errno.h>
#include <stddef.h>
#include <libp11.h>
#include <openssl/err.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/secure.h"
#include "lib/log.h"
#include "lib/util.h"

#define CKR_PIN_INCORRECT_ 0xA0 /* PKCS#11 2.40 section 5.1: the PIN is wrong */
#define ATTR_MAX           256

struct p11_key {
	PKCS11_CTX *ctx;
	PKCS11_SLOT *slots;
	unsigned nslots;
	EVP_PKEY *pkey;
};

/* The attributes of one URI, percent-decoded. */
struct p11_uri {
	char token[ATTR_MAX], manufacturer[ATTR_MAX], serial[ATTR_MAX], model[ATTR_MAX];
	char object[ATTR_MAX], type[ATTR_MAX], module[ATTR_MAX], pin_source[ATTR_MAX];
	char pin_value[ATTR_MAX];
	uint8_t id[ATTR_MAX];
	size_t id_len;
	bool has_id;
};

/* Percent-decodes @p n bytes of @p in into @p out (NUL added); false if malformed. */
static bool pct_decode(uint8_t *out, size_t outsz, size_t *len, const char *in, size_t n)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		int c = (unsigned char)in[i];
		if (c == '%') {
			int hi, lo;
			if (i + 2 >= n || (hi = hex_value(in[i + 1])) < 0 ||
			    (lo = hex_value(in[i + 2])) < 0)
				return false;
			c = hi * 16 + lo;
			i += 2;
		}
		if (o + 1 >= outsz)
			return false;
		out[o++] = (uint8_t)c;
	}
	out[o] = 0;
	*len = o;
	return true;
}

/* One "name=value" of the path (@p query false) or the query. */
static bool uri_attr(struct p11_uri *u, const char *a, size_t n, bool query)
{
	static const struct {
		const char *name;
		bool query;
		size_t off;
	} names[] = {
	    {"token", false, offsetof(struct p11_uri, token)},
	    {"manufacturer", false, offsetof(struct p11_uri, manufacturer)},
	    {"serial", false, offsetof(struct p11_uri, serial)},
	    {"model", false, offsetof(struct p11_uri, model)},
	    {"object", false, offsetof(struct p11_uri, object)},
	    {"type", false, offsetof(struct p11_uri, type)},
	    {"module-path", true, offsetof(struct p11_uri, module)},
	    {"pin-source", true, offsetof(struct p11_uri, pin_source)},
	    {"pin-value", true, offsetof(struct p11_uri, pin_value)},
	};
	const char *eq = memchr(a, '=', n);
	size_t k = eq ? (size_t)(eq - a) : n, len = 0;

	if (!eq)
		return false;
	if (!query && k == 2 && memcmp(a, "id", 2) == 0) {
		u->has_id = true;
		return pct_decode(u->id, sizeof(u->id), &u->id_len, eq + 1, n - k - 1);
	}
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (names[i].query == query && strlen(names[i].name) == k &&
		    memcmp(names[i].name, a, k) == 0)
			return pct_decode((uint8_t *)u + names[i].off, ATTR_MAX, &len, eq + 1,
			                  n - k - 1) &&
			       len == strlen((char *)u + names[i].off);
	return false;
}

static bool uri_parse(struct p11_uri *u, const char *key, const char *uri, char *err, size_t errsz)
{
	const char *p = uri + strlen("pkcs11:"), *q = strchr(p, '?');
	const char *end = q ? q : p + strlen(p);

	memset(u, 0, sizeof(*u));
	for (int part = 0; part < 2; part++) {
		char sep = part ? '&' : ';';
		while (p < end) {
			const char *s = memchr(p, sep, (size_t)(end - p));
			size_t n = s ? (size_t)(s - p) : (size_t)(end - p);
			if (n && !uri_attr(u, p, n, part == 1)) {
				snprintf(
				    err, errsz,
				    "%s: the pkcs11: URI has an attribute this server does not "
				    "know or cannot decode: %.*s",
				    key, (int)(n > 40 ? 40 : n), p);
				return false;
			}
			p += n + (s ? 1 : 0);
		}
		if (!q)
			break;
		p = q + 1;
		end = p + strlen(p);
	}
	if (u->type[0] && strcmp(u->type, "private") != 0) {
		snprintf(err, errsz, "%s: the pkcs11: URI must name a private key (type=private)",
		         key);
		return false;
	}
	if (!u->module[0]) {
		snprintf(err, errsz,
		         "%s: the pkcs11: URI needs module-path=... in its query (the module "
		         "library, e.g. the SoftHSM2 or HSM vendor's .so)",
		         key);
		return false;
	}
	if (!u->pin_source[0] && !u->pin_value[0]) {
		snprintf(err, errsz, "%s: the pkcs11: URI needs pin-source=FILE or pin-value=PIN",
		         key);
		return false;
	}
	return true;
}

/* The PIN: pin-value, or the first line of the pin-source file. */
static bool read_pin(const struct p11_uri *u, const char *key, char *pin, size_t pinsz, char *err,
                     size_t errsz)
{
	const char *path = u->pin_source;
	size_t n = 0;
	char *text;

	if (!path[0]) {
		snprintf(pin, pinsz, "%s", u->pin_value);
		return true;
	}
	if (strncmp(path, "file:", 5) == 0)
		path += 5;
	if (!(text = file_read_all(path, 1024, &n))) {
		snprintf(err, errsz, "%s: pin-source %s: %s", key, path, strerror(errno));
		return false;
	}
	size_t len = strcspn(text, "\r\n");
	bool ok = len < pinsz;
	if (ok)
		snprintf(pin, pinsz, "%.*s", (int)len, text);
	else
		snprintf(err, errsz, "%s: pin-source %s: PIN too long", key, path);
	secure_wipe(text, n);
	free(text);
	return ok;
}

static bool token_matches(const struct p11_uri *u, const PKCS11_TOKEN *t)
{
	return (!u->token[0] || (t->label && strcmp(u->token, t->label) == 0)) &&
	       (!u->manufacturer[0] ||
	        (t->manufacturer && strcmp(u->manufacturer, t->manufacturer) == 0)) &&
	       (!u->serial[0] || (t->serialnr && strcmp(u->serial, t->serialnr) == 0)) &&
	       (!u->model[0] || (t->model && strcmp(u->model, t->model) == 0));
}

static bool key_matches(const struct p11_uri *u, const PKCS11_KEY *k)
{
	return (!u->object[0] || (k->label && strcmp(u->object, k->label) == 0)) &&
	       (!u->has_id || (k->id_len == u->id_len && memcmp(k->id, u->id, u->id_len) == 0));
}

/* The one token the URI names, or NULL with a message. */
static PKCS11_SLOT *find_slot(struct p11_key *k, const struct p11_uri *u, const char *key,
                              char *err, size_t errsz)
{
	PKCS11_SLOT *found = NULL;
	for (unsigned i = 0; i < k->nslots; i++) {
		PKCS11_SLOT *s = &k->slots[i];
		if (!s->token || !s->token->initialized || !token_matches(u, s->token))
			continue;
		if (found) {
			snprintf(err, errsz,
			         "%s: more than one token matches the pkcs11: URI "
			         "(name one with token=...)",
			         key);
			return NULL;
		}
		found = s;
	}
	if (!found)
		snprintf(err, errsz, "%s: no initialised token matches the pkcs11: URI", key);
	return found;
}

/* Logs in to @p slot; a wrong PIN gets a message that says so. */
static bool login(PKCS11_SLOT *slot, const struct p11_uri *u, const char *key, char *err,
                  size_t errsz)
{
	char pin[ATTR_MAX];
	bool ok;

	if (!read_pin(u, key, pin, sizeof(pin), err, errsz))
		return false;
	ERR_clear_error();
	ok = PKCS11_open_session(slot, 0) == 0 && PKCS11_login(slot, 0, pin) == 0;
	secure_wipe(pin, sizeof(pin));
	if (!ok) {
		unsigned long e = ERR_peek_last_error();
		if (ERR_GET_REASON(e) == CKR_PIN_INCORRECT_)
			snprintf(err, errsz,
			         "%s: the token \"%s\" refused the PIN (CKR_PIN_INCORRECT): check "
			         "the pin-source",
			         key, slot->token->label);
		else
			snprintf(err, errsz, "%s: cannot log in to the token \"%s\"", key,
			         slot->token->label);
		log_openssl("PKCS11_login");
	}
	return ok;
}

struct p11_key *p11_key_load(const char *key, const char *uri, char *err, size_t errsz)
{
	struct p11_key *k = calloc(1, sizeof(*k));
	struct p11_uri *u = calloc(1, sizeof(*u));
	PKCS11_SLOT *slot;
	PKCS11_KEY *keys = NULL, *found = NULL;
	unsigned nkeys = 0;

	if (!k || !u || !(k->ctx = PKCS11_CTX_new())) {
		snprintf(err, errsz, "%s: out of memory", key);
		goto fail;
	}
	if (!uri_parse(u, key, uri, err, errsz))
		goto fail;
	if (PKCS11_CTX_load(k->ctx, u->module) != 0) {
		snprintf(err, errsz, "%s: cannot load the PKCS#11 module %s", key, u->module);
		goto fail;
	}
	if (PKCS11_enumerate_slots(k->ctx, &k->slots, &k->nslots) != 0) {
		snprintf(err, errsz, "%s: the PKCS#11 module lists no slots", key);
		goto fail;
	}
	if (!(slot = find_slot(k, u, key, err, errsz)) || !login(slot, u, key, err, errsz))
		goto fail;
	if (PKCS11_enumerate_keys(slot->token, &keys, &nkeys) != 0) {
		snprintf(err, errsz, "%s: cannot list the token's keys", key);
		goto fail;
	}
	for (unsigned i = 0; i < nkeys; i++) {
		if (!keys[i].isPrivate || !key_matches(u, &keys[i]))
			continue;
		if (found) {
			snprintf(err, errsz,
			         "%s: more than one private key matches the pkcs11: "
			         "URI (name one with object=... or id=...)",
			         key);
			goto fail;
		}
		found = &keys[i];
	}
	if (!found) {
		snprintf(err, errsz, "%s: no private key on the token matches the pkcs11: URI",
		         key);
		goto fail;
	}
	if (!(k->pkey = PKCS11_get_private_key(found))) {
		snprintf(err, errsz, "%s: the token's key cannot be used", key);
		goto fail;
	}
	secure_wipe(u, sizeof(*u));
	free(u);
	return k;
fail:
	log_openssl("pkcs11");
	if (u)
		secure_wipe(u, sizeof(*u));
	free(u);
	p11_key_free(k);
	return NULL;
}

EVP_PKEY *p11_key_pkey(const struct p11_key *k)
{
	return k->pkey;
}

void p11_key_free(struct p11_key *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	if (k->slots)
		PKCS11_release_all_slots(k->ctx, k->slots, k->nslots);
	if (k->ctx) {
		PKCS11_CTX_unload(k->ctx);
		PKCS11_CTX_free(k->ctx);
	}
	free(k);
}
