/*
 * claimctl's certificate lifecycle commands: certs list, certs revoke, crl, nodes
 * release, nodes export and audit export. Arguments are checked here; the rules (reason names,
 * status names, when a CRL is re-issued) are src/core's and the statements src/db's.
 */
#include <csv.h>
#include <getopt.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "x509/ca.h"
#include "db/db_lifecycle.h"
#include "core/revocation.h"
#include "lib/util.h"
#include "ctl.h"

int ctl_flush_stdout(const char *what)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "%s: writing the output failed\n", what);
		return 1;
	}
	return 0;
}

const char *ctl_actor(void)
{
	static char who[96];
	const char *u = getenv("SUDO_USER");
	struct passwd *pw = NULL;

	if (!u || !*u) {
		pw = getpwuid(getuid());
		u = pw ? pw->pw_name : "unknown";
	}
	snprintf(who, sizeof(who), "claimctl:%.80s", u);
	return who;
}

/* RFC 3339 UTC of unix seconds @p t into @p out (21 bytes). */
static const char *rfc3339(char out[21], int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
	return out;
}

static void certs_usage(FILE *f)
{
	fputs("usage: claimctl certs list [--node NODE_ID|--mac MAC] [--revoked] [--json]\n"
	      "       claimctl certs revoke (SERIAL...|--node NODE_ID|--mac MAC) [--reason R]\n"
	      "  R is an RFC 5280 reason name: unspecified (default), keyCompromise, "
	      "cACompromise,\n"
	      "  affiliationChanged, superseded, cessationOfOperation, certificateHold,\n"
	      "  privilegeWithdrawn, aACompromise. Revoking is idempotent.\n",
	      f);
}

/* The options both subcommands share; returns -1 after printing why. */
struct certs_opts {
	const char *node;
	char mac[MAC_LEN + 1];
	bool has_mac, revoked, json;
	int reason;
};

static int certs_parse(int argc, char **argv, struct certs_opts *o, bool revoke)
{
	static const struct option opts[] = {{"node", required_argument, NULL, 'n'},
	                                     {"mac", required_argument, NULL, 'm'},
	                                     {"revoked", no_argument, NULL, 'r'},
	                                     {"json", no_argument, NULL, 'j'},
	                                     {"reason", required_argument, NULL, 'R'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	int c;

	memset(o, 0, sizeof(*o));
	optind = 0; /* GNU getopt: start afresh, permuting options after operands */
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			o->node = optarg;
			break;
		case 'm':
			if (!mac_normalize(o->mac, optarg, strlen(optarg))) {
				fprintf(stderr, "certs: --mac: expected a MAC address\n");
				return -1;
			}
			o->has_mac = true;
			break;
		case 'r':
			o->revoked = true;
			break;
		case 'j':
			o->json = true;
			break;
		case 'R':
			if (!revoke) {
				fprintf(stderr, "certs: --reason goes with revoke only\n");
				return -1;
			}
			if ((o->reason = crl_reason_from_name(optarg)) < 0 ||
			    o->reason == CRL_REASON_REMOVE_FROM_CRL) {
				fprintf(stderr,
				        "certs: --reason: '%s' is not an RFC 5280 reason name\n",
				        optarg);
				return -1;
			}
			break;
		case 'h':
			certs_usage(stdout);
			return 1;
		default:
			certs_usage(stderr);
			return -1;
		}
	}
	if (o->node && o->has_mac) {
		fprintf(stderr, "certs: --node and --mac exclude each other\n");
		return -1;
	}
	return 0;
}

static int certs_list(int argc, char **argv)
{
	struct certs_opts o;
	struct cert_row *rows = NULL;
	size_t n = 0;
	int rc = certs_parse(argc, argv, &o, false);

	if (rc != 0)
		return rc < 0 ? 2 : 0;
	if (optind != argc) {
		certs_usage(stderr);
		return 2;
	}
	struct db *db = ctl_db();
	if (!db)
		return 1;
	struct cert_filter f = {o.node, o.has_mac ? o.mac : NULL, o.revoked};
	enum db_status s = db_certs_list(db, &f, &rows, &n);
	db_close(db);
	if (s < DB_NO_ROWS)
		return 1;
	json_t *arr = o.json ? json_array() : NULL;
	for (size_t i = 0; i < n; i++) {
		const struct cert_row *r = &rows[i];
		char nb[21], na[21], ra[21];
		rfc3339(nb, r->not_before);
		rfc3339(na, r->not_after);
		if (arr) {
			json_t *e =
			    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "serial", r->serial,
			              "node_id", r->node_id, "mac", r->mac, "status",
			              cert_status_name(r), "not_before", nb, "not_after", na);
			if (e && r->revoked) {
				json_object_set_new(e, "revoked_at",
				                    json_string(rfc3339(ra, r->revoked_at)));
				json_object_set_new(e, "reason",
				                    json_string(crl_reason_name((int)r->reason)));
			}
			json_array_append_new(arr, e);
			continue;
		}
		printf("%s  %-22s  %-10s  %s  %s", r->serial, r->node_id, cert_status_name(r), nb,
		       na);
		if (r->revoked)
			printf("  revoked %s %s", rfc3339(ra, r->revoked_at),
			       crl_reason_name((int)r->reason));
		putchar('\n');
	}
	if (arr) {
		char *text = json_dumps(arr, JSON_INDENT(2));
		printf("%s\n", text ? text : "[]");
		free(text);
		json_decref(arr);
	}
	free(rows);
	return ctl_flush_stdout("certs list");
}

static int certs_revoke(int argc, char **argv)
{
	struct certs_opts o;
	char(*serials)[SERIAL_HEX_LEN + 1] = NULL;
	const char **ptrs = NULL;
	long matched = 0, revoked = 0;
	int rc = certs_parse(argc, argv, &o, true), n;

	if (rc != 0)
		return rc < 0 ? 2 : 0;
	n = argc - optind;
	if ((n > 0) + (o.node != NULL) + o.has_mac != 1 || o.revoked || o.json) {
		fprintf(stderr, "certs revoke: name SERIAL..., --node NODE_ID or --mac MAC\n");
		return 2;
	}
	if (n > 0 && (!(serials = calloc((size_t)n, sizeof(*serials))) ||
	              !(ptrs = calloc((size_t)n, sizeof(*ptrs))))) {
		free(serials);
		return 1;
	}
	for (int i = 0; i < n; i++) {
		if (!cert_serial_normalize(serials[i], argv[optind + i])) {
			fprintf(stderr, "certs revoke: '%s' is not a serial (32 hex digits)\n",
			        argv[optind + i]);
			free(serials);
			free(ptrs);
			return 2;
		}
		ptrs[i] = serials[i];
	}
	struct db *db = ctl_db();
	if (!db) {
		free(serials);
		free(ptrs);
		return 1;
	}
	char detail[160];
	snprintf(detail, sizeof(detail), "%s by %s", crl_reason_name(o.reason), ctl_actor());
	struct cert_selector sel = {ptrs, (size_t)n, o.node, o.has_mac ? o.mac : NULL};
	struct audit_rec a = {.event = "revoke",
	                      .flow = "operator",
	                      .outcome = "ok",
	                      .reason = "OK",
	                      .detail = detail};
	char *missing = NULL;
	enum db_status s =
	    db_certs_revoke(db, &sel, o.reason, ctl_actor(), &a, &matched, &revoked, &missing);
	db_close(db);
	free(serials);
	free(ptrs);
	if (s == DB_NO_ROWS) {
		fprintf(stderr, "certs revoke: no such certificate\n");
		return 1;
	}
	if (s < DB_NO_ROWS)
		return 1;
	/* A mistyped serial among good ones must not pass unnoticed: the others are revoked,
	 * each unknown one is named, and the exit status says it. */
	if (missing)
		fprintf(stderr, "certs revoke: no such certificate: %s\n", missing);
	printf("certs revoke: %ld certificate(s) revoked (%s), %ld already revoked (each keeps its "
	       "first revocation and reason)\n",
	       revoked, crl_reason_name(o.reason), matched - revoked);
	rc = ctl_flush_stdout("certs revoke");
	rc = missing ? 1 : rc;
	free(missing);
	return rc;
}

int ctl_certs(int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return certs_list(argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "revoke") == 0)
		return certs_revoke(argc - 1, argv + 1);
	certs_usage(stderr);
	return 2;
}

int ctl_crl(int argc, char **argv)
{
	bool der_out = argc == 2 && strcmp(argv[1], "--der") == 0, busy = false;
	struct claimd_config *c = NULL;
	struct ca *ca = NULL;
	struct db *db = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	int64_t number = 0;
	char err[1024];
	int rc = 1;

	if (argc > 2 || (argc == 2 && !der_out)) {
		fputs("usage: claimctl crl [--der]\n", stderr);
		return 2;
	}
	if (!(c = ctl_config()))
		return 1;
	if (!(ca = ca_load(c->ca_certificate, c->ca_key, c->ca_chain, err, sizeof(err)))) {
		fprintf(stderr, "%s\n", err);
		goto out;
	}
	if (!(db = ctl_db()))
		goto out;
	struct crl_policy p = {c->crl_hours};
	if (crl_current_local(db, ca, &p, &der, &len, &number, &busy) < 0) {
		fprintf(stderr, "crl: %s\n",
		        busy ? "the database is busy" : "could not issue a CRL");
		goto out;
	}
	if (der_out) {
		rc = fwrite(der, 1, len, stdout) == len ? ctl_flush_stdout("crl") : 1;
		goto out;
	}
	const unsigned char *q = der;
	X509_CRL *crl = d2i_X509_CRL(NULL, &q, (long)len);
	rc = crl && PEM_write_X509_CRL(stdout, crl) ? ctl_flush_stdout("crl") : 1;
	X509_CRL_free(crl);
out:
	free(der);
	db_close(db);
	ca_free(ca);
	config_free(c);
	return rc;
}

int ctl_nodes_release(int argc, char **argv)
{
	long revoked = 0;
	char detail[160];

	if (argc != 2) {
		fputs("usage: claimctl nodes release NODE_ID\n", stderr);
		return 2;
	}
	/* A self-claimed node's node_id is its MAC: any spelling of a MAC names it. */
	char mac[MAC_LEN + 1];
	const char *node = mac_normalize(mac, argv[1], strlen(argv[1])) ? mac : argv[1];
	struct db *db = ctl_db();
	if (!db)
		return 1;
	snprintf(detail, sizeof(detail), "released by %s", ctl_actor());
	struct audit_rec a = {.event = "release",
	                      .flow = "operator",
	                      .outcome = "ok",
	                      .reason = "OK",
	                      .node_id = node,
	                      .detail = detail};
	enum db_status s =
	    db_node_release(db, node, CRL_REASON_CESSATION_OF_OPERATION, ctl_actor(), &a, &revoked);
	db_close(db);
	if (s == DB_NO_ROWS) {
		fprintf(stderr, "nodes release: no live node %s\n", node);
		return 1;
	}
	if (s < DB_NO_ROWS)
		return 1;
	printf("nodes release: %s released, %ld certificate(s) revoked (cessationOfOperation)\n",
	       node, revoked);
	return 0;
}

/* A CSV field, quoted as RFC 4180 wants (libcsv), then @p sep. */
static void csv_field(FILE *f, const char *s, char sep)
{
	csv_fwrite(f, s, strlen(s));
	fputc(sep, f);
}

struct export_sink {
	FILE *out;
	bool json;
	long rows;
};

static int export_node(struct export_sink *s, const struct node_export *n)
{
	csv_field(s->out, n->node_id, ',');
	csv_field(s->out, n->mac, ',');
	csv_field(s->out, n->user_id, ',');
	csv_field(s->out, n->platform, ',');
	csv_field(s->out, n->certs, '\n');
	s->rows++;
	return ferror(s->out) ? -1 : 0;
}

int ctl_nodes_export(int argc, char **argv)
{
	const char *user = NULL;
	struct export_sink s = {stdout, false, 0};

	if (argc == 3 && strcmp(argv[1], "--user") == 0)
		user = argv[2];
	else if (argc != 1) {
		fputs("usage: claimctl nodes export [--user USER]\n", stderr);
		return 2;
	}
	struct db *db = ctl_db();
	if (!db)
		return 1;
	fputs("node_id,mac,user,platform,certs\n", stdout);
	enum db_status st = db_nodes_export(db, user, export_node, &s);
	db_close(db);
	if (st < DB_NO_ROWS || fflush(stdout) != 0) {
		fprintf(stderr, "nodes export: failed after %ld node(s)\n", s.rows);
		return 1;
	}
	fprintf(stderr, "nodes export: %ld node(s)\n", s.rows);
	return 0;
}

static int export_audit(struct export_sink *s, const struct audit_export *a)
{
	const char *names[] = {"mac",        "node_id", "user_id", "remote_addr",
	                       "request_id", "serial",  "detail"};
	const char *vals[] = {a->mac,        a->node_id, a->user_id, a->remote_addr,
	                      a->request_id, a->serial,  a->detail};
	const bool has[] = {a->has_mac,        a->has_node_id, a->has_user_id, a->has_remote_addr,
	                    a->has_request_id, a->has_serial,  a->has_detail};
	enum { N = sizeof(names) / sizeof(names[0]) };

	if (s->json) {
		json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "id", (json_int_t)a->id,
		                      "at", a->at, "event", a->event, "flow", a->flow, "outcome",
		                      a->outcome, "reason", a->reason);
		for (int i = 0; o && i < N; i++)
			json_object_set_new(o, names[i],
			                    has[i] ? json_string(vals[i]) : json_null());
		char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
		json_decref(o);
		if (!text)
			return -1;
		fprintf(s->out, "%s\n", text);
		free(text);
	} else {
		fprintf(s->out, "%lld,", (long long)a->id);
		csv_field(s->out, a->at, ',');
		csv_field(s->out, a->event, ',');
		csv_field(s->out, a->flow, ',');
		csv_field(s->out, a->outcome, ',');
		csv_field(s->out, a->reason, ',');
		for (int i = 0; i < N; i++)
			csv_field(s->out, has[i] ? vals[i] : "", i == N - 1 ? '\n' : ',');
	}
	s->rows++;
	return ferror(s->out) ? -1 : 0;
}

/* The @p n digits at @p s as a number, or -1 if any is not a digit. */
static int digits(const char *s, int n)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/*
 * An RFC 3339 date-time (2026-11-29T13:00:00Z; a fraction of a second and an offset
 * allowed; section 5.6) or a full date (2026-11-29, midnight UTC), checked to the day of
 * the month, so that a typo is an error naming the option rather than a database error
 * or, worse, a different time. Offsets are limited to what PostgreSQL reads: +-15:59.
 */
static bool rfc3339_ok(const char *s)
{
	static const int mdays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	int y = digits(s, 4), mo, d, h, mi, sec;

	if (strlen(s) < 10 || y < 1 || s[4] != '-' || s[7] != '-' || (mo = digits(s + 5, 2)) < 1 ||
	    mo > 12 || (d = digits(s + 8, 2)) < 1)
		return false;
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (d > mdays[mo - 1] + (mo == 2 && leap))
		return false;
	if (!s[10])
		return true;
	const char *p = s + 11;
	if ((s[10] != 'T' && s[10] != 't') || strlen(p) < 9 || p[2] != ':' || p[5] != ':' ||
	    (h = digits(p, 2)) < 0 || h > 23 || (mi = digits(p + 3, 2)) < 0 || mi > 59 ||
	    (sec = digits(p + 6, 2)) < 0 || sec > 60)
		return false;
	p += 8;
	if (*p == '.') {
		/* A leap second has no fraction in PostgreSQL's reading. */
		if (digits(p + 1, 1) < 0 || sec == 60)
			return false;
		for (p++; *p >= '0' && *p <= '9'; p++)
			;
	}
	if ((*p == 'Z' || *p == 'z') && !p[1])
		return true;
	return (*p == '+' || *p == '-') && strlen(p) == 6 && p[3] == ':' &&
	       (h = digits(p + 1, 2)) >= 0 && h <= 15 && (mi = digits(p + 4, 2)) >= 0 && mi <= 59;
}

int ctl_audit_export(int argc, char **argv)
{
	static const struct option opts[] = {{"since", required_argument, NULL, 's'},
	                                     {"until", required_argument, NULL, 'u'},
	                                     {"format", required_argument, NULL, 'f'},
	                                     {"help", no_argument, NULL, 'h'},
	                                     {NULL, 0, NULL, 0}};
	const char *since = NULL, *until = NULL;
	struct export_sink s = {stdout, true, 0};
	int c;

	optind = 0;
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 's':
		case 'u':
			if (!rfc3339_ok(optarg)) {
				fprintf(stderr,
				        "audit export: --%s: '%s' is not an RFC 3339 time\n",
				        c == 's' ? "since" : "until", optarg);
				return 2;
			}
			*(c == 's' ? &since : &until) = optarg;
			break;
		case 'f':
			if (strcmp(optarg, "jsonl") != 0 && strcmp(optarg, "csv") != 0) {
				fprintf(stderr, "audit export: --format: jsonl or csv\n");
				return 2;
			}
			s.json = strcmp(optarg, "jsonl") == 0;
			break;
		case 'h':
			puts("usage: claimctl audit export [--since T] [--until T] [--format "
			     "jsonl|csv]\n"
			     "  the audit trail, oldest first; T is RFC 3339 "
			     "(2026-11-29T13:00:00Z);\n"
			     "  --since includes T, --until excludes it; jsonl is the default");
			return 0;
		default:
			fputs("usage: claimctl audit export [--since T] [--until T] [--format "
			      "jsonl|csv]\n",
			      stderr);
			return 2;
		}
	}
	if (optind != argc) {
		fputs("usage: claimctl audit export [--since T] [--until T] [--format jsonl|csv]\n",
		      stderr);
		return 2;
	}
	struct db *db = ctl_db();
	if (!db)
		return 1;
	if (!s.json)
		fputs("id,at,event,flow,outcome,reason,mac,node_id,user_id,remote_addr,request_id,"
		      "serial,detail\n",
		      stdout);
	enum db_status st = db_audit_export(db, since, until, export_audit, &s);
	db_close(db);
	if (st < DB_NO_ROWS || fflush(stdout) != 0) {
		fprintf(stderr, "audit export: failed after %ld row(s)\n", s.rows);
		return 1;
	}
	fprintf(stderr, "audit export: %ld row(s)\n", s.rows);
	return 0;
}
