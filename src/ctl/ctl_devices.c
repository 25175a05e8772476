/*
 * claimctl's views of the device registry: devices list and devices show. They read
 * only; an eFuse key, sealed or not, is never fetched, so it cannot be printed. The
 * statements are src/db's, what counts as claimed or locked is decided there from the
 * rows.
 */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "db/db_devices.h"
#include "db/db_lifecycle.h"
#include "db/db_users.h"
#include "core/revocation.h"
#include "lib/util.h"
#include "ctl.h"

/* RFC 3339 UTC of unix seconds @p t into @p out (21 bytes). */
static const char *rfc3339(char out[21], int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
	return out;
}

struct device_sink {
	json_t *arr; /* --json: the array being built; else lines go to stdout */
	long rows;
};

static int list_one(struct device_sink *s, const struct device_entry *d)
{
	char reg[21];

	rfc3339(reg, d->registered_at);
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
	struct cert_filter f = {NULL, mac, false};
	struct cert_row *rows = NULL;
	size_t n = 0;
	enum db_status s = db_certs_list(db, &f, &rows, &n);

	if (s < DB_NO_ROWS)
		return false;
	printf("certificates: %zu\n", n);
	for (size_t i = 0; i < n; i++) {
		char nb[21], na[21], ra[21];
		printf("  %s  node %s  %s  %s .. %s", rows[i].serial, rows[i].node_id,
		       cert_status_name(&rows[i]), rfc3339(nb, rows[i].not_before),
		       rfc3339(na, rows[i].not_after));
		if (rows[i].revoked)
			printf("  revoked %s %s", rfc3339(ra, rows[i].revoked_at),
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
		       rfc3339(t1, d.d.registered_at), rfc3339(t2, d.updated_at));
		if (d.locked)
			printf("lockout: locked until %s (lock %lld; claimctl devices unlock %s)\n",
			       rfc3339(t1, d.locked_until), (long long)d.lockouts, mac);
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
