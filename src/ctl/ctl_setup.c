/*
 * claimctl's setup commands: migrate (the database schema), keygen (a secrets key) and
 * config-example (the documented example config).
 */
#include <stdio.h>

#include "ctl.h"
#include "db/db.h"
#include "lib/config.h"
#include "lib/secure.h"

int ctl_migrate(int argc, char **argv)
{
	struct claimd_config *c = NULL;
	char err[1024];
	int applied = 0, rc;

	(void)argv;
	if (argc != 1) {
		ctl_usage_of("migrate", stderr);
		return 2;
	}
	if (!(c = ctl_config()))
		return 1;
	rc = db_migrate(c->db_url, &applied, err, sizeof(err));
	config_free(c);
	if (rc < 0) {
		fprintf(stderr, "migrate: ");
		ctl_db_error(err, "claimd");
		return 1;
	}
	printf("migrate: %d migration(s) applied, schema is current\n", applied);
	return 0;
}

int ctl_keygen(int argc, char **argv)
{
	char key[64];

	(void)argv;
	if (argc != 1) {
		ctl_usage_of("keygen", stderr);
		return 2;
	}
	secrets_keygen(key, sizeof(key));
	printf("%s\n", key);
	secure_wipe(key, sizeof(key));
	return 0;
}

int ctl_config_example(int argc, char **argv)
{
	(void)argv;
	if (argc != 1) {
		ctl_usage_of("config-example", stderr);
		return 2;
	}
	config_write_example(stdout);
	return 0;
}
