/*
 * claimd: the daemon. Loads the config and starts the signer (the process that holds
 * the keys, signer.h), starts the HTTP workers and then waits for signals on the main
 * thread: SIGHUP reloads (a bad new config is refused and the old one kept),
 * SIGTERM/SIGINT drain in-flight requests and exit 0, and the signer's end (SIGCHLD)
 * drains and exits 1 for the supervisor to restart everything. Started as root, it
 * runs its signer as signer.user and becomes server.user itself before it listens.
 * "claimd --signer-child CONFIG" is the signer itself (signer_main(),
 * src/signer/signer_main.c), started by claimd, never by hand; "claimd --signer -c
 * CONFIG" is an external signer, its own service, that claimd reaches on
 * signer.socket.
 */
#include <getopt.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/cert_reply.h"
#include "db/db_claims.h"
#include "daemon/http.h"
#include "lib/log.h"
#include "core/runtime.h"
#include "lib/sandbox.h"
#include "signer/server.h"
#include "signer/signer.h"
#include "core/startup.h"

/* The signer is this same program, run again: a fresh address space, not a fork of a
 * process that already has threads and sockets. */
#define SELF_EXE "/proc/self/exe"

static void usage(FILE *f)
{
	fputs("usage: claimd -c FILE [-t [--no-database]] [--ready-file FILE]\n"
	      "       claimd --signer -c FILE\n"
	      "  -c, --config FILE   configuration (YAML)\n"
	      "      --signer        be the external signer: hold the keys and answer claimd\n"
	      "                      on signer.socket (peers of server.user's uid only)\n"
	      "  -t, --test          check the config, CA, key and secrets key, and that the\n"
	      "                      database answers with a current schema, then exit\n"
	      "      --no-database   with -t: leave the database out (where it cannot be reached)\n"
	      "      --ready-file F  once listening, write the bound port to F\n"
	      "  -h, --help          this text\n"
	      "  -V, --version       print the version\n"
	      "Signals: SIGHUP reloads the config and CA; SIGTERM/SIGINT drain and exit.\n",
	      f);
}

/* Deletes claim sessions long expired, so the table holds only recent ones. */
static void housekeeping(struct app *app)
{
	struct db *db = app_db(app);
	long n = 0;
	if (db && db_sessions_gc(db, &n) >= DB_NO_ROWS && n > 0)
		log_info("housekeeping: deleted %ld expired claim sessions", n);
}

/*
 * Whether the current generation's signer has ended. It is not restarted here: the
 * only process that talks to it is this one, so a signer that crashed may have been
 * attacked by it, and a fresh start of both (by systemd, Docker) is the answer that
 * trusts nothing that ran before. In-flight requests get 503 meanwhile (signer.h).
 */
static bool signer_ended(struct app *app)
{
	struct runtime *rt = app_acquire(app);
	int st = 0;
	bool ended = signer_reap(rt->signer, &st);

	if (ended) {
		if (WIFSIGNALED(st))
			log_error(
			    "the signer process (pid %d) was ended by signal %d: exiting for the "
			    "supervisor to restart claimd",
			    (int)signer_pid(rt->signer), WTERMSIG(st));
		else
			log_error(
			    "the signer process (pid %d) exited with status %d: exiting for the "
			    "supervisor to restart claimd",
			    (int)signer_pid(rt->signer), WEXITSTATUS(st));
	}
	runtime_release(rt);
	return ended;
}

/*
 * Becomes server.user for good (sandbox_become()). The change of uid leaves the process
 * not dumpable; it is made dumpable again, as a process that user started would be: it
 * holds no key, and the sanitizers' leak check needs to trace it at exit.
 */
static int become_server_user(const struct claimd_config *cfg, char *err, size_t errsz)
{
	if (sandbox_become("server.user", cfg->server_user, err, errsz) < 0)
		return -1;
	prctl(PR_SET_DUMPABLE, 1, 0, 0, 0);
	return 0;
}

/*
 * Two users, always: started as root, this process becomes server.user for good once
 * its signer runs (as signer.user), before it listens, and then checks that it cannot
 * open a key file; it stays root only when server.run_as_root says so. 0, or -1 after
 * saying why on stderr.
 */
static int drop_privileges(const struct runtime *rt, const char *config)
{
	char err[1024];

	if (geteuid() != 0)
		return 0; /* runtime_load() checked the keys are out of reach */
	if (rt->cfg->run_as_root) {
		log_warn(
		    "claimd runs as root (server.run_as_root: yes): code execution in it could "
		    "read the key files and trace the signer; README, \"Security\"");
		return 0;
	}
	if (become_server_user(rt->cfg, err, sizeof(err)) < 0 ||
	    runtime_keys_out_of_reach(rt->cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", config, err);
		return -1;
	}
	log_info("running as %s (uid %ld); the signer holds the keys", rt->cfg->server_user,
	         (long)getuid());
	return 0;
}

/*
 * With an external signer there is no child to start as root: this process becomes
 * server.user first, so that it reaches the signer as the uid the signer answers. 0,
 * or -1 after saying why on stderr.
 */
static int early_drop(const char *config)
{
	char err[1024];
	struct claimd_config *cfg;

	if (geteuid() != 0)
		return 0;
	if (!(cfg = config_load(config, err, sizeof(err)))) {
		fprintf(stderr, "%s\n", err);
		return -1;
	}
	int rc = 0;
	if (cfg->signer_socket[0] && !cfg->run_as_root &&
	    become_server_user(cfg, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s: %s\n", config, err);
		rc = -1;
	}
	config_free(cfg);
	return rc;
}

/* The public port, then the management API's when it listens (tests read both). */
static int write_ready(const char *path, unsigned port, unsigned admin_port)
{
	char tmp[4096];
	FILE *f;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	if (!(f = fopen(tmp, "w")))
		return -1;
	fprintf(f, "%u\n", port);
	if (admin_port)
		fprintf(f, "%u\n", admin_port);
	if (fclose(f) != 0)
		return -1;
	return rename(tmp, path);
}

enum { STARTUP_RETRY_SECONDS = 2 };

/* The start-up check again, while the database was not up: says when it is ready, or
 * why it now refuses (the caller exits). */
static enum startup_verdict startup_again(struct app *app)
{
	struct runtime *rt = app_acquire(app);
	char why[512];
	enum startup_verdict v = startup_check(rt, NULL, why, sizeof(why));

	runtime_release(rt);
	if (v == STARTUP_READY) {
		atomic_store(&app->startup_waiting, false);
		log_info("the database answers: ready");
	} else if (v == STARTUP_REFUSE) {
		log_error("exiting: %s", why);
	}
	return v;
}

/*
 * A valid config that still stops one of the real clients, said at start-up and by -t:
 * the RainMaker CLI's first request is GET /mqtt_host, which is 404 without
 * claim.mqtt_host (handler_claim.c says why). NULL when there is nothing to say.
 */
static const char *cli_note(const struct claimd_config *cfg)
{
	if (cfg->jwt_jwks_file && cfg->jwt_jwks_file[0] && !cfg->mqtt_host[0])
		return "users.jwt is set but claim.mqtt_host is not: the RainMaker CLI's "
		       "host-driven claim stops at its first request (GET /mqtt_host answers 404)";
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
	    {"config", required_argument, NULL, 'c'},     {"test", no_argument, NULL, 't'},
	    {"ready-file", required_argument, NULL, 'r'}, {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},          {"no-database", no_argument, NULL, 'n'},
	    {"signer", no_argument, NULL, 's'},           {NULL, 0, NULL, 0}};
	const char *config = NULL, *ready = NULL;
	bool test_only = false, test_db = true, external_signer = false;
	char err[1024];
	struct runtime *rt;
	struct app app;
	struct http_server *srv, *admin = NULL;
	sigset_t set;
	int c, sig, status = 0;

	/* _exit: no atexit work outside the allow-list. */
	if (argc == 3 && strcmp(argv[1], "--signer-child") == 0)
		_exit(signer_main(argv[2], SIGNER_CHILD));

	while ((c = getopt_long(argc, argv, "c:thV", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config = optarg;
			break;
		case 't':
			test_only = true;
			break;
		case 'r':
			ready = optarg;
			break;
		case 'n':
			test_db = false;
			break;
		case 's':
			external_signer = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("claimd %s\n", CLAIMD_VERSION);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!config || optind != argc || (external_signer && (test_only || ready))) {
		usage(stderr);
		return 2;
	}
	if (external_signer)
		_exit(signer_main(config, SIGNER_EXTERNAL));
	if (secure_init() < 0) {
		fprintf(stderr, "claimd: cannot initialise libsodium\n");
		return 1;
	}
	if (early_drop(config) < 0)
		return 1;
	if (!(rt = runtime_load(config, SELF_EXE, NULL, err, sizeof(err)))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	size_t sampled = 0;
	if (test_only && test_db &&
	    startup_check(rt, &sampled, err, sizeof(err)) != STARTUP_READY) {
		/* What start-up checks: the server answers, the schema is current (every
		 * statement prepares), the secrets key opens the devices' sealed keys. */
		fprintf(stderr, "%s: %s\n", config, err);
		runtime_release(rt);
		return 1;
	}
	if (test_only) {
		if (cli_note(rt->cfg))
			fprintf(stderr, "%s: warning: %s\n", config, cli_note(rt->cfg));
		char dbnote[96];
		snprintf(
		    dbnote, sizeof(dbnote),
		    "answers, schema current, takes writes, secrets key opens the %zu device keys "
		    "tried",
		    sampled);
		/* With matter: configured, the DAC+PAI reply has the same limit and is printed
		 * beside the CA's, so an operator sees how close each is. */
		char matter[64] = "";
		if (rt->pai)
			snprintf(matter, sizeof(matter),
			         "; largest Matter DAC+PAI response %zu of %d bytes",
			         runtime_reply_max(rt, true), RESPONSE_MAX);
		printf("%s: OK (CA key %s; largest certificate response %zu of %d bytes%s; "
		       "database %s)\n",
		       config, ca_key_type(rt->ca), runtime_reply_max(rt, false), RESPONSE_MAX,
		       matter, test_db ? dbnote : "not checked");
		runtime_release(rt);
		return 0;
	}
	log_set_level(rt->cfg->log_level_value);
	log_set_format(rt->cfg->log_format_value);
	/* A child signer started by root could not be started again by server.user: a
	 * reload keeps it (its keys change at the next restart). */
	bool keep_signer = geteuid() == 0 && !rt->cfg->run_as_root && !rt->cfg->signer_socket[0];
	if (drop_privileges(rt, config) < 0) {
		runtime_release(rt);
		return 1;
	}
	/* Workers inherit this mask, so only the main thread's sigwait sees these. */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGCHLD);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	/* Before "listening": a fault an operator must fix stops start-up here, in
	 * seconds; a database that is merely not up yet does not (see startup.h). */
	enum startup_verdict sv = startup_check(rt, NULL, err, sizeof(err));
	if (sv == STARTUP_REFUSE) {
		log_error("refusing to start: %s", err);
		runtime_release(rt);
		return STARTUP_EXIT_CONFIG;
	}
	if (app_init(&app, rt) < 0) {
		fprintf(stderr, "claimd: out of memory\n");
		return 1;
	}
	if (sv == STARTUP_WAIT) {
		log_warn("not ready: %s; /readyz answers 503 and the check runs again every %d s",
		         err, STARTUP_RETRY_SECONDS);
		atomic_store(&app.startup_waiting, true);
	}
	/* A taken address is the operator's to fix (server.listen_sharing): status 78. */
	if (!(srv = http_start(&app, HTTP_PUBLIC, err, sizeof(err)))) {
		log_error("refusing to start: %s", err);
		app_destroy(&app);
		return STARTUP_EXIT_CONFIG;
	}
	if (rt->cfg->admin_listen[0] && !(admin = http_start(&app, HTTP_ADMIN, err, sizeof(err)))) {
		log_error("refusing to start: %s", err);
		http_stop(srv, 0);
		app_destroy(&app);
		return STARTUP_EXIT_CONFIG;
	}
	log_info("claimd %s listening on %s port %u (CA key %s, %u workers)", CLAIMD_VERSION,
	         rt->cfg->listen_host, http_port(srv), ca_key_type(rt->ca), rt->cfg->threads);
	if (admin)
		log_info("management API listening on %s port %u", rt->cfg->admin_listen_host,
		         http_port(admin));
	if (cli_note(rt->cfg))
		log_warn("%s", cli_note(rt->cfg));
	if (ready && write_ready(ready, http_port(srv), admin ? http_port(admin) : 0) < 0)
		log_warn("cannot write %s", ready);
	for (;;) {
		/* Between signals, every five minutes, housekeeping on this thread; until
		 * the start-up check has passed, that check every few seconds instead. */
		bool waiting = atomic_load(&app.startup_waiting);
		struct timespec every = {waiting ? STARTUP_RETRY_SECONDS : 300, 0};
		sig = sigtimedwait(&set, NULL, &every);
		if (sig < 0 && waiting) {
			if (startup_again(&app) == STARTUP_REFUSE) {
				status = STARTUP_EXIT_CONFIG;
				break;
			}
			continue;
		}
		if (sig < 0) {
			housekeeping(&app);
			continue;
		}
		if (sig == SIGCHLD) {
			if (!signer_ended(&app))
				continue; /* a replaced generation's signer, reaped by signer_free()
				           */
			status = 1;
			break;
		}
		if (sig == SIGHUP) {
			struct runtime *cur = keep_signer ? app_acquire(&app) : NULL;
			struct runtime *next = runtime_load(
			    config, SELF_EXE, cur ? cur->signer : NULL, err, sizeof(err));
			runtime_release(cur);
			if (!next) {
				log_error("reload refused, keeping the running config: %s", err);
				continue;
			}
			log_set_level(next->cfg->log_level_value);
			log_set_format(next->cfg->log_format_value);
			app_swap(&app, next);
			log_info("reloaded %s (CA key %s)", config, ca_key_type(next->ca));
			continue;
		}
		log_info("signal %d: draining in-flight requests", sig);
		break;
	}
	if (admin)
		http_stop(admin, 0);
	http_stop(srv, 10000);
	app_destroy(&app);
	log_info("stopped");
	return status;
}
