/*
 * The management API (api/openapi.yaml, /admin/v1; README.md, "The management API"): device
 * registration, device and node lookups, verify-signature, revocation and release, for factory
 * stations and backends that hold a bearer token. The server has checked the token and named it in
 * rq->actor before any of these run; every change is audited with that name. Key
 * material never leaves: lookups select none, and registered keys are sealed at once.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/operator.h"
#include "lib/canon.h"
#include "lib/csvimport.h"
#include "db/db_admin.h"
#include "db/db_audit.h"
#include "db/db_devices.h"
#include "db/db_lifecycle.h"
#include "db/db_users.h"
#include "lib/vocab.h"
#include "daemon/http.h"
#include "lib/log.h"
#include "lib/util.h"

/* Longest signature accepted (RSA-4096 is 512 bytes; DER ECDSA P-256 at most 72). */
#define SIG_MAX 1024

/* The reply for a failed database call. */
static enum MHD_Result reply_db(struct request *rq, struct MHD_Connection *c, enum db_status s)
{
	return reply_error(rq, c, s == DB_SOFT ? CE_BUSY : CE_INTERNAL);
}

/* RFC 3339 UTC of unix seconds @p t. */
static json_t *json_time(int64_t t)
{
	char out[24];
	time_t tt = (time_t)t;
	struct tm tm;
	strftime(out, sizeof(out), "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&tt, &tm));
	return json_string(out);
}

/* A time that is 0 when unset: RFC 3339, or null. */
static json_t *json_time_opt(int64_t t)
{
	return t ? json_time(t) : json_null();
}

/* A text column that is "" when unset: the string, or null. */
static json_t *json_opt(const char *s)
{
	return s[0] ? json_string(s) : json_null();
}

/* A node_id as the nodes table allows it (1-64 of [A-Za-z0-9_-]). */
static bool node_id_ok(const char *s)
{
	size_t n = strlen(s);
	if (n == 0 || n > NODE_ID_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-'))
			return false;
	return true;
}

/*
 * Where the JSON text of the body starts: after a UTF-8 byte order mark, which RFC 8259
 * 8.1 lets a parser ignore and which Windows tools write (PowerShell 5's
 * `Set-Content -Encoding UTF8`, Notepad before 2019), so a file saved there and sent
 * with curl's --data-binary @file is read like any other. One mark only.
 */
static size_t body_start(const struct request *rq)
{
	return rq->body && rq->len >= 3 && memcmp(rq->body, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
}

/* The body as a JSON value, or NULL when it is not JSON (duplicate keys refused). Every
 * management endpoint that takes a body reads it here. */
static json_t *body_json(const struct request *rq)
{
	size_t at = body_start(rq);
	return rq->body ? json_loadb(rq->body + at, rq->len - at, JSON_REJECT_DUPLICATES, NULL)
	                : NULL;
}

/* The string member @p key of object @p o, or NULL when missing or not a string. */
static const char *member_str(const json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);
	return json_is_string(v) ? json_string_value(v) : NULL;
}

/* The operator the server named from the bearer token, for operator.h's audit rows. */
static struct operator_who admin_who(const struct request *rq)
{
	return (struct operator_who){rq->actor, rq->remote, rq->id, true};
}

/* --- POST /admin/v1/devices --- */

struct import_reporter {
	long conflicts;
	char first[160]; /* the first conflicting item: "devices[I] (MAC): what" */
};

/* Rows were given lines 1.. in array order: line L is item L - 1 of the body. The
 * importer's words speak of lines and of claimctl's --replace; here of items. */
static void count_conflict(struct import_reporter *r, long line, const char *mac, const char *what)
{
	const char *first = strstr(what, " (first at line ");
	if (r->conflicts++ != 0)
		return;
	if (first)
		snprintf(r->first, sizeof(r->first),
		         "devices[%ld] (%s): %.*s (first at devices[%ld])", line - 1, mac,
		         (int)(first - what), what,
		         strtol(first + strlen(" (first at line "), NULL, 10) - 1);
	else {
		const char *hint = strstr(what, " (use --replace)");
		snprintf(r->first, sizeof(r->first), "devices[%ld] (%s): %.*s", line - 1, mac,
		         hint ? (int)(hint - what) : (int)strlen(what), what);
	}
}

/*
 * Every item is checked by canon_device(), as every entry point checks a device, before
 * anything is stored;
 * then the rows go through the same importer, sealed the same way, without --replace:
 * the same rows again change nothing, a known MAC with another key or platform is a
 * conflict, and a conflict stores nothing.
 */
enum MHD_Result handle_admin_devices_post(struct request *rq, struct MHD_Connection *c)
{
	json_t *arr = body_json(rq);
	struct csv_row *rows = NULL;
	struct {
		uint8_t sealed[SEALED_EFUSE_BYTES], tag[EFUSE_TAG_BYTES];
	} *sealed = NULL;
	struct import_reporter rep = {0};
	struct import_counts counts = {0};
	enum claimd_err e = CE_OK;
	enum db_status s = DB_OK;
	struct db *db = NULL;
	size_t n = 0;
	enum MHD_Result ret;
	char where[48] = "";
	const char *why = NULL; /* what is wrong with the item, when the code does not say */

	if (!json_is_array(arr) || (n = json_array_size(arr)) == 0) {
		e = CE_DEVICES_BODY;
		goto out;
	}
	if (!(rows = calloc(n, sizeof(*rows)))) {
		e = CE_INTERNAL;
		goto out;
	}
	for (size_t i = 0; i < n && e == CE_OK; i++) {
		struct canon_device d;
		json_t *it = json_array_get(arr, i);
		const char *mac = member_str(it, "mac"), *plat = member_str(it, "platform"),
		           *key = member_str(it, "efuse_key");
		if (!json_is_object(it) || !mac || !plat || !key) {
			e = CE_DEVICES_BODY;
			why = !json_is_object(it) ? "not an object"
			      : !mac              ? "mac: missing or not a string"
			      : !plat             ? "platform: missing or not a string"
			                          : "efuse_key: missing or not a string";
		} else
			e = canon_device(mac, plat, key, rq->rt->cfg->extra_platforms, &d);
		if (e != CE_OK) /* the item, counted from 0 as in the array */
			snprintf(where, sizeof(where), "devices[%zu]", i);
		if (e == CE_OK) {
			memcpy(rows[i].mac, d.mac, sizeof(rows[i].mac));
			memcpy(rows[i].platform, d.platform, sizeof(rows[i].platform));
			memcpy(rows[i].efuse_key, d.efuse_key, sizeof(rows[i].efuse_key));
		}
		rows[i].line = (long)i + 1;
	}
	if (e != CE_OK)
		goto out;
	/* Sealed by the signer (this process holds no sealing key), all before the
	 * transaction opens, so no lock waits on the signer. */
	if (!(sealed = calloc(n, sizeof(*sealed)))) {
		e = CE_INTERNAL;
		goto out;
	}
	struct operator_sealer by = {.signer = rq->rt->signer};
	for (size_t i = 0; i < n && e == CE_OK; i++)
		e = operator_seal(&by, rows[i].mac, rows[i].efuse_key, sealed[i].sealed,
		                  sealed[i].tag);
	if (e != CE_OK)
		goto out;
	if (!(db = app_db(rq->app))) {
		e = CE_BUSY;
		goto out;
	}
	if ((s = operator_register_begin(db)) < DB_NO_ROWS)
		goto out;
	for (size_t i = 0; i < n; i++) {
		if ((s = operator_register_row(db, &rows[i], sealed[i].sealed, sealed[i].tag)) <
		    DB_NO_ROWS) {
			operator_register_abort(db);
			goto out;
		}
	}
	struct operator_who who = admin_who(rq);
	s = operator_register_finish(db, &who, false, false, count_conflict, NULL, &rep, &counts);
	if (s == DB_NO_ROWS) {
		e = CE_DEVICE_CONFLICT;
		goto out;
	}
	if (s < DB_NO_ROWS)
		goto out;
	log_info("devices registered by %s: %ld added, %ld unchanged", rq->actor, counts.added,
	         counts.unchanged);
out:
	if (rows)
		secure_wipe(rows, n * sizeof(*rows));
	free(rows);
	free(sealed);
	json_decref(arr);
	if (e == CE_DEVICE_CONFLICT)
		return reply_error_at(rq, c, e, NULL, rep.first[0] ? rep.first : NULL);
	if (e != CE_OK)
		return reply_error_at(rq, c, e, where[0] ? where : NULL, why);
	if (s < DB_NO_ROWS)
		return reply_db(rq, c, s);
	ret = reply_json(rq, c, 200,
	                 json_pack("{s:s, s:I, s:I}", "status", "success", "added",
	                           (json_int_t)counts.added, "unchanged",
	                           (json_int_t)counts.unchanged));
	return ret;
}

/* --- GET /admin/v1/devices/{mac} --- */

static json_t *cert_json(const struct cert_row *r, const char *pem)
{
	json_t *o = json_pack("{s:s, s:s, s:s, s:o, s:o}", "serial", r->serial, "node_id",
	                      r->node_id, "status", cert_status_name(r), "not_before",
	                      json_time(r->not_before), "not_after", json_time(r->not_after));
	if (o && r->revoked) {
		json_object_set_new(o, "revoked_at", json_time(r->revoked_at));
		json_object_set_new(o, "reason", json_string(crl_reason_name((int)r->reason)));
	}
	if (o && pem)
		json_object_set_new(o, "pem", json_string(pem));
	return o;
}

/*
 * As `claimctl devices show`: the registration and lockout state when the chip is
 * registered (null when it only has user-claimed nodes), its nodes and certificates.
 */
enum MHD_Result handle_admin_device_get(struct request *rq, struct MHD_Connection *c)
{
	char seg[64], mac[MAC_LEN + 1];
	struct device_detail d;
	struct node_show *nodes = NULL;
	struct cert_row *certs = NULL;
	size_t nn = 0, nc = 0;
	struct db *db;
	enum db_status s, sd;

	if (!request_segment(rq, 3, seg, sizeof(seg)) || !mac_normalize(mac, seg, strlen(seg)))
		return reply_error(rq, c, CE_ADMIN_MAC);
	snprintf(rq->mac, sizeof(rq->mac), "%s", mac); /* for the access log */
	if (!(db = app_db(rq->app)))
		return reply_error(rq, c, CE_BUSY);
	if ((sd = db_device_detail(db, mac, &d)) < DB_NO_ROWS)
		return reply_db(rq, c, sd);
	if ((s = db_device_nodes(db, mac, &nodes, &nn)) < DB_NO_ROWS)
		return reply_db(rq, c, s);
	if (sd == DB_NO_ROWS && nn == 0)
		return reply_error(rq, c, CE_ADMIN_NO_DEVICE);
	struct cert_filter f = {NULL, mac, false, NULL};
	if ((s = db_certs_list(db, &f, &certs, &nc)) < DB_NO_ROWS) {
		free(nodes);
		return reply_db(rq, c, s);
	}
	json_t *jn = json_array(), *jc = json_array();
	for (size_t i = 0; i < nn; i++)
		json_array_append_new(jn, json_pack("{s:s, s:o, s:o, s:o, s:o, s:o}", "node_id",
		                                    nodes[i].node_id, "user",
		                                    json_opt(nodes[i].user_id), "platform",
		                                    json_opt(nodes[i].platform), "created",
		                                    json_time(nodes[i].created_at), "claimed",
		                                    json_time_opt(nodes[i].claimed_at), "released",
		                                    json_time_opt(nodes[i].released_at)));
	for (size_t i = 0; i < nc; i++)
		json_array_append_new(jc, cert_json(&certs[i], NULL));
	free(nodes);
	free(certs);
	json_t *reg = json_null();
	if (sd == DB_OK)
		reg = json_pack("{s:s, s:o, s:o, s:{s:b, s:I, s:I, s:o}}", "platform", d.d.platform,
		                "registered", json_time(d.d.registered_at), "updated",
		                json_time(d.updated_at), "lockout", "locked", d.locked, "failures",
		                (json_int_t)d.failures, "lockouts", (json_int_t)d.lockouts,
		                "locked_until", json_time_opt(d.locked ? d.locked_until : 0));
	return reply_json(rq, c, 200,
	                  json_pack("{s:s, s:o, s:o, s:o}", "mac", mac, "registration", reg,
	                            "nodes", jn, "certificates", jc));
}

/* --- GET /admin/v1/nodes/{node_id} --- */

/*
 * The node_id path segment into @p out (and the access log); false when it is not one.
 * A self-claimed node's node_id is its MAC (protocol.md 2.2), so a MAC in any spelling
 * mac_normalize() reads (any case; ':' or '-' between pairs) names that node, as it does
 * in `claimctl nodes show/release`; user nodes' ids (22 letters and digits) are never
 * MAC-shaped, so nothing else is rewritten.
 */
static bool path_node_id(struct request *rq, char out[NODE_ID_MAX + 1])
{
	char mac[MAC_LEN + 1];
	if (!request_segment(rq, 3, out, NODE_ID_MAX + 1))
		return false;
	if (mac_normalize(mac, out, strlen(out)))
		memcpy(out, mac, sizeof(mac));
	if (!node_id_ok(out))
		return false;
	snprintf(rq->node_id, sizeof(rq->node_id), "%s", out); /* for the access log */
	return true;
}

enum MHD_Result handle_admin_node_get(struct request *rq, struct MHD_Connection *c)
{
	char node_id[NODE_ID_MAX + 1];
	struct node_show n;
	struct cert_pem *certs = NULL;
	size_t nc = 0;
	struct db *db;
	enum db_status s;

	if (!path_node_id(rq, node_id))
		return reply_error(rq, c, CE_ADMIN_NODE_ID);
	if (!(db = app_db(rq->app)))
		return reply_error(rq, c, CE_BUSY);
	if ((s = db_node_show(db, node_id, &n)) == DB_NO_ROWS)
		return reply_error(rq, c, CE_ADMIN_NO_NODE);
	if (s < DB_NO_ROWS)
		return reply_db(rq, c, s);
	if ((s = db_node_cert_pems(db, node_id, &certs, &nc)) < DB_NO_ROWS)
		return reply_db(rq, c, s);
	json_t *jc = json_array();
	for (size_t i = 0; i < nc; i++)
		json_array_append_new(jc, cert_json(&certs[i].facts, certs[i].pem));
	db_cert_pems_free(certs, nc);
	return reply_json(rq, c, 200,
	                  json_pack("{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o}", "node_id",
	                            n.node_id, "mac", n.mac, "user", json_opt(n.user_id),
	                            "platform", json_opt(n.platform), "created",
	                            json_time(n.created_at), "claimed", json_time_opt(n.claimed_at),
	                            "released", json_time_opt(n.released_at), "certificates", jc));
}

/* --- POST /admin/v1/nodes/{node_id}/verify-signature --- */

enum MHD_Result handle_admin_verify_signature(struct request *rq, struct MHD_Connection *c)
{
	char node_id[NODE_ID_MAX + 1];
	json_t *body = NULL;
	const char *challenge, *sighex;
	uint8_t sig[SIG_MAX];
	struct cert_pem *certs = NULL;
	size_t nc = 0, siglen;
	const struct cert_pem *cur = NULL;
	bool valid = false;
	enum claimd_err e = CE_OK;
	enum db_status s = DB_OK;
	struct db *db;

	if (!path_node_id(rq, node_id))
		return reply_error(rq, c, CE_ADMIN_NODE_ID);
	body = body_json(rq);
	if (!json_is_object(body)) {
		e = CE_BAD_JSON;
		goto out;
	}
	challenge = member_str(body, "challenge");
	sighex = member_str(body, "signature");
	if (!challenge || !challenge[0]) {
		e = CE_ADMIN_CHALLENGE;
		goto out;
	}
	siglen = sighex ? strlen(sighex) / 2 : 0;
	if (!sighex || siglen == 0 || siglen > SIG_MAX ||
	    !hex_decode(sig, siglen, sighex, strlen(sighex), false)) {
		e = CE_ADMIN_SIGNATURE;
		goto out;
	}
	if (!(db = app_db(rq->app))) {
		e = CE_BUSY;
		goto out;
	}
	if ((s = db_node_cert_pems(db, node_id, &certs, &nc)) < DB_NO_ROWS)
		goto out;
	/* The current valid certificate: the newest one neither revoked nor expired. */
	for (size_t i = 0; i < nc; i++)
		if (strcmp(cert_status_name(&certs[i].facts), "valid") == 0)
			cur = &certs[i];
	if (!cur) {
		e = CE_ADMIN_NO_VALID_CERT;
		goto out;
	}
	if (ca_cert_verify_signature(cur->pem, challenge, strlen(challenge), sig, siglen, &valid) <
	    0)
		e = CE_INTERNAL;
out:
	db_cert_pems_free(certs, nc);
	json_decref(body);
	if (e != CE_OK)
		return reply_error(rq, c, e);
	if (s < DB_NO_ROWS)
		return reply_db(rq, c, s);
	return reply_json(rq, c, 200, json_pack("{s:b}", "valid", valid));
}

/* --- /admin/v1/certificates/{serial}... --- */

/*
 * The serial path segment, in any form cert_serial_parse() reads (percent-decoded, so
 * "7a%203f" is "7a 3f"), into @p out; CE_OK, or the refusal with its reason in @p why.
 */
static enum claimd_err path_serial(struct request *rq, char out[SERIAL_HEX_LEN + 1], char *why,
                                   size_t whysz)
{
	char seg[160];
	if (!request_segment(rq, 3, seg, sizeof(seg))) {
		snprintf(why, whysz, "longer than any serial");
		return CE_ADMIN_SERIAL;
	}
	return cert_serial_parse(out, seg, strlen(seg), why, whysz);
}

/* GET: one certificate's facts (as in a device's or node's listing) and its MAC. */
enum MHD_Result handle_admin_cert_get(struct request *rq, struct MHD_Connection *c)
{
	char serial[SERIAL_HEX_LEN + 1], why[256];
	struct cert_row *certs = NULL;
	size_t nc = 0;
	struct db *db;
	enum db_status s;
	enum claimd_err e = path_serial(rq, serial, why, sizeof(why));

	if (e != CE_OK)
		return reply_error_reason(rq, c, e, why);
	if (!(db = app_db(rq->app)))
		return reply_error(rq, c, CE_BUSY);
	struct cert_filter f = {NULL, NULL, false, serial};
	if ((s = db_certs_list(db, &f, &certs, &nc)) == DB_NO_ROWS)
		return reply_error(rq, c, CE_ADMIN_NO_CERT);
	if (s < DB_NO_ROWS)
		return reply_db(rq, c, s);
	json_t *o = cert_json(&certs[0], NULL);
	json_object_set_new(o, "mac", json_string(certs[0].mac));
	snprintf(rq->mac, sizeof(rq->mac), "%s", certs[0].mac); /* for the access log */
	free(certs);
	return reply_json(rq, c, 200, o);
}

enum MHD_Result handle_admin_revoke(struct request *rq, struct MHD_Connection *c)
{
	char serial[SERIAL_HEX_LEN + 1], why[256];
	int reason = CRL_REASON_UNSPECIFIED;
	long matched = 0, revoked = 0;
	struct db *db;
	enum db_status s;
	enum claimd_err e = path_serial(rq, serial, why, sizeof(why));

	if (e != CE_OK)
		return reply_error_reason(rq, c, e, why);
	/* The body is optional: no body (a byte order mark alone is none), or one without
	 * "reason", is "unspecified". */
	if (rq->len > body_start(rq)) {
		json_t *body = body_json(rq);
		json_t *r = json_object_get(body, "reason");
		if (!json_is_object(body)) {
			json_decref(body);
			return reply_error(rq, c, CE_BAD_JSON);
		}
		if (r && (!json_is_string(r) ||
		          (reason = crl_reason_from_name(json_string_value(r))) < 0 ||
		          reason == CRL_REASON_REMOVE_FROM_CRL)) {
			json_decref(body);
			return reply_error(rq, c,
			                   reason == CRL_REASON_REMOVE_FROM_CRL
			                       ? CE_ADMIN_REASON_UNSUPPORTED
			                       : CE_ADMIN_REASON);
		}
		json_decref(body);
	}
	if (!(db = app_db(rq->app)))
		return reply_error(rq, c, CE_BUSY);
	const char *serials[] = {serial};
	struct cert_selector sel = {serials, 1, NULL, NULL};
	struct operator_who who = admin_who(rq);
	char *missing = NULL; /* one serial named: it is missing exactly when nothing matched */
	s = operator_revoke(db, &who, &sel, reason, &matched, &revoked, &missing);
	free(missing);
	if (s == DB_NO_ROWS)
		return reply_error(rq, c, CE_ADMIN_NO_CERT);
	if (s < DB_NO_ROWS)
		return reply_db(rq, c, s);
	/* The revocation that counts is the first: its reason and time are what the CRL
	 * says, so they are what the reply says, whatever this request asked for. */
	struct cert_filter f = {NULL, NULL, false, serial};
	struct cert_row *row = NULL;
	size_t nrows = 0;
	if ((s = db_certs_list(db, &f, &row, &nrows)) != DB_OK || nrows != 1 || !row->revoked) {
		free(row);
		return reply_db(rq, c, s < DB_NO_ROWS ? s : DB_HARD);
	}
	int kept = (int)row->reason;
	json_t *at = json_time(row->revoked_at);
	free(row);
	if (revoked)
		log_info("certificate %s revoked (%s) by %s", serial, crl_reason_name(kept),
		         rq->actor);
	else
		log_info("certificate %s: revoke (%s) by %s: already revoked at %s (%s), kept",
		         serial, crl_reason_name(reason), rq->actor, json_string_value(at),
		         crl_reason_name(kept));
	json_t *body =
	    json_pack("{s:s, s:s, s:b, s:o}", "serial", serial, "reason", crl_reason_name(kept),
	              "newly_revoked", revoked > 0, "revoked_at", at);
	if (body && !revoked)
		json_object_set_new(
		    body, "description",
		    json_string("already revoked: the first revocation, its time and "
		                "reason, is kept"));
	return reply_json(rq, c, 200, body);
}

/* --- POST /admin/v1/nodes/{node_id}/release --- */

enum MHD_Result handle_admin_release(struct request *rq, struct MHD_Connection *c)
{
	char node_id[NODE_ID_MAX + 1];
	long revoked = 0;
	struct db *db;
	enum db_status s;

	if (!path_node_id(rq, node_id))
		return reply_error(rq, c, CE_ADMIN_NODE_ID);
	if (!(db = app_db(rq->app)))
		return reply_error(rq, c, CE_BUSY);
	struct operator_who who = admin_who(rq);
	s = operator_release(db, &who, node_id, &revoked);
	if (s == DB_NO_ROWS)
		return reply_error(rq, c, CE_ADMIN_NO_LIVE_NODE);
	if (s < DB_NO_ROWS)
		return reply_db(rq, c, s);
	log_info("node %s released by %s, %ld certificate(s) revoked", node_id, rq->actor, revoked);
	return reply_json(rq, c, 200,
	                  json_pack("{s:s, s:b, s:I}", "node_id", node_id, "released", true,
	                            "certificates_revoked", (json_int_t)revoked));
}
