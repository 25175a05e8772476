/*
 * Ownership transfer (claim.transfer) against a real daemon and database: a device sold
 * to another user is claimed with its own key, and the previous holder's node is
 * released, its certificate revoked and put on the CRL, its quota slot freed, audited
 * as a transfer; a claim with another key changes nothing of anyone else's; the keep
 * and refuse policies; the same user's re-claim stays a re-claim; racing users.
 */
#include <openssl/x509.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api_support.h"
#include "sim/devidp.h"
#include "harness.h"

#define DEV "7CDFA1002301"

struct ufx {
	struct fx f;
	char idp[1200];
	char yaml[900];
};

/* A world with users (quota @p quota) and @p claim_lines continuing the claim: section
 * (NULL: claim.transfer's default). */
static bool ufx_up(struct ufx *u, const char *name, unsigned quota, const char *claim_lines)
{
	struct topts o = {.mqtt_host = "mqtt.test"};
	char users[512];

	test_users_yaml(users, sizeof(users), quota);
	snprintf(u->yaml, sizeof(u->yaml), "%s%s", claim_lines ? claim_lines : "", users);
	o.extra = u->yaml;
	return fx_users_up(&u->f, name, &o, "ec", u->idp);
}

/* A whole CLI claim of @p mac by @p token's user with @p key; its node_id in @p node.
 * The HTTP status of the step that ended it (200 when it all worked). */
static int claim_with(struct ufx *u, const char *token, const char *mac, EVP_PKEY *key,
                      char node[65])
{
	struct sim_user_result res;
	int rc = sim_user_claim(&u->f.d.url, SIM_CLI, token, mac, "host", key, u->f.t.root, &res);
	if (rc < 0)
		fprintf(stderr, "claim of %s: %d %s\n", mac, res.status, res.err);
	snprintf(node, 65, "%s", res.node_id);
	free(res.certificate);
	free(res.body);
	return rc == 0 ? 200 : res.status;
}

/* The newest certificate's serial of @p node (caller frees). */
static char *serial_of(struct ufx *u, const char *node)
{
	return sql_value(&u->f.t,
	                 "SELECT serial FROM certificates WHERE node_id = '%s' ORDER BY issued_at "
	                 "DESC, serial LIMIT 1",
	                 node);
}

/* Whether @p node is live and holds a valid certificate. */
static bool valid(struct ufx *u, const char *node)
{
	return sql_long(&u->f.t,
	                "SELECT count(*) FROM nodes n JOIN certificates c USING (node_id)"
	                " WHERE n.node_id = '%s' AND n.released_at IS NULL AND c.revoked_at IS "
	                "NULL",
	                node) > 0;
}

static long transfers(struct ufx *u)
{
	return sql_long(&u->f.t, "SELECT count(*) FROM audit WHERE event = 'transfer'");
}

/* Whether GET /crl lists @p serial with reason @p reason, within ten seconds. */
static bool on_crl(struct ufx *u, const char *serial, int reason)
{
	for (int i = 0; i < 50; i++) {
		char req[] = "GET /crl HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", err[256];
		struct http_response r;
		if (http_exchange(&u->f.d.url, req, strlen(req), 10000, &r, err, sizeof(err)) < 0)
			return false;
		const unsigned char *p = (const unsigned char *)r.body;
		X509_CRL *crl = r.status == 200 ? d2i_X509_CRL(NULL, &p, (long)r.len) : NULL;
		http_response_free(&r);
		int found = crl ? crl_reason_of(crl, serial) : -1;
		X509_CRL_free(crl);
		if (found >= 0)
			return found == reason;
		struct timespec ts = {0, 200 * 1000000L};
		nanosleep(&ts, NULL);
	}
	return false;
}

/* The default (release): bob claims alice's device with its key. Alice's node is
 * released, its certificate revoked as superseded and on the CRL, her slot freed (quota
 * 1), one transfer row naming both; bob's node is live. A self-claimed node of the same
 * device and key is no user's and stays. */
static void transfer_same_key(void)
{
	struct ufx u;
	char a[65], b[65], a2[65];
	REQUIRE(ufx_up(&u, "transfer_same_key", 1, NULL));
	REQUIRE(tenv_add_device(&u.f.t, DEV, "esp32s3", K1));
	char *alice = test_token(u.idp, "alice"), *bob = test_token(u.idp, "bob");
	REQUIRE(alice && bob);
	struct sim_device dv = device(DEV, "esp32s3", "ec");
	/* The device's own self claim, with the key it keeps. */
	REQUIRE(fx_self_claim(&u.f, &dv));
	REQUIRE(claim_with(&u, alice, DEV, dv.key, a) == 200);
	char *sa = serial_of(&u, a);
	REQUIRE(sa);
	/* Sold: bob claims it, same key. */
	REQUIRE(claim_with(&u, bob, DEV, dv.key, b) == 200);
	CHECK(strcmp(a, b) != 0);
	CHECK(valid(&u, b));
	CHECK(!valid(&u, a));
	CHECK(sql_long(&u.f.t,
	               "SELECT count(*) FROM nodes WHERE node_id = '%s' AND released_at IS "
	               "NOT NULL AND pending_until IS NULL",
	               a) == 1);
	CHECK(sql_long(&u.f.t, "SELECT revocation_reason FROM certificates WHERE serial = '%s'",
	               sa) == 4);
	CHECK(on_crl(&u, sa, 4));
	/* One transfer row: alice's node, alice, to bob; in bob's verify's request. */
	CHECK(transfers(&u) == 1);
	CHECK(sql_long(&u.f.t,
	               "SELECT count(*) FROM audit t JOIN audit v USING (request_id)"
	               " WHERE t.event = 'transfer' AND t.node_id = '%s' AND t.user_id = 'alice'"
	               " AND t.detail = 'to bob' AND t.mac = '" DEV "' AND t.flow = 'user'"
	               " AND t.outcome = 'ok' AND v.event = 'verify' AND v.user_id = 'bob'"
	               " AND v.node_id = '%s' AND v.outcome = 'ok'",
	               a, b) == 1);
	CHECK(sql_long(&u.f.t,
	               "SELECT count(*) FROM audit WHERE event = 'revoke' AND serial = '%s' AND "
	               "user_id = 'alice'",
	               sa) == 1);
	/* The self-claimed node is untouched. */
	CHECK(valid(&u, DEV));
	/* Alice's quota (1) is free again: she claims another device. */
	EVP_PKEY *k2 = sim_key_new("ec");
	CHECK(claim_with(&u, alice, "7CDFA1002302", k2, a2) == 200);
	/* claimctl agrees: alice's old node is released, bob's holds the device. */
	char *out = NULL, cmd[128];
	snprintf(cmd, sizeof(cmd), "nodes show %s", DEV);
	CHECK(fx_claimctl(&u.f, &out, cmd) == 0);
	CHECKF(out && strstr(out, a) && strstr(out, b), "%s", out);
	free(out);
	EVP_PKEY_free(k2);
	EVP_PKEY_free(dv.key);
	free(sa);
	free(alice);
	free(bob);
	fx_down(&u.f);
}

/* Another key proves nothing: bob gets a node of his own, alice's stays valid. */
static void transfer_other_key(void)
{
	struct ufx u;
	char a[65], b[65];
	REQUIRE(ufx_up(&u, "transfer_other_key", 5, NULL));
	char *alice = test_token(u.idp, "alice"), *bob = test_token(u.idp, "bob");
	REQUIRE(alice && bob);
	EVP_PKEY *ka = sim_key_new("ec"), *kb = sim_key_new("ec");
	REQUIRE(claim_with(&u, alice, DEV, ka, a) == 200);
	REQUIRE(claim_with(&u, bob, DEV, kb, b) == 200);
	CHECK(valid(&u, a) && valid(&u, b));
	CHECK(transfers(&u) == 0);
	CHECK(sql_long(&u.f.t, "SELECT count(*) FROM certificates WHERE revoked_at IS NOT NULL") ==
	      0);
	/* A key alice's node once had, but no longer (her re-claim superseded it), proves
	 * nothing either: only a valid certificate's key counts. */
	EVP_PKEY *ka2 = sim_key_new("ec");
	char again[65], c[65];
	REQUIRE(claim_with(&u, alice, DEV, ka2, again) == 200);
	char *carol = test_token(u.idp, "carol");
	REQUIRE(carol);
	REQUIRE(claim_with(&u, carol, DEV, ka, c) == 200);
	CHECK(valid(&u, a) && valid(&u, b) && valid(&u, c));
	CHECK(transfers(&u) == 0);
	EVP_PKEY_free(ka);
	EVP_PKEY_free(ka2);
	EVP_PKEY_free(kb);
	free(alice);
	free(bob);
	free(carol);
	fx_down(&u.f);
}

/* keep: today's behaviour, both nodes valid for the one device key. */
static void transfer_keep(void)
{
	struct ufx u;
	char a[65], b[65];
	REQUIRE(ufx_up(&u, "transfer_keep", 5, "  transfer: keep\n"));
	char *alice = test_token(u.idp, "alice"), *bob = test_token(u.idp, "bob");
	REQUIRE(alice && bob);
	EVP_PKEY *k = sim_key_new("ec");
	REQUIRE(claim_with(&u, alice, DEV, k, a) == 200);
	REQUIRE(claim_with(&u, bob, DEV, k, b) == 200);
	CHECK(valid(&u, a) && valid(&u, b));
	CHECK(transfers(&u) == 0);
	EVP_PKEY_free(k);
	free(alice);
	free(bob);
	fx_down(&u.f);
}

/* An initiate of @p mac: its status; the node_id in @p node on 200. */
static int initiate_as(struct ufx *u, const char *token, const char *mac, char node[65],
                       struct http_response *r)
{
	char body[128];
	snprintf(body, sizeof(body), "{\"mac_addr\":\"%s\",\"platform\":\"esp32\"}", mac);
	if (user_post(&u->f.d, token, "claim/initiate", body, r) < 0)
		return -1;
	node[0] = '\0';
	if (r->status == 200)
		sim_firmware_string(r->body, "node_id", node, 65, false);
	return r->status;
}

/* A verify of @p node with a CSR of @p key: its status, the reply in @p r. */
static int verify_as(struct ufx *u, const char *token, const char *node, EVP_PKEY *key,
                     struct http_response *r)
{
	char *csr = sim_csr_pem(key, node, false), *js = sim_json_string(csr, SIM_CLI), *b = NULL;
	int rc = asprintf(&b, "{\"csr\":%s}", js) < 0
	             ? -1
	             : user_post(&u->f.d, token, "claim/verify", b, r);
	free(b);
	free(js);
	free(csr);
	return rc < 0 ? -1 : r->status;
}

/* refuse: another user's claim of a held device is refused at initiate (no node_id, no
 * slot), and at verify when the hold began after the initiate; the holder's own
 * re-claim works; once released (claimctl) the device is free. */
static void transfer_refuse(void)
{
	struct ufx u;
	struct http_response r;
	char a[65], b[65], n[65];
	REQUIRE(ufx_up(&u, "transfer_refuse", 5, "  transfer: refuse\n"));
	char *alice = test_token(u.idp, "alice"), *bob = test_token(u.idp, "bob");
	REQUIRE(alice && bob);
	EVP_PKEY *k = sim_key_new("ec");
	/* Both initiate while nobody holds it; alice verifies first. */
	REQUIRE(initiate_as(&u, alice, DEV, a, &r) == 200);
	http_response_free(&r);
	REQUIRE(initiate_as(&u, bob, DEV, b, &r) == 200);
	http_response_free(&r);
	REQUIRE(verify_as(&u, alice, a, k, &r) == 200);
	http_response_free(&r);
	CHECK(verify_as(&u, bob, b, k, &r) == 400);
	check_failure(&r, 400, "mac_addr: the device is held by another user");
	http_response_free(&r);
	CHECK(!valid(&u, b));
	CHECK(sql_long(&u.f.t, "SELECT count(*) FROM certificates WHERE node_id = '%s'", b) == 0);
	/* A new initiate by bob is refused before any CSR: nothing reserved. */
	long nodes = sql_long(&u.f.t, "SELECT count(*) FROM nodes");
	CHECK(initiate_as(&u, bob, DEV, n, &r) == 400);
	check_failure(&r, 400, "mac_addr: the device is held by another user");
	http_response_free(&r);
	CHECK(sql_long(&u.f.t, "SELECT count(*) FROM nodes") == nodes);
	CHECK(sql_long(&u.f.t, "SELECT count(*) FROM audit WHERE reason = 'MAC_HELD' AND "
	                       "user_id = 'bob' AND outcome = 'refused'") == 2);
	/* The holder's re-claim is the usual one. */
	char again[65];
	CHECK(claim_with(&u, alice, DEV, k, again) == 200);
	CHECK(strcmp(again, a) == 0 && valid(&u, a));
	CHECK(transfers(&u) == 0);
	/* Released by an operator: bob may claim it. */
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "nodes release %s", a);
	CHECK(fx_claimctl(&u.f, NULL, cmd) == 0);
	CHECK(claim_with(&u, bob, DEV, k, b) == 200);
	CHECK(valid(&u, b));
	EVP_PKEY_free(k);
	free(alice);
	free(bob);
	fx_down(&u.f);
}

/* The same user's re-claim with the same key is the re-claim it always was (the node
 * kept, its old certificate superseded), not a transfer. */
static void transfer_not_own_reclaim(void)
{
	struct ufx u;
	char a[65], again[65];
	REQUIRE(ufx_up(&u, "transfer_not_own_reclaim", 1, NULL));
	char *alice = test_token(u.idp, "alice");
	REQUIRE(alice);
	EVP_PKEY *k = sim_key_new("ec");
	REQUIRE(claim_with(&u, alice, DEV, k, a) == 200);
	char *s1 = serial_of(&u, a);
	REQUIRE(s1);
	REQUIRE(claim_with(&u, alice, DEV, k, again) == 200);
	CHECK(strcmp(a, again) == 0 && valid(&u, a));
	CHECK(sql_long(&u.f.t, "SELECT count(*) FROM nodes WHERE released_at IS NOT NULL") == 0);
	CHECK(sql_long(&u.f.t, "SELECT revocation_reason FROM certificates WHERE serial = '%s'",
	               s1) == 4);
	CHECK(transfers(&u) == 0);
	EVP_PKEY_free(k);
	free(s1);
	free(alice);
	fx_down(&u.f);
}

struct racer {
	struct ufx *u;
	struct daemon *d;
	const char *token;
	char *body; /* the verify body, made before the race */
	pthread_barrier_t *bar;
	int status;
};

static void *race_verify(void *arg)
{
	struct racer *rc = arg;
	char hdr[9000];
	struct http_response r;
	snprintf(hdr, sizeof(hdr), "Authorization: %s\r\n", rc->token);
	pthread_barrier_wait(rc->bar);
	rc->status = post(rc->d, "claim/verify", hdr, rc->body, &r) == 0 ? r.status : -1;
	http_response_free(&r);
	return NULL;
}

/* N users, each with an initiate of @p mac, race their verifies (CSRs of @p k) over
 * the two daemons; their statuses in @p status. */
enum { N = 4 };
static void race(struct ufx *u, struct daemon *d2, const char *mac, EVP_PKEY *k, int status[N])
{
	char nodes[N][65], *tok[N];
	struct http_response r;
	struct racer rc[N];
	pthread_barrier_t bar;
	pthread_t th[N];

	pthread_barrier_init(&bar, NULL, N);
	for (int i = 0; i < N; i++) {
		char user[16];
		snprintf(user, sizeof(user), "buyer%d", i);
		tok[i] = test_token(u->idp, user);
		REQUIRE(tok[i] && initiate_as(u, tok[i], mac, nodes[i], &r) == 200);
		http_response_free(&r);
		char *csr = sim_csr_pem(k, nodes[i], false), *js = sim_json_string(csr, SIM_CLI);
		rc[i] =
		    (struct racer){.u = u, .d = i % 2 ? d2 : &u->f.d, .token = tok[i], .bar = &bar};
		REQUIRE(asprintf(&rc[i].body, "{\"csr\":%s}", js) > 0);
		free(js);
		free(csr);
	}
	for (int i = 0; i < N; i++)
		pthread_create(&th[i], NULL, race_verify, &rc[i]);
	for (int i = 0; i < N; i++)
		pthread_join(th[i], NULL);
	pthread_barrier_destroy(&bar);
	for (int i = 0; i < N; i++) {
		status[i] = rc[i].status;
		free(rc[i].body);
		free(tok[i]);
	}
}

/* The MAC's live nodes with a valid certificate. */
static long holders(struct ufx *u, const char *mac)
{
	return sql_long(&u->f.t,
	                "SELECT count(DISTINCT n.node_id) FROM nodes n JOIN certificates c "
	                "USING (node_id) WHERE n.mac = '%s' AND n.released_at IS NULL AND "
	                "c.revoked_at IS NULL",
	                mac);
}

/* Several users race to claim a device with its key, over two daemons, once while
 * alice holds it and once while nobody does: every claim commits, the claims are
 * decided one after another (each ends the node of the one before), so exactly one
 * user holds the device afterwards and every other node of it was ended by exactly one
 * transfer. */
static void transfer_race(void)
{
	enum { ROUNDS = 8 };
	struct ufx u;
	struct daemon d2;
	REQUIRE(ufx_up(&u, "transfer_race", 0, NULL));
	REQUIRE(daemon_start(&u.f.t, &d2));
	for (int round = 0; round < ROUNDS; round++) {
		char mac[13], a[65];
		int st[N];
		bool alice_first = round % 2 == 0;
		snprintf(mac, sizeof(mac), "7CDFA10023%02X", 0x10 + round);
		EVP_PKEY *k = sim_key_new("ec");
		char *alice = test_token(u.idp, "alice");
		REQUIRE(alice && (!alice_first || claim_with(&u, alice, mac, k, a) == 200));
		race(&u, &d2, mac, k, st);
		for (int i = 0; i < N; i++)
			CHECKF(st[i] == 200, "round %d racer %d: %d", round, i, st[i]);
		CHECKF(holders(&u, mac) == 1, "round %d: %ld holders", round, holders(&u, mac));
		long ended = alice_first ? N : N - 1;
		CHECK(sql_long(&u.f.t,
		               "SELECT count(*) FROM audit WHERE event = 'transfer' AND mac = "
		               "'%s'",
		               mac) == ended);
		CHECK(sql_long(&u.f.t,
		               "SELECT count(*) FROM nodes WHERE mac = '%s' AND released_at "
		               "IS NOT NULL",
		               mac) == ended);
		free(alice);
		EVP_PKEY_free(k);
	}
	CHECK(daemon_stop(&d2) == 0);
	fx_down(&u.f);
}

/* refuse, users racing for a device nobody holds, over two daemons: exactly one wins,
 * every other one is refused with the failure body, and nothing of theirs is valid. */
static void transfer_refuse_race(void)
{
	enum { ROUNDS = 4 };
	struct ufx u;
	struct daemon d2;
	REQUIRE(ufx_up(&u, "transfer_refuse_race", 0, "  transfer: refuse\n"));
	REQUIRE(daemon_start(&u.f.t, &d2));
	for (int round = 0; round < ROUNDS; round++) {
		char mac[13];
		int st[N], ok = 0, refused = 0;
		snprintf(mac, sizeof(mac), "7CDFA10023%02X", 0x20 + round);
		EVP_PKEY *k = sim_key_new(round % 2 ? "rsa" : "ec");
		race(&u, &d2, mac, k, st);
		for (int i = 0; i < N; i++) {
			ok += st[i] == 200;
			refused += st[i] == 400;
		}
		CHECKF(ok == 1 && refused == N - 1, "round %d: %d claimed, %d refused", round, ok,
		       refused);
		CHECKF(holders(&u, mac) == 1, "round %d: %ld holders", round, holders(&u, mac));
		EVP_PKEY_free(k);
	}
	CHECK(sql_long(&u.f.t, "SELECT count(*) FROM audit WHERE reason = 'MAC_HELD'") ==
	      ROUNDS * (N - 1));
	CHECK(daemon_stop(&d2) == 0);
	fx_down(&u.f);
}

static const struct t_case cases[] = {
    {"transfer_same_key", transfer_same_key},
    {"transfer_other_key", transfer_other_key},
    {"transfer_keep", transfer_keep},
    {"transfer_refuse", transfer_refuse},
    {"transfer_not_own_reclaim", transfer_not_own_reclaim},
    {"transfer_race", transfer_race},
    {"transfer_refuse_race", transfer_refuse_race},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
