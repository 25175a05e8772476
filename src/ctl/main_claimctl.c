/*
 * claimctl: the operator's tool. Reads the global options, answers --help without a
 * config or a database, and runs the command the table in ctl_commands.c names. The
 * commands live in one file per group (ctl_devices.c, ctl_nodes.c, ...); they read the
 * same config file as the daemon. Errors go to stderr as FILE:LINE: reason where there
 * is a line to name; exit status 0 means success.
 */
#include <getopt.h>
#include <stdio.h>

#include "ctl.h"
#include "lib/secure.h"

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
			ctl_set_config_path(optarg);
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
	return ctl_run(argc, argv);
}
