/*
 * Logging to stderr, one line per event, safe from several threads. Anything that came
 * from a request must go through log_escape() first: a log line never carries raw
 * client bytes, and secrets are never passed here at all.
 */
#ifndef CLAIMD_LOG_H
#define CLAIMD_LOG_H

#include <stddef.h>

enum log_level { LOG_DEBUG, LOG_INFO, LOG_WARN, LOG_ERROR };

/** Sets the lowest level that is printed (default LOG_INFO). */
void log_set_level(enum log_level l);
/** Parses "debug", "info", "warn" or "error"; returns -1 for anything else. */
int log_level_parse(const char *s);
/** Prints one line with a timestamp and level. */
void log_msg(enum log_level l, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
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
