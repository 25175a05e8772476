/*
 * What every claimctl command shares: the config file named on the command line, the
 * database it names, who is running the command, and writing the output. Nothing here
 * is a command (they are in one file per group, listed in ctl_commands.c).
 */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "ctl.h"
#include "db/db.h"
#include "lib/config.h"

static const char *config_path = "/etc/claimd/claimd.yaml";

void ctl_set_config_path(const char *path)
{
	config_path = path;
}

struct claimd_config *ctl_config(void)
{
	char err[1024];
	struct claimd_config *c = config_load(config_path, err, sizeof(err));
	if (!c)
		fprintf(stderr, "%s\n", err);
	return c;
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

struct operator_who ctl_who(void)
{
	return (struct operator_who){ctl_actor(), NULL, NULL, false};
}

const char *ctl_rfc3339(char out[21], int64_t t)
{
	time_t tt = (time_t)t;
	struct tm tm;
	strftime(out, 21, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
	return out;
}
