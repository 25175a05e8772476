/*
 * The checks claimd makes before it says "listening" (and claimd -t makes before it
 * says OK), so that a fault shows itself in seconds instead of at the first claim: the
 * database is the right one with a current schema, and the secrets key opens the
 * registered devices' sealed keys.
 */
#ifndef CLAIMD_STARTUP_H
#define CLAIMD_STARTUP_H

#include <stddef.h>

#include "core/runtime.h"

enum startup_verdict {
	STARTUP_READY,  /* everything checked */
	STARTUP_WAIT,   /* the database is not up yet: serve /healthz, answer /readyz 503 and
	                   check again (a supervisor must not restart us over it) */
	STARTUP_REFUSE, /* a fault an operator must fix: exit with STARTUP_EXIT_CONFIG */
};

/* EX_CONFIG (sysexits.h): the unit's RestartPreventExitStatus= keeps systemd from
 * restarting into the same fault. */
#define STARTUP_EXIT_CONFIG 78

/**
 * Connects to @p rt's database.url (db_probe()) and, when it answers with a current
 * schema, asks @p rt's signer to open a sample of the registered devices' sealed eFuse
 * keys (db_sealed_sample(); a key that opens is what every self claim needs, so one
 * that does not means the devices were registered under another secrets key).
 * @p why gets the reason for WAIT and REFUSE, naming the config key to look at, never
 * the database password. @p sampled (may be NULL) gets how many keys were tried.
 */
enum startup_verdict startup_check(const struct runtime *rt, size_t *sampled, char *why,
                                   size_t whysz);

#endif
