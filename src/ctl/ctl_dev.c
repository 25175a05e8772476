/*
 * claimctl's development commands: dev-ca, dev-idp and dev-token make a throw-away CA,
 * identity provider and access token for trying claimd out (src/sim). Nothing here
 * touches a configured CA or database.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "ctl.h"
#include "sim/devca.h"
#include "sim/devidp.h"

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

int ctl_dev_ca(int argc, char **argv)
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

int ctl_dev_idp(int argc, char **argv)
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

int ctl_dev_token(int argc, char **argv)
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
