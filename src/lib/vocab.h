/*
 * The words every layer shares: how long a MAC, a node_id and a certificate serial are
 * as text, and one entry of a certificate revocation list. Defined once here so the
 * database rows, the CA, the signer's wire format and the handlers agree on a size;
 * nothing in this header does anything.
 */
#ifndef CLAIMD_VOCAB_H
#define CLAIMD_VOCAB_H

#include <stdint.h>

#define MAC_LEN 12 /* upper-case hex digits of a canonical MAC */
#define NODE_ID_MAX                                                                                \
	64 /* longest node_id: a CSR's CN, the node_id column (sql/0004_domains.sql)               \
	    */
#define SERIAL_HEX_LEN 32 /* upper-case hex digits of a certificate serial (16 bytes) */

/* One revoked certificate, as a CRL lists it (RFC 5280 section 5.1.2.6). */
struct revoked_entry {
	char serial[SERIAL_HEX_LEN + 1];
	int64_t revoked_at; /* unix seconds */
	int64_t reason;     /* RFC 5280 code */
};

#endif
