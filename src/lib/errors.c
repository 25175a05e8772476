/*
 * Table lookups over errors.def. The table is the single source of statuses and
 * descriptions; nothing here formats a reply (that is reply.c).
 */
#include "lib/errors.h"

static const struct {
	const char *name;
	unsigned status;
	const char *desc;
} table[CE__COUNT] = {
    [CE_OK] = {"OK", 200, ""},
#define X(n, s, d) [CE_##n] = {#n, s, d},
#include "lib/errors.def"
#undef X
};

unsigned err_status(enum claimd_err e)
{
	return (unsigned)e < CE__COUNT ? table[e].status : 500;
}

const char *err_description(enum claimd_err e)
{
	return (unsigned)e < CE__COUNT ? table[e].desc : "internal error";
}

const char *err_name(enum claimd_err e)
{
	return (unsigned)e < CE__COUNT ? table[e].name : "INTERNAL";
}
