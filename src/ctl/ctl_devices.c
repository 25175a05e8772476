/*
 * claimctl's device commands: devices import (registration, operator.h), list, show
 * and unlock. Arguments are parsed and results printed here; what is stored and
 * audited is decided in src/core/operator.c.
 */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "core/operator.h"
#include "core/revocation.h"
#include "ctl.h"
#include "db/db_devices.h"
#include "db/db_lifecycle.h"
#include "db/db_users.h"
#include "lib/config.h"
#include "lib/csvimport.h"
#include "lib/secure.h"
#include "lib/util.h"

struct device_sink {
	json_t *arr; /* --json: the array being built; else lines go to stdout */
	long rows;
};

static int list_one(struct device_sink *s, const struct device_entry *d)
{
	char reg[21];

	ctl_rfc3339(reg, d->registered_at);
	s->rows++;
	if (s->arr) {
		json_t *e = json_pack("{s:s, s:s, s:s, s:b, s:I}", "mac", d->mac, "platform",
		                      d->platform, "registered", reg, "claimed", d->claimed,
		                      "nodes", (json_int_t)d->nodes);
		return e && json_array_append_new(s->arr, e) == 0 ? 0 : -1;
	}
	printf("%s  %-9s  %s  %-9s  nodes %lld\n", d->mac, d->platform, reg,
	       d->claimed ? "claimed" : "unclaimed", (long long)d->nodes);
	return ferror(stdout) ? -1 : 0;
}

int ctl_devices_list(int argc, char **argv)
{
	static const struct option opts[] = {{"platform", required_argument, NULL, 'p'},
	                                     {"claimed", no_argument, NULL, 'c'},
	                                     {"unclaimed", no_argument, NULL, 'u'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {NULL, 0, NULL, 0}};
	char platform[PLATFORM_MAX + 1];
	struct device_filter f = {NULL, DEVICES_ANY};
	struct device_sink s = {NULL, 0};
	bool json = false;
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'p':
			/* Stored canonical (canon.c): ESP32-S3 finds esp32s3. */
			if (!platform_normalize(platform, optarg, strlen(optarg))) {
				fprintf(stderr,
				        "devices list: --platform: '%s' is not a platform name\n",
				        optarg);
				return 2;
			}
			f.platform = platform;
			break;
		case 'c':
		case 'u':
			if (f.claimed != DEVICES_ANY) {
				fputs(
				    "devices list: --claimed and --unclaimed exclude each other\n",
				    stderr);
				return 2;
			}
			f.claimed = c == 'c' ? DEVICES_CLAIMED : DEVICES_UNCLAIMED;
			break;
		case 'j':
			json = true;
			break;
		default:
			ctl_usage_of("devices list", stderr);
			return 2;
		}
	}
	if (optind != argc) {
		ctl_usage_of("devices list", stderr);
		return 2;
	}
	struct db *db = ctl_db();
	if (!db)
		return 1;
	if (json && !(s.arr = json_array())) {
		db_close(db);
		return 1;
	}
	enum db_status st = db_devices_list(db, &f, list_one, &s);
	db_close(db);
	if (st < DB_NO_ROWS) {
		json_decref(s.arr);
		fprintf(stderr, "devices list: failed after %ld device(s)\n", s.rows);
		return 1;
	}
	if (s.arr) {
		char *text = json_dumps(s.arr, JSON_INDENT(2));
		printf("%s\n", text ? text : "[]");
		free(text);
		json_decref(s.arr);
	}
	return fflush(stdout) == 0 ? 0 : 1;
}

/* Prints the certificates of @p mac, with their status; false on a database error. */
static bool show_certs(struct db *db, const char *mac)
{
	struct cert_filter f = {NULL, mac, false, NULL};
	struct cert_row *rows = NULL;
	size_t n = 0;
	enum db_status s = db_certs_list(db, &f, &rows, &n);

	if (s < DB_NO_ROWS)
		return false;
	printf("certificates: %zu\n", n);
	for (size_t i = 0; i < n; i++) {
		char nb[21], na[21], ra[21];
		printf("  %s  node %s  %s  %s .. %s", rows[i].serial, rows[i].node_id,
		       cert_status_name(&rows[i]), ctl_rfc3339(nb, rows[i].not_before),
		       ctl_rfc3339(na, rows[i].not_after));
		if (rows[i].revoked)
			printf("  revoked %s %s", ctl_rfc3339(ra, rows[i].revoked_at),
			       crl_reason_name((int)rows[i].reason));
		putchar('\n');
	}
	free(rows);
	return true;
}

int ctl_devices_show(int argc, char **argv)
{
	char mac[MAC_LEN + 1], t1[21], t2[21];
	struct device_detail d;
	struct node_info *nodes = NULL;
	size_t n = 0;
	int rc = 1;

	if (argc != 2) {
		ctl_usage_of("devices show", stderr);
		return 2;
	}
	if (!mac_normalize(mac, argv[1], strlen(argv[1]))) {
		fprintf(stderr, "devices show: '%s' is not a MAC address\n", argv[1]);
		return 2;
	}
	struct db *db = ctl_db();
	if (!db)
		return 1;
	enum db_status s = db_device_detail(db, mac, &d);
	if (s < DB_NO_ROWS)
		goto out;
	enum db_status sn = db_nodes_find(db, NULL, mac, &nodes, &n);
	if (sn < DB_NO_ROWS)
		goto out;
	if (s == DB_NO_ROWS && n == 0) {
		fprintf(stderr, "devices show: %s is not registered and has no nodes\n", mac);
		goto out;
	}
	printf("mac %s\n", mac);
	if (s == DB_OK) {
		printf("platform %s\nregistered %s (last changed %s)\n", d.d.platform,
		       ctl_rfc3339(t1, d.d.registered_at), ctl_rfc3339(t2, d.updated_at));
		if (d.locked)
			printf("lockout: locked until %s (lock %lld; claimctl devices unlock %s)\n",
			       ctl_rfc3339(t1, d.locked_until), (long long)d.lockouts, mac);
		else
			printf("lockout: not locked (%lld wrong answer(s) counted, %lld lock(s) "
			       "so far)\n",
			       (long long)d.failures, (long long)d.lockouts);
	} else {
		printf("registered: no (user-claimed only)\n");
	}
	printf("nodes: %zu\n", n);
	for (size_t i = 0; i < n; i++)
		printf("  %s  user %s  platform %s  created %s  claimed %s\n", nodes[i].node_id,
		       nodes[i].user_id[0] ? nodes[i].user_id : "(self-claimed)",
		       nodes[i].platform[0] ? nodes[i].platform : "-", nodes[i].created_at,
		       nodes[i].claimed_at[0] ? nodes[i].claimed_at : "never");
	rc = show_certs(db, mac) ? 0 : 1;
out:
	free(nodes);
	db_close(db);
	return rc;
}

/*
 * The progress line of an import, on a terminal only. While rows are read it counts
 * them (with a percentage when the input is a regular file); while the database checks
 * and merges them, which is most of a large import's time and one long wait on the
 * server, a thread keeps the line moving with the seconds spent so far.
 */
struct progress {
	bool on;
	pthread_mutex_t lock; /* one writer of stderr at a time: the ticker or a report */
	pthread_cond_t wake;
	pthread_t thread;
	bool running, stop;
	long rows;
	uint64_t started, phase_started;
	off_t size; /* bytes of a regular input file; 0 when not known */
};

struct import_reporter {
	const char *file;
	struct progress *p;
};

struct import_state {
	struct import_reporter rep; /* where conflicts are reported */
	const char *file;
	struct secrets *secrets;
	struct db *db;
	FILE *in;
	bool failed_db;
	struct progress p;
	long rows;
	uint64_t last;
};

/* Clears the progress line so that a message starts at the left margin. */
static void progress_clear(struct progress *p)
{
	if (p->on)
		fputs("\r\033[K", stderr);
}

static void *progress_tick(void *arg)
{
	struct progress *p = arg;

	pthread_mutex_lock(&p->lock);
	while (!p->stop) {
		uint64_t now = now_ms_monotonic();
		fprintf(stderr,
		        "\r\033[K%ld rows read in %.1f s; checking and storing them in the "
		        "database (%.0f s)",
		        p->rows, (double)(p->phase_started - p->started) / 1000.0,
		        (double)(now - p->phase_started) / 1000.0);
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 250 * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&p->wake, &p->lock, &ts);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* The database phase begins: the ticker takes over the line. */
static void progress_db_start(struct progress *p, long rows)
{
	if (!p->on)
		return;
	p->rows = rows;
	p->phase_started = now_ms_monotonic();
	p->running = pthread_create(&p->thread, NULL, progress_tick, p) == 0;
}

static void progress_stop(struct progress *p)
{
	if (!p->on)
		return;
	if (p->running) {
		pthread_mutex_lock(&p->lock);
		p->stop = true;
		pthread_cond_signal(&p->wake);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
		p->running = false;
	}
	progress_clear(p);
}

static void import_error(void *arg, long line, const char *reason)
{
	struct import_state *st = arg;
	progress_clear(&st->p);
	fprintf(stderr, "%s:%ld: %s\n", st->file, line, reason);
}

static void import_conflict(struct import_reporter *r, long line, const char *mac, const char *what)
{
	/* Called while the ticker runs. */
	pthread_mutex_lock(&r->p->lock);
	progress_clear(r->p);
	fprintf(stderr, "%s:%ld: %s: %s\n", r->file, line, mac, what);
	pthread_mutex_unlock(&r->p->lock);
}

static int import_row(void *arg, const struct csv_row *row)
{
	struct import_state *st = arg;
	uint8_t sealed[SEALED_EFUSE_BYTES], tag[EFUSE_TAG_BYTES];
	struct operator_sealer by = {.local = st->secrets};

	if (operator_seal(&by, row->mac, row->efuse_key, sealed, tag) != CE_OK ||
	    operator_register_row(st->db, row, sealed, tag) < DB_NO_ROWS) {
		st->failed_db = true;
		return -1;
	}
	st->rows++;
	if (st->p.on && (st->rows & 1023) == 0) {
		uint64_t now = now_ms_monotonic();
		if (now - st->last >= 250) {
			double secs = (double)(now - st->p.started) / 1000.0;
			long pos = st->p.size > 0 ? ftell(st->in) : -1;
			char pct[32] = "";
			if (pos >= 0)
				snprintf(pct, sizeof(pct), " %.0f%%,",
				         100.0 * (double)pos / (double)st->p.size);
			fprintf(stderr, "\r\033[K%ld rows read (%s %.0f rows/s)", st->rows, pct,
			        secs > 0 ? (double)st->rows / secs : 0.0);
			st->last = now;
		}
	}
	return 0;
}

int ctl_devices_import(int argc, char **argv)
{
	static const struct option opts[] = {{"replace", no_argument, NULL, 'r'},
	                                     {"skip-invalid", no_argument, NULL, 's'},
	                                     {NULL, 0, NULL, 0}};
	bool replace = false, skip = false;
	struct import_state st = {
	    .p = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER}};
	struct stat sb;
	struct claimd_config *c = NULL;
	struct csv_result res;
	struct import_counts counts;
	FILE *f = NULL;
	char err[1024];
	int opt, rc = 1;
	enum db_status s;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'r')
			replace = true;
		else if (opt == 's')
			skip = true;
		else {
			ctl_usage_of("devices import", stderr);
			return 2;
		}
	}
	if (optind + 1 != argc) {
		ctl_usage_of("devices import", stderr);
		return 2;
	}
	st.file = st.rep.file = argv[optind];
	st.rep.p = &st.p;
	if (!(c = ctl_config()))
		return 1;
	if (!(st.secrets = secrets_load(c->secrets_key_file, err, sizeof(err)))) {
		struct stat ks;
		char me[64], owner[64];
		/* Not the key's owner: the way out is another user, not a chown (which
		 * key_file_access() suggests to a daemon) that would let the network
		 * process read the key. */
		if (access(c->secrets_key_file, R_OK) != 0 && errno == EACCES &&
		    stat(c->secrets_key_file, &ks) == 0)
			fprintf(
			    stderr,
			    "%s: permission denied: claimctl runs as %s and the key is owned by "
			    "%s\ndevices import: run it as the secrets key's owner (%s), with a "
			    "database role (docs/install.md, \"Registering chips\"); do not give "
			    "the key to the network process's user\n",
			    c->secrets_key_file, user_name(geteuid(), me, sizeof(me)),
			    user_name(ks.st_uid, owner, sizeof(owner)), owner);
		else
			fprintf(stderr, "%s\n", err);
		goto out;
	}
	f = strcmp(st.file, "-") == 0 ? stdin : fopen(st.file, "r");
	if (!f) {
		perror(st.file);
		goto out;
	}
	if (!(st.db = db_connect(c->db_url, true, err, sizeof(err)))) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	st.in = f;
	st.p.on = isatty(STDERR_FILENO);
	st.p.started = now_ms_monotonic();
	st.last = 0; /* the first line comes at once */
	if (fstat(fileno(f), &sb) == 0 && S_ISREG(sb.st_mode))
		st.p.size = sb.st_size;
	if (operator_register_begin(st.db) < DB_NO_ROWS) {
		fprintf(stderr, "%s: cannot start the import\n", st.file);
		goto out;
	}
	if (csv_read_stream(f, c->extra_platforms, import_row, import_error, &st, &res) < 0 ||
	    st.failed_db) {
		operator_register_abort(st.db);
		progress_clear(&st.p);
		fprintf(stderr, "%s: nothing stored\n", st.file);
		goto out;
	}
	if (res.errors && !skip) {
		operator_register_abort(st.db);
		progress_clear(&st.p);
		fprintf(stderr,
		        "%s: %ld invalid row(s); nothing stored (--skip-invalid to import "
		        "the valid ones)\n",
		        st.file, res.errors);
		goto out;
	}
	progress_db_start(&st.p, res.rows);
	struct operator_who who = ctl_who();
	s = operator_register_finish(st.db, &who, replace, skip, import_conflict, &st.rep, &counts);
	progress_stop(&st.p);
	if (s == DB_NO_ROWS) {
		fprintf(stderr, "%s: %ld conflicting row(s); nothing stored\n", st.file,
		        counts.conflicts);
		goto out;
	}
	if (s < DB_NO_ROWS) {
		fprintf(stderr, "%s: database error; nothing stored\n", st.file);
		goto out;
	}
	double secs = (double)(now_ms_monotonic() - st.p.started) / 1000.0;
	printf("%s: %ld rows in %.1f s: %ld added, %ld replaced, %ld unchanged, %ld skipped\n",
	       st.file, res.rows, secs, counts.added, counts.replaced, counts.unchanged,
	       res.errors + counts.conflicts);
	rc = 0;
out:
	if (f && f != stdin)
		fclose(f);
	db_close(st.db);
	secrets_free(st.secrets);
	config_free(c);
	return rc;
}

int ctl_devices_unlock(int argc, char **argv)
{
	if (argc != 2) {
		ctl_usage_of("devices unlock", stderr);
		return 2;
	}
	const char *arg = argv[1];
	char mac[MAC_LEN + 1];
	if (!mac_normalize(mac, arg, strlen(arg))) {
		fprintf(stderr, "devices unlock: expected a MAC address\n");
		return 2;
	}
	struct db *db = ctl_db();
	if (!db)
		return 1;
	struct operator_who who = ctl_who();
	enum db_status s = operator_unlock(db, &who, mac);
	db_close(db);
	if (s < DB_NO_ROWS)
		return 1;
	printf("devices unlock: %s %s\n", mac, s == DB_OK ? "unlocked" : "was not locked");
	return 0;
}
