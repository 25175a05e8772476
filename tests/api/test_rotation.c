/*
 * CA rotation: claimd is told, by SIGHUP, to sign with a new intermediate CA while
 * devices are claiming in parallel. No claim may fail, and claims after the reload
 * must chain through the new intermediate to the same root.
 */
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api_support.h"
#include "harness.h"

#define THREADS     4
#define MACS_EACH   10
#define MAX_CLAIMS  400 /* per thread: the loop ends even if the main thread never says so */
#define NEW_CA_NAME "claimd test intermediate 2"

struct worker {
	pthread_t th;
	struct fx *f;
	int id;
	atomic_int *stop;
	atomic_int done, failed, old_ca, new_ca;
	char first_error[600];
};

/* The subject CN of the issuing CA certificate in a received chain (the second one). */
static bool issuer_cn(const char *chain, char *cn, size_t cnsz)
{
	BIO *b = BIO_new_mem_buf(chain, -1);
	X509 *leaf = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	X509 *ca = leaf ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL;
	bool ok = ca && X509_NAME_get_text_by_NID(X509_get_subject_name(ca), NID_commonName, cn,
	                                          (int)cnsz) > 0;
	X509_free(ca);
	X509_free(leaf);
	BIO_free(b);
	return ok;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct sim_device dv[MACS_EACH];

	for (int i = 0; i < MACS_EACH; i++) {
		char mac[13];
		snprintf(mac, sizeof(mac), "7CDFA1%02X%04X", w->id, i);
		dv[i] = device(mac, "esp32s3", "ec");
	}
	for (int n = 0; n < MAX_CLAIMS && !atomic_load(w->stop); n++) {
		struct sim_result res;
		char cn[128];
		if (sim_self_claim(&w->f->d.url, &dv[n % MACS_EACH], NULL, w->f->t.root, &res) <
		    0) {
			if (atomic_fetch_add(&w->failed, 1) == 0)
				snprintf(w->first_error, sizeof(w->first_error), "stage %d: %s",
				         res.stage, res.err);
		} else if (issuer_cn(res.certificate, cn, sizeof(cn))) {
			if (strcmp(cn, NEW_CA_NAME) == 0)
				atomic_fetch_add(&w->new_ca, 1);
			else
				atomic_fetch_add(&w->old_ca, 1);
		}
		free(res.certificate);
		atomic_fetch_add(&w->done, 1);
	}
	for (int i = 0; i < MACS_EACH; i++)
		EVP_PKEY_free(dv[i].key);
	return NULL;
}

/* Waits (bounded, 20 s) until every worker has done @p each more claims than in @p base. */
static bool wait_claims(struct worker *w, const int *base, int each)
{
	for (int tries = 0; tries < 2000; tries++) {
		bool all = true;
		for (int i = 0; i < THREADS; i++)
			all = all && atomic_load(&w[i].done) >= base[i] + each;
		if (all)
			return true;
		usleep(10 * 1000);
	}
	return false;
}

static void ca_rotation_under_load(void)
{
	struct fx f;
	struct worker w[THREADS];
	atomic_int stop = 0;
	int base[THREADS] = {0};
	struct topts o = {.extra = "limits:\n  address_per_minute: 0\n  mac_per_minute: 0\n"};

	REQUIRE(tenv_setup(&f.t, "ca_rotation_under_load", &o));
	for (int t = 0; t < THREADS; t++)
		for (int i = 0; i < MACS_EACH; i++) {
			char mac[13];
			snprintf(mac, sizeof(mac), "7CDFA1%02X%04X", t, i);
			REQUIRE(tenv_add_device(&f.t, mac, "esp32s3", K1));
		}
	/* The new intermediate: a new P-256 key, signed by the same root. */
	REQUIRE(t_run(NULL,
	              "cd '%s' && mkdir -p ca2 && printf '%s' > ca2/ext && "
	              "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
	              " -subj '/CN=" NEW_CA_NAME "' -keyout ca2/intermediate.key -out ca2/csr && "
	              "chmod 600 ca2/intermediate.key && "
	              "openssl x509 -req -in ca2/csr -CA ca/root.pem -CAkey ca/root.key"
	              " -CAcreateserial -days 30 -extfile ca2/ext -out ca2/intermediate.pem",
	              f.t.dir,
	              "basicConstraints=critical,CA:TRUE,pathlen:0\\n"
	              "keyUsage=critical,keyCertSign,cRLSign\\n"
	              "subjectKeyIdentifier=hash\\nauthorityKeyIdentifier=keyid:always\\n") == 0);
	REQUIRE(daemon_start(&f.t, &f.d));

	memset(w, 0, sizeof(w));
	for (int i = 0; i < THREADS; i++) {
		w[i].f = &f;
		w[i].id = i;
		w[i].stop = &stop;
		REQUIRE(pthread_create(&w[i].th, NULL, worker_main, &w[i]) == 0);
	}
	/* Claims are running; now the new config names the new intermediate. */
	bool running = wait_claims(w, base, 5);
	CHECK(running);
	CHECK(t_run(NULL, "sed -i 's|ca/intermediate|ca2/intermediate|' '%s'", f.t.config) == 0);
	CHECK(kill(f.d.pid, SIGHUP) == 0);
	/* Bounded wait for the reload to be logged, then more claims on every thread. */
	bool reloaded = false;
	for (int i = 0; i < 500 && !reloaded; i++) {
		reloaded = t_run(NULL, "grep -q 'reloaded ' '%s'", f.d.log) == 0;
		if (!reloaded)
			usleep(10 * 1000);
	}
	CHECK(reloaded);
	for (int i = 0; i < THREADS; i++)
		base[i] = atomic_load(&w[i].done);
	CHECK(wait_claims(w, base, 5));
	atomic_store(&stop, 1);

	int done = 0, failed = 0, old_ca = 0, new_ca = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(w[i].th, NULL);
		done += w[i].done;
		failed += w[i].failed;
		old_ca += w[i].old_ca;
		new_ca += w[i].new_ca;
		CHECKF(w[i].failed == 0, "thread %d: %d failed claims, first: %s", i, w[i].failed,
		       w[i].first_error);
	}
	printf("ca rotation: %d claims in parallel, %d failed, %d under the old intermediate, "
	       "%d under the new\n",
	       done, failed, old_ca, new_ca);
	CHECK(old_ca >= THREADS * 5 && new_ca >= THREADS * 5 && old_ca + new_ca == done);

	/* After the reload every claim chains through the new intermediate to the root
	 * (sim_self_claim verified the whole path to f.t.root already). */
	struct sim_device dv = device(MAC1, "esp32s3", "ec");
	REQUIRE(tenv_add_device(&f.t, MAC1, "esp32s3", K1));
	for (int i = 0; i < 3; i++) {
		struct sim_result res;
		char cn[128] = "";
		CHECKF(sim_self_claim(&f.d.url, &dv, NULL, f.t.root, &res) == 0, "%s", res.err);
		CHECKF(res.certificate && issuer_cn(res.certificate, cn, sizeof(cn)) &&
		           strcmp(cn, NEW_CA_NAME) == 0,
		       "issued under '%s'", cn);
		free(res.certificate);
	}
	EVP_PKEY_free(dv.key);
	fx_down(&f);
}

static const struct t_case cases[] = {
    {"ca_rotation_under_load", ca_rotation_under_load},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
