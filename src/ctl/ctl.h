/*
 * What claimctl's command files share (ctl.c, ctl_commands.c): the config file named on
 * the command line, the database it names, who is running the command (for the audit
 * trail), the command table, and each command's entry point.
 */
#ifndef CLAIMD_TOOLS_CTL_H
#define CLAIMD_TOOLS_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/config.h"
#include "core/operator.h"
#include "db/db.h"

/** Sets the config file the commands read (-c FILE; default /etc/claimd/claimd.yaml). */
void ctl_set_config_path(const char *path);
/** Loads the config file claimctl was given; NULL after printing why. */
struct claimd_config *ctl_config(void);
/** Connects to the config's database; NULL after printing why (ctl_db_error(), "claimd"). */
struct db *ctl_db(void);
/** As ctl_db(), for a command that also reads a key: the advice names Unix user @p as. */
struct db *ctl_db_as(const char *as);
/**
 * "claimctl" or, when -c named another file than the default, "claimctl -c FILE": the
 * start of a command line the operator can copy (messages that name a command).
 */
const char *ctl_invocation(void);
/**
 * Prints @p err (a database connection message) to stderr and, when PostgreSQL refused
 * the role (no such role; peer or ident authentication: the Unix user is not the role),
 * what to do: run claimctl as Unix user @p as (the install's `runuser -u claimd --
 * claimctl ...`; "claimd-signer" for a command that also reads a key), or name the role
 * in database.url.
 */
void ctl_db_error(const char *err, const char *as);
/**
 * Writes @p s as one CSV field (RFC 4180 quoting, libcsv) and then @p sep. A value that
 * begins with '=', '+', '-', '@', a tab or a carriage return gets a "'" in front, so a
 * spreadsheet opening the export shows it as text instead of running it as a formula
 * (OWASP, CSV injection); a reader wanting the exact value drops a leading "'" that is
 * followed by one of those. Every CSV claimctl writes goes through here.
 */
void ctl_csv_field(FILE *f, const char *s, char sep);
/** Flushes stdout; 0, or 1 after saying that writing it failed (a full disk, a closed pipe). */
int ctl_flush_stdout(const char *what);
/** "claimctl:USER" (the invoking user, SUDO_USER first), for revoked_by and audit rows. */
const char *ctl_actor(void);
/** The operator as operator.h's audit rows name claimctl's: ctl_actor(), no address. */
struct operator_who ctl_who(void);
/** RFC 3339 UTC of unix seconds @p t into @p out (21 bytes); returns @p out. */
const char *ctl_rfc3339(char out[21], int64_t t);

/* A listing's output, for the database's streaming exports (db_lifecycle.h). */
struct export_sink {
	FILE *out;
	bool json;
	long rows;
};

/** The overview of every command, for claimctl --help (or after a usage error). */
void ctl_usage(FILE *f);
/**
 * The usage of command @p name ("devices list"), or of every subcommand of a group
 * ("devices"), or the overview when @p name is no command.
 */
void ctl_usage_of(const char *name, FILE *f);
/** True when an argument after argv[0] (and before "--") is --help or -h. */
bool ctl_help_wanted(int argc, char **argv);
/** The name of the command argv[0] [argv[1]] selects ("nodes show", or "nodes"), in @p buf. */
const char *ctl_command_name(int argc, char **argv, char *buf, size_t bufsz);
/** True when @p name is a command or a group of them. */
bool ctl_command_known(const char *name);

/**
 * Runs the command argv[0] [argv[1]] names with its arguments (the table in
 * ctl_commands.c): its exit status, or 2 after printing the usage (a group without a
 * known subcommand, or an unknown command).
 */
int ctl_run(int argc, char **argv);

/* The commands, one file per group; each gets argv[0] = its last word ("list"), then
 * its arguments, and returns the exit status (2: a usage error). */
int ctl_migrate(int argc, char **argv);        /* ctl_setup.c */
int ctl_keygen(int argc, char **argv);         /* ctl_setup.c */
int ctl_config_example(int argc, char **argv); /* ctl_setup.c */
int ctl_devices_import(int argc, char **argv); /* ctl_devices.c */
int ctl_devices_list(int argc, char **argv);   /* ctl_devices.c */
int ctl_devices_show(int argc, char **argv);   /* ctl_devices.c */
int ctl_devices_unlock(int argc, char **argv); /* ctl_devices.c */
int ctl_users_quota(int argc, char **argv);    /* ctl_users.c */
int ctl_nodes_list(int argc, char **argv);     /* ctl_nodes.c */
int ctl_nodes_show(int argc, char **argv);     /* ctl_nodes.c */
int ctl_nodes_release(int argc, char **argv);  /* ctl_nodes.c */
int ctl_nodes_export(int argc, char **argv);   /* ctl_nodes.c */
int ctl_certs_list(int argc, char **argv);     /* ctl_certs.c */
int ctl_certs_revoke(int argc, char **argv);   /* ctl_certs.c */
int ctl_crl(int argc, char **argv);            /* ctl_certs.c: the local keyed path */
int ctl_audit_export(int argc, char **argv);   /* ctl_audit.c */
int ctl_dev_ca(int argc, char **argv);         /* ctl_dev.c */
int ctl_dev_idp(int argc, char **argv);        /* ctl_dev.c */
int ctl_dev_token(int argc, char **argv);      /* ctl_dev.c */

#endif
