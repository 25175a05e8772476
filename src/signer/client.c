/*
 * The signer's client (signer.h), in the network-facing process: starts the signer,
 * reads its hello, and asks it one request at a time under a lock, never longer than
 * signer.timeout_seconds. The channel is a socketpair to a child today; signer_start()
 * (with read_hello()), rpc() and signer_free() are the only functions that know that.
 * No OpenSSL here (x509/ builds and signs) and no libsodium (lib/secure.c).
 */
#include "signer/signer.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "signer/server.h"

extern char **environ;

struct signer {
	int fd;
	pid_t pid;
	unsigned timeout_ms;
	pthread_mutex_t lock; /* one request on the channel at a time */
	bool broken;          /* under lock: the channel is out of step or closed */
	bool reaped;
	struct ca *ca;   /* the public side only (ca_public()) */
	struct pai *pai; /* the public side only (pai_public()); NULL: no Matter PAI */
	struct secrets *authid;
};

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
static int rpc(struct signer *s, enum signer_op op, const struct wire_out *req, uint8_t **rep,
               size_t *replen)
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
	if (wire_send(s->fd, op, req, deadline) < 0 ||
	    wire_recv(s->fd, &code, rep, replen, deadline) < 0) {
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
	struct signer_hello h = {0};
	uint8_t *p = NULL;
	size_t n = 0;
	uint32_t code = 0;
	int rc = -1;

	if (wire_recv(s->fd, &code, &p, &n, deadline_of(s)) < 0) {
		snprintf(err, errsz,
		         "signer: no hello within signer.timeout_seconds (see its log)");
		goto out;
	}
	struct wire_in r = {p, n, false};
	if (code != 0) {
		char *msg = wire_get_cstr(&r, 4096);
		snprintf(err, errsz, "%s", msg ? msg : "signer: could not start");
		free(msg);
		goto out;
	}
	if (!wire_get_hello(&r, &h)) {
		snprintf(err, errsz, "signer: malformed hello");
		goto out;
	}
	if (!(s->ca = ca_public(h.chain, h.largest_leaf, h.key_type, err, errsz)))
		goto out;
	if (h.pai && !(s->pai = pai_public(h.pai, h.largest_dac, err, errsz)))
		goto out;
	if (!(s->authid = secrets_authid_only(h.authid_keys, h.authid_keys + 32))) {
		snprintf(err, errsz, "signer: cannot allocate locked memory");
		goto out;
	}
	rc = 0;
out:
	signer_hello_clear(&h);
	if (p)
		secure_wipe(p, n);
	free(p);
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

const struct ca *signer_ca(const struct signer *s)
{
	return s->ca;
}

const struct pai *signer_pai(const struct signer *s)
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

int signer_issue(struct signer *s, const struct cert_request *rq, struct issued *out)
{
	struct wire_out w = {0};
	uint8_t *der = NULL;
	size_t len = 0;

	memset(out, 0, sizeof(*out));
	wire_put_issue(&w, rq);
	int rc = rpc(s, SIGNER_OP_ISSUE, &w, &der, &len);
	free(w.p);
	if (rc == SIGNER_OK && issued_from_der(rq, der, len, out) < 0)
		rc = SIGNER_FAILED;
	free(der);
	return rc;
}

int signer_crl(struct signer *s, const struct crl_request *rq, uint8_t **der, size_t *len)
{
	struct wire_out w = {0};

	wire_put_crl(&w, rq);
	if (w.bad)
		log_error("signer: a CRL of %zu entries does not fit one message", rq->n);
	int rc = rpc(s, SIGNER_OP_CRL, &w, der, len);
	free(w.p);
	return rc;
}

int signer_check(struct signer *s, const char mac[MAC_LEN + 1],
                 const uint8_t sealed[SEALED_EFUSE_BYTES], const char *challenge,
                 const uint8_t response[HMAC_SHA512_BYTES], enum signer_verdict *v)
{
	struct wire_out w = {0};
	uint8_t *rep = NULL;
	size_t n = 0;

	wire_put_check(&w, mac, sealed, challenge, response);
	int rc = rpc(s, SIGNER_OP_CHECK, &w, &rep, &n);
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
	struct wire_out w = {0};
	uint8_t *rep = NULL;
	size_t n = 0;

	wire_put_seal(&w, mac, key);
	int rc = rpc(s, SIGNER_OP_SEAL, &w, &rep, &n);
	wire_out_clear(&w);
	if (rc == SIGNER_OK && n != SEALED_EFUSE_BYTES + EFUSE_TAG_BYTES)
		rc = SIGNER_FAILED;
	if (rc == SIGNER_OK) {
		memcpy(sealed, rep, SEALED_EFUSE_BYTES);
		memcpy(tag, rep + SEALED_EFUSE_BYTES, EFUSE_TAG_BYTES);
	}
	free(rep);
	return rc;
}
