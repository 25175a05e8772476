/*
 * HTTP/1.1 message framing at the edge (RFC 9112 6.1, 6.3), with the exact bytes of
 * each fault sent over a socket to a real claimd, straight and through the shipped
 * nginx kit: Content-Length with Transfer-Encoding, a Transfer-Encoding other than
 * chunked, a Content-Length that is negative, signed, an exponent, 20 digits long or
 * given twice with different values. Each gets one reply, the protocol's failure body,
 * then the connection is closed, and the request pipelined behind it is never
 * answered; the same whichever libmicrohttpd claimd is built with. A client that
 * half-closes after its request is answered and closed at once, in the default
 * configuration, every time.
 */
#include <errno.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "api_support.h"
#include "harness.h"
#include "nginx_fixture.h"

#define H "POST /claim/initiate HTTP/1.1\r\nHost: localhost\r\n"
#define B "{\"mac_addr\":\"7CDFA1000001\",\"platform\":\"esp32s3\"}"
/* The request pipelined behind each fault: it must never be answered. */
#define NEXT          "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n"
#define FAILURE_START "{\"status\":\"failure\",\"description\":\""

struct fault {
	const char *name;
	const char *bytes;
	int status;       /* claimd's answer */
	int nginx_status; /* nginx's, in front */
};

static const struct fault faults[] = {
    {"length_and_chunked",
     H "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n", 400, 400},
    {"encoding_gzip", H "Transfer-Encoding: gzip\r\n\r\nhello", 501, 501},
    {"encoding_identity", H "Transfer-Encoding: identity\r\n\r\nhello", 501, 501},
    {"encoding_gzip_chunked", H "Transfer-Encoding: gzip, chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
     501, 501},
    {"length_negative", H "Content-Length: -1\r\n\r\n", 400, 400},
    {"length_plus", H "Content-Length: +5\r\n\r\nhello", 400, 400},
    {"length_exponent", H "Content-Length: 1e3\r\n\r\n", 400, 400},
    {"length_20_digits", H "Content-Length: 18446744073709551621\r\n\r\n", 400, 400},
    {"length_twice", H "Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!", 400, 400},
};

/* Milliseconds since @p t0. */
static long since_ms(const struct timespec *t0)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/*
 * Everything the server sends on @p c until it closes the connection, within
 * @p wait_ms, into @p buf (NUL-terminated). Returns the byte count; *@p closed tells
 * whether the end came from the server (EOF or reset) rather than the deadline.
 */
static size_t read_all(struct http_conn *c, char *buf, size_t cap, int wait_ms, bool *closed)
{
	struct timespec t0;
	size_t n = 0;

	*closed = false;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (n + 1 < cap) {
		long left = wait_ms - since_ms(&t0);
		struct pollfd p = {.fd = c->fd, .events = POLLIN};
		if (!(c->ssl && SSL_pending(c->ssl)) && (left <= 0 || poll(&p, 1, (int)left) <= 0))
			break;
		ssize_t r;
		if (c->ssl) {
			size_t got = 0;
			r = SSL_read_ex(c->ssl, buf + n, cap - 1 - n, &got) == 1 ? (ssize_t)got : 0;
		} else {
			r = recv(c->fd, buf + n, cap - 1 - n, 0);
		}
		if (r <= 0) {
			*closed = true;
			break;
		}
		n += (size_t)r;
	}
	buf[n] = '\0';
	return n;
}

static size_t count(const char *hay, const char *needle)
{
	size_t k = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		k++;
	return k;
}

/*
 * Sends @p f's bytes and the pipelined NEXT in one write on a new connection to @p u and
 * checks the one reply: status, one status line, one Content-Length that matches, JSON,
 * the failure body, and the connection closed by the server. Prints the table row.
 */
static void check_fault(const struct http_url *u, const struct fault *f, int want, const char *via)
{
	struct http_conn c = {.url = *u, .fd = -1};
	char req[1024], got[8192], err[256];
	struct timespec t0;
	bool closed;

	snprintf(req, sizeof(req), "%s%s", f->bytes, NEXT);
	REQUIRE(http_conn_open(&c, 5000, err, sizeof(err)) == 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	REQUIRE(http_conn_write(&c, req, strlen(req)) == 0);
	size_t n = read_all(&c, got, sizeof(got), 6000, &closed);
	long ms = since_ms(&t0);
	http_conn_close(&c);

	char line[32];
	snprintf(line, sizeof(line), "HTTP/1.1 %d ", want);
	const char *body = strstr(got, "\r\n\r\n");
	const char *cl = strstr(got, "\r\nContent-Length: ");
	size_t lines = count(got, "HTTP/1.");
	bool json =
	    strstr(got, "\r\nContent-Type: application/json\r\n") && body && cl && cl < body;
	bool failure = body && strncmp(body + 4, FAILURE_START, strlen(FAILURE_START)) == 0 &&
	               got[n - 1] == '}';
	bool length_ok = json && (size_t)atol(cl + 18) == strlen(body + 4);

	printf("%-6s %-22s -> %.*s | status lines %zu | %s | %s | %s after %ld ms\n", via, f->name,
	       (int)strcspn(got, "\r"), got, lines, json ? "JSON" : "NOT JSON",
	       failure ? "failure body" : "OTHER BODY", closed ? "closed" : "STILL OPEN", ms);
	CHECKF(strncmp(got, line, strlen(line)) == 0, "%s %s: got %.*s, want %d", via, f->name,
	       (int)strcspn(got, "\r"), got, want);
	CHECKF(lines == 1, "%s %s: %zu status lines (doubled, or the pipelined request answered)",
	       via, f->name, lines);
	CHECKF(count(got, "\r\nContent-Length:") == 1, "%s %s: Content-Length not once", via,
	       f->name);
	CHECKF(json && failure && length_ok, "%s %s: not one failure JSON reply:\n%s", via, f->name,
	       got);
	CHECKF(closed, "%s %s: connection still open after %ld ms", via, f->name, ms);
}

/* Each fault straight to claimd, then once more with the fault as the second request
 * of a kept-alive connection (the first answered normally). */
static void faults_direct(void)
{
	struct fx f;
	REQUIRE(fx_up(&f, "faults_direct", NULL));
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
		check_fault(&f.d.url, &faults[i], faults[i].status, "direct");
	/* claimd is still serving. */
	struct http_response r;
	REQUIRE(raw(&f.d, NEXT, &r) == 0);
	CHECK(r.status == 200);
	http_response_free(&r);
	fx_down(&f);
}

/* The same bytes through nginx (TLS): nginx refuses each itself, with the failure
 * body of the kit's error pages, and claimd never sees one. */
static void faults_through_nginx(void)
{
	struct tenv t;
	struct daemon d;
	struct nginx ng;

	REQUIRE(tenv_setup(&t, "faults_through_nginx", NULL));
	REQUIRE(daemon_start(&t, &d));
	REQUIRE(nginx_start(&t, &ng, &d, 1));
	for (size_t i = 0; i < sizeof(faults) / sizeof(faults[0]); i++)
		check_fault(&ng.front.url, &faults[i], faults[i].nginx_status, "nginx");
	char *log = NULL;
	t_run(&log, "cat '%s'", d.log);
	CHECKF(log && !strstr(log, "/claim/"), "a fault reached claimd:\n%s", log ? log : "");
	free(log);
	nginx_stop(&ng);
	if (t_failures)
		daemon_dump_log(&d);
	CHECK(daemon_stop(&d) == 0);
	tenv_teardown(&t);
}

/*
 * A fault as the second request on a kept-alive connection, sent after the first
 * reply: claimd's admission refuses it the same way (libmicrohttpd hands it over).
 */
static void fault_after_first_request(void)
{
	static const char first[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
	static const char second[] = H "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"
	                               "5\r\nhello\r\n0\r\n\r\n" NEXT;
	struct fx f;
	struct http_response r;
	char got[8192], err[256];
	bool closed;

	REQUIRE(fx_up(&f, "fault_after_first_request", NULL));
	struct http_conn c = {.url = f.d.url, .fd = -1};
	REQUIRE(http_conn_exchange(&c, first, strlen(first), 5000, &r, err, sizeof(err)) == 0);
	CHECK(r.status == 200);
	http_response_free(&r);
	REQUIRE(c.fd >= 0);
	REQUIRE(http_conn_write(&c, second, strlen(second)) == 0);
	read_all(&c, got, sizeof(got), 6000, &closed);
	http_conn_close(&c);
	printf("second request Content-Length + chunked -> %.*s | status lines %zu | %s\n",
	       (int)strcspn(got, "\r"), got, count(got, "HTTP/1."), closed ? "closed" : "OPEN");
	CHECKF(strncmp(got, "HTTP/1.1 400 ", 13) == 0 && count(got, "HTTP/1.") == 1 &&
	           strstr(got, "{\"status\":\"failure\"") && closed,
	       "second request: %s", got);
	fx_down(&f);
}

/*
 * CLAIMD_HALF_CLOSE_TRIES times (default 40): a whole GET /healthz, then FIN; the reply
 * and the server's close must both come within 2 s (connection_timeout_seconds is 30).
 * The default configuration, unless CLAIMD_EVENT_LOOP names one (to compare modes).
 */
static void half_close_default(void)
{
	static const char req[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
	const char *mode = getenv("CLAIMD_EVENT_LOOP");
	const char *tries_env = getenv("CLAIMD_HALF_CLOSE_TRIES");
	int tries = tries_env ? atoi(tries_env) : 40, held = 0;
	long worst = 0;
	char server[128], got[4096], err[256];
	struct fx f;
	bool closed;

	snprintf(server, sizeof(server), "  connection_timeout_seconds: 30\n%s%s%s",
	         mode ? "  event_loop: " : "", mode ? mode : "", mode ? "\n" : "");
	struct topts o = {.server = server};
	REQUIRE(fx_up(&f, "half_close_default", &o));
	for (int i = 0; i < tries; i++) {
		struct http_conn c = {.url = f.d.url, .fd = -1};
		struct timespec t0;
		REQUIRE(http_conn_open(&c, 5000, err, sizeof(err)) == 0);
		clock_gettime(CLOCK_MONOTONIC, &t0);
		REQUIRE(http_conn_write(&c, req, strlen(req)) == 0);
		REQUIRE(http_conn_shutdown_write(&c) == 0);
		read_all(&c, got, sizeof(got), 2000, &closed);
		long ms = since_ms(&t0);
		http_conn_close(&c);
		if (!closed || strncmp(got, "HTTP/1.1 200 ", 13) != 0)
			held++;
		if (ms > worst)
			worst = ms;
	}
	printf("half-close after a whole request, event_loop %s: held %d of %d, slowest %ld ms\n",
	       mode ? mode : "(default)", held, tries, worst);
	CHECKF(held == 0, "%d of %d half-closed connections held past 2 s", held, tries);
	fx_down(&f);
}

static const struct t_case cases[] = {
    {"faults_direct", faults_direct},
    {"faults_through_nginx", faults_through_nginx},
    {"fault_after_first_request", fault_after_first_request},
    {"half_close_default", half_close_default},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
