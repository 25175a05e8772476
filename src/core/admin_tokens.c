/*
 * Bearer tokens of the management API. Only hashes are stored, so reading the file does
 * not give a token away; the check hashes what the client sent and compares it with
 * every listed hash in constant time, so timing tells neither which nor whether.
 */
#include "core/admin_tokens.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/secure.h"
#include "lib/util.h"

struct admin_token {
	uint8_t hash[32];
	char name[ADMIN_TOKEN_NAME_MAX + 1];
};

struct admin_tokens {
	size_t n;
	struct admin_token t[];
};

static bool name_ok(const char *s, size_t n)
{
	if (n == 0 || n > ADMIN_TOKEN_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      strchr("._@:-", c)))
			return false;
	}
	return true;
}

/* One line without its newline: a token into @p out. 1 = a token, 0 = skip, -1 = bad. */
static int parse_line(char *line, struct admin_token *out)
{
	char *p = line, *name;
	size_t n;

	n = strlen(p);
	while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t' || p[n - 1] == '\r'))
		p[--n] = '\0';
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	n = strcspn(p, " \t");
	if (n != 64 || !hex_decode(out->hash, sizeof(out->hash), p, n, false))
		return -1;
	name = p + n;
	name += strspn(name, " \t");
	if (!name_ok(name, strlen(name)))
		return -1;
	memcpy(out->name, name, strlen(name) + 1);
	return 1;
}

struct admin_tokens *admin_tokens_load(const char *path, char *err, size_t errsz)
{
	struct admin_tokens *t = NULL;
	struct stat st;
	char *text = NULL, *line, *save = NULL;
	size_t len = 0, cap = 0;
	long lineno = 0;

	if (stat(path, &st) < 0) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return NULL;
	}
	if (st.st_mode & 077) {
		snprintf(err, errsz,
		         "%s: admin tokens file is group- or world-accessible (chmod 600)", path);
		return NULL;
	}
	char why[256];
	if (key_file_access(path, &st, why, sizeof(why)) < 0) {
		snprintf(err, errsz, "%s: %s", path, why);
		return NULL;
	}
	if (!(text = file_read_all(path, 1 << 20, &len))) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return NULL;
	}
	for (size_t i = 0; i < len; i++)
		cap += text[i] == '\n';
	if (!(t = calloc(1, sizeof(*t) + (cap + 1) * sizeof(t->t[0])))) {
		snprintf(err, errsz, "%s: out of memory", path);
		goto fail;
	}
	/* strtok_r would merge empty lines and lose the line numbers. */
	for (line = text; line; line = save) {
		char *nl = strchr(line, '\n');
		save = nl ? nl + 1 : NULL;
		if (nl)
			*nl = '\0';
		lineno++;
		if (!nl && !*line)
			break;
		int r = parse_line(line, &t->t[t->n]);
		if (r < 0) {
			snprintf(err, errsz,
			         "%s:%ld: expected \"SHA256-HEX NAME\" (64 hex digits, a name of "
			         "1-%d characters of A-Z a-z 0-9 . _ @ : -)",
			         path, lineno, ADMIN_TOKEN_NAME_MAX);
			goto fail;
		}
		t->n += (size_t)r;
	}
	if (t->n == 0) {
		snprintf(err, errsz, "%s: no token listed", path);
		goto fail;
	}
	secure_wipe(text, len);
	free(text);
	return t;
fail:
	secure_wipe(text, len);
	free(text);
	free(t);
	return NULL;
}

void admin_tokens_free(struct admin_tokens *t)
{
	if (!t)
		return;
	secure_wipe(t, sizeof(*t) + t->n * sizeof(t->t[0]));
	free(t);
}

const char *admin_tokens_check(const struct admin_tokens *t, const char *token, size_t len)
{
	uint8_t h[32];
	const char *found = NULL;

	if (!t || len == 0)
		return NULL;
	secure_sha256(h, token, len);
	for (size_t i = 0; i < t->n; i++) {
		/* No early exit: every entry costs the same whether it matches or not. */
		bool eq = secure_equal(h, t->t[i].hash, sizeof(h));
		if (eq && !found)
			found = t->t[i].name;
	}
	secure_wipe(h, sizeof(h));
	return found;
}
