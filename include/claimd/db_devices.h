/*
 * Bulk registration of manufactured devices: rows stream into a temporary table with
 * COPY, are checked against each other and the registry in SQL, then merged, all in
 * one transaction (all-or-nothing unless the caller skips conflicting rows).
 */
#ifndef CLAIMD_DB_DEVICES_H
#define CLAIMD_DB_DEVICES_H

#include <stdbool.h>
#include <stdint.h>

#include "claimd/crypto.h"
#include "claimd/db.h"

struct import_counts {
	long added, replaced, unchanged, conflicts;
};

/* Whoever hears of conflicting rows: a struct the caller defines for itself. */
struct import_reporter;
/** Called for each conflicting row: its line, MAC and what is wrong. */
typedef void (*import_report_fn)(struct import_reporter *r, long line, const char *mac,
                                 const char *what);

/**
 * Starts the import's streaming transaction: BEGIN, the staging table, COPY. Never
 * retried (the caller's rows cannot be replayed). DB_OK, or DB_SOFT/DB_HARD (rolled
 * back).
 */
enum db_status db_import_begin(struct db *db);
/** Streams one validated row into the COPY (buffered). DB_OK, or DB_HARD. */
enum db_status db_import_row(struct db *db, long line, const char *mac, const char *platform,
                             const uint8_t sealed[SEALED_EFUSE_BYTES],
                             const uint8_t tag[EFUSE_TAG_BYTES]);
/**
 * Ends the COPY and checks: the same MAC twice in the file with different data, and a
 * known MAC with a different key or platform (allowed only with @p replace). Each is
 * reported through @p report. When there are conflicts and !@p skip_conflicts, rolls
 * back and returns DB_NO_ROWS; otherwise merges and commits (same rows are no-ops):
 * DB_OK with @p out. DB_HARD or DB_SOFT on failure, then rolled back.
 */
enum db_status db_import_finish(struct db *db, bool replace, bool skip_conflicts,
                                import_report_fn report, struct import_reporter *r,
                                struct import_counts *out);
/** Abandons an import in progress (ROLLBACK). */
void db_import_abort(struct db *db);

#endif
