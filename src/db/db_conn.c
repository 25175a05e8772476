/*
 * How claimd reaches PostgreSQL: database.url with claimd's connection defaults, one
 * host at a time within a time budget, every reply awaited with a deadline, and the
 * circuit that lets requests answer "busy" at once while the database is known not to
 * answer in time. A worker must never sit in a dead TCP connection for longer than a device
 * waits: nothing here blocks without a bound, except the COPY of an import.
 */
#include "db_internal.h"

#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"

/* While the circuit is open, one request probes the database this often. */
#define PROBE_EVERY_US 250000
/* Connects of claimctl and claimd -t (no circuit): libpq's connect_timeout advice. */
#define TOOL_CONNECT_MS 10000

struct db_circuit {
	unsigned timeout_ms;
	atomic_uint_fast64_t open_until; /* monotonic µs; 0: closed (the database answers) */
	atomic_uint_fast64_t opened_at;  /* when it last opened, for the log */
	atomic_bool probing;             /* a request is trying the database now */
	atomic_uint epoch;               /* counts openings: older connections are dropped */
	atomic_int preferred;            /* index of the host that answered last */
};

struct db_circuit *db_circuit_new(unsigned timeout_ms)
{
	struct db_circuit *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->timeout_ms = timeout_ms;
	atomic_init(&c->open_until, 0);
	atomic_init(&c->opened_at, 0);
	atomic_init(&c->probing, false);
	atomic_init(&c->epoch, 0);
	atomic_init(&c->preferred, 0);
	return c;
}

unsigned db_circuit_timeout_ms(const struct db_circuit *c)
{
	return c ? c->timeout_ms : 0;
}

void db_circuit_free(struct db_circuit *c)
{
	free(c);
}

/*
 * Options claimd sets when database.url leaves them out. The keepalives and
 * tcp_user_timeout make the kernel end a connection whose server vanished (a partition,
 * power loss) instead of keeping it for the system's default of minutes; the
 * application_name lets an operator find (and the server's timeouts reap) the sessions
 * claimd left behind.
 */
static const struct {
	const char *key, *val;
} defaults[] = {
    {"keepalives", "1"},
    {"keepalives_idle", "5"},
    {"keepalives_interval", "1"},
    {"keepalives_count", "3"},
    {"tcp_user_timeout", "2000"},
    {"connect_timeout", "2"},
    {"application_name", "claimd"},
};

/* Splits the comma list @p list (modified) into @p out; the number of items, or -1 when
 * there are more than @p max. */
static int split(char *list, char **out, int max)
{
	int n = 0;
	if (!list)
		return 0;
	for (char *p = list;;) {
		if (n == max)
			return -1;
		out[n++] = p;
		if (!(p = strchr(p, ',')))
			return n;
		*p++ = '\0';
	}
}

static const char *opt(const struct db *db, const char *key)
{
	for (const PQconninfoOption *o = db->opts; o && o->keyword; o++)
		if (strcmp(o->keyword, key) == 0)
			return o->val;
	return NULL;
}

int db_params_parse(struct db *db, const char *url, char *err, size_t errsz)
{
	char *msg = NULL;
	int nh, na, np;

	if (!(db->url = strdup(url))) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	if (!(db->opts = PQconninfoParse(url, &msg))) {
		/* libpq quotes the part it could not read, which may be the password. */
		snprintf(err, errsz, "database.url: %s", db_said(db, msg ? msg : "out of memory"));
		PQfreemem(msg);
		err[strcspn(err, "\n")] = '\0';
		return -1;
	}
	const char *h = opt(db, "host"), *a = opt(db, "hostaddr"), *p = opt(db, "port");
	db->hostbuf = h ? strdup(h) : NULL;
	db->addrbuf = a ? strdup(a) : NULL;
	db->portbuf = p ? strdup(p) : NULL;
	if ((h && !db->hostbuf) || (a && !db->addrbuf) || (p && !db->portbuf)) {
		snprintf(err, errsz, "out of memory");
		return -1;
	}
	nh = split(db->hostbuf, db->host, DB_MAX_HOSTS);
	na = split(db->addrbuf, db->hostaddr, DB_MAX_HOSTS);
	np = split(db->portbuf, db->port, DB_MAX_HOSTS);
	if (nh < 0 || na < 0 || np < 0) {
		snprintf(err, errsz, "database.url: more than %d hosts", DB_MAX_HOSTS);
		return -1;
	}
	db->nhosts = nh > na ? nh : na;
	if (db->nhosts == 0)
		db->nhosts = 1; /* libpq's default: the local socket */
	if ((nh && na && nh != na) || (np > 1 && np != db->nhosts)) {
		snprintf(err, errsz, "database.url: host, hostaddr and port list different counts");
		return -1;
	}
	return 0;
}

void db_params_free(struct db *db)
{
	PQconninfoFree(db->opts);
	free(db->url);
	free(db->hostbuf);
	free(db->addrbuf);
	free(db->portbuf);
}

const char *db_said(struct db *db, const char *msg)
{
	db_redact(db->said, sizeof(db->said), msg, db->url);
	return db->said;
}

/* Remembers why the database could not be used (the first line of @p msg, libpq's words
 * or ours, without the password). */
static void note_failure(struct db *db, const char *state, const char *msg)
{
	snprintf(db->state, sizeof(db->state), "%s", state ? state : "");
	db_redact(db->why, sizeof(db->why), msg, db->url);
	db->why[strcspn(db->why, "\n")] = '\0';
}

static int ms_left(uint64_t deadline_us)
{
	uint64_t now = now_us_monotonic();
	return now >= deadline_us ? 0 : (int)((deadline_us - now + 999) / 1000);
}

/* Starts a connection to host @p i of database.url alone, with claimd's defaults. */
static PGconn *start_host(const struct db *db, int i)
{
	const char *keys[64], *vals[64];
	size_t n = 0;

	for (const PQconninfoOption *o = db->opts; o->keyword && n < 56; o++) {
		if (!o->val || strcmp(o->keyword, "host") == 0 ||
		    strcmp(o->keyword, "hostaddr") == 0 || strcmp(o->keyword, "port") == 0)
			continue;
		keys[n] = o->keyword;
		vals[n++] = o->val;
	}
	for (size_t d = 0; d < sizeof(defaults) / sizeof(defaults[0]); d++) {
		if (opt(db, defaults[d].key))
			continue;
		keys[n] = defaults[d].key;
		vals[n++] = defaults[d].val;
	}
	/* The daemon needs a server that takes writes: one in recovery or read-only can
	 * serve no claim, so libpq refuses it at once (cheaper than preparing every
	 * statement to learn it from the first write), and moves to the next host of a
	 * list. The tools may read from a replica. */
	if ((db->nhosts > 1 || db->circuit) && !opt(db, "target_session_attrs")) {
		keys[n] = "target_session_attrs";
		vals[n++] = "read-write";
	}
	if (db->host[i]) {
		keys[n] = "host";
		vals[n++] = db->host[i];
	}
	if (db->hostaddr[i]) {
		keys[n] = "hostaddr";
		vals[n++] = db->hostaddr[i];
	}
	if (db->port[0]) {
		keys[n] = "port";
		vals[n++] = db->port[db->port[1] ? i : 0];
	}
	keys[n] = vals[n] = NULL;
	return PQconnectStartParams(keys, vals, 0);
}

/* Host @p i, connected before @p deadline_us; NULL (the reason noted) otherwise. */
static PGconn *connect_host(struct db *db, int i, uint64_t deadline_us)
{
	PGconn *c = start_host(db, i);
	PostgresPollingStatusType st = PGRES_POLLING_WRITING;

	if (!c) {
		note_failure(db, "08000", "out of memory");
		return NULL;
	}
	while (PQstatus(c) != CONNECTION_BAD && st != PGRES_POLLING_OK) {
		struct pollfd p = {PQsocket(c), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
		int ms = ms_left(deadline_us), n = ms > 0 ? poll(&p, 1, ms) : 0;
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) {
			char msg[200];
			snprintf(msg, sizeof(msg), "%s: no answer to a connect in time",
			         db->host[i]       ? db->host[i]
			         : db->hostaddr[i] ? db->hostaddr[i]
			                           : "");
			note_failure(db, "08001", msg);
			db->timed_out = true;
			PQfinish(c);
			return NULL;
		}
		if ((st = PQconnectPoll(c)) == PGRES_POLLING_FAILED)
			break;
	}
	if (st == PGRES_POLLING_OK && PQstatus(c) == CONNECTION_OK)
		return c;
	note_failure(db, "08001", PQerrorMessage(c));
	PQfinish(c);
	return NULL;
}

void db_drop(struct db *db)
{
	if (!db->conn)
		return;
	/* The server may not answer: the goodbye must not wait for it. */
	PQsetnonblocking(db->conn, 1);
	PQfinish(db->conn);
	db->conn = NULL;
}

bool db_open_conn(struct db *db)
{
	struct db_circuit *c = db->circuit;
	unsigned budget = c ? c->timeout_ms : TOOL_CONNECT_MS;
	uint64_t start = now_us_monotonic(), end = start + (uint64_t)budget * 1000;
	int first = c ? atomic_load(&c->preferred) % db->nhosts : 0;

	db_drop(db);
	db->stale = false;
	db->timed_out = false;
	for (int k = 0; k < db->nhosts && !db->conn; k++) {
		int i = (first + k) % db->nhosts;
		/* Each host left gets an equal share of what is left, so a host that does not
		 * answer cannot keep the next one from being tried. */
		uint64_t now = now_us_monotonic(), left = end > now ? end - now : 0;
		db->conn = connect_host(db, i, now + left / (uint64_t)(db->nhosts - k));
		if (db->conn && c)
			atomic_store(&c->preferred, i);
	}
	if (!db->conn) {
		metrics_db_connection_error(db->metrics);
		return false;
	}
	db->epoch = c ? atomic_load(&c->epoch) : 0;
	return true;
}

PGresult *db_await(struct db *db, bool sent, const char *what)
{
	PGresult *last = NULL;
	uint64_t deadline =
	    now_us_monotonic() + (uint64_t)(db->timeout_ms ? db->timeout_ms : 0) * 1000;

	if (!db->conn)
		return NULL;
	if (!sent)
		goto lost;
	for (;;) {
		while (!PQisBusy(db->conn)) {
			PGresult *r = PQgetResult(db->conn);
			if (!r)
				return last;
			PQclear(last);
			last = r;
			ExecStatusType st = PQresultStatus(r);
			if (st == PGRES_COPY_IN || st == PGRES_COPY_OUT || st == PGRES_COPY_BOTH)
				return last;
		}
		/* Streaming (an import's COPY, an export) has no bound: its statements may
		 * take long, and nobody waits for them in front of a device. */
		int ms = db->timeout_ms && !db->streaming ? ms_left(deadline) : -1;
		struct pollfd p = {PQsocket(db->conn), POLLIN, 0};
		int n = ms == 0 ? 0 : poll(&p, 1, ms);
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0) {
			char msg[200];
			snprintf(msg, sizeof(msg), "%s: no answer within %u ms", what,
			         db->timeout_ms);
			note_failure(db, "08006", msg);
			db->timed_out = true;
			db_circuit_trip(db);
			break;
		}
		if (n < 0 || !PQconsumeInput(db->conn))
			goto lost;
	}
	PQclear(last);
	db_drop(db);
	return NULL;
lost:
	note_failure(db, "08006", PQerrorMessage(db->conn));
	PQclear(last);
	db_drop(db);
	return NULL;
}

void db_circuit_trip(struct db *db)
{
	struct db_circuit *c = db->circuit;
	uint64_t now = now_us_monotonic();

	if (!c)
		return;
	atomic_fetch_add(&c->epoch, 1);
	if (atomic_exchange(&c->open_until, now + PROBE_EVERY_US) == 0) {
		atomic_store(&c->opened_at, now);
		log_warn(
		    "database: not usable (SQLSTATE class %.2s: %s); requests that need it get "
		    "503 until it answers",
		    db->state, db->why);
	}
}

bool db_gate(struct db *db)
{
	struct db_circuit *c = db->circuit;
	bool probe = false, ok;

	if (c) {
		uint64_t until = atomic_load(&c->open_until);
		if (until) {
			if (now_us_monotonic() < until || atomic_exchange(&c->probing, true)) {
				note_failure(db, "08000", "the database did not answer just now");
				db->timed_out = true;
				return false;
			}
			probe = true;
		}
		/* Made before the database last failed to answer: it may lead nowhere (a
		 * vanished host keeps no promise to close it), so it is made anew. */
		if (db->conn && db->epoch != atomic_load(&c->epoch))
			db_drop(db);
	}
	ok = (db->conn && PQstatus(db->conn) == CONNECTION_OK && !db->stale) || db_reconnect(db);
	/* Only a database that does not answer opens the circuit: one that refuses at once
	 * (stopped, restarting, not accepting connections) costs a request nothing to try. */
	if (probe) {
		if (ok || !db->timed_out) {
			uint64_t opened = atomic_load(&c->opened_at);
			atomic_store(&c->open_until, 0);
			log_info("database: answers again (after %.1f s)%s",
			         (double)(now_us_monotonic() - opened) / 1e6,
			         ok ? "" : ", with a refusal");
		} else {
			atomic_store(&c->open_until, now_us_monotonic() + PROBE_EVERY_US);
		}
		atomic_store(&c->probing, false);
	} else if (!ok && db->timed_out) {
		db_circuit_trip(db);
	}
	return ok;
}
