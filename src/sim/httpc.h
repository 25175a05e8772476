/*
 * A deliberately small HTTP/1.1 client, plain or over TLS, for claimsim and the tests:
 * it sends exactly the bytes it is given (so requests can match the firmware's
 * byte for byte, or be malformed on purpose) and reports how the reply was framed.
 * Over TLS it checks the server as the firmware does: the chain against one CA file
 * and the certificate's name against the URL's host.
 */
#ifndef CLAIMD_HTTPC_H
#define CLAIMD_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

struct ssl_ctx_st;
struct ssl_st;

struct http_url {
	char host[256];
	char port[8];
	char base[512]; /* path prefix, as given (may end in '/') */
	bool tls;       /* https:// */
	/* Trust settings for https, made by http_url_tls(); copies of the URL borrow them. */
	struct ssl_ctx_st *tls_ctx;
};

struct http_response {
	int status;
	long content_length; /* -1 when absent */
	bool chunked;
	char *headers; /* raw header block */
	char *body;
	size_t len;
	bool cut; /* the peer closed before the Content-Length's body had all arrived */
};

/** Parses "http[s]://host[:port][/base]"; false for anything else. */
bool http_url_parse(const char *url, struct http_url *u);
/**
 * Makes @p u's TLS settings: TLS 1.2 or newer, the server's chain verified against the
 * PEM certificates in @p cacert (NULL: the system's trust store) and its name against
 * the URL's host (a DNS name, also sent as SNI, or an IP address). Needed once before
 * an https URL is used; a no-op for http. Returns 0, or -1 with @p err.
 */
int http_url_tls(struct http_url *u, const char *cacert, char *err, size_t errsz);
/** Frees what http_url_tls() made (not for copies that borrow it). */
void http_url_free(struct http_url *u);
/**
 * Connects to @p u, sends @p raw (@p n bytes), reads the reply until its Content-Length
 * is satisfied or the peer closes, within @p timeout_ms. Returns 0 (out->cut tells a
 * body the peer ended early), or -1 with @p err (which starts "reply cut short" when the
 * peer closed in the middle of the reply's head).
 */
int http_exchange(const struct http_url *u, const char *raw, size_t n, int timeout_ms,
                  struct http_response *out, char *err, size_t errsz);
/**
 * POSTs @p body to base + "/" + @p path the way esp_http_client does: no Content-Type,
 * a Content-Length, the extra header lines @p extra ("" or "Name: value\r\n...").
 */
int http_post(const struct http_url *u, const char *path, const char *extra, const char *body,
              size_t n, int timeout_ms, struct http_response *out, char *err, size_t errsz);
/** A connection kept open across requests (keep-alive); fd -1 while closed. */
struct http_conn {
	struct http_url url;
	int fd;
	struct ssl_st *ssl; /* with https, NULL while closed */
};

/**
 * http_exchange() on @p c's connection, opening it when needed and keeping it open
 * unless the server says "Connection: close"; a reused connection the server had
 * closed is reopened once.
 */
int http_conn_exchange(struct http_conn *c, const char *raw, size_t n, int timeout_ms,
                       struct http_response *out, char *err, size_t errsz);
/** http_post() on a kept-alive connection. */
int http_conn_post(struct http_conn *c, const char *path, const char *extra, const char *body,
                   size_t n, int timeout_ms, struct http_response *out, char *err, size_t errsz);
/** Closes @p c's connection if open. */
void http_conn_close(struct http_conn *c);
/**
 * Opens @p c's connection (TCP, then the TLS handshake for https) unless it is open,
 * within @p timeout_ms. Returns 0, or -1 with @p err.
 */
int http_conn_open(struct http_conn *c, int timeout_ms, char *err, size_t errsz);
/** Writes @p n raw bytes on the open connection; -1 when the peer is gone. */
int http_conn_write(struct http_conn *c, const void *p, size_t n);
/**
 * Half-closes the open connection: TCP FIN, reading stays possible (a client that has
 * said all it will say and waits for the reply). Returns 0 or -1.
 */
int http_conn_shutdown_write(struct http_conn *c);
/**
 * Whether the peer sent something or closed the connection within @p wait_ms: for a
 * client trickling a request, the sign that the server has given up on it.
 */
bool http_conn_readable(struct http_conn *c, int wait_ms);
/** A header's value from @p r (case-insensitive name), copied into @p out; false if absent. */
bool http_header(const struct http_response *r, const char *name, char *out, size_t outsz);
/** Frees what a response holds. */
void http_response_free(struct http_response *r);

#endif
