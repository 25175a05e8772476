/* Fuzz target: the signer's request parser (signer_answer()), the one boundary a
 * compromised network-facing process can reach the keys through. An input is a 4-byte
 * big-endian operation number and its payload, as one frame of the signer protocol.
 * The keys are real: a development CA made once at start-up (removed from disk once
 * loaded) and a fixed secrets key. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "x509/ca.h"
#include "lib/secure.h"
#include "sim/devca.h"
#include "lib/log.h"
#include "signer/server.h"
#include "signer/wire.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "Now" is fixed at the seeds' time (2026-01-01 00:01 UTC) so that they stay valid. */
static struct signer_keys k = {.validity_days = 3650, .crl_hours = 24, .now = 1767225660};

/* The CA and secrets key, made on the first input; aborts if they cannot be. */
static void keys(void)
{
	static const char *const files[] = {"root.pem", "root.key", "intermediate.pem",
	                                    "intermediate.key"};
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char dir[256], cert[300], key[300], err[512];
	uint8_t sk[SECRETS_KEY_BYTES];

	if (k.ca)
		return;
	/* Refusals are the point: keep stderr quiet. */
	log_set_level((enum log_level)(LOG_ERROR + 1));
	snprintf(dir, sizeof(dir), "%s/claimd-fuzz-signer-XXXXXX", tmp);
	if (secure_init() < 0 || !mkdtemp(dir) || devca_create(dir, "ec", err, sizeof(err)) < 0)
		abort();
	snprintf(cert, sizeof(cert), "%s/intermediate.pem", dir);
	snprintf(key, sizeof(key), "%s/intermediate.key", dir);
	k.ca = ca_load(cert, key, "", err, sizeof(err));
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char path[300];
		snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
		unlink(path);
	}
	rmdir(dir);
	memset(sk, 0x5a, sizeof(sk));
	if (!k.ca || !(k.secrets = secrets_from_bytes(sk)))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t *out = NULL;
	size_t outn = 0;

	keys();
	if (size < 4)
		return 0;
	struct wire_in in = {data, size, false};
	uint32_t op = wire_get_u32(&in);
	int rc = signer_answer(&k, op, in.p, in.n, &out, &outn);
	/* A refusal carries nothing; an answer carries something. */
	if ((rc < 0 && out) || (rc == 0 && (!out || !outn)))
		abort();
	free(out);
	return 0;
}
