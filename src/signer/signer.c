/*
 * Both ends of the signer protocol (signer.h): the client the network-facing process
 * calls from its worker threads, one request at a time under a lock and never longer
 * than signer.timeout_seconds, and the signer process's loop. Every payload is read
 * through a bounds-checked cursor; a short or long payload is a refusal, never a
 * guess. No OpenSSL here (ca.c builds and signs) and no libsodium (secure.c).
 */
#include "signer/signer.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/sandbox.h"

extern char **environ;

enum op { OP_HELLO = 0, OP_ISSUE = 1, OP_CRL = 2, OP_CHECK = 3, OP_SEAL = 4 };

#define SPKI_MAX      2048 /* an RSA-4096 SubjectPublicKeyInfo is 550 bytes */
#define CRL_ENTRY_LEN (SERIAL_HEX_LEN + 8 + 8)
#define CHALLENGE_HEX 64 /* authid.h's CHALLENGE_LEN: 32 bytes as hex */

/* ---- payloads: a growing writer and a bounds-checked reader ---- */

struct wr {
	uint8_t *p;
	size_t n, cap;
	bool bad; /* out of memory or over SIGNER_MSG_MAX: the payload is not sent */
};

static void put(struct wr *w, const void *b, size_t n)
{
	if (w->bad || n > SIGNER_MSG_MAX - w->n) {
		w->bad = true;
		return;
	}
	if (w->n + n > w->cap) {
		size_t cap = w->cap ? w->cap : 256;
		while (cap < w->n + n)
			cap *= 2;
		uint8_t *q = realloc(w->p, cap);
		if (!q) {
			w->bad = true;
			return;
		}
		w->p = q;
		w->cap = cap;
	}
	memcpy(w->p + w->n, b, n);
	w->n += n;
}

static void put_u32(struct wr *w, uint32_t v)
{
	uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
	put(w, b, 4);
}

static void put_i64(struct wr *w, int64_t v)
{
	uint8_t b[8];
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)((uint64_t)v >> (56 - 8 * i));
	put(w, b, 8);
}

/* A u32 length, then the bytes. */
static void put_str(struct wr *w, const void *s, size_t n)
{
	put_u32(w, n > UINT32_MAX ? UINT32_MAX : (uint32_t)n);
	put(w, s, n);
}

struct rd {
	const uint8_t *p;
	size_t n;
	bool bad; /* read past the end: every later read gives zeros */
};

static const uint8_t *take(struct rd *r, size_t n)
{
	if (r->bad || n > r->n) {
		r->bad = true;
		return NULL;
	}
	const uint8_t *p = r->p;
	r->p += n;
	r->n -= n;
	return p;
}

static void get(struct rd *r, void *out, size_t n)
{
	const uint8_t *p = take(r, n);
	if (p)
		memcpy(out, p, n);
	else
		memset(out, 0, n);
}

static uint32_t get_u32(struct rd *r)
{
	uint8_t b[4];
	get(r, b, 4);
	return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

static int64_t get_i64(struct rd *r)
{
	uint8_t b[8];
	uint64_t v = 0;
	get(r, b, 8);
	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return (int64_t)v;
}

/* A u32 length of at most @p max, then that many bytes (not NUL-terminated). */
static const uint8_t *get_str(struct rd *r, size_t max, size_t *len)
{
	uint32_t n = get_u32(r);
	if (n > max) {
		r->bad = true;
		return NULL;
	}
	*len = n;
	return take(r, n);
}

/* A malloc'd NUL-terminated copy of a get_str() field. */
static char *get_cstr(struct rd *r, size_t max)
{
	size_t n = 0;
	const uint8_t *p = get_str(r, max, &n);
	char *s = p ? malloc(n + 1) : NULL;
	if (!s) {
		r->bad = true;
		return NULL;
	}
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

/* The reader consumed its payload exactly. */
static bool rd_done(const struct rd *r)
{
	return !r->bad && r->n == 0;
}

/* 12 upper-case hex digits, the form claimd stores a MAC in. */
static bool mac_ok(const char *m)
{
	for (int i = 0; i < MAC_LEN; i++)
		if (!((m[i] >= '0' && m[i] <= '9') || (m[i] >= 'A' && m[i] <= 'F')))
			return false;
	return true;
}

/* ---- framing, with an optional deadline (monotonic ms; 0 = wait for ever) ---- */

static bool wait_fd(int fd, short ev, uint64_t deadline)
{
	for (;;) {
		int ms = -1;
		if (deadline) {
			uint64_t now = now_ms_monotonic();
			if (now >= deadline)
				return false;
			ms = (int)(deadline - now);
		}
		struct pollfd p = {fd, ev, 0};
		int r = poll(&p, 1, ms);
		if (r > 0)
			return true;
		if (r == 0 || errno != EINTR)
			return false;
	}
}

/* Sends (@p out) or receives @p n bytes at @p b: 0, or -1 on end-of-file, an error or
 * the deadline. */
static int io_all(int fd, uint8_t *b, size_t n, bool out, uint64_t deadline)
{
	while (n > 0) {
		if (!wait_fd(fd, out ? POLLOUT : POLLIN, deadline))
			return -1;
		ssize_t r = out ? send(fd, b, n, MSG_NOSIGNAL | MSG_DONTWAIT)
		                : recv(fd, b, n, MSG_DONTWAIT);
		if (r < 0 && (errno == EINTR || errno == EAGAIN))
			continue;
		if (r <= 0)
			return -1;
		b += r;
		n -= (size_t)r;
	}
	return 0;
}

static int send_msg(int fd, uint32_t code, const struct wr *w, uint64_t deadline)
{
	uint8_t h[8] = {(uint8_t)(code >> 24), (uint8_t)(code >> 16), (uint8_t)(code >> 8),
	                (uint8_t)code};
	uint32_t n = (uint32_t)w->n;
	h[4] = (uint8_t)(n >> 24);
	h[5] = (uint8_t)(n >> 16);
	h[6] = (uint8_t)(n >> 8);
	h[7] = (uint8_t)n;
	if (w->bad)
		return -1;
	return io_all(fd, h, 8, true, deadline) < 0 || io_all(fd, w->p, w->n, true, deadline) < 0
	           ? -1
	           : 0;
}

/* One message: its code and a malloc'd payload. -1 on end-of-file, error, deadline or
 * a length over SIGNER_MSG_MAX. */
static int recv_msg(int fd, uint32_t *code, uint8_t **p, size_t *n, uint64_t deadline)
{
	uint8_t h[8];
	*p = NULL;
	*n = 0;
	if (io_all(fd, h, 8, false, deadline) < 0)
		return -1;
	*code = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 | (uint32_t)h[2] << 8 | h[3];
	size_t len = (size_t)h[4] << 24 | (size_t)h[5] << 16 | (size_t)h[6] << 8 | h[7];
	if (len > SIGNER_MSG_MAX || !(*p = malloc(len ? len : 1)))
		return -1;
	if (io_all(fd, *p, len, false, deadline) < 0) {
		free(*p);
		*p = NULL;
		return -1;
	}
	*n = len;
	return 0;
}

/* ---- the client, in the network-facing process ---- */

struct signer {
	int fd;
	pid_t pid;
	unsigned timeout_ms;
	pthread_mutex_t lock; /* one request on the channel at a time */
	bool broken;          /* under lock: the channel is out of step or closed */
	bool reaped;
	struct ca *ca;
	struct pai *pai; /* NULL: no Matter PAI configured */
	struct secrets *authid;
};

static int remote_issue(void *ctx, const struct cert_request *rq, uint8_t **der, size_t *len);
static int remote_crl(void *ctx, const struct crl_request *rq, uint8_t **der, size_t *len);

static uint64_t deadline_of(const struct signer *s)
{
	return now_ms_monotonic() + s->timeout_ms;
}

/* Marks the channel broken; a signer that did not answer in time is killed, so the
 * supervisor loop (main_claimd.c) sees it end. Called with the lock held. */
static void broken(struct signer *s, const char *what, bool timed_out)
{
	if (!s->broken)
		log_error("signer (pid %d): %s", (int)s->pid,
		          timed_out ? "no answer in time: killing it" : what);
	s->broken = true;
	if (timed_out && !s->reaped)
		kill(s->pid, SIGKILL);
}

/*
 * One round trip: SIGNER_OK with the reply's payload (the caller frees it),
 * SIGNER_FAILED when the signer refused, SIGNER_DOWN when it could not be asked.
 */
static int rpc(struct signer *s, enum op op, const struct wr *req, uint8_t **rep, size_t *replen)
{
	uint64_t deadline;
	struct timespec ts;
	uint32_t code = 0;
	int rc = SIGNER_DOWN;

	*rep = NULL;
	*replen = 0;
	if (req->bad)
		return SIGNER_FAILED;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += s->timeout_ms / 1000;
	if (pthread_mutex_clocklock(&s->lock, CLOCK_MONOTONIC, &ts) != 0) {
		log_error("signer (pid %d): busy for longer than the timeout", (int)s->pid);
		return SIGNER_DOWN;
	}
	/* The signer's own time starts when this request is its only one: a wait for the
	 * lock behind other requests is not the signer failing to answer. */
	deadline = deadline_of(s);
	if (s->broken)
		goto out;
	if (send_msg(s->fd, op, req, deadline) < 0 ||
	    recv_msg(s->fd, &code, rep, replen, deadline) < 0) {
		broken(s, "the channel closed: the signer has ended",
		       now_ms_monotonic() >= deadline);
		goto out;
	}
	rc = code == 0 ? SIGNER_OK : SIGNER_FAILED;
out:
	pthread_mutex_unlock(&s->lock);
	if (rc != SIGNER_OK) {
		free(*rep);
		*rep = NULL;
		*replen = 0;
	}
	return rc;
}

/* The hello: the signer's public facts, or its message why it could not start. */
static int read_hello(struct signer *s, char *err, size_t errsz)
{
	uint8_t *p = NULL, keys[64];
	size_t n = 0;
	uint32_t code = 0;
	char *type = NULL, *chain = NULL, *leaf = NULL, *pai = NULL, *dac = NULL;
	uint32_t has_pai = 0;
	int rc = -1;

	if (recv_msg(s->fd, &code, &p, &n, deadline_of(s)) < 0) {
		snprintf(err, errsz,
		         "signer: no hello within signer.timeout_seconds (see its log)");
		goto out;
	}
	struct rd r = {p, n, false};
	if (code != 0) {
		char *msg = get_cstr(&r, 4096);
		snprintf(err, errsz, "%s", msg ? msg : "signer: could not start");
		free(msg);
		goto out;
	}
	type = get_cstr(&r, 32);
	chain = get_cstr(&r, SIGNER_MSG_MAX);
	leaf = get_cstr(&r, SIGNER_MSG_MAX);
	get(&r, keys, sizeof(keys));
	has_pai = get_u32(&r);
	if (has_pai) {
		pai = get_cstr(&r, SIGNER_MSG_MAX);
		dac = get_cstr(&r, SIGNER_MSG_MAX);
	}
	if (!rd_done(&r)) {
		snprintf(err, errsz, "signer: malformed hello");
		goto out;
	}
	struct ca_remote remote = {remote_issue, remote_crl, s};
	if (!(s->ca = ca_from_remote(chain, leaf, type, &remote, err, errsz)))
		goto out;
	if (has_pai && !(s->pai = pai_from_remote(pai, dac, &remote, err, errsz)))
		goto out;
	if (!(s->authid = secrets_authid_only(keys, keys + 32))) {
		snprintf(err, errsz, "signer: cannot allocate locked memory");
		goto out;
	}
	rc = 0;
out:
	secure_wipe(keys, sizeof(keys));
	if (p)
		secure_wipe(p, n);
	free(p);
	free(type);
	free(chain);
	free(leaf);
	free(pai);
	free(dac);
	return rc;
}

struct signer *signer_start(const char *exe, const struct claimd_config *cfg, char *err,
                            size_t errsz)
{
	struct signer *s = calloc(1, sizeof(*s));
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none;
	int sv[2] = {-1, -1};
	char *argv[] = {"claimd-signer", "--signer", cfg->file, NULL};

	if (!s || pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s);
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	s->fd = -1;
	s->pid = -1;
	s->timeout_ms = cfg->signer_timeout * 1000;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errsz, "signer: socketpair: %s", strerror(errno));
		goto fail;
	}
	s->fd = sv[0];
	/* dup2 clears close-on-exec on the signer's end only; every other descriptor of
	 * this process is closed by the signer itself as its first act. */
	if (posix_spawn_file_actions_init(&fa) != 0) {
		snprintf(err, errsz, "out of memory");
		goto fail;
	}
	posix_spawn_file_actions_adddup2(&fa, sv[1], SIGNER_FD);
	/* Not the signal mask of the thread that asks (a reload runs with the signals
	 * the main loop waits for blocked). */
	sigemptyset(&none);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
	int e = posix_spawn(&s->pid, exe, &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	close(sv[1]);
	sv[1] = -1;
	if (e != 0) {
		s->pid = -1;
		snprintf(err, errsz, "signer: cannot run %s: %s (is /proc mounted?)", exe,
		         strerror(e));
		goto fail;
	}
	if (read_hello(s, err, errsz) < 0)
		goto fail;
	return s;
fail:
	if (sv[1] >= 0)
		close(sv[1]);
	signer_free(s);
	return NULL;
}

void signer_free(struct signer *s)
{
	int st;

	if (!s)
		return;
	if (s->fd >= 0)
		close(s->fd);
	/* The signer exits on end-of-file; one that does not within the timeout is killed. */
	if (s->pid > 0 && !s->reaped) {
		uint64_t deadline = deadline_of(s);
		while (waitpid(s->pid, &st, WNOHANG) == 0) {
			if (now_ms_monotonic() >= deadline) {
				kill(s->pid, SIGKILL);
				waitpid(s->pid, &st, 0);
				break;
			}
			usleep(2000);
		}
	}
	ca_free(s->ca);
	pai_free(s->pai);
	secrets_free(s->authid);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

pid_t signer_pid(const struct signer *s)
{
	return s->pid;
}

struct ca *signer_ca(struct signer *s)
{
	return s->ca;
}

struct pai *signer_pai(struct signer *s)
{
	return s->pai;
}

const struct secrets *signer_secrets(const struct signer *s)
{
	return s->authid;
}

bool signer_alive(struct signer *s)
{
	pthread_mutex_lock(&s->lock);
	bool ok = !s->broken;
	pthread_mutex_unlock(&s->lock);
	return ok;
}

bool signer_reap(struct signer *s, int *status)
{
	pthread_mutex_lock(&s->lock);
	bool ended = !s->reaped && waitpid(s->pid, status, WNOHANG) == s->pid;
	if (ended) {
		s->reaped = true;
		s->broken = true;
	}
	pthread_mutex_unlock(&s->lock);
	return ended;
}

static int remote_issue(void *ctx, const struct cert_request *rq, uint8_t **der, size_t *len)
{
	struct wr w = {0};
	size_t cn = strlen(rq->cn), vid = strlen(rq->vendor_id), pid = strlen(rq->product_id);

	put_u32(&w, (uint32_t)rq->profile);
	put_i64(&w, rq->not_before);
	put_i64(&w, rq->not_after);
	put(&w, rq->serial, sizeof(rq->serial));
	put_str(&w, rq->cn, cn);
	put_str(&w, rq->vendor_id, vid);
	put_str(&w, rq->product_id, pid);
	put_str(&w, rq->spki, rq->spki_len);
	if (cn > NODE_ID_MAX || vid > MATTER_ID_LEN || pid > MATTER_ID_LEN ||
	    rq->spki_len > SPKI_MAX)
		w.bad = true;
	int rc = rpc(ctx, OP_ISSUE, &w, der, len);
	free(w.p);
	return rc;
}

static int remote_crl(void *ctx, const struct crl_request *rq, uint8_t **der, size_t *len)
{
	struct wr w = {0};

	put_i64(&w, rq->number);
	put_i64(&w, rq->this_update);
	put_i64(&w, rq->next_update);
	put_u32(&w, rq->n > UINT32_MAX ? UINT32_MAX : (uint32_t)rq->n);
	for (size_t i = 0; i < rq->n && !w.bad; i++) {
		if (strlen(rq->e[i].serial) != SERIAL_HEX_LEN)
			w.bad = true;
		put(&w, rq->e[i].serial, SERIAL_HEX_LEN);
		put_i64(&w, rq->e[i].revoked_at);
		put_i64(&w, rq->e[i].reason);
	}
	if (w.bad)
		log_error("signer: a CRL of %zu entries does not fit one message", rq->n);
	int rc = rpc(ctx, OP_CRL, &w, der, len);
	free(w.p);
	return rc;
}

int signer_check(struct signer *s, const char mac[MAC_LEN + 1],
                 const uint8_t sealed[SEALED_EFUSE_BYTES], const char *challenge,
                 const uint8_t response[HMAC_SHA512_BYTES], enum signer_verdict *v)
{
	struct wr w = {0};
	uint8_t *rep = NULL;
	size_t n = 0;

	if (strlen(challenge) != CHALLENGE_HEX)
		return SIGNER_FAILED;
	put(&w, mac, MAC_LEN);
	put(&w, sealed, SEALED_EFUSE_BYTES);
	put(&w, challenge, CHALLENGE_HEX);
	put(&w, response, HMAC_SHA512_BYTES);
	int rc = rpc(s, OP_CHECK, &w, &rep, &n);
	free(w.p);
	if (rc == SIGNER_OK && (n != 1 || rep[0] > SIGNER_UNOPENABLE))
		rc = SIGNER_FAILED;
	if (rc == SIGNER_OK)
		*v = (enum signer_verdict)rep[0];
	free(rep);
	return rc;
}

int signer_seal(struct signer *s, const char mac[MAC_LEN + 1], const uint8_t key[EFUSE_KEY_BYTES],
                uint8_t sealed[SEALED_EFUSE_BYTES], uint8_t tag[EFUSE_TAG_BYTES])
{
	struct wr w = {0};
	uint8_t *rep = NULL;
	size_t n = 0;

	put(&w, mac, MAC_LEN);
	put(&w, key, EFUSE_KEY_BYTES);
	int rc = rpc(s, OP_SEAL, &w, &rep, &n);
	secure_wipe(w.p, w.n);
	free(w.p);
	if (rc == SIGNER_OK && n != SEALED_EFUSE_BYTES + EFUSE_TAG_BYTES)
		rc = SIGNER_FAILED;
	if (rc == SIGNER_OK) {
		memcpy(sealed, rep, SEALED_EFUSE_BYTES);
		memcpy(tag, rep + SEALED_EFUSE_BYTES, EFUSE_TAG_BYTES);
	}
	free(rep);
	return rc;
}

/* ---- the signer process ---- */

/* Slack for clocks and queueing between claimd's "now" and the signer's, seconds. */
#define CLOCK_SLACK 300

/*
 * What claimd's own policy asks for (claim.c, revocation.c), checked again here so that
 * a compromised network process cannot have a long-lived certificate or CRL signed:
 * a certificate starts between an hour (the backdating) before now and now, and lasts
 * at most validity_days; a CRL's thisUpdate is now, its nextUpdate at most crl_hours
 * later, its reasons RFC 5280 codes, and its number never below one already signed.
 */
static bool validity_ok(const struct signer_keys *k, const struct cert_request *rq)
{
	int64_t now = k->now ? k->now : now_unix();
	bool ok = rq->not_before >= now - 3600 - CLOCK_SLACK &&
	          rq->not_before <= now + CLOCK_SLACK && rq->not_after > rq->not_before &&
	          rq->not_after <= now + (int64_t)k->validity_days * 86400 + CLOCK_SLACK;
	if (!ok)
		log_error("signer: validity %lld..%lld is outside policy (now %lld, %u days)",
		          (long long)rq->not_before, (long long)rq->not_after, (long long)now,
		          k->validity_days);
	return ok;
}

static bool crl_ok(struct signer_keys *k, const struct crl_request *rq)
{
	int64_t now = k->now ? k->now : now_unix();
	bool ok = rq->this_update >= now - CLOCK_SLACK && rq->this_update <= now + CLOCK_SLACK &&
	          rq->next_update > rq->this_update &&
	          rq->next_update - rq->this_update <= (int64_t)k->crl_hours * 3600 + CLOCK_SLACK &&
	          rq->number >= 1 && rq->number >= k->crl_number;
	for (size_t i = 0; ok && i < rq->n; i++)
		ok = rq->e[i].reason >= 0 && rq->e[i].reason <= 10 && rq->e[i].reason != 7;
	if (!ok) {
		log_error("signer: CRL number %lld, %lld..%lld is outside policy (now %lld)",
		          (long long)rq->number, (long long)rq->this_update,
		          (long long)rq->next_update, (long long)now);
		return false;
	}
	k->crl_number = rq->number;
	return true;
}

/* A DAC's product id is one matter.product_ids allows (none listed: any). */
static bool product_ok(const struct signer_keys *k, const char *pid)
{
	if (!k->product_ids || !k->product_ids[0])
		return true;
	for (char *const *p = k->product_ids; *p; p++)
		if (pid && strcmp(*p, pid) == 0)
			return true;
	log_error("signer: product id %s is not in matter.product_ids", pid ? pid : "(none)");
	return false;
}

static int serve_issue(const struct signer_keys *k, struct rd *r, struct wr *out)
{
	struct cert_request rq = {0};
	uint8_t *der = NULL;
	size_t len = 0;
	char *cn, *vid, *pid;
	int rc = -1;

	rq.profile = (enum cert_profile)get_u32(r);
	rq.not_before = get_i64(r);
	rq.not_after = get_i64(r);
	get(r, rq.serial, sizeof(rq.serial));
	rq.cn = cn = get_cstr(r, NODE_ID_MAX);
	rq.vendor_id = vid = get_cstr(r, MATTER_ID_LEN);
	rq.product_id = pid = get_cstr(r, MATTER_ID_LEN);
	rq.spki = get_str(r, SPKI_MAX, &rq.spki_len);
	/* Each profile has its key; ca_issue() and pai_sign() check the rest. */
	if (!rd_done(r) || !validity_ok(k, &rq))
		rc = -1;
	else if (rq.profile == CERT_PROFILE_MATTER_DAC)
		rc =
		    k->pai && product_ok(k, rq.product_id) ? pai_sign(k->pai, &rq, &der, &len) : -1;
	else
		rc = ca_issue(k->ca, &rq, &der, &len);
	if (rc == 0)
		put(out, der, len);
	free(der);
	free(cn);
	free(vid);
	free(pid);
	return rc < 0 ? -1 : 0;
}

static int serve_crl(struct signer_keys *k, struct rd *r, struct wr *out)
{
	struct crl_request rq = {0};
	struct revoked_entry *e = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	int rc = -1;

	rq.number = get_i64(r);
	rq.this_update = get_i64(r);
	rq.next_update = get_i64(r);
	rq.n = get_u32(r);
	/* The count must match the payload before anything is allocated for it. */
	if (r->bad || rq.n != r->n / CRL_ENTRY_LEN || r->n % CRL_ENTRY_LEN)
		goto out;
	if (rq.n && !(e = calloc(rq.n, sizeof(*e))))
		goto out;
	for (size_t i = 0; i < rq.n; i++) {
		get(r, e[i].serial, SERIAL_HEX_LEN);
		e[i].serial[SERIAL_HEX_LEN] = '\0';
		e[i].revoked_at = get_i64(r);
		e[i].reason = get_i64(r);
	}
	rq.e = e;
	if (rd_done(r) && crl_ok(k, &rq) &&
	    ca_crl_sign(k->ca, rq.number, rq.e, rq.n, rq.this_update, rq.next_update, &der, &len) ==
	        0) {
		put(out, der, len);
		rc = 0;
	}
out:
	free(der);
	free(e);
	return rc;
}

static int serve_check(const struct signer_keys *k, struct rd *r, struct wr *out)
{
	char mac[MAC_LEN + 1], challenge[CHALLENGE_HEX];
	uint8_t sealed[SEALED_EFUSE_BYTES], response[HMAC_SHA512_BYTES];
	uint8_t key[EFUSE_KEY_BYTES], expect[HMAC_SHA512_BYTES];
	uint8_t verdict = SIGNER_UNOPENABLE;

	get(r, mac, MAC_LEN);
	mac[MAC_LEN] = '\0';
	get(r, sealed, sizeof(sealed));
	get(r, challenge, sizeof(challenge));
	get(r, response, sizeof(response));
	if (!rd_done(r) || !mac_ok(mac))
		return -1;
	if (efuse_open(k->secrets, mac, sealed, sizeof(sealed), key)) {
		secure_hmac_sha512(expect, key, sizeof(key), challenge, sizeof(challenge));
		verdict =
		    secure_equal(expect, response, sizeof(expect)) ? SIGNER_RIGHT : SIGNER_WRONG;
	}
	secure_wipe(key, sizeof(key));
	secure_wipe(expect, sizeof(expect));
	put(out, &verdict, 1);
	return 0;
}

static int serve_seal(const struct signer_keys *k, struct rd *r, struct wr *out)
{
	char mac[MAC_LEN + 1];
	uint8_t key[EFUSE_KEY_BYTES], sealed[SEALED_EFUSE_BYTES], tag[EFUSE_TAG_BYTES];

	get(r, mac, MAC_LEN);
	mac[MAC_LEN] = '\0';
	get(r, key, sizeof(key));
	if (!rd_done(r) || !mac_ok(mac)) {
		secure_wipe(key, sizeof(key));
		return -1;
	}
	efuse_seal(k->secrets, mac, key, sealed);
	efuse_tag(k->secrets, mac, key, tag);
	secure_wipe(key, sizeof(key));
	put(out, sealed, sizeof(sealed));
	put(out, tag, sizeof(tag));
	return 0;
}

int signer_answer(struct signer_keys *k, uint32_t op, const uint8_t *p, size_t n, uint8_t **out,
                  size_t *outn)
{
	struct rd r = {p, n, false};
	struct wr w = {0};
	int rc = -1;

	switch (op) {
	case OP_ISSUE:
		rc = serve_issue(k, &r, &w);
		break;
	case OP_CRL:
		rc = serve_crl(k, &r, &w);
		break;
	case OP_CHECK:
		rc = serve_check(k, &r, &w);
		break;
	case OP_SEAL:
		rc = serve_seal(k, &r, &w);
		break;
	default:
		log_error("signer: unknown operation %u", op);
		break;
	}
	if (w.bad) /* the reply did not fit or memory ran out: not sent half-made */
		rc = -1;
	if (rc < 0) {
		if (w.p)
			secure_wipe(w.p, w.n);
		free(w.p);
		w = (struct wr){0};
	}
	*out = w.p;
	*outn = w.n;
	return rc < 0 ? -1 : 0;
}

/* Answers requests until end-of-file (0) or a broken frame (1). */
static int serve(struct signer_keys *k)
{
	for (;;) {
		uint8_t *p = NULL;
		size_t n = 0;
		uint32_t op = 0;
		struct wr out = {0};

		/* End-of-file: claimd closed the channel (a reload, a stop, or it died). */
		if (recv_msg(SIGNER_FD, &op, &p, &n, 0) < 0)
			return 0;
		int rc = signer_answer(k, op, p, n, &out.p, &out.n);
		secure_wipe(p, n);
		free(p);
		int sent = send_msg(SIGNER_FD, rc < 0 ? 1 : 0, &out, 0);
		if (out.p)
			secure_wipe(out.p, out.n);
		free(out.p);
		if (sent < 0)
			return 1;
	}
}

static void hello_failed(const char *msg)
{
	struct wr w = {0};
	put_str(&w, msg, strlen(msg));
	send_msg(SIGNER_FD, 1, &w, 0);
	free(w.p);
}

int signer_main(const char *config)
{
	struct claimd_config *cfg = NULL;
	struct signer_keys k = {0};
	struct wr w = {0};
	uint8_t keys[64];
	char err[1024];
	int rc = 1;

	/* Nothing of the parent's but stdio and the channel: no listening socket, no
	 * database connection, whatever the parent forgot to mark close-on-exec. */
	if (close_range(SIGNER_FD + 1, ~0U, 0) < 0) {
		/* An old kernel, or a container profile that refuses close_range(2): one by one. */
		struct rlimit rl = {1024, 1024};
		getrlimit(RLIMIT_NOFILE, &rl);
		for (rlim_t fd = SIGNER_FD + 1; fd < rl.rlim_cur && fd < 1048576; fd++)
			close((int)fd);
	}
	signal(SIGPIPE, SIG_IGN);
	/* claimd's to handle: a stop (systemd signals the whole group, a terminal's Ctrl-C
	 * the foreground group) must let claimd drain with its signer, which exits when
	 * claimd closes the channel. */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	prctl(PR_SET_NAME, "claimd-signer", 0, 0, 0); /* not "exe", for ps and top */
	if (secure_init() < 0) {
		hello_failed("signer: cannot initialise libsodium");
		return 1;
	}
	if (!(cfg = config_load(config, err, sizeof(err))))
		goto fail;
	k.validity_days = cfg->validity_days;
	k.crl_hours = cfg->crl_hours;
	k.product_ids = cfg->matter_product_ids;
	log_set_level((enum log_level)log_level_parse(cfg->log_level));
	log_set_format((enum log_format)log_format_parse(cfg->log_format));
	if (!(k.secrets = secrets_load(cfg->secrets_key_file, err, sizeof(err))))
		goto fail;
	if (!(k.ca = ca_load(cfg->ca_certificate, cfg->ca_key, cfg->ca_chain, err, sizeof(err))))
		goto fail;
	if (ca_set_crl_url(k.ca, cfg->ca_crl_url, err, sizeof(err)) < 0)
		goto fail;
	if (cfg->matter_pai_certificate[0] &&
	    !(k.pai = pai_load(cfg->matter_pai_certificate, cfg->matter_pai_key,
	                       cfg->matter_vendor_id, err, sizeof(err))))
		goto fail;
	bool token = ca_key_in_token(k.ca) || (k.pai && pai_key_in_token(k.pai));
	if (sandbox_enter(cfg->signer_user, token, err, sizeof(err)) < 0)
		goto fail;
	const char *chain = ca_chain_pem(k.ca), *leaf = ca_largest_leaf_pem(k.ca),
	           *type = ca_key_type(k.ca);
	put_str(&w, type, strlen(type));
	put_str(&w, chain, strlen(chain));
	put_str(&w, leaf, strlen(leaf));
	secrets_authid_keys(k.secrets, keys, keys + 32);
	put(&w, keys, sizeof(keys));
	secure_wipe(keys, sizeof(keys));
	put_u32(&w, k.pai ? 1 : 0);
	if (k.pai) {
		put_str(&w, pai_pem(k.pai), strlen(pai_pem(k.pai)));
		put_str(&w, pai_largest_dac_pem(k.pai), strlen(pai_largest_dac_pem(k.pai)));
	}
	int sent = send_msg(SIGNER_FD, 0, &w, 0);
	secure_wipe(w.p, w.n);
	free(w.p);
	if (sent == 0)
		rc = serve(&k);
	goto out;
fail:
	hello_failed(err); /* claimd reports it: at start-up, with -t, or refusing a reload */
out:
	ca_free(k.ca);
	pai_free(k.pai);
	secrets_free(k.secrets);
	config_free(cfg);
	return rc;
}
