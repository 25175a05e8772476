/*
 * Takes the database password out of libpq's words before they reach a log, stderr or a
 * reply. libpq quotes parts of the connection string in some messages (a malformed
 * percent-escape echoes the whole component), so every message it writes passes here.
 * This file works on text only: it must not connect, parse with libpq, or keep a copy.
 */
#include "db/db.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lib/util.h"

/* What replaces every spelling of the password. */
#define MASK "********"

enum { MAX_FORMS = 12, FORM_MAX = 256 };

struct forms {
	char s[MAX_FORMS][FORM_MAX];
	size_t n;
};

static void add(struct forms *f, const char *s, size_t n)
{
	if (n == 0 || n >= FORM_MAX || f->n == MAX_FORMS)
		return;
	memcpy(f->s[f->n], s, n);
	f->s[f->n][n] = '\0';
	f->n++;
}

/* @p s (length @p n) as written, and percent-decoded where the escapes are well formed
 * (a malformed one is kept as it is): the two spellings a message may quote. */
static void add_uri(struct forms *f, const char *s, size_t n)
{
	char d[FORM_MAX];
	size_t o = 0;

	add(f, s, n);
	for (size_t i = 0; i < n && o + 1 < sizeof(d); i++) {
		int hi, lo;
		if (s[i] == '%' && i + 2 < n && (hi = hex_value(s[i + 1])) >= 0 &&
		    (lo = hex_value(s[i + 2])) >= 0) {
			d[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			d[o++] = s[i];
		}
	}
	if (o != n || memcmp(d, s, n) != 0)
		add(f, d, o);
}

/* Whether the query key @p k (@p n bytes, percent-escapes decoded) is "password". */
static bool key_is_password(const char *k, size_t n)
{
	static const char want[] = "password";
	size_t o = 0;
	for (size_t i = 0; i < n; i++, o++) {
		int hi, lo;
		char ch = k[i];
		if (ch == '%' && i + 2 < n && (hi = hex_value(k[i + 1])) >= 0 &&
		    (lo = hex_value(k[i + 2])) >= 0) {
			ch = (char)(hi * 16 + lo);
			i += 2;
		}
		if (o >= sizeof(want) - 1 || ch != want[o])
			return false;
	}
	return o == sizeof(want) - 1;
}

/* The password of a URI (postgres[ql]://user:PASSWORD@host/db?password=...). libpq ends
 * the user information at the first '@'; an operator who left an '@' in the password
 * meant the last one, and libpq then quotes the rest as a host name: every piece counts. */
static void uri_forms(struct forms *f, const char *url)
{
	const char *a = strstr(url, "://");
	if (!a)
		return;
	a += 3;
	/* libpq looks for the user information's '@' up to the first '/' only: a '?' or
	 * '#' before the '@' is part of the password. */
	size_t alen = strcspn(a, "/");
	const char *at = NULL, *last = NULL;
	for (const char *p = a; p < a + alen; p++)
		if (*p == '@') {
			if (!at)
				at = p;
			last = p;
		}
	const char *colon = at ? memchr(a, ':', (size_t)(at - a)) : NULL;
	if (colon) {
		const char *pw = colon + 1;
		add_uri(f, pw, (size_t)(at - pw));
		if (last != at) {
			add_uri(f, pw, (size_t)(last - pw));
			/* The pieces between the '@'s, which libpq reads as the host. */
			for (const char *p = at + 1; p < last;) {
				const char *q = memchr(p, '@', (size_t)(last - p));
				if (!q)
					q = last;
				add_uri(f, p, (size_t)(q - p));
				p = q + 1;
			}
		}
	}
	/* ?password=... (or &password=...) in the query. libpq percent-decodes the key as
	 * well as the value, and ends a value at '&' only ('#' is part of it). */
	for (const char *q = strchr(url, '?'); q; q = strchr(q + 1, '&')) {
		const char *k = q + 1;
		size_t klen = strcspn(k, "=&");
		if (k[klen] == '=' && key_is_password(k, klen))
			add_uri(f, k + klen + 1, strcspn(k + klen + 1, "&"));
	}
}

/* password=VALUE in the keyword form, VALUE bare or single-quoted with \' and \\. */
static void keyword_forms(struct forms *f, const char *url)
{
	for (const char *p = strstr(url, "password"); p; p = strstr(p + 1, "password")) {
		if (p != url && p[-1] != ' ' && p[-1] != '\t' && p[-1] != '\n')
			continue;
		const char *v = p + 8;
		v += strspn(v, " \t\n");
		if (*v != '=')
			continue;
		v++;
		v += strspn(v, " \t\n");
		if (*v != '\'') {
			add(f, v, strcspn(v, " \t\n"));
			continue;
		}
		char d[FORM_MAX];
		size_t o = 0;
		const char *s = ++v;
		for (; *s && *s != '\'' && o + 1 < sizeof(d); s++) {
			if (*s == '\\' && s[1])
				s++;
			d[o++] = *s;
		}
		add(f, v, (size_t)(s - v)); /* as written, escapes and all */
		add(f, d, o);
	}
}

size_t db_redact(char *out, size_t outsz, const char *msg, const char *url)
{
	struct forms f = {.n = 0};
	size_t o = 0;

	if (outsz == 0)
		return 0;
	if (url) {
		uri_forms(&f, url);
		keyword_forms(&f, url);
	}
	for (const char *p = msg ? msg : ""; *p;) {
		size_t best = 0;
		for (size_t i = 0; i < f.n; i++) {
			size_t n = strlen(f.s[i]);
			if (n > best && strncmp(p, f.s[i], n) == 0)
				best = n;
		}
		const char *piece = best ? MASK : p;
		size_t n = best ? strlen(MASK) : 1;
		if (o + n >= outsz)
			break;
		memcpy(out + o, piece, n);
		o += n;
		p += best ? best : 1;
	}
	out[o] = '\0';
	return o;
}
