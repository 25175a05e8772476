/*
 * The transport floor: an HTTP server with claimd's libmicrohttpd settings (thread pool,
 * epoll, one connection per request) that answers /claim/initiate and /claim/verify with
 * fixed bodies of realistic size and by default does no other work: no crypto, no
 * database. What 'claimsim bench' reaches against it bounds what any claimd on this
 * stack can reach on the same machine. Run by tests/bench/floor.sh; never used by the
 * service.
 *   bench_floor THREADS READY_FILE [DATABASE_URL NDEVICES]
 * With a database, each answer also runs claimd's statement for it (stmts.h) on its
 * worker's own connection: an initiate the self initiate's, a verify the commit's. That
 * is the composed ceiling's transport and statements run together in one process, still
 * without crypto (tests/bench/floor.sh DB=1). With FLOOR_CRYPTO=1 in its environment,
 * each verify also does the crypto a claim cannot skip with claimd's own functions, in
 * this process (no signer): the answer's HMAC-SHA512, csr_check() of a P-256 CSR and
 * ca_sign_local() of its leaf (tests/bench/floor.sh DB=1 CRYPTO=1). Left out, a few µs
 * each: the auth_id's MAC, opening the sealed eFuse key, the key's fingerprint.
 */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "lib/secure.h"
#include "stmts.h"
#include "x509/ca.h"

static struct ca *ca;      /* FLOOR_CRYPTO=1: the CA, with its key, in this process */
static char csr_pem[1024]; /* a device's CSR, made at start-up */

/* Loads the CA of FLOOR_CRYPTO=1 (FLOOR_CA_CERT, FLOOR_CA_KEY) and makes a device's
 * P-256 CSR. Returns 0, or -1 with a line on stderr (and OpenSSL's errors, which name
 * the call that failed). */
static int crypto_setup(void)
{
	char err[256];
	const char *cert = getenv("FLOOR_CA_CERT"), *key = getenv("FLOOR_CA_KEY");
	if (!cert || !key || !(ca = ca_load(cert, key, NULL, err, sizeof(err)))) {
		fprintf(stderr,
		        "bench_floor: FLOOR_CRYPTO=1 needs FLOOR_CA_CERT and FLOOR_CA_KEY%s%s\n",
		        cert && key ? ": " : "", cert && key ? err : "");
		return -1;
	}
	EVP_PKEY *dev = EVP_EC_gen("P-256");
	X509_REQ *req = X509_REQ_new();
	X509_NAME *n = X509_NAME_new();
	BIO *b = BIO_new(BIO_s_mem());
	int ok = dev && req && n && b &&
	         X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	                                    (const unsigned char *)"7C0000000001", -1, -1, 0) &&
	         X509_REQ_set_subject_name(req, n) && X509_REQ_set_pubkey(req, dev) &&
	         X509_REQ_sign(req, dev, EVP_sha256()) && PEM_write_bio_X509_REQ(b, req) &&
	         BIO_read(b, csr_pem, sizeof(csr_pem) - 1) > 0;
	EVP_PKEY_free(dev);
	X509_REQ_free(req);
	X509_NAME_free(n);
	BIO_free(b);
	if (!ok) {
		fprintf(stderr, "bench_floor: cannot make the device's CSR\n");
		ERR_print_errors_fp(stderr);
	}
	return ok ? 0 : -1;
}

/* The crypto of one verify, with claimd's own functions in this process: the answer's
 * HMAC-SHA512 and its comparison, the CSR's checks and signature, the leaf's signature.
 * Returns 0 or -1. */
static int verify_crypto(void)
{
	static const uint8_t efuse[16] = {1};
	uint8_t expect[HMAC_SHA512_BYTES], answer[HMAC_SHA512_BYTES] = {0};
	char cn[NODE_ID_MAX + 1];
	struct csr *c = NULL;
	struct issued out = {0};
	secure_hmac_sha512(expect, efuse, sizeof(efuse), csr_pem, 64);
	(void)secure_equal(expect, answer, sizeof(expect));
	int rc = csr_check(csr_pem, strlen(csr_pem), &c, cn) == CE_OK &&
	                 ca_sign_local(ca, c, cn, 365, &out) == 0
	             ? 0
	             : -1;
	free(out.pem);
	csr_free(c);
	return rc;
}

static const char *db_url;
static __thread struct db *worker_db; /* a worker's connection, opened at its first answer */

/* Runs the statement for URL on this worker's connection: the self initiate's for
 * /claim/initiate, the commit's for /claim/verify, nothing for any other. Returns 0 or
 * -1 (no connection, the statement failed). */
static int run_statement(const char *url)
{
	char err[256], mac[13];
	unsigned idx;
	bool initiate = strcmp(url, "/claim/initiate") == 0;
	if (!initiate && strcmp(url, "/claim/verify") != 0)
		return 0;
	if (!worker_db && !(worker_db = db_connect(db_url, true, err, sizeof(err)))) {
		fprintf(stderr, "bench_floor: %s\n", err);
		return -1;
	}
	bench_stmt_device(mac, &idx);
	return bench_stmt(worker_db, initiate ? "initiate" : "commit", mac, idx) == DB_OK ? 0 : -1;
}

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
	unsigned status = MHD_HTTP_OK;
	if ((ca && strcmp(url, "/claim/verify") == 0 && verify_crypto() != 0) ||
	    (db_url && run_statement(url) != 0)) {
		body = "{\"status\":\"failure\"}";
		status = MHD_HTTP_INTERNAL_SERVER_ERROR;
	}
	struct MHD_Response *r =
	    MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(r, "Content-Type", "application/json");
	enum MHD_Result ret = MHD_queue_response(c, status, r);
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
	if (argc != 3 && argc != 5) {
		fprintf(stderr, "usage: bench_floor THREADS READY_FILE [DATABASE_URL NDEVICES]\n");
		return 2;
	}
	const char *crypto = getenv("FLOOR_CRYPTO");
	if (secure_init() != 0 || (crypto && strcmp(crypto, "1") == 0 && crypto_setup() != 0))
		return 1;
	if (argc == 5) {
		db_url = argv[3];
		if (bench_stmts_load(db_url, (unsigned)atoi(argv[4])) != 0)
			return 1;
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
