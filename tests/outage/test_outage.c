/*
 * Operations under a steady load of self and user (assisted) claims together (claimsim
 * bench --rate --user-share, the users' tokens from a development IdP of the case's
 * own): PostgreSQL
 * stopped (fast shutdown) and killed (kill -9 of the postmaster) and started again, a
 * failover and a switchover to a synchronous standby, and claimd stopped with SIGTERM
 * with a verify in flight. The devices may see only 200, or 503 with Retry-After and
 * the failure body, each within their 5 s, in both flows; claims must work again soon
 * after the database is back, without a restart; and the database must hold every
 * certificate a device was given (the serials the load generator logged), with its node
 * (for a user claim: that user's node for that MAC) and audit rows, no spent challenge
 * and no claimed user node without its certificate, no certificate without its audit
 * row and no auth_id spent twice. The
 * PostgreSQL cases run clusters of their own (stopping the fixture's would break the
 * other tests). OUTAGE_RATE (claims/s) and OUTAGE_PHASE (seconds each phase lasts)
 * scale them, OUTAGE_USER_SHARE (percent of user claims, 1-99, default 50) mixes them:
 * tests/bench/outage.sh runs the full version.
 */
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api_support.h"
#include "harness.h"

/* The scaled-down defaults: a few seconds a case. */
#define DEFAULT_RATE  20.0
#define DEFAULT_PHASE 1.5
#define CLIENTS       "16"
/* Between initiate and verify: so that outages also meet verifies, not only initiates. */
#define PAUSE_MS "100"
/* The user claims' users: each holds about OUTAGE_RATE * seconds / USERS nodes. */
#define USERS "8"
/* The issue's bound: claims work again within 2 s of PostgreSQL accepting connections. */
#define RECOVERY_LIMIT 2.0
/* The firmware's read timeout (protocol.md section 3). */
#define DEVICE_TIMEOUT_MS 5000.0
#define MAX_UPS           4

static double env_num(const char *name, double dflt)
{
	const char *v = getenv(name);
	return v && atof(v) > 0 ? atof(v) : dflt;
}

static double wall_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
	nanosleep(&ts, NULL);
}

/* tests/pg.sh CMD DIR [ARG] on a cluster of the case's own; its exit status. */
static int pg_sh(const char *cmd, const char *dir, const char *arg, char **out)
{
	return t_run(out, "'%s/tests/pg.sh' %s '%s' '%s'", CLAIMD_SOURCE_DIR, cmd, dir,
	             arg ? arg : "");
}

/* A cluster directory for the case: the build tree's tmp/pg_NAME, emptied. */
static void pg_dir(char *dir, size_t dirsz, const char *name)
{
	const char *b = getenv("CLAIMD_BUILD_DIR");
	snprintf(dir, dirsz, "%s/tmp/pg_%s", b ? b : ".", name);
	pg_sh("stop", dir, NULL, NULL);
	t_run(NULL, "rm -rf '%s'", dir);
}

/* Starts (or restarts) the cluster in @p dir; its wall-clock time once it accepts
 * connections (pg_ctl -w returned), or 0 on failure. */
static double pg_up(const char *dir)
{
	char *out = NULL;
	int rc = pg_sh("start", dir, NULL, &out);
	double at = wall_now();
	if (rc != 0)
		fprintf(stderr, "pg.sh start %s: %s\n", dir, out ? out : "");
	free(out);
	return rc == 0 ? at : 0;
}

/*
 * The case's database (tenv_setup) in the cluster at @p conninfo, with its devices:
 * @p n chips with eFuse key K1, MACs 7CDFA2000001 up, imported by claimctl, listed in
 * t->dir/devices.csv for the load generator, and its development IdP in t->dir/idp,
 * which users.jwt trusts (no quota). The per-address, per-MAC and per-user limits are
 * off: one load generator claims from one address for a few users.
 */
static bool world(struct tenv *t, const char *name, const char *conninfo, long n)
{
	static char extra[1024];
	struct topts o = {.extra = extra};
	char path[1100], users[512], idp_key[1200], *out = NULL;

	test_users_yaml(users, sizeof(users), 0);
	snprintf(extra, sizeof(extra),
	         "limits:\n  address_per_minute: 0\n  mac_per_minute: 0\n  user_per_minute: 0\n%s",
	         users);
	if (conninfo)
		setenv("CLAIMD_TEST_PG", conninfo, 1);
	if (!tenv_setup(t, name, &o) || !test_idp_create(t, "ec", idp_key))
		return false;
	snprintf(path, sizeof(path), "%s/devices.csv", t->dir);
	FILE *f = fopen(path, "w");
	if (!f)
		return false;
	fprintf(f, "mac,platform,efuse_key\n");
	for (long i = 1; i <= n; i++)
		fprintf(f, "7CDFA2%06lX,esp32s3,%s\n", i, K1HEX);
	if (fclose(f) != 0)
		return false;
	int rc =
	    t_run(&out, "'%s' -c '%s' devices import '%s'", t_bin("claimctl"), t->config, path);
	if (rc != 0)
		fprintf(stderr, "import: %s\n", out ? out : "");
	free(out);
	return rc == 0;
}

/* The load generator: claimsim bench as a device line would see the service. */
struct load {
	pid_t pid;
	char out[1100], serials[1100], replies[1100];
};

static bool load_start(const struct tenv *t, const struct daemon *d, double rate, struct load *l)
{
	char url[64], rates[32], devices[1100], idp[1100], share[16];

	snprintf(url, sizeof(url), "http://127.0.0.1:%u", d->port);
	snprintf(rates, sizeof(rates), "%g", rate);
	snprintf(devices, sizeof(devices), "%s/devices.csv", t->dir);
	snprintf(l->out, sizeof(l->out), "%s/bench.out", t->dir);
	snprintf(l->serials, sizeof(l->serials), "%s/serials", t->dir);
	snprintf(l->replies, sizeof(l->replies), "%s/replies", t->dir);
	snprintf(idp, sizeof(idp), "%s/idp", t->dir);
	/* Both flows always: a share of 0 or 100 would leave one untested. */
	double us = env_num("OUTAGE_USER_SHARE", 50);
	snprintf(share, sizeof(share), "%.0f", us < 1 ? 1 : us > 99 ? 99 : us);
	l->pid = fork();
	if (l->pid < 0)
		return false;
	if (l->pid == 0) {
		int fd = open(l->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		/* Stopped by SIGINT (bench_stop) when the case is done; the duration only
		 * bounds a case that never says so. */
		execl(t_bin("claimsim"), "claimsim", "bench", "--url", url, "--devices", devices,
		      "--concurrency", CLIENTS, "--rate", rates, "--duration", "600", "--pause",
		      PAUSE_MS, "--serials", l->serials, "--replies", l->replies, "--user-share",
		      share, "--idp", idp, "--issuer", TEST_ISSUER, "--audience", TEST_AUDIENCE,
		      "--kid", "k1", "--users", USERS, (char *)NULL);
		_exit(127);
	}
	t_adopt(l->pid);
	/* Running once the first reply is logged (keys and CSRs are made before). */
	for (int i = 0; i < 600; i++) {
		FILE *f = fopen(l->replies, "r");
		int c = f ? fgetc(f) : EOF;
		if (f)
			fclose(f);
		if (c != EOF)
			return true;
		sleep_s(0.05);
	}
	fprintf(stderr, "the load generator logged no reply\n");
	return false;
}

/* Ends the run (SIGINT: claims under way finish) and prints its report. */
static void load_stop(struct load *l)
{
	char *out = NULL;
	int st;

	if (l->pid <= 0)
		return;
	kill(l->pid, SIGINT);
	waitpid(l->pid, &st, 0);
	t_forget(l->pid);
	l->pid = 0;
	t_run(&out, "cat '%s'", l->out);
	fprintf(stderr, "--- load generator ---\n%s---\n", out ? out : "");
	free(out);
}

/* The flows as the --replies log names them. */
enum flow { FLOW_SELF, FLOW_USER, FLOWS };
static const char *const flow_names[FLOWS] = {"self", "user"};

/* What the devices saw, from the --replies log. */
struct seen {
	long by_class[5]; /* 200, 503-retry-after, other, transport, cut */
	long by_flow[FLOWS][5];
	long late; /* replies or failures later than the device's timeout */
	double max_ms;
	/* For each moment the database was back: seconds to the first claim request served
	 * after it (a 200 to an initiate or a verify; -1: none), and to the last refused one.
	 * (The first complete claim comes PAUSE_MS later.) */
	double recovered[MAX_UPS], last_refusal[MAX_UPS];
	/* Seconds from each moment the database went away to the first refusal after it
	 * (-1: none), and the slowest reply from then until it was back. */
	double first_refusal[MAX_UPS], slowest_down_ms[MAX_UPS];
};

static const char *const class_names[5] = {"200", "503-retry-after", "other", "transport", "cut"};

/* @p ups[i]: when the database was back; @p downs[i]: when it went away (each up counts
 * until the next down). */
static void read_replies(const char *path, const double *downs, const double *ups, int nups,
                         struct seen *s)
{
	char line[256], stage[16], cls[32], flow[16];
	FILE *f = fopen(path, "r");

	memset(s, 0, sizeof(*s));
	for (int i = 0; i < nups; i++)
		s->recovered[i] = s->last_refusal[i] = s->first_refusal[i] = -1;
	if (!f) {
		CHECKF(false, "no reply log %s", path);
		return;
	}
	while (fgets(line, sizeof(line), f)) {
		double at, ms;
		int status, c, fl;
		if (sscanf(line, "%lf %15s %31s %d %lf %15s", &at, stage, cls, &status, &ms,
		           flow) != 6) {
			CHECKF(false, "reply log line: %s", line);
			continue;
		}
		for (c = 0; c < 5 && strcmp(cls, class_names[c]) != 0; c++)
			;
		for (fl = 0; fl < FLOWS && strcmp(flow, flow_names[fl]) != 0; fl++)
			;
		if (c == 5 || fl == FLOWS) {
			CHECKF(false, "reply class or flow: %s", line);
			continue;
		}
		s->by_class[c]++;
		s->by_flow[fl][c]++;
		s->late += ms > DEVICE_TIMEOUT_MS;
		if (ms > s->max_ms)
			s->max_ms = ms;
		if (c == 2 || c == 3 || c == 4)
			fprintf(stderr, "reply: %s", line);
		for (int i = 0; i < nups; i++) {
			if (at >= downs[i] && at < ups[i] + 1.0 && ms > s->slowest_down_ms[i])
				s->slowest_down_ms[i] = ms;
			if (at >= downs[i] && c != 0 && s->first_refusal[i] < 0)
				s->first_refusal[i] = at - downs[i];
			if (at < ups[i] || (i + 1 < nups && at >= downs[i + 1]))
				continue;
			if (c == 0 && s->recovered[i] < 0)
				s->recovered[i] = at - ups[i];
			if (c != 0)
				s->last_refusal[i] = at - ups[i];
		}
	}
	fclose(f);
}

/* The protocol facts: only 200 and 503 with Retry-After, none late, none cut. With
 * @p transport_ok, a refused connection is allowed (claimd itself stopping). */
static void check_seen(const struct seen *s, bool transport_ok)
{
	CHECKF(s->by_class[0] > 0, "no claim succeeded");
	for (int f = 0; f < FLOWS; f++)
		CHECKF(s->by_flow[f][0] > 0, "no %s claim request succeeded", flow_names[f]);
	CHECKF(s->by_class[2] == 0, "%ld replies neither 200 nor 503 with Retry-After",
	       s->by_class[2]);
	CHECKF(transport_ok || s->by_class[3] == 0, "%ld exchanges without a reply",
	       s->by_class[3]);
	CHECKF(s->by_class[4] == 0, "%ld replies cut short", s->by_class[4]);
	CHECKF(s->late == 0, "%ld replies later than 5 s (slowest %.0f ms)", s->late, s->max_ms);
}

/* Both flows were refused while the database was away: the fault met each under load. */
static void check_busy(const struct seen *s, const char *what)
{
	for (int f = 0; f < FLOWS; f++)
		CHECKF(s->by_flow[f][1] > 0, "no 503 seen in the %s flow: %s was not under load",
		       flow_names[f], what);
}

/* The claims acknowledged, from the --serials log. */
struct acked {
	long all, by_flow[FLOWS];
};

/*
 * Whether the database holds acknowledged claim @p serial of node @p node: the
 * certificate for that node; for a self claim (@p user NULL) the node without a user
 * and a self audit row; for a user claim the node of that @p user and @p mac, claimed,
 * and a user audit row naming both; either way the audit row of that verify, ok.
 * Every value was checked by the caller: hex serial, node and user of [A-Za-z0-9_-].
 */
static bool claim_stored(PGconn *pg, const char *serial, const char *node, const char *mac,
                         const char *user)
{
	char sql[900], who[300];

	if (user)
		snprintf(who, sizeof(who),
		         " AND n.user_id = '%s' AND n.mac = '%s' AND n.claimed_at IS NOT NULL"
		         " AND a.flow = 'user' AND a.user_id = n.user_id AND a.node_id = n.node_id",
		         user, mac);
	else
		snprintf(who, sizeof(who), " AND n.user_id IS NULL AND a.flow = 'self'");
	snprintf(sql, sizeof(sql),
	         "SELECT count(*) FROM certificates c JOIN nodes n USING (node_id)"
	         " JOIN audit a ON a.serial = c.serial AND a.event = 'verify'"
	         " AND a.outcome = 'ok' AND a.mac = n.mac"
	         " WHERE c.serial = '%s' AND c.node_id = '%s'%s",
	         serial, node, who);
	PGresult *r = PQexec(pg, sql);
	bool ok = PQresultStatus(r) == PGRES_TUPLES_OK && strcmp(PQgetvalue(r, 0, 0), "1") == 0;
	if (!ok)
		fprintf(stderr, "LOST: certificate %s of %s%s%s (%s)\n", serial, node,
		        user ? " for " : "", user ? user : "", PQresultErrorMessage(r));
	PQclear(r);
	return ok;
}

/* A serials line's word: [A-Za-z0-9_-], 1 to 64 characters. */
static bool word_ok(const char *w)
{
	size_t n = strlen(w);
	return n >= 1 && n <= 64 &&
	       strspn(w, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == n;
}

/*
 * Zero loss: every serial in @p serials (the claims acknowledged, self and user) is
 * stored with its node and audit rows (claim_stored); no spent challenge and no claimed
 * user node lacks its certificate; no certificate lacks the audit row of its verify; no
 * auth_id produced two. Returns the number lost.
 */
static long check_accounting(PGconn *pg, const char *serials, struct acked *acked)
{
	char line[256], serial[70], node[70], mac[70], user[70];
	long lost = 0;
	FILE *f = fopen(serials, "r");

	memset(acked, 0, sizeof(*acked));
	if (!f) {
		CHECKF(false, "no serials file %s", serials);
		return -1;
	}
	while (fgets(line, sizeof(line), f)) {
		int n = sscanf(line, "%69s %69s %69s %69s", serial, node, mac, user);
		if ((n != 2 && n != 4) || strlen(serial) != 32 ||
		    strspn(serial, "0123456789ABCDEF") != 32 || !word_ok(node) ||
		    (n == 4 && (!word_ok(mac) || !word_ok(user)))) {
			CHECKF(false, "serials line: %s", line);
			continue;
		}
		acked->all++;
		acked->by_flow[n == 4 ? FLOW_USER : FLOW_SELF]++;
		if (!claim_stored(pg, serial, node, mac, n == 4 ? user : NULL))
			lost++;
	}
	fclose(f);
	PGresult *r = PQexec(pg, "SELECT (SELECT count(*) FROM claim_sessions s WHERE s.used AND"
	                         " NOT EXISTS (SELECT 1 FROM certificates c"
	                         "  WHERE c.auth_id = s.auth_id)),"
	                         " (SELECT count(*) FROM (SELECT auth_id FROM certificates"
	                         "  WHERE auth_id IS NOT NULL GROUP BY auth_id"
	                         "  HAVING count(*) > 1) d),"
	                         " (SELECT count(*) FROM nodes n WHERE n.user_id IS NOT NULL"
	                         "  AND n.claimed_at IS NOT NULL AND NOT EXISTS (SELECT 1"
	                         "  FROM certificates c WHERE c.node_id = n.node_id)),"
	                         " (SELECT count(*) FROM certificates c WHERE NOT EXISTS"
	                         "  (SELECT 1 FROM audit a WHERE a.serial = c.serial"
	                         "  AND a.event = 'verify' AND a.outcome = 'ok')),"
	                         " (SELECT count(*) FROM certificates),"
	                         " (SELECT count(*) FROM certificates c JOIN nodes n"
	                         "  USING (node_id) WHERE n.user_id IS NOT NULL)");
	if (PQresultStatus(r) == PGRES_TUPLES_OK) {
		CHECKF(strcmp(PQgetvalue(r, 0, 0), "0") == 0,
		       "%s spent challenges without a certificate", PQgetvalue(r, 0, 0));
		CHECKF(strcmp(PQgetvalue(r, 0, 1), "0") == 0, "%s auth_ids spent twice",
		       PQgetvalue(r, 0, 1));
		CHECKF(strcmp(PQgetvalue(r, 0, 2), "0") == 0,
		       "%s claimed user nodes without a certificate", PQgetvalue(r, 0, 2));
		CHECKF(strcmp(PQgetvalue(r, 0, 3), "0") == 0,
		       "%s certificates without the audit row of their verify",
		       PQgetvalue(r, 0, 3));
		fprintf(stderr,
		        "certificates stored: %s, of user nodes %s (acknowledged %ld: %ld self, "
		        "%ld user)\n",
		        PQgetvalue(r, 0, 4), PQgetvalue(r, 0, 5), acked->all,
		        acked->by_flow[FLOW_SELF], acked->by_flow[FLOW_USER]);
	} else {
		CHECKF(false, "accounting query: %s", PQresultErrorMessage(r));
	}
	PQclear(r);
	CHECKF(lost == 0, "%ld acknowledged claims lost", lost);
	for (int fl = 0; fl < FLOWS; fl++)
		CHECKF(acked->by_flow[fl] > 0, "no %s claim acknowledged", flow_names[fl]);
	return lost;
}

/* The 503s and the claims acknowledged, per flow, as the figures lines print them:
 * "N 503s (S self, U user); N claims acknowledged (S self, U user), L lost". */
static void print_flows(const struct seen *s, const struct acked *a, long lost)
{
	printf("%ld 503s (%ld self, %ld user); %ld claims acknowledged (%ld self, %ld user), %ld "
	       "lost",
	       s->by_class[1], s->by_flow[FLOW_SELF][1], s->by_flow[FLOW_USER][1], a->all,
	       a->by_flow[FLOW_SELF], a->by_flow[FLOW_USER], lost);
}

/* Prints the case's figures in one line (tests/bench/outage.sh collects them). */
static void report(const char *what, const struct seen *s, const char *const *events, int nups,
                   const struct acked *acked, long lost)
{
	printf("figures %s: ", what);
	print_flows(s, acked, lost);
	printf("; slowest reply %.0f ms", s->max_ms);
	for (int i = 0; i < nups; i++)
		printf("; after %s: first 200 %.2f s, last 503 %.2f s", events[i], s->recovered[i],
		       s->last_refusal[i]);
	printf("\n");
}

/* Claims work again within the bound after each moment the database was back, and
 * every claim is served from then on (the last refusal comes within the bound too). */
static void check_recovery(const struct seen *s, const char *const *events, int nups)
{
	for (int i = 0; i < nups; i++) {
		CHECKF(s->recovered[i] >= 0 && s->recovered[i] <= RECOVERY_LIMIT,
		       "after %s: first 200 %.2f s after PostgreSQL accepted connections",
		       events[i], s->recovered[i]);
		CHECKF(s->last_refusal[i] <= RECOVERY_LIMIT,
		       "after %s: a refusal %.2f s after PostgreSQL accepted connections",
		       events[i], s->last_refusal[i]);
	}
}

static long devices_for(double rate, double seconds)
{
	return (long)(rate * seconds) + 200;
}

/* PostgreSQL stopped (fast), started; killed (kill -9 of the postmaster), started. */
static void pg_stop_and_kill(void)
{
	double rate = env_num("OUTAGE_RATE", DEFAULT_RATE),
	       phase = env_num("OUTAGE_PHASE", DEFAULT_PHASE);
	static const char *const events[] = {"fast stop", "kill -9"};
	char dir[300], conninfo[700], *out = NULL;
	double ups[2], downs[2];
	struct tenv t;
	struct daemon d;
	struct load l = {0};
	struct seen s;
	struct acked acked;
	long lost;

	pg_dir(dir, sizeof(dir), "outage");
	REQUIRE(pg_up(dir) > 0);
	snprintf(conninfo, sizeof(conninfo), "host=%s user=postgres", dir);
	REQUIRE(world(&t, "pg_stop_and_kill", conninfo, devices_for(rate, 6 * phase + 20)));
	REQUIRE(daemon_start(&t, &d));
	REQUIRE(load_start(&t, &d, rate, &l));
	sleep_s(phase);
	downs[0] = wall_now();
	CHECK(pg_sh("stop", dir, NULL, &out) == 0);
	free(out);
	sleep_s(phase);
	ups[0] = pg_up(dir);
	sleep_s(phase + RECOVERY_LIMIT);
	downs[1] = wall_now();
	CHECK(pg_sh("kill", dir, NULL, &out) == 0);
	free(out);
	sleep_s(phase);
	ups[1] = pg_up(dir);
	sleep_s(phase + RECOVERY_LIMIT);
	load_stop(&l);
	CHECKF(ups[0] > 0 && ups[1] > 0, "PostgreSQL did not come back");
	CHECKF(kill(d.pid, 0) == 0, "claimd is gone");
	read_replies(l.replies, downs, ups, 2, &s);
	check_seen(&s, false);
	check_busy(&s, "the outage");
	check_recovery(&s, events, 2);
	PQreset(t.pg); /* the harness's connection went with the server */
	lost = check_accounting(t.pg, l.serials, &acked);
	report("outage", &s, events, 2, &acked, lost);
	/* The database metrics saw it: failed connects, transactions refused as busy, and
	 * no hard error (no 500). */
	long busy = metric(&d, "claimd_db_transactions_total{outcome=\"busy\"}"),
	     conn = metric(&d, "claimd_db_connection_errors_total"),
	     hard = metric(&d, "claimd_db_transactions_total{outcome=\"error\"}");
	CHECKF(busy > 0 && conn > 0 && hard == 0, "busy %ld, connection errors %ld, errors %ld",
	       busy, conn, hard);
	printf("outage: database metrics: %ld transactions busy, %ld failed connects\n", busy,
	       conn);
	CHECK(daemon_stop(&d) == 0);
	if (t_failures)
		daemon_dump_log(&d);
	tenv_teardown(&t);
	pg_sh("stop", dir, NULL, NULL);
}

/* Polls @p sql on the cluster at @p conninfo until it returns "t" (10 s). */
static bool pg_wait_true(const char *conninfo, const char *sql)
{
	for (int i = 0; i < 200; i++) {
		PGconn *c = PQconnectdb(conninfo);
		PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
		bool yes = r && PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 &&
		           strcmp(PQgetvalue(r, 0, 0), "t") == 0;
		PQclear(r);
		PQfinish(c);
		if (yes)
			return true;
		sleep_s(0.05);
	}
	fprintf(stderr, "never true: %s\n", sql);
	return false;
}

/* SQL on the cluster at @p conninfo; false (after a message) unless it succeeds. */
static bool pg_exec(const char *conninfo, const char *sql)
{
	PGconn *c = PQconnectdb(conninfo);
	PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
	bool ok =
	    r && (PQresultStatus(r) == PGRES_COMMAND_OK || PQresultStatus(r) == PGRES_TUPLES_OK);
	if (!ok)
		fprintf(stderr, "%s: %s", sql, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
	PQclear(r);
	PQfinish(c);
	return ok;
}

/* GET /readyz: its status, and its description in @p desc. */
static int readyz(const struct daemon *d, char *desc, size_t descsz)
{
	static const char get[] = "GET /readyz HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
	struct http_response r = {0};
	char err[256];
	int st = -1;

	desc[0] = '\0';
	if (http_exchange(&d->url, get, sizeof(get) - 1, 5000, &r, err, sizeof(err)) == 0) {
		st = r.status;
		sim_firmware_string(r.body, "description", desc, descsz, false);
	}
	http_response_free(&r);
	return st;
}

/* Waits (5 s at most) for /readyz to answer @p want; its last description in @p desc. */
static bool readyz_becomes(const struct daemon *d, int want, char *desc, size_t descsz)
{
	for (int i = 0; i < 100; i++) {
		if (readyz(d, desc, descsz) == want)
			return true;
		sleep_s(0.05);
	}
	fprintf(stderr, "/readyz never answered %d (last: %s)\n", want, desc);
	return false;
}

/*
 * A primary in @p a and a synchronous streaming standby of it in @p b (clusters of the
 * case's own), the case's world on the primary, and claimd started on a multi-host
 * connection string naming both (target_session_attrs=read-write), under load.
 */
static bool pair_up(struct tenv *t, struct daemon *d, struct load *l, const char *name, char *a,
                    char *b, size_t dirsz, double rate, double phase)
{
	char conninfo[700], which[64], *out = NULL;

	/* Named after the case: the failover and switchover cases may run at once. */
	snprintf(which, sizeof(which), "%s_primary", name);
	pg_dir(a, dirsz, which);
	snprintf(which, sizeof(which), "%s_standby", name);
	pg_dir(b, dirsz, which);
	if (!pg_up(a))
		return false;
	int rc = pg_sh("standby", b, a, &out);
	if (rc != 0)
		fprintf(stderr, "standby: %s\n", out ? out : "");
	free(out);
	/* Synchronous from here: a commit is acknowledged once the standby has it. */
	snprintf(conninfo, sizeof(conninfo), "host=%s user=postgres dbname=postgres", a);
	if (rc != 0 || !pg_exec(conninfo, "ALTER SYSTEM SET synchronous_standby_names = '*'") ||
	    !pg_exec(conninfo, "SELECT pg_reload_conf()") ||
	    !pg_wait_true(conninfo, "SELECT EXISTS (SELECT 1 FROM pg_stat_replication"
	                            " WHERE sync_state = 'sync' AND state = 'streaming')"))
		return false;
	snprintf(conninfo, sizeof(conninfo), "host=%s user=postgres", a);
	if (!world(t, name, conninfo, devices_for(rate, 3 * phase + 20)))
		return false;
	snprintf(t->conninfo, sizeof(t->conninfo),
	         "host=%s,%s user=postgres dbname=%s target_session_attrs=read-write", a, b,
	         t->name);
	return tenv_write_config(t) && daemon_start(t, d) && load_start(t, d, rate, l);
}

/* After the switch to the standby in @p b at @p down, promoted at @p up: what the devices
 * saw and what the new primary holds. */
static void pair_check(struct tenv *t, struct daemon *d, struct load *l, const char *what,
                       const char *const *events, double down, double up)
{
	struct seen s;
	struct acked acked;
	long lost;

	load_stop(l);
	CHECKF(kill(d->pid, 0) == 0, "claimd is gone");
	read_replies(l->replies, &down, &up, 1, &s);
	check_seen(&s, false);
	check_busy(&s, "the switch");
	check_recovery(&s, events, 1);
	/* Counted on the new primary. */
	PQfinish(t->pg);
	t->pg = PQconnectdb(t->conninfo);
	lost = check_accounting(t->pg, l->serials, &acked);
	report(what, &s, events, 1, &acked, lost);
	CHECK(daemon_stop(d) == 0);
	if (t_failures)
		daemon_dump_log(d);
	tenv_teardown(t);
}

/* How the old primary is taken out of service before the standby is promoted. */
enum fence { FENCE_STOP, FENCE_READ_ONLY };

/* Under load, the old primary goes (@p how), then the standby is promoted. */
static void switch_to_standby(const char *name, enum fence how)
{
	double rate = env_num("OUTAGE_RATE", DEFAULT_RATE),
	       phase = env_num("OUTAGE_PHASE", DEFAULT_PHASE);
	static const char *const events[] = {"promotion"};
	char a[300], b[300], conninfo[400], *out = NULL;
	double up, down;
	struct tenv t;
	struct daemon d;
	struct load l = {0};

	REQUIRE(pair_up(&t, &d, &l, name, a, b, sizeof(a), rate, phase));
	sleep_s(phase);
	snprintf(conninfo, sizeof(conninfo), "host=%s user=postgres dbname=postgres", a);
	down = wall_now();
	if (how == FENCE_STOP)
		CHECK(pg_sh("stop", a, NULL, &out) == 0);
	else
		CHECK(pg_exec(conninfo, "ALTER SYSTEM SET default_transaction_read_only = on") &&
		      pg_exec(conninfo, "SELECT pg_reload_conf()"));
	free(out);
	out = NULL;
	/* Fenced and not yet promoted, no server takes writes: /readyz says so and why. */
	if (how == FENCE_READ_ONLY) {
		char desc[300];
		CHECK(readyz_becomes(&d, 503, desc, sizeof(desc)));
		CHECKF(strstr(desc, "read-only"), "/readyz does not say why: %s", desc);
	}
	sleep_s(phase);
	CHECK(pg_sh("promote", b, NULL, &out) == 0);
	up = wall_now();
	free(out);
	sleep_s(phase + RECOVERY_LIMIT);
	pair_check(&t, &d, &l, name, events, down, up);
	pg_sh("stop", b, NULL, NULL);
	pg_sh("stop", a, NULL, NULL);
}

/*
 * Failover: the primary stops, the standby is promoted: claims go on against it without
 * a restart of claimd, and nothing acknowledged is lost.
 */
static void failover(void)
{
	switch_to_standby("failover", FENCE_STOP);
}

/*
 * Switchover: the old primary is fenced first (default_transaction_read_only, so that
 * nothing more is written there) while claimd's connections to it stay open, then the
 * standby is promoted. A write refused as read-only (SQLSTATE 25006) is a 503 and a
 * reconnection, never a 500, and claims go on against the new primary.
 */
static void switchover(void)
{
	switch_to_standby("switchover", FENCE_READ_ONLY);
}

/*
 * SIGTERM while claims run: a verify whose body is still arriving when the signal comes
 * is finished and answered in full, new connections are refused meanwhile, claimd exits
 * 0, and the load generator sees no reply cut short and loses nothing.
 */
static void graceful_stop(void)
{
	double rate = env_num("OUTAGE_RATE", DEFAULT_RATE),
	       phase = env_num("OUTAGE_PHASE", DEFAULT_PHASE);
	struct tenv t;
	struct daemon d;
	struct load l = {0};
	struct session sess;
	struct http_response hr = {0};
	struct seen s;
	char err[256], mac[13];
	struct acked acked;
	int st = -1;

	REQUIRE(world(&t, "graceful_stop", NULL, devices_for(rate, 2 * phase + 20)));
	REQUIRE(daemon_start(&t, &d));
	/* The slow device: its last device, never used by the load generator that early. */
	snprintf(mac, sizeof(mac), "7CDFA2%06lX", devices_for(rate, 2 * phase + 20));
	REQUIRE(initiate(&d, mac, "esp32s3", &sess));
	struct sim_device dv = device(mac, "esp32s3", "ec");
	char *body = verify_body(&sess, K1, dv.key, mac);
	REQUIRE(body);
	char head[256];
	int hl = snprintf(
	    head, sizeof(head),
	    "POST /claim/verify HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %zu\r\n\r\n",
	    strlen(body));
	size_t half = strlen(body) / 2;
	struct http_conn slow = {.url = d.url, .fd = -1};
	REQUIRE(load_start(&t, &d, rate, &l));
	sleep_s(phase);
	REQUIRE(http_conn_open(&slow, 5000, err, sizeof(err)) == 0);
	REQUIRE(http_conn_write(&slow, head, (size_t)hl) == 0 &&
	        http_conn_write(&slow, body, half) == 0);
	sleep_s(0.3); /* the request is in flight: its head has been read */
	kill(d.pid, SIGTERM);
	sleep_s(0.5);
	/* Draining: the listener is closed, so a new connection is refused outright. */
	struct http_conn fresh = {.url = d.url, .fd = -1};
	CHECKF(http_conn_open(&fresh, 2000, err, sizeof(err)) < 0,
	       "a new connection was accepted while draining");
	http_conn_close(&fresh);
	CHECKF(waitpid(d.pid, &st, WNOHANG) == 0, "claimd did not wait for the claim in flight");
	/* The rest of the body: the claim completes and its reply arrives whole. */
	int rc = http_conn_exchange(&slow, body + half, strlen(body) - half, 10000, &hr, err,
	                            sizeof(err));
	CHECKF(rc == 0 && hr.status == 200 && !hr.cut,
	       "in-flight verify: rc %d status %d cut %d %s", rc, hr.status, hr.cut,
	       rc < 0 ? err : "");
	char cert[4096], serial[70] = "";
	if (rc == 0 && hr.status == 200) {
		check_framing(&hr);
		CHECK(sim_firmware_string(hr.body, "certificate", cert, sizeof(cert), true) &&
		      sim_leaf_serial(cert, serial, sizeof(serial)));
	}
	http_response_free(&hr);
	http_conn_close(&slow);
	/* claimd exits 0 once nothing is in flight. */
	for (int i = 0; i < 200 && waitpid(d.pid, &st, WNOHANG) == 0; i++)
		sleep_s(0.05);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "claimd's exit status %d", st);
	t_forget(d.pid);
	pid_t dpid = d.pid;
	d.pid = 0;
	sleep_s(0.3); /* the load generator meets the closed port */
	load_stop(&l);
	read_replies(l.replies, NULL, NULL, 0, &s);
	check_seen(&s, true);
	CHECKF(s.by_class[3] > 0, "the load generator never found the port closed");
	check_accounting(t.pg, l.serials, &acked);
	CHECKF(serial[0] && sql_long(&t, "SELECT count(*) FROM certificates WHERE serial = '%s'",
	                             serial) == 1,
	       "the in-flight claim's certificate %s is not stored", serial);
	printf("figures stop: %ld claims acknowledged (%ld self, %ld user), %ld refused "
	       "connections after SIGTERM, %ld replies cut short\n",
	       acked.all, acked.by_flow[FLOW_SELF], acked.by_flow[FLOW_USER], s.by_class[3],
	       s.by_class[4]);
	if (t_failures) {
		d.pid = dpid;
		daemon_dump_log(&d);
	}
	free(body);
	EVP_PKEY_free(dv.key);
	tenv_teardown(&t);
}

/* --- Faults that do not close the connection (issue 24) --- */

/* How long the database stays cut off or full in the scaled-down cases: long enough
 * for the first 503 to arrive (database.timeout_ms and a probe), whatever the phase. */
static double fault_phase(double phase)
{
	return phase < 4.0 ? 4.0 : phase;
}

/* The bound on the first 503 after the database stops answering (the issue: "a few
 * seconds at most"): database.timeout_ms (1.5 s) plus the queue in front of it. */
#define FIRST_503_LIMIT 3.0
/* The slowest reply while the fault lasts: well inside the firmware's 5 s, with room for
 * a loaded machine (measured: about database.timeout_ms). */
#define SLOWEST_LIMIT_MS 3500.0

/*
 * The case's network: this process (and so claimd, the load generator and any cluster
 * started here) in a network namespace of its own, a second namespace (ip netns) for
 * the primary, joined by a veth pair: 10.213.0.1 here, 10.213.0.2 there. Both
 * namespaces are the case's own, so no address is added anywhere else; the primary is
 * cut off by dropping its packets with iptables inside its namespace, which closes no
 * connection, as a partition or a power loss would not.
 */
struct net {
	char ns[40];
};

static bool net_up(struct net *n)
{
	char *out = NULL;
	int pid = (int)getpid();

	if (unshare(CLONE_NEWNET) != 0) {
		perror("unshare(CLONE_NEWNET) (the case runs as root)");
		return false;
	}
	snprintf(n->ns, sizeof(n->ns), "claimd-test-%d", pid);
	int rc = t_run(&out,
	               "set -e; ip link set lo up; ip netns add %s;"
	               " ip link add vt%d type veth peer name vd%d netns %s;"
	               " ip addr add 10.213.0.1/30 dev vt%d; ip link set vt%d up;"
	               " ip -n %s link set lo up; ip -n %s addr add 10.213.0.2/30 dev vd%d;"
	               " ip -n %s link set vd%d up",
	               n->ns, pid, pid, n->ns, pid, pid, n->ns, n->ns, pid, n->ns, pid);
	if (rc != 0)
		fprintf(stderr, "network: %s\n", out ? out : "");
	free(out);
	return rc == 0;
}

/* Drops (@p cut) or passes again every packet of the primary's namespace. */
static bool net_cut(const struct net *n, bool cut)
{
	char *out = NULL;
	int rc = t_run(&out,
	               "ip netns exec %s iptables -w -%c INPUT -j DROP &&"
	               " ip netns exec %s iptables -w -%c OUTPUT -j DROP",
	               n->ns, cut ? 'A' : 'D', n->ns, cut ? 'A' : 'D');
	if (rc != 0)
		fprintf(stderr, "iptables: %s\n", out ? out : "");
	free(out);
	return rc == 0;
}

static void net_down(const struct net *n)
{
	if (n->ns[0])
		t_run(NULL, "ip netns del %s", n->ns);
}

/* Starts the cluster in @p dir inside @p n's namespace, listening on 10.213.0.2 too and
 * taking claimd's connections from this side of the pair. */
static bool pg_up_behind(const struct net *n, const char *dir)
{
	char *out = NULL, conninfo[400], hba[400];
	int rc = t_run(&out,
	               "PG_OPTS='-c listen_addresses=10.213.0.2' ip netns exec %s '%s/tests/pg.sh'"
	               " start '%s'",
	               n->ns, CLAIMD_SOURCE_DIR, dir);
	if (rc != 0) {
		fprintf(stderr, "pg.sh start %s: %s\n", dir, out ? out : "");
		free(out);
		return false;
	}
	free(out);
	snprintf(hba, sizeof(hba), "%s/data/pg_hba.conf", dir);
	FILE *f = fopen(hba, "a");
	if (!f || fprintf(f, "host all all 10.213.0.1/32 trust\n") < 0 || fclose(f) != 0)
		return false;
	snprintf(conninfo, sizeof(conninfo), "host=%s user=postgres dbname=postgres", dir);
	return pg_exec(conninfo, "SELECT pg_reload_conf()");
}

/* Prints the figures of a fault that does not close the connection. */
static void report_fault(const char *what, const struct seen *s, const char *event,
                         const struct acked *acked, long lost)
{
	printf("figures %s: %ld replies, ", what,
	       s->by_class[0] + s->by_class[1] + s->by_class[2] + s->by_class[3]);
	print_flows(s, acked, lost);
	printf("; first 503 %.2f s after the fault; slowest reply during it %.0f ms (of all %.0f "
	       "ms, %ld over 5 s); after %s: first 200 %.2f s, last 503 %.2f s\n",
	       s->first_refusal[0], s->slowest_down_ms[0], s->max_ms, s->late, event,
	       s->recovered[0], s->last_refusal[0]);
}

/* The figures every fault case asserts: only 200 and 503 within 5 s, 503s soon after
 * the fault, 200s soon after its end, nothing acknowledged lost. */
static void check_fault(struct tenv *t, const struct load *l, const char *what, const char *event,
                        double down, double up)
{
	const char *const events[] = {event};
	struct seen s;
	struct acked acked;
	long lost;

	read_replies(l->replies, &down, &up, 1, &s);
	check_seen(&s, false);
	check_busy(&s, "the fault");
	CHECKF(s.slowest_down_ms[0] <= SLOWEST_LIMIT_MS,
	       "a reply took %.0f ms during the fault (bound %.0f ms)", s.slowest_down_ms[0],
	       SLOWEST_LIMIT_MS);
	CHECKF(s.first_refusal[0] >= 0 && s.first_refusal[0] <= FIRST_503_LIMIT,
	       "first 503 %.2f s after the fault (bound %.1f s)", s.first_refusal[0],
	       FIRST_503_LIMIT);
	check_recovery(&s, events, 1);
	lost = check_accounting(t->pg, l->serials, &acked);
	report_fault(what, &s, event, &acked, lost);
}

/*
 * A primary that vanishes without closing a connection, reached over TCP: its packets
 * are dropped (a partition, a power loss), then either the path comes back (@p promote
 * false) or its synchronous standby (reached over its unix socket, replicating over
 * the primary's) is promoted and claimd's two-host URL moves to it. Requests get 503
 * within the bound instead of waiting in dead connections, claims work again within
 * RECOVERY_LIMIT, nothing acknowledged is lost.
 */
static void vanishing_primary(const char *name, bool promote)
{
	double rate = env_num("OUTAGE_RATE", DEFAULT_RATE),
	       phase = env_num("OUTAGE_PHASE", DEFAULT_PHASE);
	char a[300], b[300], which[64], conninfo[700], *out = NULL;
	struct net n = {""};
	struct tenv t;
	struct daemon d = {0};
	struct load l = {0};
	double down, up;

	REQUIRE(net_up(&n));
	snprintf(which, sizeof(which), "%s_primary", name);
	pg_dir(a, sizeof(a), which);
	snprintf(which, sizeof(which), "%s_standby", name);
	pg_dir(b, sizeof(b), which);
	REQUIRE(pg_up_behind(&n, a));
	snprintf(conninfo, sizeof(conninfo), "host=%s user=postgres dbname=postgres", a);
	if (promote) {
		int rc = pg_sh("standby", b, a, &out);
		if (rc != 0)
			fprintf(stderr, "standby: %s\n", out ? out : "");
		free(out);
		out = NULL;
		REQUIRE(rc == 0 &&
		        pg_exec(conninfo, "ALTER SYSTEM SET synchronous_standby_names = '*'") &&
		        pg_exec(conninfo, "SELECT pg_reload_conf()") &&
		        pg_wait_true(conninfo,
		                     "SELECT EXISTS (SELECT 1 FROM pg_stat_replication"
		                     " WHERE sync_state = 'sync' AND state = 'streaming')"));
	}
	snprintf(conninfo, sizeof(conninfo), "host=%s user=postgres", a);
	REQUIRE(world(&t, name, conninfo, devices_for(rate, 3 * fault_phase(phase) + 20)));
	/* claimd's URL: the primary over TCP; with a standby, the standby second. */
	if (promote)
		snprintf(t.conninfo, sizeof(t.conninfo),
		         "host=10.213.0.2,%s user=postgres dbname=%s", b, t.name);
	else
		snprintf(t.conninfo, sizeof(t.conninfo), "host=10.213.0.2 user=postgres dbname=%s",
		         t.name);
	REQUIRE(tenv_write_config(&t) && daemon_start(&t, &d) && load_start(&t, &d, rate, &l));
	sleep_s(phase);
	down = wall_now();
	CHECK(net_cut(&n, true));
	sleep_s(fault_phase(phase));
	if (promote)
		CHECK(pg_sh("promote", b, NULL, &out) == 0);
	else
		CHECK(net_cut(&n, false));
	up = wall_now();
	free(out);
	sleep_s(phase + RECOVERY_LIMIT);
	load_stop(&l);
	CHECKF(kill(d.pid, 0) == 0, "claimd is gone");
	/* Counted where claims went last: the standby after a promotion. */
	if (promote) {
		PQfinish(t.pg);
		snprintf(conninfo, sizeof(conninfo), "host=%s user=postgres dbname=%s", b, t.name);
		t.pg = PQconnectdb(conninfo);
	}
	check_fault(&t, &l, name, promote ? "promotion" : "heal", down, up);
	long hard = metric(&d, "claimd_db_transactions_total{outcome=\"error\"}");
	CHECKF(hard == 0, "%ld transactions ended in an error (500)", hard);
	CHECK(daemon_stop(&d) == 0);
	if (t_failures)
		daemon_dump_log(&d);
	tenv_teardown(&t);
	if (promote)
		net_cut(&n, false); /* the old primary waits for nothing on its way down */
	pg_sh("stop", b, NULL, NULL);
	pg_sh("stop", a, NULL, NULL);
	net_down(&n);
}

static void vanishing_primary_heal(void)
{
	vanishing_primary("vanish_heal", false);
}

static void vanishing_primary_promotion(void)
{
	vanishing_primary("vanish_promote", true);
}

/* Ends claimd's sessions on the case's database, so that new ones start. */
static void end_sessions(struct tenv *t)
{
	PQclear(PQexec(t->pg,
	               "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
	               " WHERE application_name = 'claimd' AND datname = current_database()"));
}

/*
 * A database that answers but takes no writes from claimd (default_transaction_read_only
 * on claimd's database, what a pooler or a -rw service in front of a demoted primary
 * looks like): /readyz says not ready and why, claimd -t fails saying so, claims get
 * 503 (never 500); once it takes writes again, /readyz and claims come back by
 * themselves.
 */
static void read_only(void)
{
	double rate = env_num("OUTAGE_RATE", DEFAULT_RATE),
	       phase = env_num("OUTAGE_PHASE", DEFAULT_PHASE);
	struct tenv t;
	struct daemon d = {0};
	struct load l = {0};
	char desc[300], *out = NULL;
	double down, up;

	REQUIRE(world(&t, "read_only", NULL, devices_for(rate, 3 * fault_phase(phase) + 20)));
	REQUIRE(daemon_start(&t, &d) && load_start(&t, &d, rate, &l));
	CHECK(readyz_becomes(&d, 200, desc, sizeof(desc)));
	sleep_s(phase);
	down = wall_now();
	char *q =
	    sql_value(&t, "SELECT format('ALTER DATABASE %%I SET default_transaction_read_only"
	                  " = on', current_database())");
	REQUIRE(q);
	PQclear(PQexec(t.pg, q));
	free(q);
	end_sessions(&t);
	CHECK(readyz_becomes(&d, 503, desc, sizeof(desc)));
	CHECKF(strstr(desc, "read-only"), "/readyz does not say why: %s", desc);
	int rc = t_run(&out, "'%s' -t -c '%s' 2>&1", t_bin("claimd"), t.config);
	CHECKF(rc != 0 && out && strstr(out, "read-only"), "claimd -t: %d %s", rc, out ? out : "");
	free(out);
	sleep_s(fault_phase(phase));
	q = sql_value(&t, "SELECT format('ALTER DATABASE %%I RESET default_transaction_read_only',"
	                  " current_database())");
	REQUIRE(q);
	PQclear(PQexec(t.pg, q));
	free(q);
	end_sessions(&t);
	up = wall_now();
	CHECK(readyz_becomes(&d, 200, desc, sizeof(desc)));
	sleep_s(phase + RECOVERY_LIMIT);
	load_stop(&l);
	check_fault(&t, &l, "read_only", "writable again", down, up);
	long hard = metric(&d, "claimd_db_transactions_total{outcome=\"error\"}");
	CHECKF(hard == 0, "%ld transactions ended in an error (500)", hard);
	CHECK(daemon_stop(&d) == 0);
	if (t_failures)
		daemon_dump_log(&d);
	tenv_teardown(&t);
}

/*
 * The database's disk fills: claimd's tables live in a tablespace on a small tmpfs the
 * case mounts (in a mount namespace of its own), which it fills with a file. Claims get
 * 503 (SQLSTATE 53100), nothing is half-written, and once the file is gone claims work
 * again without a restart.
 */
static void disk_full(void)
{
	double rate = env_num("OUTAGE_RATE", DEFAULT_RATE),
	       phase = env_num("OUTAGE_PHASE", DEFAULT_PHASE);
	char dir[300], small[400], conninfo[700], sql[600], *out = NULL;
	struct tenv t;
	struct daemon d = {0};
	struct load l = {0};
	double down, up;

	REQUIRE(unshare(CLONE_NEWNS) == 0 &&
	        mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) == 0);
	pg_dir(dir, sizeof(dir), "diskfull");
	REQUIRE(pg_up(dir) > 0);
	snprintf(small, sizeof(small), "%s/small", dir);
	REQUIRE(mkdir(small, 0700) == 0 && mount("claimd-test", small, "tmpfs",
	                                         MS_NOSUID | MS_NODEV, "size=32m,mode=0700") == 0);
	if (getuid() == 0)
		REQUIRE(t_run(NULL, "chown postgres: '%s'", small) == 0);
	snprintf(conninfo, sizeof(conninfo), "host=%s user=postgres dbname=postgres", dir);
	snprintf(sql, sizeof(sql), "CREATE TABLESPACE small LOCATION '%s'", small);
	REQUIRE(pg_exec(conninfo, sql) &&
	        pg_exec(conninfo, "ALTER SYSTEM SET default_tablespace = 'small'") &&
	        pg_exec(conninfo, "SELECT pg_reload_conf()"));
	snprintf(conninfo, sizeof(conninfo), "host=%s user=postgres", dir);
	REQUIRE(world(&t, "disk_full", conninfo, devices_for(rate, 3 * fault_phase(phase) + 20)));
	CHECK(sql_long(&t, "SELECT count(*) FROM pg_tables WHERE tablename = 'certificates'"
	                   " AND tablespace = 'small'") == 1);
	REQUIRE(daemon_start(&t, &d) && load_start(&t, &d, rate, &l));
	sleep_s(phase);
	down = wall_now();
	/* dd ends with "No space left on device": the file system is full. */
	t_run(&out, "dd if=/dev/zero of='%s/fill' bs=64k 2>&1", small);
	CHECKF(out && strstr(out, "No space left"), "dd: %s", out ? out : "");
	free(out);
	sleep_s(fault_phase(phase));
	CHECK(unlink(strcat(small, "/fill")) == 0);
	up = wall_now();
	sleep_s(phase + RECOVERY_LIMIT);
	load_stop(&l);
	CHECKF(kill(d.pid, 0) == 0, "claimd is gone");
	check_fault(&t, &l, "disk_full", "space freed", down, up);
	long hard = metric(&d, "claimd_db_transactions_total{outcome=\"error\"}");
	CHECKF(hard == 0, "%ld transactions ended in an error (500)", hard);
	CHECK(daemon_stop(&d) == 0);
	if (t_failures)
		daemon_dump_log(&d);
	tenv_teardown(&t);
	pg_sh("stop", dir, NULL, NULL);
}

static const struct t_case cases[] = {
    {"pg_stop_and_kill", pg_stop_and_kill},
    {"failover", failover},
    {"switchover", switchover},
    {"graceful_stop", graceful_stop},
    {"vanishing_primary_heal", vanishing_primary_heal},
    {"vanishing_primary_promotion", vanishing_primary_promotion},
    {"read_only", read_only},
    {"disk_full", disk_full},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
