/*
 * Test harness: assertions that report and carry on, a case table runner, and real
 * fixtures: a fresh database per case in the fixture's PostgreSQL, a development CA
 * made at test time, a secrets key, registered devices and claimd as a subprocess.
 */
#ifndef CLAIMD_TEST_HARNESS_H
#define CLAIMD_TEST_HARNESS_H

#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "lib/secure.h"
#include "sim/httpc.h"

extern int t_failures;

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			t_failures++;                                                              \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);            \
		}                                                                                  \
	} while (0)
#define CHECKF(cond, ...)                                                                          \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			t_failures++;                                                              \
			fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond);            \
			fprintf(stderr, __VA_ARGS__);                                              \
			fputc('\n', stderr);                                                       \
		}                                                                                  \
	} while (0)
/* Stops the case when a precondition fails: later checks would only add noise. */
#define REQUIRE(cond)                                                                              \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			t_failures++;                                                              \
			fprintf(stderr, "FAIL %s:%d: required: %s\n", __FILE__, __LINE__, #cond);  \
			return;                                                                    \
		}                                                                                  \
	} while (0)

struct t_case {
	const char *name;
	void (*fn)(void);
};

/**
 * Runs the case named argv[1] (or every case) and returns the exit status; with
 * "--list", prints the case names, one a line.
 */
int t_main(int argc, char **argv, const struct t_case *cases);

struct topts {
	const char *ca_type; /* "ec" (default), "rsa2048", "rsa3072" */
	unsigned ttl;        /* claim.challenge_ttl_seconds, 0 = default */
	unsigned max_attempts;
	const char *mqtt_host, *mqtt_cred_host;
	const char *chain;  /* ca.chain path, or NULL */
	const char *extra;  /* extra top-level YAML appended verbatim, or NULL */
	const char *server; /* extra lines of the server: section ("  key: value\n"), or NULL */
	const char *ca_key; /* ca.key's value (a pkcs11: URI, say); NULL: the CA's key file */
};

struct tenv {
	char name[64];
	char dir[512];
	char conninfo[768];
	char config[1024];
	char root[1024];
	char ca_dir[800];
	struct topts o;
	struct secrets *secrets;
	PGconn *pg;
};

/** A fresh database, CA, secrets key and config for case @p name. */
bool tenv_setup(struct tenv *t, const char *name, const struct topts *o);
/** (Re)writes the config file from t->o. */
bool tenv_write_config(struct tenv *t);
void tenv_teardown(struct tenv *t);
/** Registers a device as claimctl would (sealed under the case's secrets key). */
bool tenv_add_device(struct tenv *t, const char *mac, const char *platform, const uint8_t key[16]);
/** First column of the first row as a malloc'd string, or NULL (no row or error). */
char *sql_value(struct tenv *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** The same as a number; -1 on no row or error. */
long sql_long(struct tenv *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

struct daemon {
	pid_t pid;
	unsigned port;
	unsigned admin_port; /* the management API's, 0 when admin.listen is unset */
	char log[1024];
	struct http_url url;
	struct http_url admin_url;
};

/** Starts build/claimd on the case's config and waits until it listens. */
bool daemon_start(struct tenv *t, struct daemon *d);
/** Sends SIGTERM and returns the exit status, 128 + the signal that ended it, or -1. */
int daemon_stop(struct daemon *d);
/** Prints the daemon's log to stderr (on failures). */
void daemon_dump_log(const struct daemon *d);

/** Registers a child process (nginx, say) to be stopped with SIGTERM if the case ends early. */
void t_adopt(pid_t pid);
/** Forgets a child registered by t_adopt() or daemon_start() once it has been reaped. */
void t_forget(pid_t pid);

/**
 * @p pem's first block with its base64 re-wrapped at @p width characters (0: one line)
 * and every line ended by @p eol; no line end after the END line. Caller frees.
 */
char *t_pem_rewrap(const char *pem, size_t width, const char *eol);

/** A loopback TCP port nothing listens on right now (the kernel's choice), or 0. */
unsigned t_free_port(void);
/** Path of a built program (build/claimd etc.). */
const char *t_bin(const char *name);
/** Runs a shell command; returns its exit status; output into @p out (malloc'd) if given. */
int t_run(char **out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
