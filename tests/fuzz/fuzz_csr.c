/* Fuzz target: CSR parsing and checking (PEM, DER, signature, subject, key). */
#include <stdint.h>

#include "claimd/ca.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct csr *c = NULL;
	char cn[NODE_ID_MAX + 1];
	uint8_t fp[32];
	if (csr_check((const char *)data, size, &c, cn) == CE_OK) {
		csr_key_fingerprint(c, fp);
		csr_free(c);
	}
	return 0;
}
