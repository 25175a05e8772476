/*
 * Debian's nginx with the shipped site file (config/nginx/claimd.conf) in front of
 * claimd processes, run from a case's directory: the proxy and framing tests share it.
 */
#ifndef CLAIMD_TEST_NGINX_FIXTURE_H
#define CLAIMD_TEST_NGINX_FIXTURE_H

#include <stdbool.h>
#include <sys/types.h>

#include "api_support.h"
#include "harness.h"

/* The @TIMEOUT@ the tests fill in: short, so the slow-client case is quick. */
#define CLIENT_TIMEOUT_S 2

struct nginx {
	pid_t pid;
	unsigned port;
	char dir[1100];
	char tls_ca[1200];   /* the root the server certificate chains to */
	struct daemon front; /* https://localhost:port, for post()/raw() */
};

/**
 * Starts nginx with the shipped site file in front of the @p n claimd of @p up (TLS with
 * a server certificate for "localhost" made at test time, whose root is ng->tls_ca);
 * true once /healthz answers through it.
 */
bool nginx_start(struct tenv *t, struct nginx *ng, struct daemon *up, int n);
/** Stops nginx (expecting exit 0; its logs on stderr after a failure). */
void nginx_stop(struct nginx *ng);

#endif
