/*
 * CSV parsing with libcsv, one physical line at a time: no valid field can contain a
 * newline, so a quoted newline is an error and every error has an exact line number.
 * Bounded everywhere: line length, field count, field length.
 */
#include "claimd/csvimport.h"

#include <csv.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_FIELDS 32
#define MAX_FIELD  256

enum { COL_MAC, COL_PLATFORM, COL_KEY, NCOLS };

struct reader {
	struct csv_parser p;
	csv_row_fn on_row;
	csv_error_fn on_error;
	void *arg;
	struct csv_result *res;
	long line;
	bool have_header;
	int col[NCOLS]; /* field index of each column */
	/* fields of the current line */
	char field[MAX_FIELDS][MAX_FIELD + 1];
	size_t nfields;
	const char *line_error;
};

static void on_field(void *s, size_t len, void *data)
{
	struct reader *r = data;
	if (r->line_error)
		return;
	if (r->nfields >= MAX_FIELDS) {
		r->line_error = "too many fields";
		return;
	}
	if (len > MAX_FIELD) {
		r->line_error = "field too long";
		return;
	}
	memcpy(r->field[r->nfields], s ? s : "", s ? len : 0);
	r->field[r->nfields][s ? len : 0] = '\0';
	r->nfields++;
}

static void on_record(int c, void *data)
{
	(void)c;
	(void)data; /* lines are ended by csv_fini, see feed_line() */
}

static void trim(char *s)
{
	size_t n = strlen(s), i = 0;
	while (n > 0 && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	while (s[i] && isspace((unsigned char)s[i]))
		i++;
	memmove(s, s + i, n - i + 1);
}

static int header(struct reader *r)
{
	static const char *names[NCOLS] = {"mac", "platform", "efuse_key"};

	for (int c = 0; c < NCOLS; c++)
		r->col[c] = -1;
	for (size_t i = 0; i < r->nfields; i++) {
		trim(r->field[i]);
		for (int c = 0; c < NCOLS; c++) {
			if (strcasecmp(r->field[i], names[c]) != 0)
				continue;
			if (r->col[c] >= 0) {
				r->on_error(r->arg, r->line, "header: a column appears twice");
				return -1;
			}
			r->col[c] = (int)i;
		}
	}
	for (int c = 0; c < NCOLS; c++) {
		if (r->col[c] < 0) {
			r->on_error(r->arg, r->line,
			            "header: the columns mac, platform and efuse_key are required");
			return -1;
		}
	}
	r->have_header = true;
	return 0;
}

static const char *row(struct reader *r, struct csv_row *out)
{
	const char *mac, *plat, *key;

	for (int c = 0; c < NCOLS; c++)
		if ((size_t)r->col[c] >= r->nfields)
			return "missing fields";
	mac = r->field[r->col[COL_MAC]];
	plat = r->field[r->col[COL_PLATFORM]];
	key = r->field[r->col[COL_KEY]];
	trim(r->field[r->col[COL_MAC]]);
	trim(r->field[r->col[COL_PLATFORM]]);
	trim(r->field[r->col[COL_KEY]]);
	switch (device_fields_check(mac, plat, key, out)) {
	case DEVICE_FIELDS_OK:
		break;
	case DEVICE_BAD_MAC:
		return "mac: expected 12 hex digits (':' or '-' separators allowed)";
	case DEVICE_BAD_PLATFORM:
		return "platform: expected an IDF target name such as esp32s3";
	case DEVICE_BAD_KEY:
		return "efuse_key: expected 32 hex digits (16 bytes, spaces allowed)";
	}
	out->line = r->line;
	return NULL;
}

enum device_fields device_fields_check(const char *mac, const char *platform, const char *key,
                                       struct csv_row *out)
{
	if (!mac_normalize(out->mac, mac, strlen(mac)))
		return DEVICE_BAD_MAC;
	if (!platform_normalize(out->platform, platform, strlen(platform)))
		return DEVICE_BAD_PLATFORM;
	if (!hex_decode(out->efuse_key, EFUSE_KEY_BYTES, key, strlen(key), true))
		return DEVICE_BAD_KEY;
	return DEVICE_FIELDS_OK;
}

static bool blank(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (!isspace((unsigned char)s[i]))
			return false;
	return true;
}

/* Returns -1 to stop reading (bad header or a callback said so). */
static int feed_line(struct reader *r, const char *s, size_t n)
{
	struct csv_row out;
	const char *why;

	r->line++;
	if (n > 0 && s[n - 1] == '\r')
		n--;
	if (blank(s, n))
		return 0;
	r->nfields = 0;
	r->line_error = NULL;
	if (csv_parse(&r->p, s, n, on_field, on_record, r) != n ||
	    csv_fini(&r->p, on_field, on_record, r) != 0) {
		r->line_error = "malformed CSV (unbalanced quotes?)";
		/* A strict-mode csv_fini() failure leaves the parser mid-field: start over. */
		csv_free(&r->p);
		if (csv_init(&r->p, CSV_STRICT | CSV_STRICT_FINI) != 0)
			return -1;
	}
	if (!r->have_header) {
		if (r->line_error) {
			r->on_error(r->arg, r->line, r->line_error);
			return -1;
		}
		return header(r);
	}
	why = r->line_error ? r->line_error : row(r, &out);
	if (why) {
		r->res->errors++;
		r->on_error(r->arg, r->line, why);
		return 0;
	}
	r->res->rows++;
	if (r->on_row(r->arg, &out) < 0) {
		r->res->stopped = true;
		return -1;
	}
	return 0;
}

static struct reader *reader_new(csv_row_fn on_row, csv_error_fn on_error, void *arg,
                                 struct csv_result *res)
{
	struct reader *r = calloc(1, sizeof(*r));
	if (!r)
		return NULL;
	if (csv_init(&r->p, CSV_STRICT | CSV_STRICT_FINI) != 0) {
		free(r);
		return NULL;
	}
	memset(res, 0, sizeof(*res));
	r->on_row = on_row;
	r->on_error = on_error;
	r->arg = arg;
	r->res = res;
	return r;
}

static int reader_end(struct reader *r, int rc)
{
	if (rc == 0 && !r->have_header) {
		r->on_error(r->arg, 1, "header: the file is empty");
		rc = -1;
	}
	csv_free(&r->p);
	free(r);
	return rc;
}

int csv_read_stream(FILE *f, csv_row_fn on_row, csv_error_fn on_error, void *arg,
                    struct csv_result *res)
{
	struct reader *r = reader_new(on_row, on_error, arg, res);
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	int rc = 0;

	if (!r)
		return -1;
	while ((n = getline(&line, &cap, f)) >= 0) {
		if (n > 0 && line[n - 1] == '\n')
			n--;
		if (n > CSV_MAX_LINE) {
			r->line++;
			res->errors++;
			on_error(arg, r->line, "line too long");
			continue;
		}
		if (feed_line(r, line, (size_t)n) < 0) {
			rc = res->stopped ? 0 : -1;
			break;
		}
	}
	if (ferror(f)) {
		on_error(arg, r->line + 1, "read error");
		rc = -1;
	}
	free(line);
	return reader_end(r, rc);
}

int csv_read_buffer(const char *buf, size_t n, csv_row_fn on_row, csv_error_fn on_error, void *arg,
                    struct csv_result *res)
{
	struct reader *r = reader_new(on_row, on_error, arg, res);
	size_t pos = 0;
	int rc = 0;

	if (!r)
		return -1;
	while (pos < n) {
		const char *nl = memchr(buf + pos, '\n', n - pos);
		size_t len = nl ? (size_t)(nl - (buf + pos)) : n - pos;
		if (len > CSV_MAX_LINE) {
			r->line++;
			res->errors++;
			on_error(arg, r->line, "line too long");
		} else if (feed_line(r, buf + pos, len) < 0) {
			rc = res->stopped ? 0 : -1;
			break;
		}
		pos += len + 1;
	}
	return reader_end(r, rc);
}
