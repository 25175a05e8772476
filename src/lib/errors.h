/*
 * Error codes shared by every layer, generated from errors.def. A code carries its HTTP
 * status and client-facing description, so handlers never choose statuses by hand.
 */
#ifndef CLAIMD_ERRORS_H
#define CLAIMD_ERRORS_H

enum claimd_err {
	CE_OK = 0,
#define X(name, status, desc) CE_##name,
#include "lib/errors.def"
#undef X
	CE__COUNT
};

/** The HTTP status of @p e (200 for CE_OK). */
unsigned err_status(enum claimd_err e);
/** The fixed client-facing description of @p e ("" for CE_OK). */
const char *err_description(enum claimd_err e);
/** The code's symbolic name, for logs and the audit table ("OK" for CE_OK). */
const char *err_name(enum claimd_err e);

#endif
