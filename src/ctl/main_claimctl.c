/*
 * claimctl: the operator's tool. Each command is a small function over the core
 * library; it reads the same config file as the daemon. Errors go to stderr as
 * FILE:LINE: reason where there is a line to name; exit status 0 means success.
 */
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/secure.h"
#include "lib/csvimport.h"
#include "db/db.h"
#include "db/db_claims.h"
#include "db/db_devices.h"
#include "db/db_users.h"
#include "sim/devca.h"
#include "sim/devidp.h"
#include "lib/log.h"
#include "lib/util.h"
#include "ctl.h"

static const char *config_path = "/etc/claimd/claimd.yaml";

struct claimd_config *ctl_config(void)
{
	char err[1024];
	struct claimd_config *c = config_load(config_path, err, sizeof(err));
	if (!c)
		fprintf(stderr, "%s\n", err);
	return c;
}

static int cmd_migrate(void)
{
	struct claimd_config *c = ctl_config();
	char err[1024];
	int applied = 0, rc;

	if (!c)
		return 1;
	rc = db_migrate(c->db_url, &applied, err, sizeof(err));
	config_free(c);
	if (rc < 0) {
		fprintf(stderr, "migrate: %s\n", err);
		return 1;
	}
	printf("migrate: %d migration(s) applied, schema is current\n", applied);
	return 0;
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

	efuse_seal(st->secrets, row->mac, row->efuse_key, sealed);
	efuse_tag(st->secrets, row->mac, row->efuse_key, tag);
	if (db_import_row(st->db, row->line, row->mac, row->platform, sealed, tag) < DB_NO_ROWS) {
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

static int cmd_import(int argc, char **argv)
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
	if (db_import_begin(st.db) < DB_NO_ROWS) {
		fprintf(stderr, "%s: cannot start the import\n", st.file);
		goto out;
	}
	if (csv_read_stream(f, c->extra_platforms, import_row, import_error, &st, &res) < 0 ||
	    st.failed_db) {
		db_import_abort(st.db);
		progress_clear(&st.p);
		fprintf(stderr, "%s: nothing stored\n", st.file);
		goto out;
	}
	if (res.errors && !skip) {
		db_import_abort(st.db);
		progress_clear(&st.p);
		fprintf(stderr,
		        "%s: %ld invalid row(s); nothing stored (--skip-invalid to import "
		        "the valid ones)\n",
		        st.file, res.errors);
		goto out;
	}
	progress_db_start(&st.p, res.rows);
	s = db_import_finish(st.db, replace, skip, import_conflict, &st.rep, &counts);
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

/*
 * The options of the dev-* commands: --out DIR (required), --key TYPE, and --kid KID
 * where @p kid is not NULL. Returns 0, or 2 (usage) for anything else.
 */
static int dev_opts(int argc, char **argv, const char **out, const char **key, const char **kid)
{
	static const struct option opts[] = {{"out", required_argument, NULL, 'o'},
	                                     {"key", required_argument, NULL, 'k'},
	                                     {"kid", required_argument, NULL, 'i'},
	                                     {NULL, 0, NULL, 0}};
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'o')
			*out = optarg;
		else if (opt == 'k')
			*key = optarg;
		else if (opt == 'i' && kid)
			*kid = optarg;
		else {
			ctl_usage_of(argv[0], stderr);
			return 2;
		}
	}
	if (!*out || optind != argc) {
		ctl_usage_of(argv[0], stderr);
		return 2;
	}
	return 0;
}

static int cmd_devca(int argc, char **argv)
{
	const char *out = NULL, *key = "ec";
	char err[512];

	if (dev_opts(argc, argv, &out, &key, NULL) != 0)
		return 2;
	if (devca_create(out, key, err, sizeof(err)) < 0) {
		fprintf(stderr, "dev-ca: %s\n", err);
		return 1;
	}
	printf("dev-ca: wrote %s/{root,intermediate}.{pem,key} (%s)\n", out, key);
	return 0;
}

struct db *ctl_db(void)
{
	char err[1024];
	struct claimd_config *c = ctl_config();
	struct db *db = c ? db_connect(c->db_url, true, err, sizeof(err)) : NULL;
	if (c && !db)
		fprintf(stderr, "%s\n", err);
	config_free(c);
	return db;
}

static int cmd_unlock(const char *arg)
{
	char mac[MAC_LEN + 1];
	if (!mac_normalize(mac, arg, strlen(arg))) {
		fprintf(stderr, "devices unlock: expected a MAC address\n");
		return 2;
	}
	struct db *db = ctl_db();
	if (!db)
		return 1;
	enum db_status s = db_mac_unlock(db, mac);
	db_close(db);
	if (s < DB_NO_ROWS)
		return 1;
	printf("devices unlock: %s %s\n", mac, s == DB_OK ? "unlocked" : "was not locked");
	return 0;
}

static int cmd_quota(int argc, char **argv)
{
	char *end;
	if (argc != 4 || strcmp(argv[1], "quota") != 0) {
		ctl_usage_of("users quota", stderr);
		return 2;
	}
	unsigned long n = strtoul(argv[3], &end, 10);
	if (*end || !argv[3][0] || n > 1000000 || strlen(argv[2]) > 255 || !argv[2][0]) {
		fprintf(stderr, "users quota: N must be 0-1000000, USER 1-255 characters\n");
		return 2;
	}
	struct db *db = ctl_db();
	if (!db)
		return 1;
	enum db_status s = db_user_set_quota(db, argv[2], (unsigned)n);
	db_close(db);
	if (s < DB_NO_ROWS)
		return 1;
	printf("users quota: %s may hold %lu device(s)%s\n", argv[2], n, n ? "" : " (unlimited)");
	return 0;
}

static void print_node(struct db *db, const struct node_info *n)
{
	struct cert_info *certs = NULL;
	size_t ncerts = 0;

	printf("node %s  mac %s  user %s  platform %s  created %s  claimed %s  certificates "
	       "%lld%s%s\n",
	       n->node_id, n->mac, n->user_id[0] ? n->user_id : "(self-claimed)",
	       n->platform[0] ? n->platform : "-", n->created_at,
	       n->claimed_at[0] ? n->claimed_at : "never", (long long)n->certificates,
	       n->policies[0] ? "  policies " : "", n->policies);
	if (!db || db_node_certs(db, n->node_id, &certs, &ncerts) != DB_OK)
		return;
	for (size_t i = 0; i < ncerts; i++)
		printf("    certificate %s  issued %s  valid %s .. %s  key sha256 %.16s...\n",
		       certs[i].serial, certs[i].issued_at, certs[i].not_before, certs[i].not_after,
		       certs[i].key_sha256);
	free(certs);
}

static int cmd_nodes(int argc, char **argv)
{
	char mac[MAC_LEN + 1];
	const char *key;
	bool list;

	if (argc == 4 && strcmp(argv[1], "list") == 0 && strcmp(argv[2], "--user") == 0) {
		list = true;
		key = argv[3];
	} else if (argc == 3 && strcmp(argv[1], "show") == 0) {
		list = false;
		key = mac_normalize(mac, argv[2], strlen(argv[2])) ? mac : argv[2];
	} else {
		ctl_usage_of(argc >= 2 && strcmp(argv[1], "show") == 0 ? "nodes show"
		                                                       : "nodes list",
		             stderr);
		return 2;
	}
	struct db *db = ctl_db();
	if (!db)
		return 1;
	/* Listing prints the nodes; showing adds each node's certificates. */
	struct node_info *nodes = NULL;
	size_t n = 0;
	enum db_status s = db_nodes_find(db, list ? key : NULL, list ? NULL : key, &nodes, &n);
	for (size_t i = 0; i < n; i++)
		print_node(list ? NULL : db, &nodes[i]);
	free(nodes);
	db_close(db);
	if (s == DB_NO_ROWS)
		fprintf(stderr, "nodes: none found\n");
	return s == DB_OK ? 0 : 1;
}

static int cmd_devidp(int argc, char **argv)
{
	const char *out = NULL, *key = "ec", *kid = "dev-1";
	char err[512];

	if (dev_opts(argc, argv, &out, &key, &kid) != 0)
		return 2;
	if (devidp_create(out, key, kid, err, sizeof(err)) < 0) {
		fprintf(stderr, "dev-idp: %s\n", err);
		return 1;
	}
	printf("dev-idp: wrote %s/idp.key and %s/jwks.json (kid %s)\n", out, out, kid);
	return 0;
}

static int cmd_devtoken(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"idp", required_argument, NULL, 'd'},        {"issuer", required_argument, NULL, 'i'},
	    {"audience", required_argument, NULL, 'a'},   {"user", required_argument, NULL, 'u'},
	    {"kid", required_argument, NULL, 'k'},        {"ttl", required_argument, NULL, 't'},
	    {"user-claim", required_argument, NULL, 'c'}, {NULL, 0, NULL, 0}};
	struct devtoken t = {.kid = "dev-1", .ttl = 3600};
	const char *dir = NULL;
	char keyfile[4096], err[256];
	int opt;

	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'd':
			dir = optarg;
			break;
		case 'i':
			t.issuer = optarg;
			break;
		case 'a':
			t.audience = optarg;
			break;
		case 'u':
			t.user = optarg;
			break;
		case 'k':
			t.kid = optarg;
			break;
		case 't':
			t.ttl = atol(optarg);
			break;
		case 'c':
			t.user_claim = optarg;
			break;
		default:
			ctl_usage_of("dev-token", stderr);
			return 2;
		}
	}
	if (!dir || !t.issuer || !t.user || optind != argc) {
		ctl_usage_of("dev-token", stderr);
		return 2;
	}
	snprintf(keyfile, sizeof(keyfile), "%s/idp.key", dir);
	t.key_file = keyfile;
	char *tok = devidp_token(&t, err, sizeof(err));
	if (!tok) {
		fprintf(stderr, "dev-token: %s\n", err);
		return 1;
	}
	printf("%s\n", tok);
	free(tok);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {{"config", required_argument, NULL, 'c'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {"version", no_argument, NULL, 'V'},
	                                     {NULL, 0, NULL, 0}};
	int c;

	while ((c = getopt_long(argc, argv, "+c:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'h':
			ctl_usage(stdout);
			return 0;
		case 'V':
			printf("claimctl %s\n", CLAIMD_VERSION);
			return 0;
		default:
			ctl_usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		ctl_usage(stderr);
		return 2;
	}
	argc -= optind;
	argv += optind;
	/* Help before anything else: no config, no database, no argument checks. */
	char name[64];
	ctl_command_name(argc, argv, name, sizeof(name));
	if (ctl_help_wanted(argc, argv)) {
		if (!ctl_command_known(name)) {
			fprintf(stderr, "claimctl: unknown command '%s'\n", argv[0]);
			ctl_usage(stderr);
			return 2;
		}
		ctl_usage_of(name, stdout);
		return 0;
	}
	if (secure_init() < 0) {
		fprintf(stderr, "claimctl: cannot initialise libsodium\n");
		return 1;
	}
	if (strcmp(argv[0], "migrate") == 0 && argc == 1)
		return cmd_migrate();
	if (strcmp(name, "devices import") == 0)
		return cmd_import(argc - 1, argv + 1);
	if (strcmp(name, "devices unlock") == 0) {
		if (argc == 3)
			return cmd_unlock(argv[2]);
	} else if (strcmp(name, "devices list") == 0) {
		return ctl_devices_list(argc - 1, argv + 1);
	} else if (strcmp(name, "devices show") == 0) {
		return ctl_devices_show(argc - 1, argv + 1);
	} else if (strcmp(argv[0], "keygen") == 0 && argc == 1) {
		char key[64];
		secrets_keygen(key, sizeof(key));
		printf("%s\n", key);
		secure_wipe(key, sizeof(key));
		return 0;
	} else if (strcmp(argv[0], "dev-ca") == 0) {
		return cmd_devca(argc, argv);
	} else if (strcmp(argv[0], "dev-idp") == 0) {
		return cmd_devidp(argc, argv);
	} else if (strcmp(argv[0], "dev-token") == 0) {
		return cmd_devtoken(argc, argv);
	} else if (strcmp(argv[0], "users") == 0) {
		return cmd_quota(argc, argv);
	} else if (strcmp(name, "nodes release") == 0) {
		return ctl_nodes_release(argc - 1, argv + 1);
	} else if (strcmp(name, "nodes export") == 0) {
		return ctl_nodes_export(argc - 1, argv + 1);
	} else if (strcmp(name, "audit export") == 0) {
		return ctl_audit_export(argc - 1, argv + 1);
	} else if (strcmp(argv[0], "nodes") == 0) {
		return cmd_nodes(argc, argv);
	} else if (strcmp(argv[0], "certs") == 0) {
		return ctl_certs(argc, argv);
	} else if (strcmp(argv[0], "crl") == 0) {
		return ctl_crl(argc, argv);
	} else if (strcmp(argv[0], "config-example") == 0 && argc == 1) {
		config_write_example(stdout);
		return 0;
	}
	if (ctl_command_known(name)) {
		ctl_usage_of(name, stderr);
		return 2;
	}
	fprintf(stderr, "claimctl: unknown command '%s'\n", argv[0]);
	ctl_usage(stderr);
	return 2;
}
