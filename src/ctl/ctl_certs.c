/*
 * claimctl's certificate commands: certs list, certs revoke (operator.h) and crl (signed
 * here with the CA key loaded from the config: the local keyed path). Arguments are
 * checked here; the rules (reason names, status names, when a CRL is re-issued) are
 * src/core's and the statements src/db's.
 */
#include <getopt.h>
#include <jansson.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/operator.h"
#include "core/revocation.h"
#include "ctl.h"
#include "db/db_lifecycle.h"
#include "lib/util.h"
#include "x509/ca.h"

static void certs_usage(FILE *f)
{
	fputs("usage: claimctl certs list [--node NODE_ID|--mac MAC|--serial SERIAL] [--revoked] "
	      "[--json]\n"
	      "       claimctl certs revoke (SERIAL...|--node NODE_ID|--mac MAC) [--reason R]\n"
	      "  SERIAL as tools print it: hex in any case, leading zeros optional, 0x, or\n"
	      "  bytes separated by ':', ' ' or '-'; or decimal (37-39 digits). A string of\n"
	      "  decimal digits of another length is refused as ambiguous: write hex with 0x.\n"
	      "  R is an RFC 5280 reason name: unspecified (default), keyCompromise, "
	      "cACompromise,\n"
	      "  affiliationChanged, superseded, cessationOfOperation, certificateHold,\n"
	      "  privilegeWithdrawn, aACompromise. Revoking is idempotent.\n",
	      f);
}

/* The options both subcommands share; returns -1 after printing why. */
struct certs_opts {
	const char *node;
	char mac[MAC_LEN + 1], serial[SERIAL_HEX_LEN + 1], node_mac[MAC_LEN + 1];
	bool has_mac, has_serial, revoked, json;
	int reason;
};

static int certs_parse(int argc, char **argv, struct certs_opts *o, bool revoke)
{
	static const struct option opts[] = {
	    {"node", required_argument, NULL, 'n'},   {"mac", required_argument, NULL, 'm'},
	    {"serial", required_argument, NULL, 's'}, {"revoked", no_argument, NULL, 'r'},
	    {"json", no_argument, NULL, 'j'},         {"reason", required_argument, NULL, 'R'},
	    {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0}};
	char why[256];
	int c;

	memset(o, 0, sizeof(*o));
	optind = 0; /* GNU getopt: start afresh, permuting options after operands */
	while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (c) {
		case 'n':
			/* A self-claimed node's node_id is its MAC: any spelling of a MAC names it,
			 * as in nodes show/release and the management API. */
			o->node = mac_normalize(o->node_mac, optarg, strlen(optarg)) ? o->node_mac
			                                                             : optarg;
			break;
		case 'm':
			if (!mac_normalize(o->mac, optarg, strlen(optarg))) {
				fprintf(stderr, "certs: --mac: expected a MAC address\n");
				return -1;
			}
			o->has_mac = true;
			break;
		case 's':
			if (revoke) {
				fprintf(stderr, "certs: revoke names its serials as arguments\n");
				return -1;
			}
			if (cert_serial_parse(o->serial, optarg, strlen(optarg), why,
			                      sizeof(why)) != CE_OK) {
				fprintf(stderr, "certs: --serial: %s: %s\n", optarg, why);
				return -1;
			}
			o->has_serial = true;
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
			if ((o->reason = crl_reason_from_name(optarg)) < 0) {
				fprintf(stderr,
				        "certs: --reason: '%s' is not an RFC 5280 reason name\n",
				        optarg);
				return -1;
			}
			if (o->reason == CRL_REASON_REMOVE_FROM_CRL) {
				fprintf(
				    stderr,
				    "certs: --reason: removeFromCRL is an RFC 5280 reason but is "
				    "not supported (it takes an entry off a delta CRL; a "
				    "revocation here is final)\n");
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
	if ((o->node != NULL) + o->has_mac + o->has_serial > 1) {
		fprintf(stderr, "certs: --node, --mac and --serial exclude each other\n");
		return -1;
	}
	return 0;
}

int ctl_certs_list(int argc, char **argv)
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
	struct cert_filter f = {o.node, o.has_mac ? o.mac : NULL, o.revoked,
	                        o.has_serial ? o.serial : NULL};
	enum db_status s = db_certs_list(db, &f, &rows, &n);
	db_close(db);
	if (s < DB_NO_ROWS)
		return 1;
	json_t *arr = o.json ? json_array() : NULL;
	for (size_t i = 0; i < n; i++) {
		const struct cert_row *r = &rows[i];
		char nb[21], na[21], ra[21];
		ctl_rfc3339(nb, r->not_before);
		ctl_rfc3339(na, r->not_after);
		if (arr) {
			json_t *e =
			    json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "serial", r->serial,
			              "node_id", r->node_id, "mac", r->mac, "status",
			              cert_status_name(r), "not_before", nb, "not_after", na);
			if (e && r->revoked) {
				json_object_set_new(e, "revoked_at",
				                    json_string(ctl_rfc3339(ra, r->revoked_at)));
				json_object_set_new(e, "reason",
				                    json_string(crl_reason_name((int)r->reason)));
			}
			json_array_append_new(arr, e);
			continue;
		}
		printf("%s  %-22s  %-10s  %s  %s", r->serial, r->node_id, cert_status_name(r), nb,
		       na);
		if (r->revoked)
			printf("  revoked %s %s", ctl_rfc3339(ra, r->revoked_at),
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

/* The certificates @p sel names that are revoked already, in *@p out of *@p n (malloc'd):
 * DB_OK or DB_NO_ROWS; DB_SOFT or DB_HARD (said on stderr by the caller's exit). */
static enum db_status already_revoked(struct db *db, const struct cert_selector *sel,
                                      struct cert_row **out, size_t *n)
{
	*out = NULL;
	*n = 0;
	if (!sel->n_serials) {
		struct cert_filter f = {sel->node_id, sel->mac, true, NULL};
		return db_certs_list(db, &f, out, n);
	}
	for (size_t i = 0; i < sel->n_serials; i++) {
		struct cert_filter f = {NULL, NULL, true, sel->serials[i]};
		struct cert_row *r = NULL;
		size_t k = 0;
		enum db_status s = db_certs_list(db, &f, &r, &k);
		if (s < DB_NO_ROWS) {
			free(*out);
			*out = NULL;
			*n = 0;
			return s;
		}
		if (k) {
			struct cert_row *grown = realloc(*out, (*n + k) * sizeof(**out));
			if (!grown) {
				free(r);
				free(*out);
				*out = NULL;
				*n = 0;
				return DB_HARD;
			}
			*out = grown;
			memcpy(*out + *n, r, k * sizeof(*r));
			*n += k;
		}
		free(r);
	}
	return *n ? DB_OK : DB_NO_ROWS;
}

int ctl_certs_revoke(int argc, char **argv)
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
		const char *a = argv[optind + i];
		char why[256];
		if (cert_serial_parse(serials[i], a, strlen(a), why, sizeof(why)) != CE_OK) {
			fprintf(stderr, "certs revoke: %s: %s\n", a, why);
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
	struct cert_selector sel = {ptrs, (size_t)n, o.node, o.has_mac ? o.mac : NULL};
	struct operator_who who = ctl_who();
	char *missing = NULL;
	/* Those revoked already keep their first revocation: read before, named after. */
	struct cert_row *kept = NULL;
	size_t nkept = 0;
	if (already_revoked(db, &sel, &kept, &nkept) < DB_NO_ROWS) {
		db_close(db);
		free(serials);
		free(ptrs);
		return 1;
	}
	enum db_status s = operator_revoke(db, &who, &sel, o.reason, &matched, &revoked, &missing);
	db_close(db);
	free(serials);
	free(ptrs);
	if (s <= DB_NO_ROWS) {
		if (s == DB_NO_ROWS)
			fprintf(stderr, "certs revoke: no such certificate\n");
		free(kept);
		return 1;
	}
	/* A mistyped serial among good ones must not pass unnoticed: the others are revoked,
	 * each unknown one is named, and the exit status says it. */
	if (missing)
		fprintf(stderr, "certs revoke: no such certificate: %s\n", missing);
	for (size_t i = 0; i < nkept; i++) {
		char at[32];
		printf("certs revoke: %s was already revoked at %s (%s); kept, not changed to %s\n",
		       kept[i].serial, ctl_rfc3339(at, kept[i].revoked_at),
		       crl_reason_name((int)kept[i].reason), crl_reason_name(o.reason));
	}
	free(kept);
	/* The reason asked for is named only where it was applied. */
	char applied[64] = "";
	if (revoked)
		snprintf(applied, sizeof(applied), " (%s)", crl_reason_name(o.reason));
	printf("certs revoke: %ld certificate(s) revoked%s, %ld already revoked (each keeps its "
	       "first revocation and reason)\n",
	       revoked, applied, matched - revoked);
	rc = ctl_flush_stdout("certs revoke");
	rc = missing ? 1 : rc;
	free(missing);
	return rc;
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
	if (!(db = ctl_db_as("claimd-signer"))) /* it signs with the CA key */
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
