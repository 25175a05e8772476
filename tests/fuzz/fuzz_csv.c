/* Fuzz target: the manufacturing CSV reader (header, rows, quoting, line numbers). */
#include <stdint.h>

#include "claimd/csvimport.h"

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
	struct csv_result res;
	(void)csv_read_buffer((const char *)data, size, on_row, on_error, NULL, &res);
	return 0;
}
