/*
 * What claimctl's command files share: the config file named on the command line, the
 * database it names, and who is running the command (for the audit trail).
 */
#ifndef CLAIMD_TOOLS_CTL_H
#define CLAIMD_TOOLS_CTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/config.h"
#include "db/db.h"

/** Loads the config file claimctl was given; NULL after printing why. */
struct claimd_config *ctl_config(void);
/** Connects to the config's database; NULL after printing why. */
struct db *ctl_db(void);
/** Flushes stdout; 0, or 1 after saying that writing it failed (a full disk, a closed pipe). */
int ctl_flush_stdout(const char *what);
/** "claimctl:USER" (the invoking user, SUDO_USER first), for revoked_by and audit rows. */
const char *ctl_actor(void);

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

/** devices list [--platform P] [--claimed|--unclaimed] [--json]: exit status. */
int ctl_devices_list(int argc, char **argv);
/** devices show MAC: exit status. */
int ctl_devices_show(int argc, char **argv);
/** certs list | certs revoke: exit status. */
int ctl_certs(int argc, char **argv);
/** crl [--der]: exit status. */
int ctl_crl(int argc, char **argv);
/** nodes release NODE_ID: exit status. */
int ctl_nodes_release(int argc, char **argv);
/** nodes export [--user U]: exit status. */
int ctl_nodes_export(int argc, char **argv);
/** audit export [--since T] [--until T] [--format jsonl|csv]: exit status. */
int ctl_audit_export(int argc, char **argv);

#endif
