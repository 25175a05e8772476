/*
 * The rules of the certificate lifecycle (RFC 5280 reasons, status names, when a CRL
 * must be re-issued) and the operations built on them: revoking, releasing a node, and
 * the current CRL, cached per process and shared by all replicas through the
 * database. Knows nothing of HTTP; OpenSSL stays in ca.c.
 */
#ifndef CLAIMD_REVOCATION_H
#define CLAIMD_REVOCATION_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "x509/ca.h"
#include "db/db_lifecycle.h"
#include "signer/signer.h"

/* RFC 5280 section 5.3.1 CRLReason codes. */
enum crl_reason {
	CRL_REASON_UNSPECIFIED = 0,
	CRL_REASON_KEY_COMPROMISE = 1,
	CRL_REASON_CA_COMPROMISE = 2,
	CRL_REASON_AFFILIATION_CHANGED = 3,
	CRL_REASON_SUPERSEDED = 4,
	CRL_REASON_CESSATION_OF_OPERATION = 5,
	CRL_REASON_CERTIFICATE_HOLD = 6,
	CRL_REASON_REMOVE_FROM_CRL = 8,
	CRL_REASON_PRIVILEGE_WITHDRAWN = 9,
	CRL_REASON_AA_COMPROMISE = 10,
};

/** The code of RFC 5280 reason name @p name (any case, e.g. "keyCompromise"), or -1. */
int crl_reason_from_name(const char *name);
/** The RFC 5280 name of reason @p code ("keyCompromise"), or "unknown". */
const char *crl_reason_name(int code);
/**
 * A certificate's status for listings (api/openapi.yaml, a certificate's status): "superseded"
 * (revoked by a re-claim), "revoked", "expired" or "valid", in that order of precedence.
 */
const char *cert_status_name(const struct cert_row *r);

/** Settings of the CRL: how long each is valid. */
struct crl_policy {
	unsigned hours; /* revocation.crl_hours: nextUpdate - thisUpdate */
};

/**
 * The current CRL of the signer's CA: the stored one if it lists every revocation and
 * has more than half its validity left, else a new one signed now by @p signer
 * (signer_crl()), stored and numbered one above any other (all under a database lock,
 * so replicas agree). A malloc'd DER in *@p der of *@p len bytes, and its number. 0, or
 * -1 (database or signing failure, logged; *@p busy is set when the database was busy
 * or unreachable, or the signer could not be asked).
 */
int crl_current(struct db *db, struct signer *signer, const struct crl_policy *p, uint8_t **der,
                size_t *len, int64_t *number, bool *busy);
/**
 * crl_current() signed with the key of @p ca, loaded in this process: claimctl crl's
 * local keyed path (ca_crl_sign()). Same results.
 */
int crl_current_local(struct db *db, const struct ca *ca, const struct crl_policy *p, uint8_t **der,
                      size_t *len, int64_t *number, bool *busy);

/*
 * A process's copy of the current CRL, checked against the database at most every
 * CRL_CHECK_SECONDS: a revocation reaches every replica's /crl within that time.
 */
#define CRL_CHECK_SECONDS 2

struct crl_cache {
	pthread_mutex_t lock;
	uint8_t *der;
	size_t len;
	int64_t number;
	uint8_t key_id[32];  /* the CA it belongs to */
	int64_t checked_ms;  /* monotonic milliseconds of the last check, 0: never */
	int64_t next_update; /* the cached CRL's nextUpdate, unix seconds */
};

/** Initialises an empty cache. 0, or -1. */
int crl_cache_init(struct crl_cache *c);
/** Frees what the cache holds. */
void crl_cache_destroy(struct crl_cache *c);
/**
 * The current CRL of the signer's CA as a malloc'd copy in *@p der of *@p len bytes, and its
 * number: the cached one when it was checked less than CRL_CHECK_SECONDS ago and
 * belongs to that CA, else crl_current(). When the database cannot be asked, the cached
 * CRL of that CA is still served until its nextUpdate (a broker's refresh job keeps
 * working through an outage), with a warning in the log; @p db may be NULL (no
 * connection could be made). 0, or -1 (*@p busy as crl_current() sets it).
 */
int crl_cache_get(struct crl_cache *c, struct db *db, struct signer *signer,
                  const struct crl_policy *p, uint8_t **der, size_t *len, int64_t *number,
                  bool *busy);

#endif
