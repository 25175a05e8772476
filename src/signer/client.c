/*
 * The signer's client (signer.h), in the network-facing process: starts the signer
 * (a child on a socketpair) or connects to an external one (signer.socket), reads its
 * hello, and asks it requests, never waiting longer than signer.timeout_seconds for a
 * reply; a thread pings it so that readiness knows a signer that stopped answering while
 * nobody asked. Requests are pipelined: a worker writes its frame as soon as no other
 * frame is being written and takes a ticket; the signer answers frames in the order they
 * came, so replies are read in ticket order, each by the thread that holds its ticket.
 * The signer is never woken for one request while the next already waits, and a worker
 * that waits for its reply holds no lock. No OpenSSL here (x509/ builds and signs) and
 * no libsodium (lib/secure.c). spawn_signer(), connect_signer(), read_hello(), rpc(),
 * take_turn(), ping() and signer_free() are the only functions that know the transport.
 */
#include "signer/signer.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

extern char **environ;

struct signer {
	int fd;
	pid_t pid; /* -1: an external signer (socket, below) */
	char *socket;
	unsigned timeout_ms;
	pthread_mutex_t send_lock;   /* one frame written at a time; taken before lock */
	pthread_mutex_t lock;        /* what follows, up to last_answer */
	pthread_cond_t turn;         /* the pinger's: serving moved, a reader left, or broke */
	struct turn_waiter *waiting; /* requests waiting in take_turn(), each woken alone */
	uint64_t next_ticket;        /* the ticket of the next frame written */
	uint64_t serving;            /* the ticket whose reply is read next */
	bool reading;                /* a thread is reading serving's reply */
	unsigned waiters;            /* threads between writing a frame and leaving */
	bool broken;                 /* the channel is out of step or closed */
	bool pong_due;               /* a ping's reply, ticket pong_ticket, is unread */
	uint64_t pong_ticket;
	/* Tickets whose requester gave up waiting for its turn: their replies are read and
	 * dropped by whoever is next. A few at most (each was a waiting worker). */
	uint64_t *abandoned;
	size_t n_abandoned, cap_abandoned;
	bool reaped;
	atomic_bool down; /* a copy of broken that readiness reads without the lock */
	atomic_uint refs;
	_Atomic uint64_t last_answer; /* monotonic ms of the last reply from the signer */
	/* The pinger: its thread, and the stop it waits on. */
	pthread_t pinger;
	bool pinging;
	pthread_mutex_t stop_lock;
	pthread_cond_t stop_cond;
	bool stop;
	struct ca *ca;   /* the public side only (ca_public()) */
	struct pai *pai; /* the public side only (pai_public()); NULL: no Matter PAI */
	struct secrets *authid;
};

/* A request waiting for its reply's turn (take_turn()), on its own condition, so that
 * a reply read wakes the one thread that can act next, not every waiting one. */
struct turn_waiter {
	uint64_t ticket;
	pthread_cond_t cv;
	struct turn_waiter *next;
};

/*
 * Wakes, after serving, reading or broken changed, the threads that may now act: with
 * @p all (the channel broke) every one; else, when no reply is being read, the request
 * whose reply is next, or if it is not waiting, the waiting request with the lowest
 * ticket (it drops a reply nobody keeps, or waits again); and the pinger. Called with
 * the lock held.
 */
static void wake_turn(struct signer *s, bool all)
{
	struct turn_waiter *lowest = NULL;

	pthread_cond_broadcast(&s->turn);
	for (struct turn_waiter *w = s->waiting; w; w = w->next) {
		if (all)
			pthread_cond_signal(&w->cv);
		else if (w->ticket == s->serving) {
			lowest = w;
			break;
		} else if (!lowest || w->ticket < lowest->ticket)
			lowest = w;
	}
	if (!all && !s->reading && lowest)
		pthread_cond_signal(&lowest->cv);
}

/* How long the pinger holds the channel for a ping's reply before it leaves it for
 * the next request to read (so that a request still meets a silent signer with its
 * own deadline and kill), milliseconds. */
#define PING_HOLD_MS 50

static uint64_t deadline_of(const struct signer *s)
{
	return now_ms_monotonic() + s->timeout_ms;
}

/* Marks the channel broken and wakes every thread waiting on it; a signer that did not
 * answer in time is killed, so the supervisor loop (main_claimd.c) sees it end. Called
 * with the lock held. */
static void broken(struct signer *s, const char *what, bool timed_out)
{
	if (!s->broken)
		log_error("signer (pid %d): %s", (int)s->pid,
		          timed_out ? "no answer in time: killing it" : what);
	s->broken = true;
	atomic_store(&s->down, true);
	if (timed_out && !s->reaped && s->pid > 0)
		kill(s->pid, SIGKILL);
	/* An external signer is not ours to kill: the channel is shut (a thread blocked on
	 * it returns), closed by reconnect() once nobody uses it, and the pinger connects
	 * again. */
	if (s->pid <= 0 && s->fd >= 0)
		shutdown(s->fd, SHUT_RDWR);
	wake_turn(s, true);
}

/*
 * Reads the reply of ticket s->serving, whose turn it is, before @p deadline (monotonic
 * ms). Called with the lock held and s->reading false; the lock is let go while reading.
 * 0 with the frame (the caller frees *@p p), or -1 with the channel broken.
 */
static int read_turn(struct signer *s, uint64_t deadline, uint32_t *code, uint8_t **p, size_t *n)
{
	int fd = s->fd;

	s->reading = true;
	pthread_mutex_unlock(&s->lock);
	int r = wire_recv(fd, code, p, n, deadline);
	pthread_mutex_lock(&s->lock);
	s->reading = false;
	if (r < 0)
		broken(s, "the channel closed: the signer has ended",
		       now_ms_monotonic() >= deadline);
	else {
		s->serving++;
		atomic_store(&s->last_answer, now_ms_monotonic());
	}
	wake_turn(s, false);
	return r;
}

/* Whether the reply next in line, s->serving's, is nobody's to keep (a ping's, or an
 * abandoned request's). Called with the lock held. */
static bool next_is_dropped(const struct signer *s)
{
	if (s->pong_due && s->serving == s->pong_ticket)
		return true;
	for (size_t i = 0; i < s->n_abandoned; i++)
		if (s->abandoned[i] == s->serving)
			return true;
	return false;
}

/* Reads and drops the reply next in line (next_is_dropped()) within @p deadline. Called
 * with the lock held and s->reading false. */
static void drop_turn(struct signer *s, uint64_t deadline)
{
	uint64_t t = s->serving;
	uint8_t *p = NULL;
	size_t n = 0;
	uint32_t code = 0;

	if (read_turn(s, deadline, &code, &p, &n) == 0) {
		if (s->pong_due && t == s->pong_ticket)
			s->pong_due = false;
		for (size_t i = 0; i < s->n_abandoned; i++)
			if (s->abandoned[i] == t)
				s->abandoned[i] = s->abandoned[--s->n_abandoned];
	}
	free(p);
}

/* Leaves ticket @p t's reply for whoever is next to drop (take_turn()): false when the
 * list cannot grow (out of memory), and the caller must then wait for it. Called with
 * the lock held. */
static bool abandon(struct signer *s, uint64_t t)
{
	if (s->n_abandoned == s->cap_abandoned) {
		size_t cap = s->cap_abandoned ? 2 * s->cap_abandoned : 8;
		uint64_t *a = realloc(s->abandoned, cap * sizeof(*a));
		if (!a)
			return false;
		s->abandoned = a;
		s->cap_abandoned = cap;
	}
	s->abandoned[s->n_abandoned++] = t;
	return true;
}

/* Whether the reply next in line has begun to arrive, so that reading it takes no wait
 * on the signer. Called with the lock held and s->reading false. */
static bool next_arrived(const struct signer *s)
{
	struct pollfd pf = {s->fd, POLLIN, 0};

	return poll(&pf, 1, 0) == 1;
}

/*
 * Waits (on @p w, its own condition) until ticket @p t's reply is next and reads it: 0 with the
 * frame, -1 when the channel broke first, -2 when its turn did not come by @p give_up (monotonic
 * ms): the ticket is then abandoned, its reply left for whoever is next to drop, and the signer is
 * not blamed. Replies nobody keeps (a ping's its pinger left, an abandoned one) are read on the
 * way, each with the timeout, so that a silent signer meets the first request behind them; after @p
 * give_up only those already arriving, so that a request behind many of them does not wait for them
 * all (one begun before @p give_up may end up to a timeout after it). The signer's own time for a
 * request starts when its reply is next: a wait behind other replies is not the signer failing to
 * answer; but no request waits for its turn much longer than the timeout either. Called with the
 * lock held.
 */
static int wait_turn(struct signer *s, uint64_t t, uint64_t give_up, struct turn_waiter *w,
                     uint32_t *code, uint8_t **p, size_t *n)
{
	struct timespec until = {(time_t)(give_up / 1000), (long)(give_up % 1000) * 1000000L};
	bool kept = false; /* t could not be abandoned (out of memory): wait for it */

	for (;;) {
		if (s->broken)
			return -1;
		if (!s->reading && s->serving == t)
			return read_turn(s, deadline_of(s), code, p, n);
		bool over = !kept && now_ms_monotonic() >= give_up;
		if (!s->reading && next_is_dropped(s) && (!over || next_arrived(s))) {
			drop_turn(s, deadline_of(s));
			continue;
		}
		if (over) {
			if (abandon(s, t)) {
				/* the reply is now the next waiter's to drop */
				wake_turn(s, false);
				return -2;
			}
			kept = true;
			until.tv_sec += 3600; /* woken when its turn comes */
			continue;
		}
		pthread_cond_timedwait(&w->cv, &s->lock, &until);
	}
}

/* wait_turn() for ticket @p t, registered among the waiting requests meanwhile. */
static int take_turn(struct signer *s, uint64_t t, uint64_t give_up, uint32_t *code, uint8_t **p,
                     size_t *n)
{
	struct turn_waiter w = {.ticket = t, .next = s->waiting};
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&w.cv, &ca);
	pthread_condattr_destroy(&ca);
	s->waiting = &w;
	int r = wait_turn(s, t, give_up, &w, code, p, n);
	for (struct turn_waiter **q = &s->waiting; *q; q = &(*q)->next)
		if (*q == &w) {
			*q = w.next;
			break;
		}
	pthread_cond_destroy(&w.cv);
	return r;
}

/*
 * One request: SIGNER_OK with the reply's payload (the caller frees it),
 * SIGNER_FAILED when the signer refused, SIGNER_DOWN when it could not be asked.
 */
static int rpc(struct signer *s, enum signer_op op, const struct wire_out *req, uint8_t **rep,
               size_t *replen)
{
	struct timespec ts;
	uint32_t code = 0;
	uint64_t t = 0;
	int fd = -1;

	*rep = NULL;
	*replen = 0;
	if (req->bad)
		return SIGNER_FAILED;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += s->timeout_ms / 1000;
	if (pthread_mutex_clocklock(&s->send_lock, CLOCK_MONOTONIC, &ts) != 0) {
		log_error("signer (pid %d): busy for longer than the timeout", (int)s->pid);
		return SIGNER_DOWN;
	}
	pthread_mutex_lock(&s->lock);
	bool down = s->broken;
	if (!down) {
		t = s->next_ticket++;
		fd = s->fd;
		s->waiters++;
	}
	pthread_mutex_unlock(&s->lock);
	/* Written without the lock: a frame larger than the socket's buffer waits for the
	 * signer, which may first have to hand earlier replies to their readers. */
	uint64_t deadline = deadline_of(s);
	bool sent = !down && wire_send(fd, op, req, deadline) == 0;
	pthread_mutex_lock(&s->lock);
	if (!down && !sent) /* before the next frame can follow a part of this one */
		broken(s, "the channel closed: the signer has ended",
		       now_ms_monotonic() >= deadline);
	pthread_mutex_unlock(&s->send_lock);
	if (down) {
		pthread_mutex_unlock(&s->lock);
		return SIGNER_DOWN;
	}
	int r = sent ? take_turn(s, t, deadline, &code, rep, replen) : -1;
	s->waiters--;
	pthread_mutex_unlock(&s->lock);
	if (r == -2)
		log_error("signer (pid %d): busy for longer than the timeout", (int)s->pid);
	if (r < 0 || code != 0) {
		free(*rep);
		*rep = NULL;
		*replen = 0;
	}
	return r < 0 ? SIGNER_DOWN : code == 0 ? SIGNER_OK : SIGNER_FAILED;
}

/* The hello on @p fd: the signer's public facts, or its message why it could not
 * start. A reconnection (s->ca already set) only checks that the CA is the same. */
static int read_hello(struct signer *s, int fd, char *err, size_t errsz)
{
	struct signer_hello h = {0};
	uint8_t *p = NULL;
	size_t n = 0;
	uint32_t code = 0;
	int rc = -1;

	if (wire_recv(fd, &code, &p, &n, deadline_of(s)) < 0) {
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
	if (s->ca) {
		/* What this generation already serves with cannot change under it. */
		if (strcmp(h.chain, ca_chain_pem(s->ca)) != 0 ||
		    (h.pai == NULL) != (s->pai == NULL) ||
		    (h.pai && strcmp(h.pai, pai_pem(s->pai)) != 0))
			snprintf(err, errsz,
			         "signer: the signer now holds another CA or PAI: reload claimd "
			         "(SIGHUP) to take it");
		else
			rc = 0;
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

/*
 * Connects to the external signer at @p path and reads its hello, trying again for the
 * timeout while nobody listens yet (the signer's service may start at the same time).
 * The descriptor, or -1 with a message in @p err.
 */
static int connect_signer(struct signer *s, const char *path, char *err, size_t errsz)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	uint64_t deadline = deadline_of(s);
	int fd = -1;

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	for (;;) {
		fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			snprintf(err, errsz, "signer.socket: socket: %s", strerror(errno));
			return -1;
		}
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			break;
		int e = errno;
		close(fd);
		if ((e != ENOENT && e != ECONNREFUSED) || now_ms_monotonic() >= deadline) {
			snprintf(err, errsz, "signer.socket: %s: %s (is claimd --signer running?)",
			         path, strerror(e));
			return -1;
		}
		usleep(100000);
	}
	/* Two users, always: a signer of this process's own uid separates nothing. */
	struct ucred cred;
	socklen_t len = sizeof(cred);
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred) ||
	    cred.uid == geteuid()) {
		snprintf(err, errsz,
		         "signer.socket: %s: the signer runs as uid %ld, this process's own: the "
		         "signer must run as another user",
		         path, len == sizeof(cred) ? (long)cred.uid : -1L);
		close(fd);
		return -1;
	}
	if (read_hello(s, fd, err, errsz) < 0) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Runs @p exe as the signer child on a new socketpair; its end of it, or -1. */
static int spawn_signer(struct signer *s, const char *exe, const struct claimd_config *cfg,
                        char *err, size_t errsz)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none;
	int sv[2] = {-1, -1};
	char *argv[] = {"claimd-signer", "--signer-child", cfg->file, NULL};

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		snprintf(err, errsz, "signer: socketpair: %s", strerror(errno));
		return -1;
	}
	/* dup2 clears close-on-exec on the signer's end only; every other descriptor of
	 * this process is closed by the signer itself as its first act. */
	if (posix_spawn_file_actions_init(&fa) != 0) {
		snprintf(err, errsz, "out of memory");
		close(sv[0]);
		close(sv[1]);
		return -1;
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
	if (e != 0) {
		s->pid = -1;
		close(sv[0]);
		snprintf(err, errsz, "signer: cannot run %s: %s (is /proc mounted?)", exe,
		         strerror(e));
		return -1;
	}
	return sv[0];
}

/* An external signer that went away: connect again and check it is the same CA. The
 * old channel is closed once no thread uses it (else the next ping tries again). */
static void reconnect(struct signer *s)
{
	char err[512];
	int fd = connect_signer(s, s->socket, err, sizeof(err));

	if (fd < 0) {
		log_debug("%s", err);
		return;
	}
	pthread_mutex_lock(&s->send_lock);
	pthread_mutex_lock(&s->lock);
	bool idle = s->waiters == 0 && !s->reading;
	if (idle) {
		if (s->fd >= 0)
			close(s->fd);
		s->fd = fd;
		s->broken = false;
		atomic_store(&s->down, false);
		s->pong_due = false;
		s->n_abandoned = 0;
		s->next_ticket = s->serving = 0;
		atomic_store(&s->last_answer, now_ms_monotonic());
	}
	pthread_mutex_unlock(&s->lock);
	pthread_mutex_unlock(&s->send_lock);
	if (!idle) {
		close(fd);
		return;
	}
	log_info("signer: connected again to %s", s->socket);
}

/*
 * One ping: written when no frame is being written and no earlier ping's reply is
 * unread, its reply waited for PING_HOLD_MS and otherwise left for the next ping or
 * request to read (take_turn()). Never kills the signer: a stopped one is not ready,
 * and ready again when it answers.
 */
static void ping(struct signer *s)
{
	struct wire_out none = {0};
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += 1;
	if (pthread_mutex_clocklock(&s->send_lock, CLOCK_MONOTONIC, &ts) != 0)
		return; /* a request is being written: its reply counts */
	pthread_mutex_lock(&s->lock);
	bool lost = s->broken && s->socket, send = !s->broken && !s->pong_due;
	uint64_t t = s->next_ticket;
	int fd = s->fd;
	if (send)
		s->next_ticket++;
	pthread_mutex_unlock(&s->lock);
	bool sent = send && wire_send(fd, SIGNER_OP_PING, &none, deadline_of(s)) == 0;
	pthread_mutex_lock(&s->lock);
	if (send && !sent)
		broken(s, "the channel closed: the signer has ended", false);
	else if (sent) {
		s->pong_due = true;
		s->pong_ticket = t;
		wake_turn(s, false);
	}
	pthread_mutex_unlock(&s->send_lock);
	/* The reply, if it comes within the hold; replies nobody keeps that are due
	 * before it (abandoned requests') are read and dropped on the way. */
	uint64_t until = now_ms_monotonic() + PING_HOLD_MS;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_nsec += PING_HOLD_MS * 1000000L;
	ts.tv_sec += ts.tv_nsec / 1000000000L;
	ts.tv_nsec %= 1000000000L;
	while (!s->broken && s->pong_due) {
		uint64_t now = now_ms_monotonic();
		if (s->reading || !next_is_dropped(s)) {
			if (pthread_cond_timedwait(&s->turn, &s->lock, &ts) != 0)
				break;
			continue;
		}
		struct pollfd pf = {s->fd, POLLIN, 0};
		s->reading = true;
		pthread_mutex_unlock(&s->lock);
		bool ready = poll(&pf, 1, now < until ? (int)(until - now) : 0) == 1;
		pthread_mutex_lock(&s->lock);
		s->reading = false;
		wake_turn(s, false);
		if (!ready)
			break;
		drop_turn(s, deadline_of(s));
	}
	pthread_mutex_unlock(&s->lock);
	if (lost)
		reconnect(s);
}

/* The pinger: a ping every quarter of the timeout (at most every half second) until
 * signer_free() says stop. */
static void *pinger(void *arg)
{
	struct signer *s = arg;
	unsigned every = s->timeout_ms / 4 < 500 ? s->timeout_ms / 4 : 500;

	pthread_mutex_lock(&s->stop_lock);
	while (!s->stop) {
		struct timespec ts;
		clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_nsec += (long)every * 1000000L;
		ts.tv_sec += ts.tv_nsec / 1000000000L;
		ts.tv_nsec %= 1000000000L;
		pthread_cond_timedwait(&s->stop_cond, &s->stop_lock, &ts);
		if (s->stop)
			break;
		pthread_mutex_unlock(&s->stop_lock);
		ping(s);
		pthread_mutex_lock(&s->stop_lock);
	}
	pthread_mutex_unlock(&s->stop_lock);
	return NULL;
}

struct signer *signer_start(const char *exe, const struct claimd_config *cfg, char *err,
                            size_t errsz)
{
	struct signer *s = calloc(1, sizeof(*s));
	pthread_condattr_t ca;

	if (!s || pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s);
		snprintf(err, errsz, "out of memory");
		return NULL;
	}
	pthread_mutex_init(&s->send_lock, NULL);
	pthread_mutex_init(&s->stop_lock, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&s->stop_cond, &ca);
	pthread_cond_init(&s->turn, &ca);
	pthread_condattr_destroy(&ca);
	atomic_init(&s->refs, 1);
	s->fd = -1;
	s->pid = -1;
	s->timeout_ms = cfg->signer_timeout * 1000;
	if (cfg->signer_socket[0]) {
		if (!(s->socket = strdup(cfg->signer_socket))) {
			snprintf(err, errsz, "out of memory");
			goto fail;
		}
		if ((s->fd = connect_signer(s, s->socket, err, errsz)) < 0)
			goto fail;
	} else {
		if ((s->fd = spawn_signer(s, exe, cfg, err, errsz)) < 0)
			goto fail;
		if (read_hello(s, s->fd, err, errsz) < 0)
			goto fail;
	}
	atomic_store(&s->last_answer, now_ms_monotonic());
	/* The pinger starts with every signal blocked: claimd's main thread takes its
	 * signals with sigwait(), and this thread may start before it blocks them (at
	 * start-up); a signal the pinger did not block would get its default action, and
	 * a SIGTERM while the main thread drains would end the process there. */
	sigset_t all, was;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &was);
	int pc = pthread_create(&s->pinger, NULL, pinger, s);
	pthread_sigmask(SIG_SETMASK, &was, NULL);
	if (pc != 0) {
		snprintf(err, errsz, "signer: cannot start the pinger thread");
		goto fail;
	}
	s->pinging = true;
	return s;
fail:
	signer_free(s);
	return NULL;
}

struct signer *signer_ref(struct signer *s)
{
	atomic_fetch_add(&s->refs, 1);
	return s;
}

void signer_free(struct signer *s)
{
	int st;

	if (!s || atomic_fetch_sub(&s->refs, 1) != 1)
		return;
	if (s->pinging) {
		pthread_mutex_lock(&s->stop_lock);
		s->stop = true;
		pthread_cond_signal(&s->stop_cond);
		pthread_mutex_unlock(&s->stop_lock);
		pthread_join(s->pinger, NULL);
	}
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
	pthread_mutex_destroy(&s->send_lock);
	pthread_mutex_destroy(&s->stop_lock);
	pthread_cond_destroy(&s->stop_cond);
	pthread_cond_destroy(&s->turn);
	free(s->abandoned);
	free(s->socket);
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

bool signer_ready(struct signer *s)
{
	/* Not under the lock: a stopped signer's ping may hold it. */
	uint64_t last = atomic_load(&s->last_answer), now = now_ms_monotonic();
	return !atomic_load(&s->down) && (now < last || now - last <= s->timeout_ms);
}

bool signer_reap(struct signer *s, int *status)
{
	if (s->pid <= 0)
		return false; /* an external signer is no child of this process */
	pthread_mutex_lock(&s->lock);
	bool ended = !s->reaped && waitpid(s->pid, status, WNOHANG) == s->pid;
	if (ended) {
		s->reaped = true;
		s->broken = true;
		atomic_store(&s->down, true);
		wake_turn(s, true);
	}
	pthread_mutex_unlock(&s->lock);
	return ended;
}

/* An ISSUE answer (the serial the signer drew, then the certificate) into @p out. */
static int issued_of_answer(const struct cert_request *rq, const uint8_t *p, size_t n,
                            struct issued *out)
{
	/* The serial is the signer's: stored as it says, checked against the certificate. */
	struct cert_request drawn = *rq;

	if (n <= sizeof(drawn.serial))
		return SIGNER_FAILED;
	memcpy(drawn.serial, p, sizeof(drawn.serial));
	if (issued_from_der(&drawn, p + sizeof(drawn.serial), n - sizeof(drawn.serial), out) < 0)
		return SIGNER_FAILED;
	return SIGNER_OK;
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
	if (rc == SIGNER_OK)
		rc = issued_of_answer(rq, der, len, out);
	free(der);
	return rc;
}

int signer_check_issue(struct signer *s, const char mac[MAC_LEN + 1],
                       const uint8_t sealed[SEALED_EFUSE_BYTES], const char *challenge,
                       const uint8_t response[HMAC_SHA512_BYTES], const struct cert_request *rq,
                       enum signer_verdict *v, struct issued *out)
{
	struct wire_out w = {0};
	uint8_t *rep = NULL;
	size_t n = 0;

	memset(out, 0, sizeof(*out));
	wire_put_check(&w, mac, sealed, challenge, response);
	wire_put_issue(&w, rq);
	int rc = rpc(s, SIGNER_OP_CHECK_ISSUE, &w, &rep, &n);
	free(w.p);
	if (rc == SIGNER_OK &&
	    (n < 1 || rep[0] > SIGNER_UNOPENABLE || (rep[0] != SIGNER_RIGHT && n != 1)))
		rc = SIGNER_FAILED;
	if (rc == SIGNER_OK && rep[0] == SIGNER_RIGHT)
		rc = issued_of_answer(rq, rep + 1, n - 1, out);
	if (rc == SIGNER_OK)
		*v = (enum signer_verdict)rep[0];
	free(rep);
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
