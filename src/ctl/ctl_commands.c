/*
 * claimctl's one command table: each command's words, usage texts and the function that
 * runs it (in one file per command group), so a command cannot be missing from the
 * overview, its own --help or the dispatch. Printing help needs no config file and no
 * database.
 */
#include <stdio.h>
#include <string.h>

#include "ctl.h"

struct ctl_command {
	const char *name;    /* "devices list": the words that select the command */
	const char *args;    /* what follows them */
	const char *summary; /* one line, for the overview */
	const char *more;    /* the command's own --help adds this; may be NULL */
	bool needs_config;   /* reads -c FILE (said in its own help) */
	/* Runs it: argv[0] is the command's last word ("list"), then its arguments. */
	int (*run)(int argc, char **argv);
};

static const struct ctl_command commands[] = {
    {"migrate", "", "create or upgrade the database schema",
     "  Idempotent; safe to run from several hosts at once.", true, ctl_migrate},
    {"devices import", "[--replace] [--skip-invalid] FILE.csv|-",
     "register manufactured chips (mac,platform,efuse_key)",
     "  A header line names the columns (any order; extra columns are ignored); - reads\n"
     "  stdin. A bad row is reported as FILE:LINE: reason and nothing is stored, unless\n"
     "  --skip-invalid. A different key or platform for a known MAC is refused unless\n"
     "  --replace. Importing the same row twice is a no-op.",
     true, ctl_devices_import},
    {"devices list", "[--platform P] [--claimed|--unclaimed] [--json]",
     "registered chips, one per line (or a JSON array)",
     "  Each line: MAC, platform, registered (UTC), claimed or unclaimed (claimed: a live\n"
     "  node of it was claimed), how many nodes it has had. Keys are never shown.",
     true, ctl_devices_list},
    {"devices show", "MAC", "one chip: platform, lockout state, its nodes and certificates",
     "  Never its key.", true, ctl_devices_show},
    {"devices unlock", "MAC", "lift a wrong-answer lockout", NULL, true, ctl_devices_unlock},
    {"users quota", "USER N", "let USER hold N devices (0 = unlimited)", NULL, true,
     ctl_users_quota},
    {"nodes list", "--user USER", "the nodes USER holds", NULL, true, ctl_nodes_list},
    {"nodes show", "NODE_ID|MAC", "a node (or every node of a MAC) and its certificates", NULL,
     true, ctl_nodes_show},
    {"nodes release", "NODE_ID",
     "revoke its certificates (cessationOfOperation) and free its (user, MAC)",
     "  The next initiate of that (user, MAC) gets a new node_id; the history is kept.", true,
     ctl_nodes_release},
    {"nodes export", "[--user USER]", "CSV node_id,mac,user,platform,certs of live nodes",
     "  certs: the node's valid certificates' PEM; for registering nodes with an MQTT/IoT\n"
     "  backend. A field beginning with = + - @ tab or CR gets a ' in front (CSV injection).",
     true, ctl_nodes_export},
    {"certs list", "[--node NODE_ID|--mac MAC|--serial SERIAL] [--revoked] [--json]",
     "issued certificates and their status",
     "  serial (hex), node_id, status (valid, revoked, superseded, expired), not_before,\n"
     "  not_after. SERIAL in any form tools print (see certs revoke).",
     true, ctl_certs_list},
    {"certs revoke", "(SERIAL...|--node NODE_ID|--mac MAC) [--reason R]",
     "revoke (R: an RFC 5280 reason name; idempotent)",
     "  R is an RFC 5280 reason name: unspecified (default), keyCompromise, cACompromise,\n"
     "  affiliationChanged, superseded, cessationOfOperation, certificateHold,\n"
     "  privilegeWithdrawn, aACompromise. Revoking is idempotent.\n"
     "  SERIAL as tools print it: hex in any case, leading zeros optional, 0x, or bytes\n"
     "  separated by ':', ' ' or '-'; or decimal (37-39 digits). Decimal digits of\n"
     "  another length are refused as ambiguous: write hex with 0x.",
     true, ctl_certs_revoke},
    {"crl", "[--der]", "print the current CRL (PEM unless --der)",
     "  Issued now if the stored one is stale.", true, ctl_crl},
    {"audit export", "[--since T] [--until T] [--format jsonl|csv]",
     "the audit trail, oldest first (T: RFC 3339)",
     "  T is RFC 3339 (2026-11-29T13:00:00Z); --since includes T, --until excludes it;\n"
     "  jsonl is the default. In csv, a field beginning with = + - @ tab or CR gets a '\n"
     "  in front (CSV injection); jsonl has the exact values.",
     true, ctl_audit_export},
    {"keygen", "", "print a new secrets key", "  Base64 of 32 random bytes, one line.", false,
     ctl_keygen},
    {"dev-idp", "--out DIR [--key ec|rsa] [--kid KID]",
     "make a development identity provider (key + JWKS)", NULL, false, ctl_dev_idp},
    {"dev-token",
     "--idp DIR --issuer ISS --user USER [--audience AUD] [--kid KID]\n"
     "            [--ttl SECONDS] [--user-claim NAME]",
     "print an access token from that provider", NULL, false, ctl_dev_token},
    {"dev-ca", "--out DIR [--key ec|rsa2048|rsa3072]", "make a development root + intermediate CA",
     NULL, false, ctl_dev_ca},
    {"config-example", "", "print the documented example config", NULL, false, ctl_config_example},
};

enum { N_COMMANDS = sizeof(commands) / sizeof(commands[0]) };

void ctl_usage(FILE *f)
{
	fputs("usage: claimctl [-c FILE] COMMAND [ARGS]\n", f);
	for (int i = 0; i < N_COMMANDS; i++) {
		const struct ctl_command *h = &commands[i];
		char head[160];
		int n = snprintf(head, sizeof(head), "  %s%s%s", h->name, h->args[0] ? " " : "",
		                 h->args);
		/* Short synopses share the line with the summary, long ones get their own. */
		if (n <= 33 && !strchr(head, '\n'))
			fprintf(f, "%-34s%s\n", head, h->summary);
		else
			fprintf(f, "%s\n%-34s%s\n", head, "", h->summary);
	}
	fputs("options: -c, --config FILE (default /etc/claimd/claimd.yaml), -h, -V\n"
	      "Every command answers --help (or -h) with its own usage.\n",
	      f);
}

/* The entry for @p name, or NULL. */
static const struct ctl_command *find(const char *name)
{
	for (int i = 0; i < N_COMMANDS; i++)
		if (strcmp(commands[i].name, name) == 0)
			return &commands[i];
	return NULL;
}

static void usage_one(const struct ctl_command *h, FILE *f)
{
	fprintf(f, "usage: claimctl%s %s%s%s\n  %s\n", h->needs_config ? " [-c FILE]" : "", h->name,
	        h->args[0] ? " " : "", h->args, h->summary);
	if (h->more)
		fprintf(f, "%s\n", h->more);
}

void ctl_usage_of(const char *name, FILE *f)
{
	const struct ctl_command *h = find(name);
	size_t len = strlen(name);
	bool any = false;

	if (h) {
		usage_one(h, f);
		return;
	}
	/* A command group ("devices"): each of its subcommands. */
	for (int i = 0; i < N_COMMANDS; i++)
		if (strncmp(commands[i].name, name, len) == 0 && commands[i].name[len] == ' ') {
			fprintf(f, "%sclaimctl [-c FILE] %s %s\n  %s\n",
			        any ? "       " : "usage: ", commands[i].name, commands[i].args,
			        commands[i].summary);
			any = true;
		}
	if (!any)
		ctl_usage(f);
}

bool ctl_help_wanted(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0)
			return false;
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0)
			return true;
	}
	return false;
}

const char *ctl_command_name(int argc, char **argv, char *buf, size_t bufsz)
{
	if (argc >= 2) {
		snprintf(buf, bufsz, "%s %s", argv[0], argv[1]);
		if (find(buf))
			return buf;
	}
	snprintf(buf, bufsz, "%s", argv[0]);
	return buf;
}

bool ctl_command_known(const char *name)
{
	size_t len = strlen(name);

	if (find(name))
		return true;
	for (int i = 0; i < N_COMMANDS; i++)
		if (strncmp(commands[i].name, name, len) == 0 && commands[i].name[len] == ' ')
			return true;
	return false;
}

int ctl_run(int argc, char **argv)
{
	char name[64];
	const struct ctl_command *h = find(ctl_command_name(argc, argv, name, sizeof(name)));

	if (h && strchr(h->name, ' '))
		return h->run(argc - 1, argv + 1);
	if (h)
		return h->run(argc, argv);
	if (ctl_command_known(name)) {
		ctl_usage_of(name, stderr);
		return 2;
	}
	fprintf(stderr, "claimctl: unknown command '%s'\n", argv[0]);
	ctl_usage(stderr);
	return 2;
}
