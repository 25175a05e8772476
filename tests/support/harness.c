/*
 * The harness behind every test program. Each case gets its own PostgreSQL database,
 * so cases can run in parallel against the one server the CTest fixture started.
 */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "db/db.h"
#include "db/db_devices.h"
#include "sim/devca.h"
#include "lib/util.h"

int t_failures;

/* Every daemon a case started, so a case that stops early (REQUIRE) leaves none behind. */
static pid_t started[64];
static int nstarted;

static void stop_leftovers(void)
{
	for (int i = 0; i < nstarted; i++) {
		if (started[i] > 0 && kill(started[i], SIGTERM) == 0)
			waitpid(started[i], NULL, 0);
		started[i] = 0;
	}
}

void t_adopt(pid_t pid)
{
	if (nstarted < (int)(sizeof(started) / sizeof(started[0])))
		started[nstarted++] = pid;
}

void t_forget(pid_t pid)
{
	for (int i = 0; i < nstarted; i++)
		if (started[i] == pid)
			started[i] = 0;
}

int t_main(int argc, char **argv, const struct t_case *cases)
{
	int ran = 0;

	if (secure_init() < 0)
		return 1;
	signal(SIGPIPE, SIG_IGN);
	atexit(stop_leftovers);
	/* The psql a test runs goes to the private cluster's port (tests/pg.sh), not to the
	 * one Debian's psql wrapper would pick from this machine's own clusters. */
	setenv("PGPORT", "5432", 0);
	/* The case table, for the check that CTest registers every case (tests/CMakeLists.txt). */
	if (argc > 1 && strcmp(argv[1], "--list") == 0) {
		for (const struct t_case *c = cases; c->name; c++)
			printf("%s\n", c->name);
		return 0;
	}
	for (const struct t_case *c = cases; c->name; c++) {
		if (argc > 1 && strcmp(argv[1], c->name) != 0)
			continue;
		int before = t_failures;
		c->fn();
		printf("%s: %s\n", c->name, t_failures == before ? "PASS" : "FAIL");
		ran++;
	}
	if (ran == 0) {
		fprintf(stderr, "no such case: %s\n", argc > 1 ? argv[1] : "");
		return 2;
	}
	return t_failures ? 1 : 0;
}

const char *t_bin(const char *name)
{
	static char path[4][1024];
	static int i;
	const char *dir = getenv("CLAIMD_BUILD_DIR");
	i = (i + 1) % 4;
	snprintf(path[i], sizeof(path[i]), "%s/%s", dir ? dir : ".", name);
	return path[i];
}

int t_run(char **out, const char *fmt, ...)
{
	char *cmd = NULL, *full = NULL;
	va_list ap;
	FILE *p;
	size_t cap = 0, len = 0;
	int st;

	va_start(ap, fmt);
	if (vasprintf(&cmd, fmt, ap) < 0) {
		va_end(ap);
		return -1;
	}
	va_end(ap);
	if (asprintf(&full, "%s 2>&1", cmd) < 0) {
		free(cmd);
		return -1;
	}
	free(cmd);
	p = popen(full, "r");
	free(full);
	if (!p)
		return -1;
	char *buf = NULL;
	char chunk[4096];
	size_t n;
	while ((n = fread(chunk, 1, sizeof(chunk), p)) > 0) {
		if (len + n + 1 > cap) {
			cap = (len + n + 1) * 2;
			buf = realloc(buf, cap);
		}
		memcpy(buf + len, chunk, n);
		len += n;
	}
	if (buf)
		buf[len] = '\0';
	st = pclose(p);
	if (out)
		*out = buf ? buf : strdup("");
	else
		free(buf);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static PGconn *admin_conn(void)
{
	const char *base = getenv("CLAIMD_TEST_PG");
	PGconn *c;
	if (!base) {
		fprintf(stderr, "CLAIMD_TEST_PG is not set (run through ctest)\n");
		return NULL;
	}
	c = PQconnectdb(base);
	if (PQstatus(c) != CONNECTION_OK) {
		fprintf(stderr, "cannot reach the test PostgreSQL: %s", PQerrorMessage(c));
		PQfinish(c);
		return NULL;
	}
	return c;
}

static bool admin_exec(PGconn *c, const char *sql)
{
	PGresult *r = PQexec(c, sql);
	bool ok = PQresultStatus(r) == PGRES_COMMAND_OK;
	if (!ok)
		fprintf(stderr, "%s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	return ok;
}

bool tenv_write_config(struct tenv *t)
{
	FILE *f = fopen(t->config, "w");
	if (!f)
		return false;
	/* Tests run as root: the signer drops to a user every Debian system has. First, so
	 * that an extra which continues the last section stays in it. */
	if (!t->o.extra || !strstr(t->o.extra, "signer:"))
		fputs("signer:\n  user: nobody\n", f);
	/* And claimd itself stays root, as the operator may say explicitly, unless the case
	 * names its user (the tests of the two users, test_custody.c). */
	fprintf(f,
	        "server:\n  listen: \"127.0.0.1:0\"\n  threads: 4\n  log_level: debug\n%s%s"
	        "database:\n  url: \"%s\"\n"
	        "ca:\n  certificate: ca/intermediate.pem\n  key: \"%s\"\n",
	        t->o.server && strstr(t->o.server, "user:") ? "" : "  run_as_root: yes\n",
	        t->o.server ? t->o.server : "", t->conninfo,
	        t->o.ca_key ? t->o.ca_key : "ca/intermediate.key");
	if (t->o.chain)
		fprintf(f, "  chain: \"%s\"\n", t->o.chain);
	fprintf(f,
	        "secrets:\n  key_file: secrets.key\nclaim:\n  challenge_ttl_seconds: %u\n"
	        "  max_attempts: %u\n",
	        t->o.ttl ? t->o.ttl : 300, t->o.max_attempts ? t->o.max_attempts : 3);
	if (t->o.mqtt_host)
		fprintf(f, "  mqtt_host: %s\n", t->o.mqtt_host);
	if (t->o.mqtt_cred_host)
		fprintf(f, "  mqtt_cred_host: %s\n", t->o.mqtt_cred_host);
	if (t->o.extra)
		fputs(t->o.extra, f);
	return fclose(f) == 0;
}

bool tenv_setup(struct tenv *t, const char *name, const struct topts *o)
{
	char sql[256], err[512], path[1024], keyb64[64];
	uint8_t key[SECRETS_KEY_BYTES];
	size_t klen;
	PGconn *admin;
	int applied;
	FILE *f;

	memset(t, 0, sizeof(*t));
	if (o)
		t->o = *o;
	if (!t->o.ca_type)
		t->o.ca_type = "ec";
	snprintf(t->name, sizeof(t->name), "t_%s", name);
	snprintf(t->dir, sizeof(t->dir), "%s/tmp/%s", getenv("CLAIMD_BUILD_DIR") ?: ".", name);
	t_run(NULL, "rm -rf '%s' && mkdir -p '%s'", t->dir, t->dir);
	if (!(admin = admin_conn()))
		return false;
	snprintf(sql, sizeof(sql), "DROP DATABASE IF EXISTS %s WITH (FORCE)", t->name);
	bool ok = admin_exec(admin, sql);
	snprintf(sql, sizeof(sql), "CREATE DATABASE %s", t->name);
	ok = ok && admin_exec(admin, sql);
	PQfinish(admin);
	if (!ok)
		return false;
	snprintf(t->conninfo, sizeof(t->conninfo), "%s dbname=%s", getenv("CLAIMD_TEST_PG"),
	         t->name);
	if (db_migrate(t->conninfo, &applied, err, sizeof(err)) < 0) {
		fprintf(stderr, "migrate: %s\n", err);
		return false;
	}
	snprintf(t->ca_dir, sizeof(t->ca_dir), "%s/ca", t->dir);
	if (devca_create(t->ca_dir, t->o.ca_type, err, sizeof(err)) < 0) {
		fprintf(stderr, "dev CA: %s\n", err);
		return false;
	}
	snprintf(t->root, sizeof(t->root), "%s/root.pem", t->ca_dir);
	secrets_keygen(keyb64, sizeof(keyb64));
	snprintf(path, sizeof(path), "%s/secrets.key", t->dir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w")))
		return false;
	fprintf(f, "%s\n", keyb64);
	fclose(f);
	if (!b64_decode(key, sizeof(key), &klen, keyb64, strlen(keyb64)))
		return false;
	t->secrets = secrets_from_bytes(key);
	snprintf(t->config, sizeof(t->config), "%s/claimd.yaml", t->dir);
	t->pg = PQconnectdb(t->conninfo);
	return t->secrets && PQstatus(t->pg) == CONNECTION_OK && tenv_write_config(t);
}

void tenv_teardown(struct tenv *t)
{
	PQfinish(t->pg);
	secrets_free(t->secrets);
	t->pg = NULL;
	t->secrets = NULL;
}

bool tenv_add_device(struct tenv *t, const char *mac, const char *platform, const uint8_t key[16])
{
	char err[256];
	uint8_t sealed[SEALED_EFUSE_BYTES], tag[EFUSE_TAG_BYTES];
	struct import_counts counts;
	struct db *db = db_connect(t->conninfo, true, err, sizeof(err));
	bool ok;

	if (!db) {
		fprintf(stderr, "%s\n", err);
		return false;
	}
	efuse_seal(t->secrets, mac, key, sealed);
	efuse_tag(t->secrets, mac, key, tag);
	ok = db_import_begin(db) == DB_OK &&
	     db_import_row(db, 2, mac, platform, sealed, tag) == DB_OK &&
	     db_import_finish(db, true, false, NULL, NULL, NULL, &counts) == DB_OK;
	db_close(db);
	return ok;
}

static char *vsql(struct tenv *t, const char *fmt, va_list ap)
{
	char *sql = NULL, *v = NULL;
	if (vasprintf(&sql, fmt, ap) < 0)
		return NULL;
	PGresult *r = PQexec(t->pg, sql);
	if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) > 0 && !PQgetisnull(r, 0, 0))
		v = strdup(PQgetvalue(r, 0, 0));
	else if (PQresultStatus(r) != PGRES_TUPLES_OK)
		fprintf(stderr, "sql: %s: %s", sql, PQresultErrorMessage(r));
	PQclear(r);
	free(sql);
	return v;
}

char *sql_value(struct tenv *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *v = vsql(t, fmt, ap);
	va_end(ap);
	return v;
}

long sql_long(struct tenv *t, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	char *v = vsql(t, fmt, ap);
	va_end(ap);
	long n = v ? atol(v) : -1;
	free(v);
	return n;
}

bool daemon_start(struct tenv *t, struct daemon *d)
{
	static int seq;
	char ready[1024];
	pid_t pid;

	memset(d, 0, sizeof(*d));
	seq++;
	snprintf(ready, sizeof(ready), "%s/ready.%d", t->dir, seq);
	snprintf(d->log, sizeof(d->log), "%s/claimd.%d.log", t->dir, seq);
	unlink(ready);
	pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		int fd = open(d->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		execl(t_bin("claimd"), "claimd", "-c", t->config, "--ready-file", ready,
		      (char *)NULL);
		_exit(127);
	}
	d->pid = pid;
	t_adopt(pid);
	for (int i = 0; i < 1000; i++) {
		FILE *f = fopen(ready, "r");
		if (f) {
			unsigned port = 0, admin = 0;
			if (fscanf(f, "%u", &port) == 1)
				d->port = port;
			if (fscanf(f, "%u", &admin) == 1)
				d->admin_port = admin;
			fclose(f);
			if (d->port)
				break;
		}
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid) {
			fprintf(stderr, "claimd exited during start-up:\n");
			d->pid = 0;
			daemon_dump_log(d);
			return false;
		}
		struct timespec ts = {0, 10 * 1000000L};
		nanosleep(&ts, NULL);
	}
	if (!d->port) {
		daemon_dump_log(d);
		return false;
	}
	char url[64];
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", d->port);
	if (!http_url_parse(url, &d->url))
		return false;
	snprintf(url, sizeof(url), "http://127.0.0.1:%u", d->admin_port);
	return !d->admin_port || http_url_parse(url, &d->admin_url);
}

int daemon_stop(struct daemon *d)
{
	int st;
	if (d->pid <= 0)
		return -1;
	kill(d->pid, SIGTERM);
	if (waitpid(d->pid, &st, 0) != d->pid)
		return -1;
	t_forget(d->pid);
	d->pid = 0;
	if (WIFSIGNALED(st))
		return 128 + WTERMSIG(st);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void daemon_dump_log(const struct daemon *d)
{
	char *out = NULL;
	t_run(&out, "tail -n 40 '%s'", d->log);
	fprintf(stderr, "--- %s ---\n%s---\n", d->log, out ? out : "");
	free(out);
}

char *t_pem_rewrap(const char *pem, size_t width, const char *eol)
{
	const char *begin = strstr(pem, "-----BEGIN "), *end = strstr(pem, "-----END ");
	const char *b1 = begin ? strchr(begin, '\n') : NULL,
	           *e1 = end ? strstr(end + 9, "-----") : NULL;
	size_t k = 0, col = 0, blen = begin && b1 ? (size_t)(b1 - begin) : 0;
	char *out;

	if (!b1 || !e1 || end < b1)
		return NULL;
	blen -= blen && begin[blen - 1] == '\r';
	out = malloc(strlen(pem) * 3 + 16);
	if (!out)
		return NULL;
	memcpy(out, begin, blen);
	k = blen;
	k += (size_t)sprintf(out + k, "%s", eol);
	for (const char *p = b1 + 1; p < end; p++) {
		if (*p == '\r' || *p == '\n')
			continue;
		if (width && col == width) {
			k += (size_t)sprintf(out + k, "%s", eol);
			col = 0;
		}
		out[k++] = *p;
		col++;
	}
	k += (size_t)sprintf(out + k, "%s", eol);
	memcpy(out + k, end, (size_t)(e1 + 5 - end));
	k += (size_t)(e1 + 5 - end);
	out[k] = '\0';
	return out;
}

unsigned t_free_port(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof(a);
	unsigned port = 0;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&a, &len) == 0)
		port = ntohs(a.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}
