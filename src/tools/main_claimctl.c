/*
 * claimctl: the operator's tool. Each command is a small function over the core
 * library; it reads the same config file as the daemon. Errors go to stderr as
 * FILE:LINE: reason where there is a line to name; exit status 0 means success.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "claimd/config.h"
#include "claimd/crypto.h"
#include "claimd/csvimport.h"
#include "claimd/db.h"
#include "claimd/db_claims.h"
#include "claimd/db_devices.h"
#include "claimd/db_users.h"
#include "claimd/devca.h"
#include "claimd/devidp.h"
#include "claimd/log.h"
#include "claimd/util.h"
#include "ctl.h"

static const char *config_path = "/etc/claimd/claimd.yaml";

static void usage(FILE *f)
{
	fputs(
	    "usage: claimctl [-c FILE] COMMAND [ARGS]\n"
	    "  migrate                         create or upgrade the database schema\n"
	    "  devices import [--replace] [--skip-invalid] FILE.csv|-\n"
	    "                                  register manufactured chips "
	    "(mac,platform,efuse_key)\n"
	    "  users quota USER N              let USER hold N devices (0 = unlimited)\n"
	    "  nodes list --user USER          the nodes USER holds\n"
	    "  nodes show NODE_ID|MAC          a node (or every node of a MAC) and its "
	    "certificates\n"
	    "  nodes release NODE_ID           revoke its certificates (cessationOfOperation) "
	    "and free its (user, MAC)\n"
	    "  certs list [--node NODE_ID|--mac MAC] [--revoked] [--json]\n"
	    "                                  issued certificates and their status\n"
	    "  certs revoke (SERIAL...|--node NODE_ID|--mac MAC) [--reason R]\n"
	    "                                  revoke (R: an RFC 5280 reason name; idempotent)\n"
	    "  crl [--der]                     print the current CRL (PEM unless --der)\n"
	    "  nodes export [--user USER]      CSV node_id,mac,user,platform,certs of live nodes\n"
	    "  audit export [--since T] [--until T] [--format jsonl|csv]\n"
	    "                                  the audit trail, oldest first (T: RFC 3339)\n"
	    "  devices unlock MAC              lift a wrong-answer lockout\n"
	    "  keygen                          print a new secrets key\n"
	    "  dev-idp --out DIR [--key ec|rsa] [--kid KID]\n"
	    "                                  make a development identity provider (key + JWKS)\n"
	    "  dev-token --idp DIR --issuer ISS --user USER [--audience AUD] [--kid KID]\n"
	    "            [--ttl SECONDS] [--user-claim NAME]\n"
	    "                                  print an access token from that provider\n"
	    "  dev-ca --out DIR [--key ec|rsa2048|rsa3072]\n"
	    "                                  make a development root + intermediate CA\n"
	    "  config-example                  print the documented example config\n"
	    "options: -c, --config FILE (default /etc/claimd/claimd.yaml), -h, -V\n",
	    f);
}

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

struct import_reporter {
	const char *file;
};

struct import_state {
	struct import_reporter rep; /* where conflicts are reported */
	const char *file;
	struct secrets *secrets;
	struct db *db;
	bool failed_db;
	bool progress;
	long rows;
	uint64_t started, last;
};

static void import_error(void *arg, long line, const char *reason)
{
	struct import_state *st = arg;
	if (st->progress)
		fputs("\r\033[K", stderr);
	fprintf(stderr, "%s:%ld: %s\n", st->file, line, reason);
}

static void import_conflict(struct import_reporter *r, long line, const char *mac, const char *what)
{
	fprintf(stderr, "%s:%ld: %s: %s\n", r->file, line, mac, what);
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
	if (st->progress && (st->rows & 1023) == 0) {
		uint64_t now = now_ms_monotonic();
		if (now - st->last >= 250) {
			double secs = (double)(now - st->started) / 1000.0;
			fprintf(stderr, "\r%ld rows read (%.0f rows/s)", st->rows,
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
	struct import_state st = {0};
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
		else
			return 2;
	}
	if (optind + 1 != argc) {
		usage(stderr);
		return 2;
	}
	st.file = st.rep.file = argv[optind];
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
	st.progress = isatty(STDERR_FILENO);
	st.started = st.last = now_ms_monotonic();
	if (db_import_begin(st.db) < DB_NO_ROWS) {
		fprintf(stderr, "%s: cannot start the import\n", st.file);
		goto out;
	}
	if (csv_read_stream(f, c->extra_platforms, import_row, import_error, &st, &res) < 0 ||
	    st.failed_db) {
		db_import_abort(st.db);
		fprintf(stderr, "%s: nothing stored\n", st.file);
		goto out;
	}
	if (st.progress)
		fputs("\r\033[K", stderr);
	if (res.errors && !skip) {
		db_import_abort(st.db);
		fprintf(stderr,
		        "%s: %ld invalid row(s); nothing stored (--skip-invalid to import "
		        "the valid ones)\n",
		        st.file, res.errors);
		goto out;
	}
	s = db_import_finish(st.db, replace, skip, import_conflict, &st.rep, &counts);
	if (s == DB_NO_ROWS) {
		fprintf(stderr, "%s: %ld conflicting row(s); nothing stored\n", st.file,
		        counts.conflicts);
		goto out;
	}
	if (s < DB_NO_ROWS) {
		fprintf(stderr, "%s: database error; nothing stored\n", st.file);
		goto out;
	}
	double secs = (double)(now_ms_monotonic() - st.started) / 1000.0;
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
		else
			return 2;
	}
	if (!*out) {
		usage(stderr);
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
		usage(stderr);
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
		usage(stderr);
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
			return 2;
		}
	}
	if (!dir || !t.issuer || !t.user) {
		usage(stderr);
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
			usage(stdout);
			return 0;
		case 'V':
			printf("claimctl %s\n", CLAIMD_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	if (crypto_init() < 0) {
		fprintf(stderr, "claimctl: cannot initialise libsodium\n");
		return 1;
	}
	argc -= optind;
	argv += optind;
	if (strcmp(argv[0], "migrate") == 0 && argc == 1)
		return cmd_migrate();
	if (strcmp(argv[0], "devices") == 0 && argc >= 2 && strcmp(argv[1], "import") == 0)
		return cmd_import(argc - 1, argv + 1);
	if (strcmp(argv[0], "devices") == 0 && argc == 3 && strcmp(argv[1], "unlock") == 0)
		return cmd_unlock(argv[2]);
	if (strcmp(argv[0], "keygen") == 0 && argc == 1) {
		char key[64];
		secrets_keygen(key, sizeof(key));
		printf("%s\n", key);
		crypto_wipe(key, sizeof(key));
		return 0;
	}
	if (strcmp(argv[0], "dev-ca") == 0)
		return cmd_devca(argc, argv);
	if (strcmp(argv[0], "dev-idp") == 0)
		return cmd_devidp(argc, argv);
	if (strcmp(argv[0], "dev-token") == 0)
		return cmd_devtoken(argc, argv);
	if (strcmp(argv[0], "users") == 0)
		return cmd_quota(argc, argv);
	if (strcmp(argv[0], "nodes") == 0 && argc >= 2 && strcmp(argv[1], "release") == 0)
		return ctl_nodes_release(argc - 1, argv + 1);
	if (strcmp(argv[0], "nodes") == 0 && argc >= 2 && strcmp(argv[1], "export") == 0)
		return ctl_nodes_export(argc - 1, argv + 1);
	if (strcmp(argv[0], "audit") == 0 && argc >= 2 && strcmp(argv[1], "export") == 0)
		return ctl_audit_export(argc - 1, argv + 1);
	if (strcmp(argv[0], "nodes") == 0)
		return cmd_nodes(argc, argv);
	if (strcmp(argv[0], "certs") == 0)
		return ctl_certs(argc, argv);
	if (strcmp(argv[0], "crl") == 0)
		return ctl_crl(argc, argv);
	if (strcmp(argv[0], "config-example") == 0 && argc == 1) {
		config_write_example(stdout);
		return 0;
	}
	usage(stderr);
	return 2;
}
