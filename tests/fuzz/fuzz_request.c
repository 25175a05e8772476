/*
 * Fuzz target: a claim request body through everything the handlers do before the
 * database: JSON parsing, the field checks of both flows, auth_id checking, the
 * response's hex, and the CSR checks.
 */
#include <stdint.h>
#include <string.h>

#include "core/authid.h"
#include "x509/ca.h"
#include "lib/secure.h"
#include "daemon/request_fields.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct secrets *s;
	struct initiate_fields in;
	struct verify_fields vf;
	char mac[MAC_LEN + 1], ch[CHALLENGE_LEN + 1], cn[NODE_ID_MAX + 1];
	uint8_t resp[64];
	int64_t exp;

	if (!s) {
		uint8_t k[32] = {1};
		secure_init();
		s = secrets_from_bytes(k);
	}
	if (size > 16384)
		return 0; /* the daemon refuses larger bodies before parsing */
	json_t *j = fields_parse((const char *)data, size);
	if (!j)
		return 0;
	(void)fields_initiate(j, &in);
	if (fields_verify_self(j, &vf) == CE_OK) {
		(void)authid_check(s, vf.auth_id, vf.auth_id_len, 1900000000, mac, &exp, ch);
		(void)hex_decode(resp, sizeof(resp), vf.response, vf.response_len, false);
		struct csr *c = NULL;
		if (csr_check(vf.csr, vf.csr_len, &c, cn) == CE_OK)
			csr_free(c);
	}
	(void)fields_verify_user(j, &vf);
	json_decref(j);
	return 0;
}
