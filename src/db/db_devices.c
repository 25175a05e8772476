/*
 * Device registry writes: the COPY-based importer, one streaming transaction (begin,
 * rows, finish) that spans many calls and is therefore never retried. Conflicts are
 * found with set queries over the staging table instead of row-by-row round trips,
 * which is what makes a million rows take seconds. The eFuse keys arrive sealed.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db_devices.h"
#include "lib/log.h"
#include "lib/util.h"
#include "db_internal.h"

/* A device's nodes, and whether one of them is live and claimed, for listings. */
#define DEVICE_NODES                                                                               \
	" (SELECT count(*) FROM nodes n WHERE n.mac = d.mac) AS nodes,"                            \
	" EXISTS (SELECT 1 FROM nodes n WHERE n.mac = d.mac AND n.claimed_at IS NOT NULL"          \
	"  AND n.released_at IS NULL) AS claimed"

const struct db_stmt db_devices_stmts[] = {
    /* $1 platform or NULL, $2 0 any / 1 claimed / 2 unclaimed */
    {"devices_list", "SELECT * FROM (SELECT d.mac, d.platform,"
                     " extract(epoch FROM d.registered_at)::int8 AS registered_at," DEVICE_NODES
                     " FROM devices d WHERE ($1::text IS NULL OR d.platform = $1)) x"
                     " WHERE $2::int = 0 OR claimed = ($2::int = 1) ORDER BY mac"},
    {"device_detail",
     "SELECT d.mac, d.platform, extract(epoch FROM d.registered_at)::int8 AS registered_at,"
     " extract(epoch FROM d.updated_at)::int8 AS updated_at," DEVICE_NODES ","
     " coalesce(l.failures, 0)::int8 AS failures, coalesce(l.lockouts, 0)::int8 AS lockouts,"
     " coalesce(extract(epoch FROM l.locked_until)::int8, 0) AS locked_until,"
     " coalesce(l.locked_until > now(), false) AS locked"
     " FROM devices d LEFT JOIN mac_lockouts l ON l.mac = d.mac WHERE d.mac = $1"},
    {NULL, NULL},
};

#define COPY_BUF (256 * 1024)

static enum db_status flush_copy(struct db *db)
{
	if (db->copylen && PQputCopyData(db->conn, db->copybuf, (int)db->copylen) != 1) {
		log_error("database: COPY: %s", db_said(db, PQerrorMessage(db->conn)));
		return DB_HARD;
	}
	db->copylen = 0;
	return DB_OK;
}

enum db_status db_import_begin(struct db *db)
{
	PGresult *r;
	enum db_status s;

	db->copylen = 0;
	if (!db->copybuf && !(db->copybuf = malloc(COPY_BUF)))
		return DB_HARD;
	if ((s = db_stream_begin(db, "import")) < DB_NO_ROWS)
		return s;
	if ((s = db_exec_sql(db, "CREATE TEMP TABLE import_rows (line bigint NOT NULL,"
	                         " mac text NOT NULL, platform text NOT NULL,"
	                         " sealed bytea NOT NULL, tag bytea NOT NULL) ON COMMIT DROP")) <
	    DB_NO_ROWS)
		goto fail;
	r = PQexec(db->conn, "COPY import_rows (line, mac, platform, sealed, tag) FROM STDIN");
	if (PQresultStatus(r) != PGRES_COPY_IN) {
		s = db_classify(db, r, "COPY");
		PQclear(r);
		goto fail;
	}
	PQclear(r);
	return DB_OK;
fail:
	db_stream_abort(db);
	return s < DB_NO_ROWS ? s : DB_HARD;
}

enum db_status db_import_row(struct db *db, long line, const char *mac, const char *platform,
                             const uint8_t sealed[SEALED_EFUSE_BYTES],
                             const uint8_t tag[EFUSE_TAG_BYTES])
{
	char hs[2 * SEALED_EFUSE_BYTES + 1], ht[2 * EFUSE_TAG_BYTES + 1];

	if (db->copylen + 512 > COPY_BUF && flush_copy(db) < DB_NO_ROWS)
		return DB_HARD;
	hex_encode_lower(hs, sealed, SEALED_EFUSE_BYTES);
	hex_encode_lower(ht, tag, EFUSE_TAG_BYTES);
	/* COPY text format; every field is validated ASCII with no tabs or backslashes
	 * except the bytea prefix, whose backslash is itself escaped. */
	int n = snprintf(db->copybuf + db->copylen, COPY_BUF - db->copylen,
	                 "%ld\t%s\t%s\t\\\\x%s\t\\\\x%s\n", line, mac, platform, hs, ht);
	if (n < 0 || (size_t)n >= COPY_BUF - db->copylen)
		return DB_HARD;
	db->copylen += (size_t)n;
	return DB_OK;
}

/* One conflicting row, as the conflict queries name their columns. */
struct report {
	int64_t line;
	char mac[MAC_LEN + 1];
	char what[160];
	import_report_fn fn;
	struct import_reporter *r;
	long *count;
};

static enum db_status report_one(void *cls, int index)
{
	struct report *rp = cls;
	(void)index;
	if (rp->fn)
		rp->fn(rp->r, (long)rp->line, rp->mac, rp->what);
	(*rp->count)++;
	return DB_OK;
}

/* Reports every row (line, mac, what) that @p sql finds. */
static enum db_status report_rows(struct db *db, const char *sql, import_report_fn fn,
                                  struct import_reporter *r, long *count)
{
	struct report rp = {.fn = fn, .r = r, .count = count};
	const struct db_col cols[] = {DB_COL_INT("line", &rp.line), DB_COL_TEXT("mac", rp.mac),
	                              DB_COL_TEXT("what", rp.what), DB_COLS_END};
	return db_exec_sql_rows(db, sql, cols, report_one, &rp);
}

enum db_status db_import_finish(struct db *db, bool replace, bool skip_conflicts,
                                import_report_fn report, import_report_fn locked,
                                struct import_reporter *rep, struct import_counts *out)
{
	PGresult *r;
	enum db_status s = DB_HARD;

	memset(out, 0, sizeof(*out));
	if (flush_copy(db) < DB_NO_ROWS || PQputCopyEnd(db->conn, NULL) != 1)
		goto fail;
	r = PQgetResult(db->conn);
	s = db_classify(db, r, "COPY end");
	PQclear(r);
	while ((r = PQgetResult(db->conn)) != NULL)
		PQclear(r);
	if (s < DB_NO_ROWS)
		goto fail;
	/* One import at a time decides and writes: without the lock, two imports of one new
	 * MAC with different keys would both find no conflict, and the later one's merge
	 * would replace the earlier one's key although neither asked to replace. Claims
	 * only read devices, and SHARE ROW EXCLUSIVE does not conflict with their reads. */
	if ((s = db_exec_sql(db, "LOCK TABLE devices IN SHARE ROW EXCLUSIVE MODE")) < DB_NO_ROWS ||
	    (s = db_exec_sql(db, "CREATE INDEX ON import_rows (mac)")) < DB_NO_ROWS ||
	    (s = db_exec_sql(db, "ANALYZE import_rows")) < DB_NO_ROWS)
		goto fail;

	/* The same MAC twice in one file must carry the same key and platform. */
	s = report_rows(db,
	                "SELECT i.line, i.mac, 'MAC appears again with a different key or "
	                "platform (first at line ' || f.line || ')' AS what"
	                " FROM import_rows i JOIN LATERAL (SELECT line, tag, platform FROM "
	                "import_rows j WHERE j.mac = i.mac ORDER BY line LIMIT 1) f ON true"
	                " WHERE i.line > f.line AND (i.tag <> f.tag OR i.platform <> f.platform)"
	                " ORDER BY i.line",
	                report, rep, &out->conflicts);
	if (s < DB_NO_ROWS)
		goto fail;
	if (!replace) {
		s = report_rows(db,
		                "SELECT i.line, i.mac, 'MAC already registered with a different "
		                "key or platform (use --replace)' AS what"
		                " FROM import_rows i JOIN devices d USING (mac)"
		                " WHERE d.efuse_key_tag <> i.tag OR d.platform <> i.platform"
		                " ORDER BY i.line",
		                report, rep, &out->conflicts);
		if (s < DB_NO_ROWS)
			goto fail;
	}
	if (out->conflicts && !skip_conflicts) {
		db_stream_abort(db);
		return DB_NO_ROWS;
	}
	if (out->conflicts) {
		/* Drop every row of a MAC that conflicted, keep the rest. */
		s = db_exec_sql(
		    db, replace ? "DELETE FROM import_rows WHERE mac IN (SELECT mac FROM "
		                  "import_rows GROUP BY mac HAVING count(DISTINCT (tag, "
		                  "platform)) > 1)"
		                : "DELETE FROM import_rows i WHERE i.mac IN (SELECT mac FROM "
		                  "import_rows GROUP BY mac HAVING count(DISTINCT (tag, "
		                  "platform)) > 1) OR EXISTS (SELECT 1 FROM devices d WHERE "
		                  "d.mac = i.mac AND (d.efuse_key_tag <> i.tag OR d.platform "
		                  "<> i.platform))");
		if (s < DB_NO_ROWS)
			goto fail;
	}
	int64_t added = 0, replaced = 0, distinct = 0;
	const struct db_col counts[] = {DB_COL_INT("added", &added),
	                                DB_COL_INT("replaced", &replaced),
	                                DB_COL_INT("distinct_macs", &distinct), DB_COLS_END};
	s = db_exec_sql_rows(db,
	                     "WITH m AS ("
	                     " INSERT INTO devices (mac, platform, efuse_key_sealed, efuse_key_tag)"
	                     " SELECT DISTINCT ON (mac) mac, platform, sealed, tag FROM import_rows"
	                     " ORDER BY mac, line"
	                     " ON CONFLICT (mac) DO UPDATE SET platform = EXCLUDED.platform,"
	                     "  efuse_key_sealed = EXCLUDED.efuse_key_sealed,"
	                     "  efuse_key_tag = EXCLUDED.efuse_key_tag, updated_at = now()"
	                     " WHERE devices.efuse_key_tag <> EXCLUDED.efuse_key_tag"
	                     "  OR devices.platform <> EXCLUDED.platform"
	                     " RETURNING (xmax = 0) AS added)"
	                     " SELECT (SELECT count(*) FROM m WHERE added) AS added,"
	                     " (SELECT count(*) FROM m WHERE NOT added) AS replaced,"
	                     " (SELECT count(DISTINCT mac) FROM import_rows) AS distinct_macs",
	                     counts, NULL, NULL);
	if (s != DB_OK)
		goto fail;
	out->added = (long)added;
	out->replaced = (long)replaced;
	out->unchanged = (long)(distinct - added - replaced);
	if (locked && (s = report_rows(
	                   db,
	                   "SELECT min(i.line) AS line, i.mac, to_char(l.locked_until AT TIME ZONE"
	                   " 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') AS what"
	                   " FROM import_rows i JOIN mac_lockouts l USING (mac)"
	                   " WHERE l.locked_until > now() GROUP BY i.mac, l.locked_until"
	                   " ORDER BY 1",
	                   locked, rep, &out->locked)) < DB_NO_ROWS)
		goto fail;
	return db_stream_commit(db, "import");
fail:
	db_import_abort(db);
	return DB_HARD;
}

void db_import_abort(struct db *db)
{
	db_stream_abort(db);
}

struct list_tx {
	device_list_fn fn;
	struct device_sink *s;
	struct device_entry row;
};

static enum db_status list_row(void *cls, int index)
{
	struct list_tx *t = cls;
	(void)index;
	return t->fn(t->s, &t->row) == 0 ? DB_OK : DB_HARD;
}

enum db_status db_devices_list(struct db *db, const struct device_filter *f, device_list_fn fn,
                               struct device_sink *s)
{
	struct list_tx t = {.fn = fn, .s = s};
	const struct db_param p[] = {DB_TEXT(f->platform), DB_INT(f->claimed), DB_PARAMS_END};
	const struct db_col cols[] = {
	    DB_COL_TEXT("mac", t.row.mac),
	    DB_COL_TEXT("platform", t.row.platform),
	    DB_COL_INT("registered_at", &t.row.registered_at),
	    DB_COL_INT("nodes", &t.row.nodes),
	    DB_COL_BOOL("claimed", &t.row.claimed),
	    DB_COLS_END,
	};
	/* Not through the runner: rows already handed out cannot be taken back. */
	return db_exec_rows(db, "devices_list", p, cols, list_row, &t);
}

enum db_status db_device_detail(struct db *db, const char *mac, struct device_detail *out)
{
	const struct db_param p[] = {DB_TEXT(mac), DB_PARAMS_END};
	const struct db_col cols[] = {
	    DB_COL_TEXT("mac", out->d.mac),
	    DB_COL_TEXT("platform", out->d.platform),
	    DB_COL_INT("registered_at", &out->d.registered_at),
	    DB_COL_INT("nodes", &out->d.nodes),
	    DB_COL_BOOL("claimed", &out->d.claimed),
	    DB_COL_INT("updated_at", &out->updated_at),
	    DB_COL_INT("failures", &out->failures),
	    DB_COL_INT("lockouts", &out->lockouts),
	    DB_COL_INT("locked_until", &out->locked_until),
	    DB_COL_BOOL("locked", &out->locked),
	    DB_COLS_END,
	};

	memset(out, 0, sizeof(*out));
	return db_run_exec(db, "device_detail", p, cols);
}
