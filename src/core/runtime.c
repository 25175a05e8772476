/*
 * Generations of loaded state and per-thread database connections. A reload builds a
 * complete new generation before touching the current one, so a bad config or CA is
 * refused and the old one keeps serving.
 */
#include "core/runtime.h"

#include "core/authid_memo.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cert_reply.h"
#include "lib/log.h"

size_t runtime_reply_max(const struct runtime *rt, bool matter)
{
	if (matter)
		return rt->pai ? cert_reply_len(pai_largest_dac_pem(rt->pai), pai_pem(rt->pai),
		                                rt->cfg, CERT_REPLY_ALL_HOSTS)
		               : 0;
	return cert_reply_len(ca_largest_leaf_pem(rt->ca), ca_chain_pem(rt->ca), rt->cfg,
	                      CERT_REPLY_ALL_HOSTS);
}

/*
 * The largest reply of its kind (runtime_reply_max()) must fit the firmware's buffer
 * (protocol.md section 3); @p what names the certificates and @p hint what to change,
 * for the message.
 */
static int check_fits(struct runtime *rt, bool matter, const char *what, const char *hint,
                      char *err, size_t errsz)
{
	size_t total = runtime_reply_max(rt, matter);
	if (total == SIZE_MAX) {
		snprintf(err, errsz, "%s: the %s cannot be sent as the firmware reads them",
		         rt->cfg->file, what);
		return -1;
	}
	if (total > RESPONSE_MAX) {
		snprintf(
		    err, errsz,
		    "%s: the %s response would be %zu bytes, over the firmware's limit of %d: %s",
		    rt->cfg->file, what, total, RESPONSE_MAX, hint);
		return -1;
	}
	return 0;
}

static int check_response_fits(struct runtime *rt, char *err, size_t errsz)
{
	return check_fits(rt, false, "certificate (RSA-2048 device key)",
	                  "use a smaller CA key or chain, or drop mqtt_cred_host", err, errsz);
}

/* The largest Matter reply (a DAC for the longest node_id, then the PAI) must fit the
 * same buffer: the CLI writes the two certificates to a device with the same limits. */
static int check_matter_fits(struct runtime *rt, char *err, size_t errsz)
{
	return check_fits(rt, true, "Matter DAC and PAI",
	                  "use a PAI with a shorter subject, or drop mqtt_cred_host", err, errsz);
}

/* The Matter PAI, when configured, checked against the config's ids. */
static int load_matter(struct runtime *rt, char *err, size_t errsz)
{
	const struct claimd_config *c = rt->cfg;

	if (!c->matter_pai_certificate[0])
		return 0;
	/* The signer loaded it; this process has the certificate only. */
	if (!(rt->pai = signer_pai(rt->signer))) {
		snprintf(err, errsz, "matter: the signer did not load the PAI");
		return -1;
	}
	/* A PAI that names a product signs DACs for that product only (Matter Core
	 * 6.2.2.4): any other product id configured could never be issued. */
	const char *only = pai_product_id(rt->pai);
	for (size_t i = 0; only[0] && i < c->n_matter_product_ids; i++)
		if (strcmp(c->matter_product_ids[i], only) != 0) {
			snprintf(err, errsz,
			         "matter.product_ids: %s: the PAI's subject names product %s only",
			         c->matter_product_ids[i], only);
			return -1;
		}
	return check_matter_fits(rt, err, errsz);
}

int runtime_keys_out_of_reach(const struct claimd_config *cfg, char *err, size_t errsz)
{
	const struct {
		const char *key, *path;
	} files[] = {
	    {"ca.key", cfg->ca_key},
	    {"matter.pai_key", cfg->matter_pai_key},
	    {"secrets.key_file", cfg->secrets_key_file},
	};

	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		const char *f = files[i].path;
		if (!f[0] || strncmp(f, "pkcs11:", 7) == 0)
			continue;
		int fd = open(f, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd < 0)
			continue;
		close(fd);
		snprintf(err, errsz,
		         "%s: %s: %s can be read by uid %ld, the network process's own: only the "
		         "signer's user may read a key (make it owned by signer.user, mode 0600; "
		         "start claimd as root so it runs as server.user, or run an external "
		         "signer, signer.socket)",
		         cfg->file, files[i].key, f, (long)geteuid());
		return -1;
	}
	return 0;
}

struct runtime *runtime_load(const char *path, const char *exe, struct signer *keep, char *err,
                             size_t errsz)
{
	struct runtime *rt = calloc(1, sizeof(*rt));

	if (!rt) {
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	atomic_init(&rt->refs, 1);
	if (!(rt->cfg = config_load(path, err, errsz)))
		goto fail;
	/* The keys are loaded by the signer, never here, and must be out of reach. */
	if (geteuid() != 0 && runtime_keys_out_of_reach(rt->cfg, err, errsz) < 0)
		goto fail;
	if (keep)
		rt->signer = signer_ref(keep);
	else if (!(rt->signer = signer_start(exe, rt->cfg, err, errsz)))
		goto fail;
	rt->ca = signer_ca(rt->signer);
	rt->secrets = signer_secrets(rt->signer);
	if (check_response_fits(rt, err, errsz) < 0)
		goto fail;
	if (load_matter(rt, err, errsz) < 0)
		goto fail;
	if (rt->cfg->jwt_jwks_file[0] &&
	    !(rt->jwks = jwks_load(rt->cfg->jwt_jwks_file, err, errsz)))
		goto fail;
	if (rt->cfg->admin_tokens_file[0] &&
	    !(rt->admin_tokens = admin_tokens_load(rt->cfg->admin_tokens_file, err, errsz)))
		goto fail;
	return rt;
fail:
	runtime_release(rt);
	return NULL;
}

void runtime_release(struct runtime *rt)
{
	if (!rt || atomic_fetch_sub(&rt->refs, 1) != 1)
		return;
	signer_free(rt->signer); /* and with it the key-less CA and the auth_id subkeys */
	jwks_free(rt->jwks);
	admin_tokens_free(rt->admin_tokens);
	config_free(rt->cfg);
	free(rt);
}

static void close_db(void *p)
{
	db_close(p);
}

int app_init(struct app *app, struct runtime *rt)
{
	memset(app, 0, sizeof(*app));
	if (pthread_mutex_init(&app->lock, NULL) != 0)
		return -1;
	if (pthread_key_create(&app->db_key, close_db) != 0)
		return -1;
	app->db_url = strdup(rt->cfg->db_url);
	app->db_circuit = db_circuit_new(rt->cfg->db_timeout_ms);
	app->limiter = ratelimit_new(16);
	app->memo = authid_memo_new();
	if (crl_cache_init(&app->crl) < 0)
		return -1;
	if (metrics_init(&app->metrics) < 0)
		return -1;
	if (!app->db_url || !app->db_circuit || !app->limiter || !app->memo)
		return -1;
	app->rt = rt;
	return 0;
}

void app_destroy(struct app *app)
{
	struct db *db = pthread_getspecific(app->db_key);
	db_close(db);
	pthread_setspecific(app->db_key, NULL);
	pthread_key_delete(app->db_key);
	runtime_release(app->rt);
	ratelimit_free(app->limiter);
	authid_memo_free(app->memo);
	crl_cache_destroy(&app->crl);
	metrics_destroy(&app->metrics);
	free(app->db_url);
	db_circuit_free(app->db_circuit);
	pthread_mutex_destroy(&app->lock);
}

struct runtime *app_acquire(struct app *app)
{
	pthread_mutex_lock(&app->lock);
	struct runtime *rt = app->rt;
	atomic_fetch_add(&rt->refs, 1);
	pthread_mutex_unlock(&app->lock);
	return rt;
}

void app_swap(struct app *app, struct runtime *rt)
{
	pthread_mutex_lock(&app->lock);
	struct runtime *old = app->rt;
	app->rt = rt;
	pthread_mutex_unlock(&app->lock);
	/* Compared with the generation being replaced, so each change is reported once. */
	const char *key;
	for (size_t pos = 0; (key = config_next_restart_change(old->cfg, rt->cfg, &pos));)
		log_warn("%s changed: takes effect at the next restart", key);
	runtime_release(old);
}

struct db *app_db(struct app *app)
{
	struct db *db = pthread_getspecific(app->db_key);
	char err[512];

	if (db)
		return db;
	/* Connected when first used, through the circuit: a database that does not answer
	 * costs this request no more than any other. */
	db = db_open(app->db_url, app->db_circuit, err, sizeof(err));
	if (!db) {
		log_error("%s", err);
		return NULL;
	}
	db_set_metrics(db, &app->metrics.db);
	pthread_setspecific(app->db_key, db);
	return db;
}
