/*
 * What several unit test programs share (unit_support.h).
 */
#include "unit_support.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

char tmpdir[512];

const char *write_tmp(const char *name, const char *text)
{
	static char path[1024];
	snprintf(tmpdir, sizeof(tmpdir), "%s/tmp/unit", getenv("CLAIMD_BUILD_DIR") ?: ".");
	t_run(NULL, "mkdir -p '%s'", tmpdir);
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

struct secrets *test_secrets(uint8_t fill)
{
	uint8_t k[32];
	memset(k, fill, sizeof(k));
	return secrets_from_bytes(k);
}
