/*
 * claimsim bench. Each worker thread is one firmware-like client: a new connection per
 * request, the firmware's exact bodies and checks (or, for a user claim, the Android
 * app's: the token raw in Authorization, Gson's escaping, send_mqtt_host). Latencies
 * are kept per request and sorted at the end; nothing here is on the server's side of
 * the measurement. Every reply is also classed as a device would see it (success, a
 * refusal it may retry, anything else, no reply, a reply cut short, a reply later than
 * its read timeout), and optionally logged with every acknowledged certificate's serial,
 * so that a test can hold the database to what the devices were told.
 */
#include "sim/bench.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/times.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include "lib/csvimport.h"
#include "sim/devidp.h"
#include "sim/sim.h"
#include "lib/util.h"

#define KEY_POOL  16
#define MAX_KINDS 32
/* The firmware's read timeout (protocol.md section 3): a later reply is a failure. */
#define DEVICE_TIMEOUT_US 5000000u

/* How a device sees one exchange. */
enum reply_class { REPLY_OK, REPLY_BUSY, REPLY_OTHER, REPLY_TRANSPORT, REPLY_CUT, REPLY_CLASSES };
/* The names --replies writes. */
static const char *const class_names[REPLY_CLASSES] = {"200", "503-retry-after", "other",
                                                       "transport", "cut"};
/* Which flow an exchange belongs to, as --replies names it. */
enum flow { FLOW_SELF, FLOW_USER, FLOW_CFSSL, FLOWS };
static const char *const flow_names[FLOWS] = {"self", "user", "cfssl"};
/* The Android app's headers around the token (sim.c's user flow sends the same). */
#define APP_HEADERS "Content-Type: application/json; charset=utf-8\r\n"

struct bdev {
	struct sim_device d;
	char *csr_escaped;
	char *cfssl_body; /* {"certificate_request": ...} for --cfssl */
};

struct lat {
	uint32_t *us;
	size_t n, cap;
};

struct worker {
	pthread_t th;
	struct bench *b;
	struct http_conn conn; /* with --keep-alive */
	struct lat init, verify, claim;
	long ok;
};

struct bench {
	const struct bench_opts *o;
	struct http_url url;
	struct bdev *devs;
	size_t ndevs, capdevs;
	EVP_PKEY *keys[KEY_POOL];
	atomic_long next;  /* next claim number */
	atomic_long done;  /* finished claims */
	uint64_t deadline; /* monotonic ms, when running for a duration */
	uint64_t start;    /* now_us() when the clock started */
	pthread_mutex_t lock;
	char kinds[MAX_KINDS][160];
	long kind_count[MAX_KINDS];
	long failures;
	atomic_long replies[REPLY_CLASSES];
	atomic_long flow_replies[FLOWS][REPLY_CLASSES];
	atomic_long flow_done[FLOWS]; /* complete claims per flow */
	char **headers;               /* per user: "Authorization: TOKEN\r\n" + APP_HEADERS */
	atomic_long late;             /* exchanges that took longer than DEVICE_TIMEOUT_US */
	FILE *serials;                /* --serials: a line per acknowledged claim */
	FILE *reply_log;              /* --replies: one line per exchange */
	pthread_mutex_t logs;         /* the two files above */
};

/* Set by bench_stop(), from a signal handler: start no more claims. */
static atomic_bool stop_requested;

void bench_stop(void)
{
	atomic_store(&stop_requested, true);
}

static int load_row(void *arg, const struct csv_row *r)
{
	struct bench *b = arg;
	if (b->ndevs == b->capdevs) {
		size_t cap = b->capdevs ? b->capdevs * 2 : 1024;
		struct bdev *n = realloc(b->devs, cap * sizeof(*n));
		if (!n)
			return -1;
		b->devs = n;
		b->capdevs = cap;
	}
	struct bdev *d = &b->devs[b->ndevs++];
	memset(d, 0, sizeof(*d));
	memcpy(d->d.mac, r->mac, sizeof(d->d.mac));
	memcpy(d->d.platform, r->platform, sizeof(d->d.platform));
	memcpy(d->d.efuse_key, r->efuse_key, 16);
	return 0;
}

static void load_error(void *arg, long line, const char *reason)
{
	(void)arg;
	fprintf(stderr, "devices:%ld: %s\n", line, reason);
}

static void count_error(struct bench *b, const char *kind)
{
	pthread_mutex_lock(&b->lock);
	b->failures++;
	int i;
	for (i = 0; i < MAX_KINDS && b->kinds[i][0]; i++)
		if (strcmp(b->kinds[i], kind) == 0)
			break;
	if (i < MAX_KINDS) {
		if (!b->kinds[i][0])
			snprintf(b->kinds[i], sizeof(b->kinds[i]), "%s", kind);
		b->kind_count[i]++;
	}
	pthread_mutex_unlock(&b->lock);
}

static void lat_add(struct lat *l, uint64_t us)
{
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 4096;
		uint32_t *n = realloc(l->us, cap * sizeof(*n));
		if (!n)
			return;
		l->us = n;
		l->cap = cap;
	}
	l->us[l->n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
}

static uint64_t now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Reduces a failure reply to a short kind: "verify 400 auth_id: already used...". */
static void fail_kind(struct bench *b, const char *stage, const struct http_response *r,
                      const char *transport)
{
	char kind[160];
	if (transport) {
		snprintf(kind, sizeof(kind), "%s transport: %.100s", stage, transport);
	} else {
		char desc[100] = "";
		if (r->body &&
		    !sim_firmware_string(r->body, "description", desc, sizeof(desc), false))
			snprintf(desc, sizeof(desc), "(no description)");
		snprintf(kind, sizeof(kind), "%s %d %s", stage, r->status, desc);
	}
	count_error(b, kind);
}

/*
 * The next claim to make, and when it is due (never later than now: a claim's latency
 * is counted from it). Unpaced, it is due now. With --rate,
 * claim k is due at start + k / rate: the worker sleeps until then, and if every worker
 * was busy it starts late, and the lateness counts in the claim's latency (measuring
 * from when it was due, not when it was sent, keeps a slow server from hiding its
 * queue).
 */
static bool should_go(struct bench *b, long *ticket, uint64_t *due)
{
	*ticket = atomic_fetch_add(&b->next, 1);
	*due = now_us();
	if (b->o->rate > 0) {
		uint64_t at = b->start + (uint64_t)((double)*ticket * 1e6 / b->o->rate);
		if (b->o->count <= 0 && at / 1000 >= b->deadline)
			return false; /* due after the end */
		while (*due < at && !atomic_load(&stop_requested)) {
			uint64_t wait = at - *due;
			struct timespec ts = {(time_t)(wait / 1000000),
			                      (long)(wait % 1000000) * 1000};
			nanosleep(&ts, NULL);
			*due = now_us();
		}
		*due = at;
	}
	if (atomic_load(&stop_requested))
		return false;
	if (b->o->count > 0)
		return *ticket < b->o->count;
	return now_ms_monotonic() < b->deadline;
}

/* A 503 a device may simply retry: Retry-After and the protocol's failure body. */
static bool busy_reply(const struct http_response *r)
{
	char v[100];
	return r->status == 503 && http_header(r, "Retry-After", v, sizeof(v)) && r->body &&
	       sim_firmware_string(r->body, "status", v, sizeof(v), false) &&
	       strcmp(v, "failure") == 0 &&
	       sim_firmware_string(r->body, "description", v, sizeof(v), false);
}

/* Classes and counts one exchange of @p flow that took from @p t0 to @p t1 (now_us());
 * logs it. */
static void note_reply(struct bench *b, enum flow flow, const char *stage, int rc,
                       const struct http_response *r, const char *err, uint64_t t0, uint64_t t1)
{
	enum reply_class c = REPLY_OTHER;
	struct timespec now;

	if (rc < 0)
		c = strncmp(err, "reply cut short", 15) == 0 ? REPLY_CUT : REPLY_TRANSPORT;
	else if (r->cut)
		c = REPLY_CUT;
	else if (r->status == 200)
		c = REPLY_OK;
	else if (busy_reply(r))
		c = REPLY_BUSY;
	atomic_fetch_add(&b->replies[c], 1);
	atomic_fetch_add(&b->flow_replies[flow][c], 1);
	if (t1 - t0 > DEVICE_TIMEOUT_US)
		atomic_fetch_add(&b->late, 1);
	if (!b->reply_log)
		return;
	clock_gettime(CLOCK_REALTIME, &now);
	pthread_mutex_lock(&b->logs);
	fprintf(b->reply_log, "%lld.%03ld %s %s %d %.1f %s\n", (long long)now.tv_sec,
	        now.tv_nsec / 1000000, stage, class_names[c], rc < 0 ? 0 : r->status,
	        (double)(t1 - t0) / 1000.0, flow_names[flow]);
	pthread_mutex_unlock(&b->logs);
}

/*
 * One POST, on the worker's kept connection or on a new one, as the options say, noted
 * as @p flow's @p stage's reply. *@p t1 is when it ended (now_us()).
 */
static int bpost(struct worker *w, enum flow flow, const char *stage, const char *path,
                 const char *extra, const char *body, struct http_response *r, char *err,
                 size_t errsz, uint64_t *t1)
{
	uint64_t t0 = now_us();
	int rc;

	if (w->b->o->keep_alive)
		rc =
		    http_conn_post(&w->conn, path, extra, body, strlen(body), 10000, r, err, errsz);
	else
		rc = http_post(&w->b->url, path, extra, body, strlen(body), 10000, r, err, errsz);
	*t1 = now_us();
	note_reply(w->b, flow, stage, rc, r, err, t0, *t1);
	return rc;
}

/* --serials: the serial of the leaf in @p chain, acknowledged to device @p node_id; for a
 * user claim (@p user not NULL) with the device's @p mac and the user. */
static void log_serial(struct bench *b, const char *chain, const char *node_id, const char *mac,
                       const char *user)
{
	char serial[66];

	if (!b->serials)
		return;
	if (!sim_leaf_serial(chain, serial, sizeof(serial))) {
		count_error(b, "verify: no certificate serial in the reply");
		return;
	}
	pthread_mutex_lock(&b->logs);
	if (user)
		fprintf(b->serials, "%s %s %s %s\n", serial, node_id, mac, user);
	else
		fprintf(b->serials, "%s %s\n", serial, node_id);
	pthread_mutex_unlock(&b->logs);
}

/* cfssl's sign endpoint: one request per certificate, no challenge, no database. */
static void cfssl_sign(struct worker *w, struct bdev *d, uint64_t due)
{
	struct bench *b = w->b;
	struct http_response r = {0};
	char err[256];
	uint64_t t0 = now_us(), t1;
	const char *body = d->cfssl_body;

	if (bpost(w, FLOW_CFSSL, "sign", "api/v1/cfssl/sign", "Content-Type: application/json\r\n",
	          body, &r, err, sizeof(err), &t1) < 0) {
		fail_kind(b, "sign", NULL, err);
		return;
	}
	if (r.status != 200 || !r.body || !strstr(r.body, "\"success\":true") ||
	    !strstr(r.body, "BEGIN CERTIFICATE")) {
		fail_kind(b, "sign", &r, NULL);
		http_response_free(&r);
		return;
	}
	http_response_free(&r);
	lat_add(&w->verify, t1 - t0);
	lat_add(&w->claim, t1 - due);
	w->ok++;
	atomic_fetch_add(&b->done, 1);
	atomic_fetch_add(&b->flow_done[FLOW_CFSSL], 1);
}

/* Whether claim @p ticket is a user claim: user_share of every hundred, spread evenly. */
static bool user_turn(const struct bench *b, long ticket)
{
	long share = (long)b->o->user_share;
	return share > 0 && ((ticket + 1) * share) / 100 > (ticket * share) / 100;
}

/* The device answering: --pause between a claim's initiate and its verify. */
static void device_pause(const struct bench *b)
{
	if (b->o->pause_ms > 0) {
		struct timespec ts = {(time_t)(b->o->pause_ms / 1000),
		                      (long)(b->o->pause_ms % 1000) * 1000000L};
		nanosleep(&ts, NULL);
	}
}

/*
 * A verify's reply @p r (from @p t1 to @p t2) for @p node_id, the claim due at @p due:
 * checked as the device checks it, counted, its serial logged (@p user: for a user
 * claim). Frees @p r.
 */
static void verify_done(struct worker *w, enum flow flow, struct bdev *d, const char *node_id,
                        const char *user, struct http_response *r, uint64_t t1, uint64_t t2,
                        uint64_t due)
{
	struct bench *b = w->b;
	char err[256];

	if (r->status != 200 || r->content_length <= 0 || r->len > SIM_RESPONSE_MAX) {
		fail_kind(b, flow == FLOW_USER ? "user verify" : "verify", r, NULL);
		http_response_free(r);
		return;
	}
	lat_add(&w->verify, t2 - t1);
	lat_add(&w->claim, t2 - due);
	if (b->o->verify || b->serials) {
		char *cert = malloc(r->len + 1);
		if (!cert || !sim_firmware_string(r->body, "certificate", cert, r->len + 1, true) ||
		    (b->o->verify &&
		     sim_check_chain(cert, d->d.key, node_id, b->o->root, err, sizeof(err)) < 0)) {
			count_error(b, "verify: certificate check failed");
			free(cert);
			http_response_free(r);
			return;
		}
		log_serial(b, cert, node_id, d->d.mac, user);
		free(cert);
	}
	http_response_free(r);
	w->ok++;
	atomic_fetch_add(&b->done, 1);
	atomic_fetch_add(&b->flow_done[flow], 1);
}

/*
 * @p d's initiate in @p flow (@p extra: its headers): true with the 200 in @p r (the
 * caller frees it), else false with the failure counted.
 */
static bool initiate(struct worker *w, enum flow flow, const struct bdev *d, const char *extra,
                     struct http_response *r)
{
	const char *stage = flow == FLOW_USER ? "user initiate" : "initiate";
	char body[256], err[256];
	uint64_t t0 = now_us(), t1;

	snprintf(body, sizeof(body), "{\"mac_addr\":\"%s\",\"platform\":\"%s\"}", d->d.mac,
	         d->d.platform);
	if (bpost(w, flow, "initiate", "claim/initiate", extra, body, r, err, sizeof(err), &t1) <
	    0) {
		fail_kind(w->b, stage, NULL, err);
		return false;
	}
	if (r->status != 200 || r->content_length <= 0) {
		fail_kind(w->b, stage, r, NULL);
		http_response_free(r);
		return false;
	}
	lat_add(&w->init, t1 - t0);
	return true;
}

/* A complete self claim of @p d, due at @p due. */
static void self_claim(struct worker *w, struct bdev *d, uint64_t due)
{
	struct bench *b = w->b;
	struct http_response r = {0};
	char err[256], auth_id[64], challenge[130], response[129];
	uint64_t t1, t2;

	if (!initiate(w, FLOW_SELF, d, "", &r))
		return;
	if (!sim_firmware_string(r.body, "auth_id", auth_id, sizeof(auth_id), false) ||
	    !sim_firmware_string(r.body, "challenge", challenge, sizeof(challenge), false)) {
		fail_kind(b, "initiate", &r, NULL);
		http_response_free(&r);
		return;
	}
	http_response_free(&r);
	sim_challenge_response(d->d.efuse_key, challenge, response);
	device_pause(b);
	char *vb = NULL;
	if (asprintf(&vb, "{\"auth_id\":\"%s\",\"challenge_response\":\"%s\",\"csr\":\"%s\"}",
	             auth_id, response, d->csr_escaped) < 0)
		return;
	t1 = now_us();
	int rc = bpost(w, FLOW_SELF, "verify", "claim/verify", "", vb, &r, err, sizeof(err), &t2);
	free(vb);
	if (rc < 0) {
		fail_kind(b, "verify", NULL, err);
		return;
	}
	verify_done(w, FLOW_SELF, d, d->d.mac, NULL, &r, t1, t2, due);
}

/*
 * A complete assisted claim of @p d by user @p u (its headers prepared), due at @p due,
 * as the Android app relays it: initiate with the token gets the node_id, the device
 * makes a CSR for it, the app sends it to verify with send_mqtt_host.
 */
static void user_claim(struct worker *w, struct bdev *d, unsigned u, uint64_t due)
{
	struct bench *b = w->b;
	struct http_response r = {0};
	char err[256], node_id[NODE_ID_MAX + 1], user[32];
	char *csr = NULL, *js = NULL, *vb = NULL;
	uint64_t t1, t2;

	snprintf(user, sizeof(user), "bench-user-%u", u + 1);
	if (!initiate(w, FLOW_USER, d, b->headers[u], &r))
		return;
	if (!sim_firmware_string(r.body, "node_id", node_id, sizeof(node_id), false)) {
		fail_kind(b, "user initiate", &r, NULL);
		http_response_free(&r);
		return;
	}
	http_response_free(&r);
	device_pause(b);
	if (!(csr = sim_csr_pem(d->d.key, node_id, false)) ||
	    !(js = sim_json_string(csr, SIM_ANDROID)) ||
	    asprintf(&vb, "{\"csr\":%s,\"send_mqtt_host\":true}", js) < 0) {
		count_error(b, "user verify: cannot make the CSR");
		vb = NULL;
		goto out;
	}
	t1 = now_us();
	if (bpost(w, FLOW_USER, "verify", "claim/verify", b->headers[u], vb, &r, err, sizeof(err),
	          &t2) < 0) {
		fail_kind(b, "user verify", NULL, err);
		goto out;
	}
	verify_done(w, FLOW_USER, d, node_id, user, &r, t1, t2, due);
out:
	free(vb);
	free(js);
	free(csr);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;
	long ticket;
	uint64_t due;

	while (should_go(b, &ticket, &due)) {
		struct bdev *d = &b->devs[(size_t)ticket % b->ndevs];
		if (b->o->cfssl)
			cfssl_sign(w, d, due);
		else if (user_turn(b, ticket))
			/* The user claims before this one, dealt round the users in turn. */
			user_claim(
			    w, d, (unsigned)((ticket * (long)b->o->user_share / 100) % b->o->users),
			    due);
		else
			self_claim(w, d, due);
	}
	return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return x < y ? -1 : x > y;
}

static void report_lat(FILE *out, const char *name, struct worker *w, unsigned nw, size_t off)
{
	size_t n = 0, k = 0;
	for (unsigned i = 0; i < nw; i++)
		n += ((struct lat *)((char *)&w[i] + off))->n;
	if (n == 0) {
		fprintf(out, "  %-9s no samples\n", name);
		return;
	}
	uint32_t *all = malloc(n * sizeof(*all));
	if (!all)
		return;
	for (unsigned i = 0; i < nw; i++) {
		struct lat *l = (struct lat *)((char *)&w[i] + off);
		memcpy(all + k, l->us, l->n * sizeof(*all));
		k += l->n;
	}
	qsort(all, n, sizeof(*all), cmp_u32);
#define PCT(p) (all[(size_t)((double)(n - 1) * (p))] / 1000.0)
	fprintf(out, "  %-9s p50 %7.2f ms  p90 %7.2f ms  p99 %7.2f ms  max %7.2f ms  (%zu)\n", name,
	        PCT(0.50), PCT(0.90), PCT(0.99), all[n - 1] / 1000.0, n);
#undef PCT
	free(all);
}

static long status_kb(int pid, const char *field)
{
	char path[64], line[256];
	long v = -1;
	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, field, strlen(field)) == 0)
			v = atol(line + strlen(field) + 1);
	fclose(f);
	return v;
}

/* CPU time so far, in clock ticks: the whole machine (busy and stolen, from /proc/stat),
 * one process (@p pid, 0 for none) and this process. */
struct cpu_ticks {
	long long busy, steal, server, self;
};

static void cpu_sample(int pid, struct cpu_ticks *t)
{
	long long v[8] = {0};
	char path[64], buf[1024];
	FILE *f = fopen("/proc/stat", "r");

	memset(t, 0, sizeof(*t));
	if (f && fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2],
	                &v[3], &v[4], &v[5], &v[6], &v[7]) == 8) {
		t->busy = v[0] + v[1] + v[2] + v[5] + v[6];
		t->steal = v[7];
	}
	if (f)
		fclose(f);
	struct tms self;
	times(&self);
	t->self = (long long)(self.tms_utime + self.tms_stime);
	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (!pid || !(f = fopen(path, "r")))
		return;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* After the command name in parentheses: state is field 3, utime and stime 14 and 15. */
	char *p = strrchr(buf, ')');
	unsigned long long ut, st;
	if (p &&
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) == 2)
		t->server = (long long)(ut + st);
}

/* CPU per completed item between two samples: a figure that machine noise moves less
 * than it moves the rate. */
static void cpu_report(FILE *out, const struct cpu_ticks *a, const struct cpu_ticks *b, int pid,
                       long done, const char *what)
{
	double us = 1e6 / (double)sysconf(_SC_CLK_TCK);
	if (done <= 0)
		return;
	double busy = (double)(b->busy - a->busy) * us / (double)done;
	double server = (double)(b->server - a->server) * us / (double)done;
	double self = (double)(b->self - a->self) * us / (double)done;
	fprintf(out, "  CPU per %s: %.0f us on the machine", what, busy);
	if (pid)
		fprintf(out, " (server %.0f us, load generator %.0f us, the rest %.0f us)", server,
		        self, busy - server - self);
	fprintf(out, "; stolen by the host: %.0f us\n",
	        (double)(b->steal - a->steal) * us / (double)done);
}

/*
 * The user claims' headers: a token for each of o->users users, minted from the
 * development IdP in o->idp_dir, valid for the whole run and ten minutes more. 0, or -1
 * after a message.
 */
static int make_tokens(struct bench *b)
{
	const struct bench_opts *o = b->o;
	char key[4096], user[32], err[256];

	if (!o->idp_dir || !o->issuer || o->users == 0) {
		fprintf(stderr, "bench: user claims need --idp DIR, --issuer and --users > 0\n");
		return -1;
	}
	snprintf(key, sizeof(key), "%s/idp.key", o->idp_dir);
	if (!(b->headers = calloc(o->users, sizeof(*b->headers))))
		return -1;
	for (unsigned i = 0; i < o->users; i++) {
		snprintf(user, sizeof(user), "bench-user-%u", i + 1);
		struct devtoken t = {.key_file = key,
		                     .kid = o->kid ? o->kid : "dev-1",
		                     .issuer = o->issuer,
		                     .audience = o->audience,
		                     .user = user,
		                     .ttl = 600 + (long)(o->duration > 3000 ? o->duration : 3000)};
		char *tok = devidp_token(&t, err, sizeof(err));
		if (!tok) {
			fprintf(stderr, "bench: token for %s: %s\n", user, err);
			return -1;
		}
		int rc = asprintf(&b->headers[i], "Authorization: %s\r\n" APP_HEADERS, tok);
		free(tok);
		if (rc < 0) {
			b->headers[i] = NULL;
			return -1;
		}
	}
	return 0;
}

/* With a user share: the claims and the replies of each flow. */
static void report_flows(FILE *out, struct bench *b)
{
	for (int f = FLOW_SELF; f <= FLOW_USER; f++) {
		atomic_long *r = b->flow_replies[f];
		fprintf(out,
		        "  %s claims: %ld complete; replies: %ld 200, %ld 503 with Retry-After, "
		        "%ld other, %ld transport errors, %ld cut short\n",
		        flow_names[f], atomic_load(&b->flow_done[f]), atomic_load(&r[REPLY_OK]),
		        atomic_load(&r[REPLY_BUSY]), atomic_load(&r[REPLY_OTHER]),
		        atomic_load(&r[REPLY_TRANSPORT]), atomic_load(&r[REPLY_CUT]));
	}
}

int bench_run(const struct bench_opts *o, FILE *out)
{
	struct bench b = {.o = o};
	struct csv_result res;
	struct worker *w = NULL;
	FILE *f = NULL;
	int rc = 1;

	pthread_mutex_init(&b.lock, NULL);
	pthread_mutex_init(&b.logs, NULL);
	if (!http_url_parse(o->url, &b.url)) {
		fprintf(stderr, "bench: bad --url\n");
		goto out;
	}
	char err[512];
	if (http_url_tls(&b.url, o->cacert, err, sizeof(err)) < 0) {
		fprintf(stderr, "bench: %s\n", err);
		goto out;
	}
	if (o->serials_file && !(b.serials = fopen(o->serials_file, "w"))) {
		perror(o->serials_file);
		goto out;
	}
	if (o->replies_file && !(b.reply_log = fopen(o->replies_file, "w"))) {
		perror(o->replies_file);
		goto out;
	}
	if (!(f = fopen(o->devices_file, "r"))) {
		perror(o->devices_file);
		goto out;
	}
	if (csv_read_stream(f, NULL, load_row, load_error, &b, &res) < 0 || b.ndevs == 0) {
		fprintf(stderr, "bench: no usable devices in %s\n", o->devices_file);
		goto out;
	}
	/* Prepared before the clock: a small pool of keys, one CSR per device. */
	fprintf(out, "preparing %zu devices (%s keys)...\n", b.ndevs, o->key_type);
	for (int i = 0; i < KEY_POOL; i++)
		if (!(b.keys[i] = sim_key_new(o->key_type)))
			goto out;
	for (size_t i = 0; i < b.ndevs; i++) {
		b.devs[i].d.key = b.keys[i % KEY_POOL];
		char *csr = sim_csr_pem(b.devs[i].d.key, b.devs[i].d.mac, false);
		b.devs[i].csr_escaped = csr ? sim_firmware_escape(csr) : NULL;
		if (csr && o->cfssl) {
			char *js = sim_json_string(csr, SIM_CLI);
			if (!js || asprintf(&b.devs[i].cfssl_body, "{\"certificate_request\": %s}",
			                    js) < 0)
				b.devs[i].cfssl_body = NULL;
			free(js);
		}
		free(csr);
		if (!b.devs[i].csr_escaped || (o->cfssl && !b.devs[i].cfssl_body))
			goto out;
	}
	if (o->user_share > 0 && make_tokens(&b) < 0)
		goto out;
	w = calloc(o->concurrency, sizeof(*w));
	if (!w)
		goto out;
	long rss_before = o->pid ? status_kb(o->pid, "VmRSS") : -1;
	struct cpu_ticks cpu0, cpu1;
	cpu_sample(o->pid, &cpu0);
	uint64_t start = now_us();
	b.start = start;
	b.deadline = now_ms_monotonic() + (uint64_t)(o->duration * 1000.0);
	for (unsigned i = 0; i < o->concurrency; i++) {
		w[i].b = &b;
		w[i].conn.url = b.url;
		w[i].conn.fd = -1;
		pthread_create(&w[i].th, NULL, worker_main, &w[i]);
	}
	for (unsigned i = 0; i < o->concurrency; i++) {
		pthread_join(w[i].th, NULL);
		http_conn_close(&w[i].conn);
	}
	double secs = (double)(now_us() - start) / 1e6;
	long done = atomic_load(&b.done);
	char pace[64] = "";
	if (o->rate > 0)
		snprintf(pace, sizeof(pace), ", paced at %.0f/s", o->rate);
	cpu_sample(o->pid, &cpu1);

	if (o->cfssl) {
		fprintf(out, "cfssl bench: %s, %u concurrent clients, %s, %s CSRs%s\n", o->url,
		        o->concurrency,
		        o->keep_alive ? "kept-alive connections" : "new connection per request",
		        o->key_type, pace);
		fprintf(out, "  certificates signed: %ld in %.2f s = %.1f signs/s\n", done, secs,
		        done / secs);
		report_lat(out, "sign", w, o->concurrency, offsetof(struct worker, claim));
	} else {
		char share[64] = "";
		if (o->user_share > 0)
			snprintf(share, sizeof(share), ", %u %% user claims (%u users)",
			         o->user_share, o->users);
		fprintf(out,
		        "claimd bench: %s, %u concurrent clients, %s, %s "
		        "device keys%s%s%s\n",
		        o->url, o->concurrency,
		        o->keep_alive ? "kept-alive connections" : "new connection per request",
		        o->key_type, o->verify ? ", certificates verified" : "", pace, share);
		fprintf(out, "  complete claims: %ld in %.2f s = %.1f claims/s (%.1f requests/s)\n",
		        done, secs, done / secs, 2.0 * done / secs);
		report_lat(out, "initiate", w, o->concurrency, offsetof(struct worker, init));
		report_lat(out, "verify", w, o->concurrency, offsetof(struct worker, verify));
		report_lat(out, "claim", w, o->concurrency, offsetof(struct worker, claim));
	}
	cpu_report(out, &cpu0, &cpu1, o->pid, done, o->cfssl ? "certificate" : "claim");
	fprintf(out,
	        "  replies: %ld 200, %ld 503 with Retry-After, %ld other, %ld transport errors, "
	        "%ld cut short, %ld later than 5 s\n",
	        atomic_load(&b.replies[REPLY_OK]), atomic_load(&b.replies[REPLY_BUSY]),
	        atomic_load(&b.replies[REPLY_OTHER]), atomic_load(&b.replies[REPLY_TRANSPORT]),
	        atomic_load(&b.replies[REPLY_CUT]), atomic_load(&b.late));
	if (!o->cfssl && o->user_share > 0)
		report_flows(out, &b);
	fprintf(out, "  errors: %ld\n", b.failures);
	for (int i = 0; i < MAX_KINDS && b.kinds[i][0]; i++)
		fprintf(out, "    %6ld  %s\n", b.kind_count[i], b.kinds[i]);
	if (o->pid)
		fprintf(out, "  claimd RSS: %ld KiB before, %ld KiB after, peak %ld KiB\n",
		        rss_before, status_kb(o->pid, "VmRSS"), status_kb(o->pid, "VmHWM"));
	rc = b.failures ? 1 : 0;
out:
	if (w)
		for (unsigned i = 0; i < o->concurrency; i++) {
			free(w[i].init.us);
			free(w[i].verify.us);
			free(w[i].claim.us);
		}
	free(w);
	for (size_t i = 0; i < b.ndevs; i++) {
		free(b.devs[i].csr_escaped);
		free(b.devs[i].cfssl_body);
	}
	free(b.devs);
	if (b.headers)
		for (unsigned i = 0; i < o->users; i++)
			free(b.headers[i]);
	free(b.headers);
	for (int i = 0; i < KEY_POOL; i++)
		EVP_PKEY_free(b.keys[i]);
	if (f)
		fclose(f);
	/* The logs are the evidence a test reads: a failed write fails the run. */
	if (b.serials && fclose(b.serials) != 0)
		rc = 1;
	if (b.reply_log && fclose(b.reply_log) != 0)
		rc = 1;
	http_url_free(&b.url);
	pthread_mutex_destroy(&b.lock);
	pthread_mutex_destroy(&b.logs);
	return rc;
}
