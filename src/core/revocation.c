/*
 * Certificate lifecycle rules: RFC 5280 reason names, status names, and when a CRL is
 * re-issued. The CRL itself is signed in ca.c and stored by db_lifecycle.c; this file
 * decides when, and keeps each process's copy fresh.
 */
#include "core/revocation.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/log.h"
#include "lib/util.h"

static const struct {
	int code;
	const char *name;
} reasons[] = {
    {CRL_REASON_UNSPECIFIED, "unspecified"},
    {CRL_REASON_KEY_COMPROMISE, "keyCompromise"},
    {CRL_REASON_CA_COMPROMISE, "cACompromise"},
    {CRL_REASON_AFFILIATION_CHANGED, "affiliationChanged"},
    {CRL_REASON_SUPERSEDED, "superseded"},
    {CRL_REASON_CESSATION_OF_OPERATION, "cessationOfOperation"},
    {CRL_REASON_CERTIFICATE_HOLD, "certificateHold"},
    {CRL_REASON_REMOVE_FROM_CRL, "removeFromCRL"},
    {CRL_REASON_PRIVILEGE_WITHDRAWN, "privilegeWithdrawn"},
    {CRL_REASON_AA_COMPROMISE, "aACompromise"},
};

int crl_reason_from_name(const char *name)
{
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (strcasecmp(name, reasons[i].name) == 0)
			return reasons[i].code;
	return -1;
}

const char *crl_reason_name(int code)
{
	for (size_t i = 0; i < sizeof(reasons) / sizeof(reasons[0]); i++)
		if (reasons[i].code == code)
			return reasons[i].name;
	return "unknown";
}

const char *cert_status_name(const struct cert_row *r)
{
	if (r->revoked)
		return r->reason == CRL_REASON_SUPERSEDED ? "superseded" : "revoked";
	return r->expired ? "expired" : "valid";
}

/* The CRL refresh: its inputs, and what the transaction found. */
struct crl_build {
	const struct ca *ca;
	struct signer *signer; /* NULL: the local keyed path (ca holds the key) */
	const struct crl_policy *p;
	int64_t now;
	uint8_t key_id[32]; /* the CA's, whose CRLs these are */
	int64_t number;     /* out: the number of the CRL now current */
	bool unavailable;   /* out: the signer could not be asked: a 503, not a 500 */
};

/* Stale: a revocation it does not list, or less than half its validity left. */
static bool crl_stale(const struct crl_build *b, const struct crl_facts *f)
{
	int64_t half = (int64_t)b->p->hours * 3600 / 2;
	return f->revoked_count != f->revoked_now || f->next_update - b->now < half ||
	       f->this_update > b->now;
}

/* Signs CRL @p rq, by the signer or with the key loaded here: 0, or -1 (logged). */
static int crl_sign(struct crl_build *b, const struct crl_request *rq, uint8_t **der, size_t *len)
{
	int rc = b->signer ? signer_crl(b->signer, rq, der, len)
	                   : ca_crl_sign(b->ca, rq->number, rq->e, rq->n, rq->this_update,
	                                 rq->next_update, der, len);
	if (rc < 0) {
		b->unavailable = rc == SIGNER_DOWN;
		return -1;
	}
	log_info("issued CRL number %lld with %zu entries (%zu bytes)", (long long)rq->number,
	         rq->n, *len);
	return 0;
}

/*
 * The refresh transaction (db_transaction()): under the CRL lock, keep the newest CRL
 * unless it is stale, else sign one from every revocation, numbered one above any
 * stored, and store it. The signature is made inside the transaction, so that the
 * number it carries is the one stored.
 */
static enum db_status crl_refresh_tx(struct db *db, void *cls)
{
	struct crl_build *b = cls;
	struct crl_facts f;
	struct revoked_entry *e = NULL;
	uint8_t *der = NULL;
	size_t n = 0, len = 0;
	enum db_status s;

	b->unavailable = false;
	if ((s = db_crl_lock(db)) < DB_NO_ROWS)
		return s;
	if ((s = db_crl_facts(db, b->key_id, &f)) != DB_OK)
		return s < DB_NO_ROWS ? s : DB_HARD;
	if (f.have && !crl_stale(b, &f)) {
		b->number = f.number;
		return DB_OK;
	}
	if ((s = db_crl_revoked(db, &e, &n)) < DB_NO_ROWS)
		goto out;
	struct crl_request rq = {f.max_number + 1, b->now, b->now + (int64_t)b->p->hours * 3600, e,
	                         n};
	if (crl_sign(b, &rq, &der, &len) < 0) {
		s = DB_HARD;
		goto out;
	}
	if ((s = db_crl_store(db, rq.number, b->key_id, n, rq.this_update, rq.next_update, der,
	                      len)) == DB_OK)
		b->number = rq.number;
out:
	free(e);
	free(der);
	return s;
}

/* crl_current() and crl_current_local(): @p signer NULL signs with @p ca's own key. */
static int crl_refresh(struct db *db, const struct ca *ca, struct signer *signer,
                       const struct crl_policy *p, uint8_t **der, size_t *len, int64_t *number,
                       bool *busy)
{
	struct crl_build b = {.ca = ca, .signer = signer, .p = p, .now = now_unix()};
	enum db_status s;

	*busy = false;
	*der = NULL;
	*len = 0;
	if (ca_key_id(ca, b.key_id) < 0)
		return -1;
	s = db_transaction(db, crl_refresh_tx, &b);
	*number = b.number;
	if (s == DB_OK)
		s = db_crl_get(db, *number, der, len);
	*busy = s == DB_SOFT || b.unavailable;
	return s == DB_OK ? 0 : -1;
}

int crl_current(struct db *db, struct signer *signer, const struct crl_policy *p, uint8_t **der,
                size_t *len, int64_t *number, bool *busy)
{
	return crl_refresh(db, signer_ca(signer), signer, p, der, len, number, busy);
}

int crl_current_local(struct db *db, const struct ca *ca, const struct crl_policy *p, uint8_t **der,
                      size_t *len, int64_t *number, bool *busy)
{
	return crl_refresh(db, ca, NULL, p, der, len, number, busy);
}

int crl_cache_init(struct crl_cache *c)
{
	memset(c, 0, sizeof(*c));
	return pthread_mutex_init(&c->lock, NULL) == 0 ? 0 : -1;
}

void crl_cache_destroy(struct crl_cache *c)
{
	free(c->der);
	c->der = NULL;
	pthread_mutex_destroy(&c->lock);
}

int crl_cache_get(struct crl_cache *c, struct db *db, struct signer *signer,
                  const struct crl_policy *p, uint8_t **der, size_t *len, int64_t *number,
                  bool *busy)
{
	const struct ca *ca = signer_ca(signer);
	uint8_t key_id[32];
	int64_t now = (int64_t)now_ms_monotonic();
	int rc = 0;

	*busy = false;
	*der = NULL;
	if (ca_key_id(ca, key_id) < 0)
		return -1;
	/* One request at a time refreshes; the others wait and take its result. */
	pthread_mutex_lock(&c->lock);
	if (!c->der || !c->checked_ms || now - c->checked_ms >= CRL_CHECK_SECONDS * 1000 ||
	    memcmp(c->key_id, key_id, sizeof(key_id)) != 0) {
		uint8_t *fresh = NULL;
		size_t flen = 0;
		int64_t n = 0;
		int64_t next_update = 0;
		if (db) {
			rc = crl_current(db, signer, p, &fresh, &flen, &n, busy);
		} else {
			rc = -1;
			*busy = true;
		}
		if (rc == 0 && ca_crl_next_update(fresh, flen, &next_update) < 0)
			rc = -1;
		if (rc == 0) {
			free(c->der);
			c->der = fresh;
			c->len = flen;
			c->number = n;
			c->next_update = next_update;
			memcpy(c->key_id, key_id, sizeof(key_id));
			c->checked_ms = now;
		} else {
			free(fresh);
			/* The database is away (or the build failed): the last good CRL of this CA
			 * is still true until its nextUpdate. */
			if (c->der && memcmp(c->key_id, key_id, sizeof(key_id)) == 0 &&
			    now_unix() < c->next_update) {
				log_warn(
				    "CRL: the database cannot be asked; serving CRL number %lld "
				    "until it is back (valid until its nextUpdate)",
				    (long long)c->number);
				/* Ask again after the usual interval, not on every request. */
				c->checked_ms = now;
				rc = 0;
			}
		}
	}
	if (rc == 0 && (*der = malloc(c->len ? c->len : 1)) != NULL) {
		memcpy(*der, c->der, c->len);
		*len = c->len;
		*number = c->number;
	} else if (rc == 0) {
		rc = -1;
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}
