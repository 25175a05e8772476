/*
 * What every claimctl command shares: the config file named on the command line, the
 * database it names, who is running the command, and writing the output. Nothing here
 * is a command (they are in one file per group, listed in ctl_commands.c).
 */
#include <csv.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

void ctl_csv_field(FILE *f, const char *s, char sep)
{
	if (s[0] && strchr("=+-@\t\r", s[0])) {
		/* Inside the quotes libcsv may add: "'=1+1" stays one field. */
		size_t n = strlen(s);
		char *t = malloc(n + 2);
		if (t) {
			t[0] = '\'';
			memcpy(t + 1, s, n + 1);
			csv_fwrite(f, t, n + 1);
			free(t);
			fputc(sep, f);
			return;
		}
		fputc('\'', f); /* no memory: unquoted, but still neutral */
	}
	csv_fwrite(f, s, strlen(s));
	fputc(sep, f);
}

const char *ctl_invocation(void)
{
	static char buf[1100];
	if (strcmp(config_path, "/etc/claimd/claimd.yaml") == 0)
		return "claimctl";
	snprintf(buf, sizeof(buf), "claimctl -c %.1024s", config_path);
	return buf;
}

void ctl_db_error(const char *err, const char *as)
{
	fprintf(stderr, "%s\n", err);
	/* libpq's words for a role the server does not know or an OS user that is not it. */
	if (!strstr(err, "\" does not exist") && !strstr(err, "Peer authentication failed") &&
	    !strstr(err, "Ident authentication failed"))
		return;
	if (strstr(err, "database \"") && !strstr(err, "role \""))
		return; /* a missing database: the message says it all */
	struct passwd *pw = getpwuid(geteuid());
	fprintf(stderr,
	        "claimctl connects to PostgreSQL as the role database.url names or, without a "
	        "user there, as the Unix user running it (%s). Run it as the user that owns "
	        "claimd's role, as the install does: runuser -u %s -- claimctl -c %s "
	        "COMMAND ... (or sudo -u %s%s); or put the role in database.url "
	        "(user=claimd).\n",
	        pw ? pw->pw_name : "this user", as, config_path, as,
	        strcmp(as, "claimd") == 0
	            ? ""
	            : "; it reads the key and needs a role in claimd: docs/install.md");
}

struct db *ctl_db(void)
{
	return ctl_db_as("claimd");
}

struct db *ctl_db_as(const char *as)
{
	char err[1024];
	struct claimd_config *c = ctl_config();
	struct db *db = c ? db_connect(c->db_url, true, err, sizeof(err)) : NULL;
	if (c && !db)
		ctl_db_error(err, as);
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
