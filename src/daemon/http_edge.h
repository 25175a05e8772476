/*
 * The HTTP edge: the HTTP/1.1 message framing rules claimd enforces itself, whatever
 * the libmicrohttpd underneath (0.9.75 and 1.0.x differ, and each answers some faults
 * with its own HTML), and the acceptor that checks a connection's first request before
 * libmicrohttpd sees it. Only src/daemon uses it.
 */
#ifndef CLAIMD_HTTP_EDGE_H
#define CLAIMD_HTTP_EDGE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>

#include "lib/errors.h"

/* At most this many header fields plus query arguments in one request: beyond it
 * libmicrohttpd could run out of its per-connection memory, and answer on its own. */
#define HTTP_EDGE_MAX_FIELDS 100

/* What a request's framing headers say, as the checks below collect them. */
struct http_framing {
	unsigned n_length;   /* Content-Length fields */
	unsigned n_encoding; /* Transfer-Encoding fields */
	bool length_bad;     /* a Content-Length that is not 1-18 decimal digits */
	bool encoding_bad;   /* a Transfer-Encoding other than exactly "chunked" */
};

/**
 * Adds one header field (@p name, @p value: not NUL-terminated, the value without its
 * surrounding whitespace) to @p f. Names are compared without regard to case.
 */
void http_framing_add(struct http_framing *f, const char *name, size_t name_len, const char *value,
                      size_t value_len);
/**
 * The verdict of RFC 9112 sections 6.1 and 6.3 on @p f, as claimd applies them:
 * CE_OK; CE_LENGTH_AND_ENCODING (400) when both are present; CE_TRANSFER_ENCODING (501)
 * for any Transfer-Encoding but one "chunked" (gzip, identity, "gzip, chunked", two
 * fields); CE_CONTENT_LENGTH (400) for a Content-Length that is empty, signed, not
 * decimal, longer than 18 digits, or given more than once (even with equal values).
 */
enum claimd_err http_framing_verdict(const struct http_framing *f);

/**
 * Checks a whole request head: @p buf holds @p len bytes from the start of a
 * connection (any empty lines before the request line are skipped). Sets *@p head_len
 * to the bytes up to and including the empty line that ends the head, or 0 when the
 * head is not complete yet (and nothing seen so far is wrong: wait for more). Returns
 * CE_OK, the framing verdict above, CE_MALFORMED_REQUEST (400: a request line that is
 * not METHOD SP TARGET SP HTTP/1.x, a header line without a valid name and colon, a
 * folded line, a bare CR, an HTTP/1.1 request without Host), CE_HTTP_VERSION (505: a
 * well-formed version other than 1.0 and 1.1) or CE_HEADERS_TOO_LARGE (431: more than
 * @p max_head bytes without the end of the head, or more than HTTP_EDGE_MAX_FIELDS
 * fields and query arguments). @p method and @p target (@p cap bytes each, may be NULL)
 * get the request line's parts, cut to fit, when they could be read.
 */
enum claimd_err http_edge_check_head(const char *buf, size_t len, size_t max_head, size_t *head_len,
                                     char *method, char *target, size_t cap);

struct http_edge;
struct app;
struct MHD_Daemon;

/** What the acceptor needs from the server's config (the restart-only keys). */
struct http_edge_limits {
	unsigned timeout_s;       /* server.connection_timeout_seconds: for the first head */
	unsigned max_pending;     /* limits.max_connections: open connections, here and in
	                           * libmicrohttpd */
	unsigned per_address;     /* limits.max_connections_per_address (0: no limit) */
	size_t max_head;          /* bytes a first head may take */
	const char *listen_label; /* "server.listen" or "admin.listen", for messages */
	bool shared;              /* server.listen_sharing: shared sets SO_REUSEPORT, so a
	                           * second claimd may listen on the same address */
};

/**
 * Binds and listens on @p addr (@p addrlen bytes) and starts the acceptor thread: it
 * accepts each connection, reads (without taking them off the socket) the bytes of its
 * first request head, and hands the connection to @p d (started with
 * MHD_USE_NO_LISTEN_SOCKET) by MHD_add_connection() once the head is complete and
 * right. A head that is wrong gets one reply with the failure body of its error,
 * "Connection: close", and the connection is closed (after reading what the client
 * still sends, for at most two seconds, so that the reply is not lost to a reset);
 * nothing after it on that connection is read as a request. A head not complete after
 * @p l->timeout_s is dropped without a reply. NULL with @p err on failure (bind,
 * listen, thread, memory).
 */
struct http_edge *http_edge_start(struct app *app, struct MHD_Daemon *d,
                                  const struct sockaddr *addr, socklen_t addrlen,
                                  const struct http_edge_limits *l, char *err, size_t errsz);
/**
 * libmicrohttpd closed a connection from @p sa that the edge handed over (its
 * MHD_CONNECTION_NOTIFY_CLOSED): it no longer counts against the connection limits.
 */
void http_edge_closed(struct http_edge *e, const struct sockaddr *sa);
/** The port the edge listens on. */
unsigned http_edge_port(const struct http_edge *e);
/**
 * Stops accepting (the listening socket is shut down at once, so new connections are
 * refused), closes connections still waiting for their first head and joins the
 * thread. @p e stays valid for http_edge_closed() calls from libmicrohttpd until
 * http_edge_free(). NULL, or a second call, is a no-op.
 */
void http_edge_stop(struct http_edge *e);
/** Stops @p e if needed and frees it; call after MHD_stop_daemon(). NULL is a no-op. */
void http_edge_free(struct http_edge *e);

#endif
