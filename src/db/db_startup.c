/*
 * The database side of the start-up check (claimd -t and claimd itself): reachability
 * told apart from refusal, and a sample of sealed eFuse keys. Reports facts; whether
 * claimd waits or exits is the daemon's decision.
 */
#include "db_internal.h"

#include <stdio.h>
#include <string.h>

#include "lib/secure.h"
#include "db/db_startup.h"

const struct db_stmt db_startup_stmts[] = {
    /* $1 a MAC-shaped point to start from: the first two, the last two and four from
     * there, each an index range on the primary key. */
    {"sealed_sample", "(SELECT mac, efuse_key_sealed AS sealed FROM devices ORDER BY mac LIMIT 2)"
                      " UNION (SELECT mac, efuse_key_sealed FROM devices ORDER BY mac DESC LIMIT 2)"
                      " UNION (SELECT mac, efuse_key_sealed FROM devices WHERE mac >= $1"
                      " ORDER BY mac LIMIT 4)"},
    {NULL, NULL},
};

enum db_reach db_probe(const char *url, struct db **out, char *err, size_t errsz)
{
	*out = NULL;
	switch (PQping(url)) {
	case PQPING_OK:
		break;
	case PQPING_NO_ATTEMPT:
		/* libpq's own words could quote the string, password and all. */
		snprintf(err, errsz, "database: database.url is not a valid connection string");
		return DB_REACH_REFUSED;
	case PQPING_REJECT:
		snprintf(err, errsz,
		         "database: the server is not accepting connections yet "
		         "(starting up, shutting down, or in recovery)");
		return DB_REACH_DOWN;
	default:
		snprintf(err, errsz, "database: no server answers at database.url (not up yet?)");
		return DB_REACH_DOWN;
	}
	if ((*out = db_connect(url, true, err, errsz)))
		return DB_REACH_OK;
	/* The server answered a moment ago: a refusal now is the operator's to fix, unless
	 * it has gone away in between. */
	return PQping(url) == PQPING_OK ? DB_REACH_REFUSED : DB_REACH_DOWN;
}

struct sample_walk {
	struct sealed_sample *out, row;
	size_t max, n;
};

static enum db_status sample_row(void *cls, int index)
{
	struct sample_walk *w = cls;
	(void)index;
	if (w->n < w->max)
		w->out[w->n++] = w->row;
	return DB_OK;
}

enum db_status db_sealed_sample(struct db *db, struct sealed_sample *out, size_t max, size_t *n)
{
	static const char hex[] = "0123456789ABCDEF";
	char from[MAC_LEN + 1];
	uint8_t r[MAC_LEN];
	struct sample_walk w = {.out = out, .max = max};

	secure_random(r, sizeof(r));
	for (size_t i = 0; i < MAC_LEN; i++)
		from[i] = hex[r[i] & 15];
	from[MAC_LEN] = '\0';
	const struct db_param p[] = {DB_TEXT(from), DB_PARAMS_END};
	const struct db_col cols[] = {DB_COL_TEXT("mac", w.row.mac),
	                              DB_COL_BYTEA("sealed", w.row.sealed), DB_COLS_END};
	enum db_status s = db_exec_rows(db, "sealed_sample", p, cols, sample_row, &w);
	*n = w.n;
	return s;
}
