/*
 * The claim path's database statements as the benchmarks run them (bench_db alone,
 * bench_floor behind its HTTP answers): claimd's own prepared SQL through its DB
 * functions, with the parameters a self claim of a registered device passes. Never
 * used by the service.
 */
#ifndef CLAIMD_BENCH_STMTS_H
#define CLAIMD_BENCH_STMTS_H

#include "db/db.h"

/* Reads the sealed eFuse key of devices 7C0000000001..7C<ndevices in hex> over URL (the
 * commit spends a session only for the device's current key); call it once, before any
 * bench_stmt(). Returns 0, or -1 with a line on stderr (cannot connect, out of memory,
 * a device not registered). */
int bench_stmts_load(const char *url, unsigned ndevices);

/* A random registered device: its MAC (12 hex digits and a NUL) and its index for
 * bench_stmt(). */
void bench_stmt_device(char mac[13], unsigned *idx);

/* Runs one statement of the claim path for the device MAC (index IDX): "lookup" (the
 * verify's device lookup), "initiate" (the self initiate's statement with its audit
 * row), or any other MODE "commit" (the self claim's commit with the supersede claimd's
 * default config does). Returns DB_OK; DB_NO_ROWS for a lookup of an unregistered MAC
 * or a commit that spent nothing; or the statement's db_status. */
enum db_status bench_stmt(struct db *db, const char *mode, const char *mac, unsigned idx);

#endif
