/*
 * claimctl's node commands: nodes list, show, release (operator.h) and export.
 * Arguments are parsed and results printed here; the statements are src/db's and what
 * a release writes and audits is src/core/operator.c's.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/operator.h"
#include "core/revocation.h"
#include "ctl.h"
#include "db/db_lifecycle.h"
#include "db/db_users.h"
#include "lib/util.h"

static void print_node(struct db *db, const struct node_info *n)
{
	struct cert_info *certs = NULL;
	size_t ncerts = 0;

	printf("node %s  mac %s  user %s  platform %s  created %s  claimed %s  certificates "
	       "%lld%s%s%s%s\n",
	       n->node_id, n->mac, n->user_id[0] ? n->user_id : "(self-claimed)",
	       n->platform[0] ? n->platform : "-", n->created_at,
	       n->claimed_at[0] ? n->claimed_at : "never", (long long)n->certificates,
	       n->policies[0] ? "  policies " : "", n->policies,
	       n->released_at[0] ? "  released " : "", n->released_at);
	if (!db || db_node_certs(db, n->node_id, &certs, &ncerts) != DB_OK)
		return;
	/* The status word is cert_status_name()'s, as certs list prints it. */
	for (size_t i = 0; i < ncerts; i++) {
		struct cert_row facts = {.revoked = certs[i].revoked,
		                         .reason = certs[i].reason,
		                         .expired = certs[i].expired};
		printf("    certificate %s  %s  issued %s  from %s to %s", certs[i].serial,
		       cert_status_name(&facts), certs[i].issued_at, certs[i].not_before,
		       certs[i].not_after);
		if (certs[i].revoked)
			printf("  revoked %s %s", certs[i].revoked_at,
			       crl_reason_name((int)certs[i].reason));
		printf("  key sha256 %.16s...\n", certs[i].key_sha256);
	}
	free(certs);
}

/* Prints the nodes of @p user, or the node (or every node of the MAC) @p key with each
 * node's certificates: the exit status. */
static int nodes_find(const char *user, const char *key)
{
	bool list = user != NULL;
	struct db *db = ctl_db();
	if (!db)
		return 1;
	/* Listing prints the nodes; showing adds each node's certificates. */
	struct node_info *nodes = NULL;
	size_t n = 0;
	enum db_status s = db_nodes_find(db, user, key, &nodes, &n);
	for (size_t i = 0; i < n; i++)
		print_node(list ? NULL : db, &nodes[i]);
	free(nodes);
	db_close(db);
	if (s == DB_NO_ROWS)
		fprintf(stderr, "nodes: none found\n");
	return s == DB_OK ? 0 : 1;
}

int ctl_nodes_list(int argc, char **argv)
{
	if (argc != 3 || strcmp(argv[1], "--user") != 0) {
		ctl_usage_of("nodes list", stderr);
		return 2;
	}
	return nodes_find(argv[2], NULL);
}

int ctl_nodes_show(int argc, char **argv)
{
	char mac[MAC_LEN + 1];

	if (argc != 2) {
		ctl_usage_of("nodes show", stderr);
		return 2;
	}
	return nodes_find(NULL, mac_normalize(mac, argv[1], strlen(argv[1])) ? mac : argv[1]);
}

int ctl_nodes_release(int argc, char **argv)
{
	long revoked = 0;

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
	struct operator_who who = ctl_who();
	enum db_status s = operator_release(db, &who, node, &revoked);
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

static int export_node(struct export_sink *s, const struct node_export *n)
{
	ctl_csv_field(s->out, n->node_id, ',');
	ctl_csv_field(s->out, n->mac, ',');
	ctl_csv_field(s->out, n->user_id, ',');
	ctl_csv_field(s->out, n->platform, ',');
	ctl_csv_field(s->out, n->certs, '\n');
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
