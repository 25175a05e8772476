/*
 * The start-up check: the database reached and current, the secrets key tried on the
 * devices it will have to open. Decides refuse or wait from the facts the database
 * layer reports; serves no request and writes nothing.
 */
#include "core/startup.h"

#include <stdio.h>
#include <string.h>

#include "db/db_startup.h"

enum startup_verdict startup_check(const struct runtime *rt, size_t *sampled, char *why,
                                   size_t whysz)
{
	/* A challenge of the length the signer takes (64 hex digits); any answer will do,
	 * only whether the key opens matters. */
	static const char probe[] = "00000000000000000000000000000000"
	                            "00000000000000000000000000000000";
	struct sealed_sample s[8];
	uint8_t response[HMAC_SHA512_BYTES] = {0};
	struct db *db = NULL;
	size_t n = 0, bad = 0;
	const char *first_bad = NULL;
	enum startup_verdict v = STARTUP_READY;

	if (sampled)
		*sampled = 0;
	char dberr[512];
	enum db_reach reach = db_probe(rt->cfg->db_url, &db, dberr, sizeof(dberr));
	if (reach != DB_REACH_OK) {
		const char *m = strncmp(dberr, "database: ", 10) == 0 ? dberr + 10 : dberr;
		snprintf(why, whysz, "database.url: the database cannot be used: %s", m);
		return reach == DB_REACH_DOWN ? STARTUP_WAIT : STARTUP_REFUSE;
	}
	if (db_sealed_sample(db, s, sizeof(s) / sizeof(s[0]), &n) < DB_NO_ROWS) {
		snprintf(why, whysz, "database: cannot read the registered devices");
		db_close(db);
		return STARTUP_REFUSE;
	}
	db_close(db);
	for (size_t i = 0; i < n; i++) {
		enum signer_verdict sv;
		int rc = signer_check(rt->signer, s[i].mac, s[i].sealed, probe, response, &sv);
		if (rc != SIGNER_OK) {
			snprintf(why, whysz, "the signer process does not answer");
			return STARTUP_REFUSE;
		}
		if (sv == SIGNER_UNOPENABLE && bad++ == 0)
			first_bad = s[i].mac;
	}
	if (sampled)
		*sampled = n;
	if (bad) {
		snprintf(
		    why, whysz,
		    "secrets.key_file: %s does not open the sealed eFuse keys of %zu of the %zu "
		    "registered devices tried (%s first): they were registered under another "
		    "secrets key, and every self claim of them would fail",
		    rt->cfg->secrets_key_file, bad, n, first_bad);
		v = STARTUP_REFUSE;
	}
	return v;
}
