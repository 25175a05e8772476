/*
 * stderr logger, text or one JSON object per line. Lines are built in a local buffer and
 * written with one write(2) so lines from worker threads never interleave. It must not
 * allocate on the hot path, and it writes JSON itself (no jansson in src/core).
 */
#include "lib/log.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static enum log_level min_level = LOG_INFO;
static enum log_format format = LOG_TEXT;
static const char *const tags[] = {"debug", "info", "warn", "error"};
/* The request this thread works on (log_request_begin()), "" for none. Thread-local:
 * libmicrohttpd runs all callbacks of one request on one thread at a time. */
static _Thread_local char current_request[65];

void log_request_begin(const char *id)
{
	snprintf(current_request, sizeof(current_request), "%s", id ? id : "");
}

void log_request_end(void)
{
	current_request[0] = '\0';
}

void log_set_level(enum log_level l)
{
	min_level = l;
}

int log_level_parse(const char *s)
{
	for (int i = 0; i < 4; i++)
		if (strcmp(s, tags[i]) == 0)
			return i;
	return -1;
}

void log_set_format(enum log_format f)
{
	format = f;
}

int log_format_parse(const char *s)
{
	if (strcmp(s, "text") == 0)
		return LOG_TEXT;
	if (strcmp(s, "json") == 0)
		return LOG_JSON;
	return -1;
}

/* Bytes kept free at the end of a line for what closes it: '"', '}' and '\n'. */
enum { CLOSING = 3, LINE_MAX_BYTES = 4096 };

struct line {
	char buf[LINE_MAX_BYTES];
	size_t o;
};

/* Appends @p s as it is, or nothing if it does not fit. */
static void put(struct line *l, const char *s)
{
	size_t n = strlen(s);
	if (l->o + n + CLOSING <= sizeof(l->buf)) {
		memcpy(l->buf + l->o, s, n);
		l->o += n;
	}
}

/*
 * Appends @p s as a JSON string. Quotes, backslashes, control characters and any byte
 * outside ASCII are escaped, so a line is valid JSON (and ASCII) whatever it carries;
 * a value too long for the line is cut short but still closed.
 */
static void put_json_str(struct line *l, const char *s)
{
	static const char hex[] = "0123456789abcdef";
	l->buf[l->o++] = '"';
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		char e[6];
		size_t n = 0;
		if (c == '"' || c == '\\') {
			e[n++] = '\\';
			e[n++] = (char)c;
		} else if (c < 0x20 || c >= 0x7f) {
			memcpy(e, "\\u00", 4);
			n = 4;
			e[n++] = hex[c >> 4];
			e[n++] = hex[c & 15];
		} else {
			e[n++] = (char)c;
		}
		if (l->o + n + CLOSING > sizeof(l->buf))
			break;
		memcpy(l->buf + l->o, e, n);
		l->o += n;
	}
	l->buf[l->o++] = '"';
}

/* ,"key":"value" when it fits (value possibly cut short); nothing for NULL or "". */
static void field_str(struct line *l, const char *key, const char *v)
{
	if (!v || !*v || l->o + strlen(key) + 8 + CLOSING > sizeof(l->buf))
		return;
	l->buf[l->o++] = ',';
	put_json_str(l, key);
	l->buf[l->o++] = ':';
	put_json_str(l, v);
}

static void field_num(struct line *l, const char *key, unsigned long v)
{
	char num[64];
	snprintf(num, sizeof(num), ",\"%s\":%lu", key, v);
	put(l, num);
}

/* The line's start: the time and level, as text or as the JSON object's first fields. */
static void begin(struct line *l, enum log_level lv)
{
	struct timespec ts;
	struct tm tm;
	char t[80];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	snprintf(t, sizeof(t), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
	         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000000);
	l->o = 0;
	if (format == LOG_JSON) {
		put(l, "{\"time\":\"");
		put(l, t);
		put(l, "\",\"level\":\"");
		put(l, tags[lv]);
		put(l, "\"");
	} else {
		put(l, t);
		put(l, " ");
		put(l, tags[lv]);
		put(l, " ");
	}
}

/* Closes the line and writes it with one write(2), so worker threads never interleave. */
static void finish(struct line *l)
{
	if (format == LOG_JSON)
		l->buf[l->o++] = '}';
	l->buf[l->o++] = '\n';
	if (write(STDERR_FILENO, l->buf, l->o) < 0) {
		/* Nowhere left to report a failing stderr. */
	}
}

void log_msg(enum log_level lv, const char *fmt, ...)
{
	struct line l;
	char msg[2048];
	va_list ap;

	if (lv < min_level)
		return;
	va_start(ap, fmt);
	if (vsnprintf(msg, sizeof(msg), fmt, ap) < 0)
		msg[0] = '\0';
	va_end(ap);
	begin(&l, lv);
	if (format == LOG_JSON) {
		/* Before the message, which may be long enough to fill the line. */
		field_str(&l, "request_id", current_request);
		put(&l, ",\"message\":");
		put_json_str(&l, msg);
	} else {
		if (current_request[0]) {
			put(&l, "req=");
			put(&l, current_request);
			put(&l, " ");
		}
		put(&l, msg);
	}
	finish(&l);
}

void log_request(const struct log_request *r)
{
	struct line l;
	char msg[256];

	if (r->level < min_level)
		return;
	begin(&l, r->level);
	if (format == LOG_JSON) {
		snprintf(msg, sizeof(msg), "%s %s -> %u", r->method, r->path, r->status);
		put(&l, ",\"message\":");
		put_json_str(&l, msg);
		field_str(&l, "request_id", r->request_id);
		field_str(&l, "route", r->route);
		field_str(&l, "method", r->method);
		field_str(&l, "path", r->path);
		field_num(&l, "status", r->status);
		field_str(&l, "outcome", r->outcome);
		field_num(&l, "duration_ms", r->duration_ms);
		field_str(&l, "remote", r->remote);
		field_str(&l, "mac", r->mac);
		field_str(&l, "node_id", r->node_id);
		field_str(&l, "user", r->user);
		if (r->aborted)
			put(&l, ",\"aborted\":true");
		finish(&l);
		return;
	}
	snprintf(msg, sizeof(msg), "req=%s remote=%s %s %s -> %u %s %lums", r->request_id,
	         r->remote, r->method, r->path, r->status, r->outcome, r->duration_ms);
	put(&l, msg);
	const char *names[] = {" mac=", " node_id=", " user="};
	const char *vals[] = {r->mac, r->node_id, r->user};
	for (int i = 0; i < 3; i++)
		if (vals[i] && *vals[i]) {
			put(&l, names[i]);
			put(&l, vals[i]);
		}
	if (r->aborted)
		put(&l, " (aborted)");
	finish(&l);
}

void log_openssl(const char *what)
{
	unsigned long e;
	char buf[256];

	while ((e = ERR_get_error()) != 0) {
		ERR_error_string_n(e, buf, sizeof(buf));
		log_warn("%s: %s", what, buf);
	}
}

char *log_escape(char *out, size_t outsz, const char *in, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0;

	if (outsz == 0)
		return out;
	for (size_t i = 0; i < n && in; i++) {
		unsigned char c = (unsigned char)in[i];
		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			if (o + 2 > outsz)
				break;
			out[o++] = (char)c;
		} else {
			if (o + 5 > outsz)
				break;
			out[o++] = '\\';
			out[o++] = 'x';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}
