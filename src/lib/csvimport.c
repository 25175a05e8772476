/*
 * CSV parsing with libcsv, one physical line at a time: no valid field can contain a
 * newline, so a quoted newline is an error and every error has an exact line number.
 * Bounded everywhere: line length, field count, field length. The fields' rules are
 * canon.c's, never repeated here: the management API registers devices with the same.
 */
#include "lib/csvimport.h"

#include <csv.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "lib/canon.h"
#include "lib/errors.h"

#define MAX_FIELDS 32
#define MAX_FIELD  256

enum { COL_MAC, COL_PLATFORM, COL_KEY, NCOLS };

struct reader {
	struct csv_parser p;
	csv_row_fn on_row;
	csv_error_fn on_error;
	void *arg;
	char *const *extra_platforms;
	struct csv_result *res;
	long line;
	bool have_header;
	int col[NCOLS]; /* field index of each column */
	/* fields of the current line */
	char field[MAX_FIELDS][MAX_FIELD + 1];
	size_t nfields;
	const char *line_error;
	char why[640]; /* a reason that quotes what was found */
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

/* The refusal of a header, quoting the names found (a spreadsheet's "MAC Address" or a
 * byte-order mark we did not expect are then visible at once). */
static void header_found(struct reader *r)
{
	size_t k = (size_t)snprintf(r->why, sizeof(r->why),
	                            "header: the columns mac, platform and efuse_key are required "
	                            "(any case, any order); found:");
	for (size_t i = 0; i < r->nfields && k < sizeof(r->why); i++)
		k += (size_t)snprintf(r->why + k, sizeof(r->why) - k, "%s \"%.40s\"", i ? "," : "",
		                      r->field[i]);
	if (k >= sizeof(r->why))
		memcpy(r->why + sizeof(r->why) - 4, "...", 4);
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
			header_found(r);
			r->on_error(r->arg, r->line, r->why);
			return -1;
		}
	}
	r->have_header = true;
	return 0;
}

static const char *row(struct reader *r, struct csv_row *out)
{
	struct canon_device d;
	enum claimd_err e;
	char *mac, *plat;

	for (int c = 0; c < NCOLS; c++)
		if ((size_t)r->col[c] >= r->nfields)
			return "missing fields";
	for (int c = 0; c < NCOLS; c++)
		trim(r->field[r->col[c]]);
	mac = r->field[r->col[COL_MAC]];
	plat = r->field[r->col[COL_PLATFORM]];
	e = canon_device(mac, plat, r->field[r->col[COL_KEY]], r->extra_platforms, &d);
	/* The MAC and platform as found help the operator; a key is never repeated. */
	if (e == CE_DEVICE_MAC || e == CE_DEVICE_PLATFORM || e == CE_DEVICE_PLATFORM_UNKNOWN) {
		snprintf(r->why, sizeof(r->why), "%s; found \"%.64s\"", err_description(e),
		         e == CE_DEVICE_MAC ? mac : plat);
		return r->why;
	}
	if (e != CE_OK)
		return err_description(e);
	memcpy(out->mac, d.mac, sizeof(out->mac));
	memcpy(out->platform, d.platform, sizeof(out->platform));
	memcpy(out->efuse_key, d.efuse_key, sizeof(out->efuse_key));
	out->line = r->line;
	return NULL;
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
	/* "CSV UTF-8" from a spreadsheet starts with a byte-order mark (README.md,
	 * "Registering chips at manufacturing"); it is not part of the first header name. */
	if (r->line == 1 && n >= 3 && memcmp(s, "\xEF\xBB\xBF", 3) == 0) {
		s += 3;
		n -= 3;
	}
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

static struct reader *reader_new(char *const *extra_platforms, csv_row_fn on_row,
                                 csv_error_fn on_error, void *arg, struct csv_result *res)
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
	r->extra_platforms = extra_platforms;
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

int csv_read_stream(FILE *f, char *const *extra_platforms, csv_row_fn on_row, csv_error_fn on_error,
                    void *arg, struct csv_result *res)
{
	struct reader *r = reader_new(extra_platforms, on_row, on_error, arg, res);
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

int csv_read_buffer(const char *buf, size_t n, char *const *extra_platforms, csv_row_fn on_row,
                    csv_error_fn on_error, void *arg, struct csv_result *res)
{
	struct reader *r = reader_new(extra_platforms, on_row, on_error, arg, res);
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
