/*
 * What claimctl's command files share: the config file named on the command line, the
 * database it names, and who is running the command (for the audit trail).
 */
#ifndef CLAIMD_TOOLS_CTL_H
#define CLAIMD_TOOLS_CTL_H

#include <stddef.h>

#include "claimd/config.h"
#include "claimd/db.h"

/** Loads the config file claimctl was given; NULL after printing why. */
struct claimd_config *ctl_config(void);
/** Connects to the config's database; NULL after printing why. */
struct db *ctl_db(void);
/** Flushes stdout; 0, or 1 after saying that writing it failed (a full disk, a closed pipe). */
int ctl_flush_stdout(const char *what);
/** "claimctl:USER" (the invoking user, SUDO_USER first), for revoked_by and audit rows. */
const char *ctl_actor(void);

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
