/*
 * End-to-end tests of the shipped nginx kit: Debian's nginx, run from the build tree
 * with config/nginx/claimd.conf filled in exactly as docs/operations.md tells an
 * operator to, terminating TLS (a server certificate made at test time) in front of two
 * claimd processes sharing one database. Clients speak HTTPS and verify the server.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api_support.h"
#include "nginx_fixture.h"
#include "sim/devidp.h"
#include "lib/util.h"
#include "harness.h"

#define ISSUER   TEST_ISSUER
#define AUDIENCE TEST_AUDIENCE
/* The value of the sample @p name (with its labels) on one replica, read directly. */
/* The world of a proxy case: database, CA, devices, an IdP, two claimd, nginx. */
struct pfx {
	struct tenv t;
	struct daemon d[2];
	struct nginx ng;
	char idp[1200];
};

static bool pfx_up(struct pfx *p, const char *name, int replicas)
{
	char users[512];
	struct topts o = {.mqtt_host = "mqtt.test", .extra = users};

	memset(p, 0, sizeof(*p));
	test_users_yaml(users, sizeof(users), 5);
	if (!tenv_setup(&p->t, name, &o))
		return false;
	if (!test_idp_create(&p->t, "ec", p->idp))
		return false;
	for (int i = 1; i <= 8; i++) {
		char mac[13];
		snprintf(mac, sizeof(mac), "7CDFA10000%02X", i);
		if (!tenv_add_device(&p->t, mac, "esp32s3", K1))
			return false;
	}
	for (int i = 0; i < replicas; i++)
		if (!daemon_start(&p->t, &p->d[i]))
			return false;
	return nginx_start(&p->t, &p->ng, p->d, replicas);
}

static void pfx_down(struct pfx *p, int replicas)
{
	nginx_stop(&p->ng);
	for (int i = 0; i < replicas; i++) {
		if (!p->d[i].pid)
			continue;
		if (t_failures)
			daemon_dump_log(&p->d[i]);
		int st = daemon_stop(&p->d[i]);
		CHECKF(st == 0, "claimd exited with %d", st);
	}
	tenv_teardown(&p->t);
}

static char *token_for(struct pfx *u, const char *user)
{
	return test_token(u->idp, user);
}

static void claims_through_nginx(void)
{
	struct pfx p;
	struct sim_result res;
	struct http_response r;
	char mac[13];
	int certs = 0;

	REQUIRE(pfx_up(&p, "claims_through_nginx", 2));
	const struct http_url *front = &p.ng.front.url;

	/* Firmware-exact self claims over HTTPS: the firmware's framing checks (status 200,
	 * Content-Length > 0, not chunked, <= 3071 bytes) and the chain to the CA's root. */
	for (int i = 1; i <= 6; i++) {
		snprintf(mac, sizeof(mac), "7CDFA10000%02X", i);
		struct sim_device dv = device(mac, "esp32s3", i % 2 ? "ec" : "rsa");
		CHECKF(sim_self_claim(front, &dv, NULL, p.t.root, &res) == 0, "%s: stage %d: %s",
		       mac, res.stage, res.err);
		certs += res.certificate != NULL;
		free(res.certificate);
		EVP_PKEY_free(dv.key);
	}
	/* A base URL ending in '/' (the firmware then asks for //claim/initiate). */
	struct sim_device dv = device("7CDFA1000007", "esp32s3", "ec");
	struct http_url slash = *front;
	strcat(slash.base, "/");
	CHECKF(sim_self_claim(&slash, &dv, NULL, p.t.root, &res) == 0, "//claim: %s", res.err);
	certs += res.certificate != NULL;
	free(res.certificate);
	EVP_PKEY_free(dv.key);

	/* The client really checks the server: a chain to another root, or a name the
	 * certificate does not carry (it names localhost, not 127.0.0.1), is refused. */
	char url[128], err[256];
	struct http_url other, byip;
	snprintf(url, sizeof(url), "https://localhost:%u", p.ng.port);
	REQUIRE(http_url_parse(url, &other) &&
	        http_url_tls(&other, p.t.root, err, sizeof(err)) == 0);
	dv = device("7CDFA1000008", "esp32s3", "ec");
	CHECK(sim_self_claim(&other, &dv, NULL, p.t.root, &res) < 0 && res.stage == 1 &&
	      strstr(res.err, "certificate"));
	free(res.certificate);
	http_url_free(&other);
	snprintf(url, sizeof(url), "https://127.0.0.1:%u", p.ng.port);
	REQUIRE(http_url_parse(url, &byip) &&
	        http_url_tls(&byip, p.ng.tls_ca, err, sizeof(err)) == 0);
	CHECK(sim_self_claim(&byip, &dv, NULL, p.t.root, &res) < 0 && res.stage == 1 &&
	      strstr(res.err, "certificate"));
	free(res.certificate);
	http_url_free(&byip);
	EVP_PKEY_free(dv.key);

	/* claimsim itself, as an operator would run it against the proxy. */
	char *out = NULL;
	CHECKF(t_run(&out,
	             "'%s' self --url https://localhost:%u --cacert '%s' --root '%s' --mac "
	             "7CDFA1000008 --efuse-key " K1HEX " --out '%s'",
	             t_bin("claimsim"), p.ng.port, p.ng.tls_ca, p.t.root, p.t.dir) == 0,
	       "%s", out ? out : "");
	certs += out && strstr(out, "self-claimed");
	free(out);

	/* The raw initiate reply, byte for byte, as the direct tests check it. */
	struct session s;
	REQUIRE(initiate(&p.ng.front, "7CDFA1000008", "esp32s3", &s));
	REQUIRE(post(&p.ng.front, "claim/initiate", "",
	             "{\"mac_addr\":\"7CDFA1000008\",\"platform\":\"esp32s3\"}", &r) == 0);
	check_framing(&r);
	CHECK(r.status == 200);
	http_response_free(&r);

	/* Assisted (Android, iOS) and host-driven (CLI) claims over HTTPS. */
	char *tok = token_for(&p, "alice");
	REQUIRE(tok);
	const enum sim_client clients[] = {SIM_ANDROID, SIM_IOS, SIM_CLI};
	for (int i = 0; i < 3; i++) {
		struct sim_user_result ur;
		EVP_PKEY *k = sim_key_new("ec");
		snprintf(mac, sizeof(mac), "7CDFA10001%02X", i);
		CHECKF(sim_user_claim(front, clients[i], tok, mac,
		                      clients[i] == SIM_CLI ? "host" : "esp32", k, p.t.root,
		                      &ur) == 0,
		       "user claim %d: stage %d: %s", i, ur.stage, ur.err);
		certs += ur.certificate != NULL;
		free(ur.certificate);
		free(ur.body);
		EVP_PKEY_free(k);
	}
	free(tok);

	/* A client's X-Forwarded-For and X-Real-IP are not believed past nginx: the audit
	 * trail has the address nginx saw. */
	REQUIRE(post(&p.ng.front, "claim/initiate",
	             "X-Forwarded-For: 203.0.113.7\r\nX-Real-IP: 203.0.113.8\r\n",
	             "{\"mac_addr\":\"7CDFA1000001\",\"platform\":\"esp32s3\"}", &r) == 0);
	CHECK(r.status == 200);
	http_response_free(&r);
	char *addr = sql_value(&p.t, "SELECT remote_addr FROM audit WHERE event = 'initiate' "
	                             "ORDER BY id DESC LIMIT 1");
	CHECKF(addr && strcmp(addr, "127.0.0.1") == 0, "audit remote_addr %s", addr ? addr : "");
	free(addr);
	/* The control: sent straight to claimd from a trusted address, the header is
	 * believed, so the check above would see a proxy that passed it on. */
	REQUIRE(post(&p.d[0], "claim/initiate", "X-Forwarded-For: 203.0.113.7\r\n",
	             "{\"mac_addr\":\"7CDFA1000001\",\"platform\":\"esp32s3\"}", &r) == 0);
	http_response_free(&r);
	addr = sql_value(&p.t, "SELECT remote_addr FROM audit WHERE event = 'initiate' "
	                       "ORDER BY id DESC LIMIT 1");
	CHECKF(addr && strcmp(addr, "203.0.113.7") == 0, "direct: remote_addr %s",
	       addr ? addr : "");
	free(addr);

	/* /metrics, /admin and tricks to reach them are refused by nginx with the failure
	 * body; claimd itself would have answered /metrics. */
	const char *refused[] = {
	    "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n",
	    "GET //metrics HTTP/1.1\r\nHost: localhost\r\n\r\n",
	    "GET /claim/../metrics HTTP/1.1\r\nHost: localhost\r\n\r\n",
	    "GET /claim/%2e%2e/metrics HTTP/1.1\r\nHost: localhost\r\n\r\n",
	    "GET /admin/v1/devices/7CDFA1000001 HTTP/1.1\r\nHost: localhost\r\n\r\n",
	};
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		REQUIRE(raw(&p.ng.front, refused[i], &r) == 0);
		check_failure(&r, 404, "not found");
		CHECKF(!r.body || !strstr(r.body, "claimd_"), "%s", refused[i]);
		http_response_free(&r);
	}
	REQUIRE(raw(&p.d[0], "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", &r) == 0);
	CHECK(r.status == 200 && r.body && strstr(r.body, "claimd_"));
	http_response_free(&r);

	/* claimd's own refusals pass through unchanged; nginx's carry the same body. */
	REQUIRE(post(&p.ng.front, "claim/initiate", "",
	             "{\"mac_addr\":\"7CDFA1FFFFFF\",\"platform\":\"esp32s3\"}", &r) == 0);
	CHECKF(r.status == 400 || r.status == 404, "%d", r.status);
	check_framing(&r);
	CHECK(r.body && strstr(r.body, "\"status\":\"failure\""));
	http_response_free(&r);
	/* Malformed HTTP: claimd alone would answer libmicrohttpd's HTML page. */
	REQUIRE(raw(&p.ng.front, "GARBAGE\r\n\r\n", &r) == 0);
	check_failure(&r, 400, "malformed");
	http_response_free(&r);
	char *big = malloc(20001);
	REQUIRE(big);
	memset(big, 'a', 20000);
	big[20000] = '\0';
	REQUIRE(post(&p.ng.front, "claim/verify", "", big, &r) == 0);
	check_failure(&r, 413, "too large");
	http_response_free(&r);
	free(big);

	/* Both replicas answered claims (nginx takes turns per request, so a claim's
	 * initiate and verify often land on different replicas: nothing of a claim in
	 * progress lives in one process), and together they issued every certificate. */
	long ok0 = metric(&p.d[0], "claimd_replies_total{code=\"OK\",status=\"200\"}");
	long ok1 = metric(&p.d[1], "claimd_replies_total{code=\"OK\",status=\"200\"}");
	long c0 = metric(&p.d[0], "claimd_certificates_issued_total{flow=\"self\"}") +
	          metric(&p.d[0], "claimd_certificates_issued_total{flow=\"user\"}");
	long c1 = metric(&p.d[1], "claimd_certificates_issued_total{flow=\"self\"}") +
	          metric(&p.d[1], "claimd_certificates_issued_total{flow=\"user\"}");
	CHECKF(ok0 >= 5 && ok1 >= 5, "replica 1 answered %ld claim requests, replica 2 %ld", ok0,
	       ok1);
	CHECKF(c0 + c1 == certs && certs == 11, "certificates issued %ld + %ld, received %d", c0,
	       c1, certs);

	/* The load generator over HTTPS, a new connection per request and kept alive. */
	char csv[1200];
	snprintf(csv, sizeof(csv), "%s/bench.csv", p.t.dir);
	FILE *cf = fopen(csv, "w");
	REQUIRE(cf);
	fputs("mac,platform,efuse_key\n", cf);
	for (int i = 1; i <= 6; i++)
		fprintf(cf, "7CDFA10000%02X,esp32s3," K1HEX "\n", i);
	fclose(cf);
	for (int keep = 0; keep < 2; keep++) {
		out = NULL;
		CHECKF(t_run(&out,
		             "'%s' bench --url https://localhost:%u --cacert '%s' --devices '%s'"
		             " --count 12 --concurrency 3 --verify --root '%s' %s",
		             t_bin("claimsim"), p.ng.port, p.ng.tls_ca, csv, p.t.root,
		             keep ? "--keep-alive" : "") == 0 &&
		           strstr(out, "complete claims: 12 ") && strstr(out, "errors: 0"),
		       "%s", out ? out : "");
		free(out);
	}

	/* With every replica gone, nginx's 502 carries the failure body too. */
	for (int i = 0; i < 2; i++)
		CHECK(daemon_stop(&p.d[i]) == 0);
	REQUIRE(post(&p.ng.front, "claim/initiate", "",
	             "{\"mac_addr\":\"7CDFA1000001\",\"platform\":\"esp32s3\"}", &r) == 0);
	check_failure(&r, 502, "unavailable");
	http_response_free(&r);
	pfx_down(&p, 2);
}

/* Milliseconds since @p t0. */
static long since_ms(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/*
 * A client that trickles its headers a byte every 100 ms (the request would take 12 s)
 * is cut off by nginx after client_header_timeout, whatever claimd's own timeouts are.
 * Returns how long the connection lasted in ms, or -1 if it was never cut off.
 */
static long trickle(const struct http_url *u, const char *req)
{
	struct http_conn c = {.url = *u, .fd = -1};
	char err[256];
	struct timespec t0;
	long lasted = -1;

	if (http_conn_open(&c, 5000, err, sizeof(err)) < 0) {
		fprintf(stderr, "trickle: %s\n", err);
		return -2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (size_t i = 0; req[i]; i++) {
		if (http_conn_readable(&c, 100) || http_conn_write(&c, req + i, 1) < 0) {
			lasted = since_ms(&t0);
			break;
		}
	}
	http_conn_close(&c);
	return lasted;
}

static void slow_client_cut_off(void)
{
	struct pfx p;
	char req[200];

	REQUIRE(pfx_up(&p, "slow_client_cut_off", 1));
	/* 120 bytes of headers that never end. */
	int n = snprintf(req, sizeof(req),
	                 "POST /claim/initiate HTTP/1.1\r\nHost: localhost\r\n"
	                 "X-Slow: ");
	memset(req + n, 'a', 120 - (size_t)n);
	req[120] = '\0';
	long ms = trickle(&p.ng.front.url, req);
	CHECKF(ms >= CLIENT_TIMEOUT_S * 1000 - 200 && ms <= CLIENT_TIMEOUT_S * 1000 + 1500,
	       "slow headers lasted %ld ms (want about %d s)", ms, CLIENT_TIMEOUT_S);
	printf("slow headers through nginx: cut off after %ld ms\n", ms);
	/* The replica never saw any of it. */
	char *log = NULL;
	t_run(&log, "cat '%s'", p.d[0].log);
	CHECKF(log && !strstr(log, "/claim/"), "%s", log ? log : "");
	free(log);
	pfx_down(&p, 1);
}

/*
 * A client that sends a whole request and half-closes its side: through nginx it gets
 * its reply and the connection ends at once. (Straight to claimd, libmicrohttpd 0.9.75
 * in its epoll mode keeps such a connection until server.connection_timeout_seconds.)
 */
static void half_closed_client(void)
{
	struct pfx p;
	struct http_response r;
	struct timespec t0;

	REQUIRE(pfx_up(&p, "half_closed_client", 1));
	struct http_conn c = {.url = p.ng.front.url, .fd = -1};
	REQUIRE(initiate_then_fin(&c, 0, &t0, &r));
	http_response_free(&r);
	/* Then the end of the connection, well before any timeout. */
	bool ended = c.fd < 0 || http_conn_readable(&c, 5000);
	long ms = since_ms(&t0);
	CHECKF(ended && ms < 1000, "connection still open after %ld ms", ms);
	printf("half-closed client through nginx: reply and close after %ld ms\n", ms);
	http_conn_close(&c);
	pfx_down(&p, 1);
}

/*
 * A client's X-Request-Id is not believed past nginx: nginx sets its own, so no client
 * picks the request id that claimd's log lines and audit rows (a transfer's, a
 * supersede's revoked_by) carry, and two requests cannot be made to share one.
 */
static void client_request_id_replaced(void)
{
	struct pfx p;
	struct http_response r;
	static const char chosen[] = "client-chosen-id-0001";

	REQUIRE(pfx_up(&p, "client_request_id_replaced", 1));
	REQUIRE(post(&p.ng.front, "claim/initiate", "X-Request-Id: client-chosen-id-0001\r\n",
	             "{\"mac_addr\":\"7CDFA1000001\",\"platform\":\"esp32s3\"}", &r) == 0);
	CHECK(r.status == 200);
	const char *h = r.headers ? strcasestr(r.headers, "\nX-Request-Id: ") : NULL;
	CHECKF(h && strncmp(h + strlen("\nX-Request-Id: "), chosen, strlen(chosen)) != 0,
	       "reply id: %.60s", h ? h : "(none)");
	http_response_free(&r);
	char *id = sql_value(&p.t, "SELECT request_id FROM audit WHERE event = 'initiate' "
	                           "ORDER BY id DESC LIMIT 1");
	CHECKF(id && id[0] && strcmp(id, chosen) != 0, "audit request_id %s", id ? id : "");
	free(id);
	pfx_down(&p, 1);
}

static const struct t_case cases[] = {
    {"half_closed_client", half_closed_client},
    {"claims_through_nginx", claims_through_nginx},
    {"slow_client_cut_off", slow_client_cut_off},
    {"client_request_id_replaced", client_request_id_replaced},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
