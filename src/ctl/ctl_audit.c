/*
 * claimctl's audit command: audit export, the trail oldest first as JSON lines or CSV.
 * Arguments are checked here; the rows come from src/db as they are read.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "db/db_lifecycle.h"

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
		ctl_csv_field(s->out, a->at, ',');
		ctl_csv_field(s->out, a->event, ',');
		ctl_csv_field(s->out, a->flow, ',');
		ctl_csv_field(s->out, a->outcome, ',');
		ctl_csv_field(s->out, a->reason, ',');
		for (int i = 0; i < N; i++)
			ctl_csv_field(s->out, has[i] ? vals[i] : "", i == N - 1 ? '\n' : ',');
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
