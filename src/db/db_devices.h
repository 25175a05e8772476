/*
 * Bulk registration of manufactured devices: rows stream into a temporary table with
 * COPY, are checked against each other and the registry in SQL, then merged, all in
 * one transaction (all-or-nothing unless the caller skips conflicting rows).
 */
#ifndef CLAIMD_DB_DEVICES_H
#define CLAIMD_DB_DEVICES_H

#include <stdbool.h>
#include <stdint.h>

#include "lib/secure.h"
#include "db/db.h"
#include "lib/vocab.h"

struct import_counts {
	long added, replaced, unchanged, conflicts;
	long locked; /* MACs of the import that are locked now (reported, still stored) */
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
 * Ends the COPY and checks, with the devices table locked against other imports (not
 * against claims, which only read it) until the commit: the same MAC twice in the file
 * with different data, and a known MAC with a different key or platform (allowed only
 * with @p replace). Each is reported through @p report. When there are conflicts and
 * !@p skip_conflicts, rolls back and returns DB_NO_ROWS; otherwise merges and commits
 * (same rows are no-ops): DB_OK with @p out. DB_HARD or DB_SOFT on failure, then rolled
 * back. Each MAC of the import that is locked after wrong challenge responses (storing
 * it, a new key included, does not lift the lock) goes to @p locked unless it is NULL:
 * its first line, the MAC, and as "what" the RFC 3339 UTC time the lock ends.
 */
enum db_status db_import_finish(struct db *db, bool replace, bool skip_conflicts,
                                import_report_fn report, import_report_fn locked,
                                struct import_reporter *r, struct import_counts *out);
/** Abandons an import in progress (ROLLBACK). */
void db_import_abort(struct db *db);

/* A registered chip as listings show it (never its key). */
struct device_entry {
	char mac[MAC_LEN + 1], platform[33];
	int64_t registered_at; /* unix seconds */
	int64_t nodes;         /* its nodes, self and user, released ones included */
	bool claimed;          /* it has a live node that was claimed */
};

/** Which devices a listing wants: NULL platform and DEVICES_ANY do not filter. */
enum device_claimed { DEVICES_ANY, DEVICES_CLAIMED, DEVICES_UNCLAIMED };
struct device_filter {
	const char *platform;
	enum device_claimed claimed;
};

/* Where listed devices go: a struct the caller defines for itself. */
struct device_sink;
/** Takes one device; 0 to go on, -1 to stop (the listing then fails). */
typedef int (*device_list_fn)(struct device_sink *s, const struct device_entry *d);

/**
 * The registered devices @p f selects, in MAC order, each passed to @p fn as it is read
 * (memory stays flat for a million). DB_OK; DB_NO_ROWS (none); DB_HARD when @p fn
 * stopped; DB_SOFT or DB_HARD on failure.
 */
enum db_status db_devices_list(struct db *db, const struct device_filter *f, device_list_fn fn,
                               struct device_sink *s);

/* One chip with its wrong-answer lockout state. */
struct device_detail {
	struct device_entry d;
	int64_t updated_at;   /* unix seconds: last registration change */
	int64_t failures;     /* wrong answers counted towards the next lock */
	int64_t lockouts;     /* locks so far */
	int64_t locked_until; /* unix seconds, 0 if never locked */
	bool locked;          /* the lock runs now */
};

/**
 * Registered device @p mac (canonical) with its lockout state into *@p out. DB_OK;
 * DB_NO_ROWS when it is not registered; DB_SOFT or DB_HARD on failure.
 */
enum db_status db_device_detail(struct db *db, const char *mac, struct device_detail *out);

#endif
