/* Fuzz target: the manufacturing CSV reader (byte-order mark, header, rows, quoting,
 * line numbers, the fields' canonical forms). */
#include <stdint.h>

#include "lib/csvimport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int on_row(void *arg, const struct csv_row *r)
{
	(void)arg;
	return r->line > 0 ? 0 : -1;
}

static void on_error(void *arg, long line, const char *reason)
{
	(void)arg;
	(void)line;
	(void)reason;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* As a config would give them: canonical, NULL-terminated. */
	static char p1[] = "esp32x9", p2[] = "host";
	static char *const extra[] = {p1, p2, NULL};
	struct csv_result res;
	(void)csv_read_buffer((const char *)data, size, extra, on_row, on_error, NULL, &res);
	return 0;
}
