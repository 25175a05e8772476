/*
 * What several unit test programs share: a scratch folder in the build tree and a
 * secrets key made from one byte. Test code only.
 */
#ifndef CLAIMD_UNIT_SUPPORT_H
#define CLAIMD_UNIT_SUPPORT_H

#include <stdint.h>

#include "lib/secure.h"

#define K1HEX_UNIT "000102030405060708090A0B0C0D0E0F"

/* The folder write_tmp() writes into: $CLAIMD_BUILD_DIR/tmp/unit. */
extern char tmpdir[512];
/** Writes @p text to file @p name in tmpdir (made if needed); its path (static storage). */
const char *write_tmp(const char *name, const char *text);
/** Secrets whose 32-byte key is @p fill repeated. */
struct secrets *test_secrets(uint8_t fill);

#endif
