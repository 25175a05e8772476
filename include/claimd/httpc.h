/*
 * A deliberately small HTTP/1.1 client over plain sockets, for claimsim and the tests:
 * it sends exactly the bytes it is given (so requests can match the firmware's
 * byte for byte, or be malformed on purpose) and reports how the reply was framed.
 */
#ifndef CLAIMD_HTTPC_H
#define CLAIMD_HTTPC_H

#include <stdbool.h>
#include <stddef.h>

struct http_url {
	char host[256];
	char port[8];
	char base[512]; /* path prefix, as given (may end in '/') */
};

struct http_response {
	int status;
	long content_length; /* -1 when absent */
	bool chunked;
	char *headers; /* raw header block */
	char *body;
	size_t len;
};

/** Parses "http://host[:port][/base]"; false for anything else. */
bool http_url_parse(const char *url, struct http_url *u);
/**
 * Connects to @p u, sends @p raw (@p n bytes), reads the reply until its Content-Length
 * is satisfied or the peer closes, within @p timeout_ms. Returns 0, or -1 with @p err.
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
/** A header's value from @p r (case-insensitive name), copied into @p out; false if absent. */
bool http_header(const struct http_response *r, const char *name, char *out, size_t outsz);
/** Frees what a response holds. */
void http_response_free(struct http_response *r);

#endif
