/*
 * The transport floor: an HTTP server with claimd's libmicrohttpd settings (thread pool,
 * epoll, one connection per request) that answers /claim/initiate and /claim/verify with
 * fixed bodies of realistic size and does no other work: no crypto, no database. What
 * 'claimsim bench' reaches against it bounds what any claimd on this stack can reach on
 * the same machine. Run by tests/bench/floor.sh; never used by the service.
 *   bench_floor THREADS READY_FILE
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char initiate_body[] =
    "{\"auth_id\":\"AQAAAABnAAAAfAAAAAABAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
    "\"challenge\":\"00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff\"}";
static char verify_body[1024];

struct upload {
	size_t seen;
};

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *data,
                              size_t *data_size, void **state)
{
	struct upload *u = *state;
	(void)cls;
	(void)method;
	(void)version;
	(void)data;
	if (!u) {
		*state = calloc(1, sizeof(*u));
		return *state ? MHD_YES : MHD_NO;
	}
	if (*data_size) { /* the body is read and dropped, as a parser would read it */
		u->seen += *data_size;
		*data_size = 0;
		return MHD_YES;
	}
	const char *body = strcmp(url, "/claim/initiate") == 0 ? initiate_body : verify_body;
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(c, MHD_HTTP_OK, r);
	MHD_destroy_response(r);
	return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **state,
                      enum MHD_RequestTerminationCode why)
{
	(void)cls;
	(void)c;
	(void)why;
	free(*state);
	*state = NULL;
}

int main(int argc, char **argv)
{
	if (argc != 3) {
		fprintf(stderr, "usage: bench_floor THREADS READY_FILE\n");
		return 2;
	}
	/* A certificate-sized answer: the leaf PEM of a P-256 claim is about 700 bytes. */
	size_t n = (size_t)snprintf(verify_body, sizeof(verify_body), "{\"certificate\":\"");
	for (int i = 1; i <= 700; i++) {
		verify_body[n++] = 'A';
		if (i % 64 == 0) { /* a PEM line break, JSON-escaped */
			verify_body[n++] = '\\';
			verify_body[n++] = 'n';
		}
	}
	snprintf(verify_body + n, sizeof(verify_body) - n, "\"}");

	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	struct MHD_Daemon *d = MHD_start_daemon(
	    MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL_LINUX_ONLY | MHD_USE_ITC, 0, NULL, NULL,
	    answer, NULL, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE,
	    (unsigned)atoi(argv[1]), MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
	    MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_CONNECTION_LIMIT, 1024u,
	    MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)32768, MHD_OPTION_END);
	if (!d) {
		fprintf(stderr, "bench_floor: cannot start\n");
		return 1;
	}
	const union MHD_DaemonInfo *info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
	FILE *f = fopen(argv[2], "w");
	if (!f || !info)
		return 1;
	fprintf(f, "%u\n", (unsigned)info->port);
	fclose(f);
	sigset_t s;
	int sig;
	sigemptyset(&s);
	sigaddset(&s, SIGTERM);
	sigaddset(&s, SIGINT);
	sigprocmask(SIG_BLOCK, &s, NULL);
	sigwait(&s, &sig);
	MHD_stop_daemon(d);
	return 0;
}
