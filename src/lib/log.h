/*
 * Logging to stderr, one line per event, safe from several threads: plain text, or one
 * JSON object per line (log.format: json) for log shippers. Anything that came from a
 * request must go through log_escape() first: a log line never carries raw client
 * bytes, and secrets (keys, tokens, eFuse data) are never passed here at all.
 */
#ifndef CLAIMD_LOG_H
#define CLAIMD_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };
enum log_format { LOG_TEXT, LOG_JSON };

/** Sets how lines are written (default LOG_TEXT). */
void log_set_format(enum log_format f);
/** Parses "text" or "json"; returns -1 for anything else. */
int log_format_parse(const char *s);

/** Sets the lowest level that is printed (default LOG_INFO). */
void log_set_level(enum log_level l);
/** Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int log_level_parse(const char *s);
/**
 * Names the request this thread is now working on, until log_request_end(): every
 * log_msg() line in between carries it, in JSON as the "request_id" field and in text as
 * "req=ID " before the message, so no line about a request can leave it out. The HTTP
 * layer calls it around each of its callbacks; @p id (escaped already, at most 64
 * characters, longer is cut) is copied. NULL or "" ends the request like log_request_end().
 */
void log_request_begin(const char *id);
/** Ends what log_request_begin() started on this thread; a no-op if nothing was. */
void log_request_end(void);
/** Prints one line with a timestamp and level (and the thread's request, if any). */
void log_msg(enum log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* One HTTP request, as its access-log line shows it. Strings are escaped already
 * (log_escape()); NULL or "" ones are left out. */
struct log_request {
	enum log_level level;
	const char *request_id, *remote, *method, *route, *path;
	unsigned status;
	const char *outcome; /* the error-table name, OK for success */
	unsigned long duration_ms;
	const char *mac, *node_id, *user;
	bool aborted;
};

/**
 * Prints the access-log line of a request: in text "req=ID remote=ADDR METHOD PATH ->
 * STATUS OUTCOME NNms [mac=..] [node_id=..] [user=..]"; in JSON an object with time,
 * level, message, request_id, route, method, path, status, outcome, duration_ms, remote
 * and mac, node_id, user when known.
 */
void log_request(const struct log_request *r);
/** Drains OpenSSL's error queue into the log at LOG_WARN, prefixed by @p what. */
void log_openssl(const char *what);
/**
 * Copies at most @p max bytes of untrusted @p in (length @p n) into @p out (size @p outsz)
 * with every byte outside printable ASCII, and '"' and '\\', written as \xHH. Always
 * NUL-terminates; returns @p out.
 */
char *log_escape(char *out, size_t outsz, const char *in, size_t n);

#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(LOG_ERROR, __VA_ARGS__)

#endif
