/* Fuzz target: the YAML config loader (key table, conversions, positions). */
#include <stdint.h>

#include "lib/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char err[512];
	config_free(config_load_buffer("fuzz.yaml", (const char *)data, size, err, sizeof(err)));
	return 0;
}
