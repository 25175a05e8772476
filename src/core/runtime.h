/*
 * The process-wide context passed to every handler: the current generation of config,
 * CA and secrets (swapped whole on SIGHUP, ref-counted so in-flight requests keep the
 * one they started with), per-thread database connections and counters for /metrics.
 */
#ifndef CLAIMD_RUNTIME_H
#define CLAIMD_RUNTIME_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/admin_tokens.h"
#include "core/auth.h"
#include "x509/ca.h"
#include "core/cert_reply.h"
#include "lib/config.h"
#include "lib/secure.h"
#include "db/db.h"
#include "lib/errors.h"
#include "lib/metrics.h"
#include "core/ratelimit.h"
#include "core/revocation.h"
#include "signer/signer.h"

struct runtime {
	struct claimd_config *cfg;
	struct signer *signer;             /* the process holding the keys; one per generation */
	const struct ca *ca;               /* signer_ca(signer): the public side, no key */
	const struct pai *pai;             /* signer_pai(signer): the PAI's public side; NULL:
	                                      ?matter=true is refused */
	const struct secrets *secrets;     /* signer_secrets(signer): auth_id subkeys only */
	struct jwks *jwks;                 /* NULL: assisted claiming disabled */
	struct admin_tokens *admin_tokens; /* NULL: admin.tokens_file unset */
	atomic_int refs;
};

struct app {
	pthread_mutex_t lock;
	struct runtime *rt; /* current generation */
	char *db_url;       /* fixed for the process lifetime */
	pthread_key_t db_key;
	struct db_circuit *db_circuit; /* shared by the workers' connections */
	atomic_long inflight;
	atomic_long by_code[CE__COUNT]; /* replies by error code (CE_OK = success) */
	atomic_long claims_in_flight;   /* claim requests between headers and reply */
	struct ratelimit *limiter;      /* address, MAC and user buckets */
	struct authid_memo *memo;       /* what initiates read, for their verifies */
	struct crl_cache crl;           /* this process's copy of the current CRL */
	struct metrics metrics;         /* requests by route and status, claims by outcome */
	atomic_bool startup_waiting;    /* the database was not up at start-up: not ready yet */
};

/**
 * Loads a config file and everything it names: starts a signer (program @p exe, see
 * signer.h) that loads the CA and the secrets key, or, when @p keep is not NULL, keeps
 * that one (a reference: claimd after it dropped root, which could start no signer
 * that reads the keys), and checks that the largest response fits RESPONSE_MAX. When
 * this process is not root, also checks that it cannot open a key file
 * (runtime_keys_out_of_reach()). Returns NULL with "FILE:LINE:COL: message" or
 * "PATH: message" (the signer's, when it could not load a key) in @p err.
 */
struct runtime *runtime_load(const char *path, const char *exe, struct signer *keep, char *err,
                             size_t errsz);
/**
 * The network process's own check that the keys are out of its reach: opening
 * ca.key, matter.pai_key (when files, not pkcs11: URIs) and secrets.key_file for
 * reading must fail. 0, or -1 with a message naming the config key, the file and this
 * process's uid in @p err (a key it can open: a configuration error, fatal at start-up).
 */
/**
 * The largest certificate reply @p rt can send, in bytes, with every configured host
 * (protocol.md section 3): the CA's (@p matter false: the largest leaf, RSA-2048 device
 * key, then the chain) or the Matter one (@p matter true: the largest DAC, then the PAI;
 * 0 when no PAI is configured). SIZE_MAX when the certificates cannot be sent as the
 * firmware reads them. runtime_load() refuses a config whose replies exceed
 * RESPONSE_MAX; `claimd -t` prints both.
 */
size_t runtime_reply_max(const struct runtime *rt, bool matter);

int runtime_keys_out_of_reach(const struct claimd_config *cfg, char *err, size_t errsz);
/** Drops one reference; frees the generation at zero. NULL is a no-op. */
void runtime_release(struct runtime *rt);

/** Initialises @p app around a first generation (takes its reference). */
int app_init(struct app *app, struct runtime *rt);
/** Releases everything app_init() took. */
void app_destroy(struct app *app);
/** The current generation, with a reference the caller releases. */
struct runtime *app_acquire(struct app *app);
/**
 * Makes @p rt current (takes its reference) and releases the old one, warning in the
 * log about each changed key that needs a restart (config_next_restart_change()).
 */
void app_swap(struct app *app, struct runtime *rt);
/**
 * This thread's database connection (db_open(): made when first used, through the
 * process's circuit); NULL only when database.url cannot be parsed or memory ran out
 * (logged).
 */
struct db *app_db(struct app *app);

#endif
