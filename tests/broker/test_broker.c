/*
 * The broker end to end: Debian's mosquitto, configured from config/mosquitto/ (the
 * shipped listener fragment and ACL, their paths moved into the case's directory, on a
 * free loopback port), with a server certificate made here; devices connect with the
 * files claimsim writes, through mosquitto_pub/mosquitto_sub and openssl s_client; the
 * CRL reaches the broker only through config/mosquitto/claimd-crl-refresh. Every broker
 * started is killed when its case ends, also when the case stops early.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api_support.h"
#include "sim/devidp.h"
#include "harness.h"

#define ISSUER   "https://idp.test.invalid/"
#define AUDIENCE "claimd"
#define PATHSZ   1400 /* files */
#define DIRSZ    700  /* directories: the case directory and a little more */

struct broker {
	char dir[DIRSZ];     /* <case>/broker: everything the broker reads and writes */
	char tls_ca[PATHSZ]; /* the CA that clients trust for the broker's certificate */
	char conf[PATHSZ], log[PATHSZ], pid_file[PATHSZ], out[PATHSZ];
	unsigned port;
	pid_t pid;
};

/* A device's identity as claimsim stored it. */
struct dev {
	char id[65]; /* node_id: the MAC for a self claim */
	char crt[PATHSZ], key[PATHSZ];
};

/* Processes this case started (broker, subscribers): killed at exit, so a case that
 * stops early (REQUIRE) leaves nothing listening. */
static pid_t children[16];

static void track(pid_t pid)
{
	for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++)
		if (children[i] <= 0) {
			children[i] = pid;
			return;
		}
}

static void untrack(pid_t pid)
{
	for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++)
		if (children[i] == pid)
			children[i] = 0;
}

static void kill_children(void)
{
	for (size_t i = 0; i < sizeof(children) / sizeof(children[0]); i++) {
		if (children[i] > 0 && kill(children[i], SIGKILL) == 0)
			waitpid(children[i], NULL, 0);
		children[i] = 0;
	}
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Waits up to @p ms for @p pid to exit; its status, or -1 if it is still running. */
static int wait_exit(pid_t pid, long ms)
{
	int st;
	for (long waited = 0; waited <= ms; waited += 20) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			untrack(pid);
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		sleep_ms(20);
	}
	return -1;
}

static char *slurp(const char *path)
{
	char *out = NULL;
	t_run(&out, "cat '%s'", path);
	return out;
}

/* How many times @p needle occurs in the file @p path. */
static int count_in_file(const char *path, const char *needle)
{
	char *text = slurp(path);
	int n = 0;
	for (const char *p = text; p && (p = strstr(p, needle)) != NULL; p += strlen(needle))
		n++;
	free(text);
	return n;
}

/* Waits up to @p ms until @p needle occurs at least @p n times in @p path. */
static bool wait_for_count(const char *path, const char *needle, int n, long ms)
{
	for (long waited = 0; waited <= ms; waited += 20) {
		if (count_in_file(path, needle) >= n)
			return true;
		sleep_ms(20);
	}
	return false;
}

static bool port_open(unsigned port)
{
	struct sockaddr_in a = {.sin_family = AF_INET,
	                        .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	                        .sin_port = htons((uint16_t)port)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
	if (fd >= 0)
		close(fd);
	return ok;
}

/* claimd-crl-refresh as the timer runs it, signalling the broker whose pid is in
 * @p pid_file (the case's broker unless told otherwise). */
static int refresh_by(struct fx *f, struct broker *b, const char *pid_file, char **out)
{
	return t_run(out,
	             "sh '%s/config/mosquitto/claimd-crl-refresh' --url 'http://127.0.0.1:%u/crl' "
	             "--crl-file '%s/crl.pem' --ca-file '%s/ca-chain.pem' --pid-file '%s'",
	             CLAIMD_SOURCE_DIR, f->d.port, b->dir, b->dir, pid_file);
}

static int refresh(struct fx *f, struct broker *b, char **out)
{
	return refresh_by(f, b, b->pid_file, out);
}

/*
 * The broker's files: a TLS CA and server certificate for 127.0.0.1, the chain that
 * issued device certificates, the shipped ACL, and a first CRL from the refresh script.
 */
static bool broker_files(struct fx *f, struct broker *b)
{
	char *out = NULL;
	memset(b, 0, sizeof(*b));
	snprintf(b->dir, sizeof(b->dir), "%s/broker", f->t.dir);
	snprintf(b->tls_ca, sizeof(b->tls_ca), "%s/tls-ca.pem", b->dir);
	snprintf(b->conf, sizeof(b->conf), "%s/mosquitto.conf", b->dir);
	snprintf(b->log, sizeof(b->log), "%s/mosquitto.log", b->dir);
	snprintf(b->pid_file, sizeof(b->pid_file), "%s/mosquitto.pid", b->dir);
	snprintf(b->out, sizeof(b->out), "%s/mosquitto.out", b->dir);
	int rc =
	    t_run(&out,
	          "(set -e; mkdir -p '%s'; cd '%s'; "
	          "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	          "-keyout tls-ca.key -out tls-ca.pem -days 1 -subj '/CN=claimd test broker CA' "
	          "-addext basicConstraints=critical,CA:TRUE "
	          "-addext keyUsage=critical,keyCertSign,cRLSign; "
	          "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
	          "-keyout broker.key -out broker.csr -subj /CN=127.0.0.1; "
	          "printf 'subjectAltName=IP:127.0.0.1\\nextendedKeyUsage=serverAuth\\n' > "
	          "broker.ext; "
	          "openssl x509 -req -in broker.csr -CA tls-ca.pem -CAkey tls-ca.key "
	          "-CAcreateserial -days 1 -extfile broker.ext -out broker.pem; "
	          "cat '%s/intermediate.pem' '%s/root.pem' > ca-chain.pem; "
	          "cp '%s/config/mosquitto/claimd.acl' claimd.acl)",
	          b->dir, b->dir, f->t.ca_dir, f->t.ca_dir, CLAIMD_SOURCE_DIR);
	if (rc != 0) {
		fprintf(stderr, "broker files: %s\n", out);
		free(out);
		return false;
	}
	free(out);
	/* The first CRL, installed before the broker starts (it needs one to start). */
	rc = refresh(f, b, &out);
	CHECKF(rc == 0 && strstr(out, "installed CRL number") && strstr(out, "not running"), "%s",
	       out);
	free(out);
	return rc == 0;
}

/* mosquitto.conf: a few test-only lines, then the shipped fragment with its paths in
 * the case's directory and its listener on @p port of loopback. */
static bool broker_conf(struct broker *b, unsigned port)
{
	char path[PATHSZ], line[1024];
	const char *prefix = "/etc/mosquitto/claimd";
	struct passwd *pw = getpwuid(geteuid());
	int listeners = 0, paths = 0;

	snprintf(path, sizeof(path), "%s/config/mosquitto/claimd.conf", CLAIMD_SOURCE_DIR);
	FILE *in = fopen(path, "r"), *out = fopen(b->conf, "w");
	if (!in || !out || !pw) {
		if (in)
			fclose(in);
		if (out)
			fclose(out);
		return false;
	}
	/* As root, mosquitto would switch to the mosquitto user; stay who we are instead. */
	fprintf(out, "pid_file %s\nuser %s\npersistence false\nlog_dest file %s\n", b->pid_file,
	        pw->pw_name, b->log);
	while (fgets(line, sizeof(line), in)) {
		char *p = strstr(line, prefix);
		if (strcmp(line, "listener 8883\n") == 0) {
			fprintf(out, "listener %u 127.0.0.1\n", port);
			listeners++;
		} else if (p && line[0] != '#') {
			fprintf(out, "%.*s%s%s", (int)(p - line), line, b->dir, p + strlen(prefix));
			paths++;
		} else {
			fputs(line, out);
		}
	}
	fclose(in);
	/* The fragment as shipped: one listener and the five files, all moved. */
	CHECKF(listeners == 1 && paths == 5, "claimd.conf: %d listener lines, %d paths", listeners,
	       paths);
	return fclose(out) == 0 && listeners == 1 && paths == 5;
}

static bool broker_start(struct broker *b)
{
	for (int attempt = 0; attempt < 5; attempt++) {
		unsigned port = t_free_port();
		if (!port || !broker_conf(b, port))
			return false;
		unlink(b->log);
		pid_t pid = fork();
		if (pid < 0)
			return false;
		if (pid == 0) {
			int fd = open(b->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
			if (fd >= 0) {
				dup2(fd, 1);
				dup2(fd, 2);
			}
			execlp("mosquitto", "mosquitto", "-c", b->conf, "-v", (char *)NULL);
			fprintf(stderr, "cannot run mosquitto: %s (install it: .ci/deps.sh)\n",
			        strerror(errno));
			_exit(127);
		}
		track(pid);
		b->pid = pid;
		b->port = port;
		for (int i = 0; i < 250; i++) {
			if (wait_exit(pid, 0) >= 0) {
				b->pid = 0;
				break;
			}
			if (count_in_file(b->log, "mosquitto version") >= 1 &&
			    count_in_file(b->log, " running") >= 1 && port_open(port))
				return true;
			sleep_ms(20);
		}
		char *out = slurp(b->out), *log = slurp(b->log);
		bool taken = (out && strstr(out, "Address already in use")) ||
		             (log && strstr(log, "Address already in use"));
		if (!taken)
			fprintf(stderr, "mosquitto did not start:\n%s\n%s\n", out, log);
		free(out);
		free(log);
		if (b->pid) {
			kill(b->pid, SIGKILL);
			wait_exit(b->pid, 2000);
			b->pid = 0;
		}
		if (!taken)
			return false;
	}
	return false;
}

static void broker_stop(struct broker *b)
{
	if (b->pid <= 0)
		return;
	kill(b->pid, SIGTERM);
	if (wait_exit(b->pid, 3000) < 0) {
		kill(b->pid, SIGKILL);
		wait_exit(b->pid, 3000);
	}
	b->pid = 0;
}

static void broker_dump_log(const struct broker *b)
{
	char *out = NULL;
	t_run(&out, "tail -n 30 '%s'", b->log);
	fprintf(stderr, "--- %s ---\n%s---\n", b->log, out ? out : "");
	free(out);
}

/* claimsim self, as a device does it (MAC1 is an esp32s3, MAC2 an esp32c3); its key
 * and certificate chain in @p dv. */
static bool claim_self(struct fx *f, const char *mac, const char *dir, const char *keyfile,
                       struct dev *dv)
{
	char *out = NULL, keyopt[PATHSZ + 32] = "";
	if (keyfile)
		snprintf(keyopt, sizeof(keyopt), "--key-file '%s'", keyfile);
	int rc = t_run(&out,
	               "mkdir -p '%s' && '%s' self --url http://127.0.0.1:%u --mac %s "
	               "--platform %s --efuse-key " K1HEX " --out '%s' --root '%s' %s",
	               dir, t_bin("claimsim"), f->d.port, mac,
	               strcmp(mac, MAC2) == 0 ? "esp32c3" : "esp32s3", dir, f->t.root, keyopt);
	if (rc != 0)
		fprintf(stderr, "claimsim self: %s\n", out);
	free(out);
	snprintf(dv->id, sizeof(dv->id), "%s", mac);
	snprintf(dv->crt, sizeof(dv->crt), "%s/%s.crt", dir, mac);
	if (keyfile)
		snprintf(dv->key, sizeof(dv->key), "%s", keyfile);
	else
		snprintf(dv->key, sizeof(dv->key), "%s/%s.key", dir, mac);
	return rc == 0;
}

/* mosquitto_pub as @p dv, QoS 1, MQTT 5 (so a refused publish is reported); exit status. */
static int publish(struct broker *b, const struct dev *dv, const char *topic, const char *msg,
                   char **out)
{
	return t_run(out,
	             "timeout 10 mosquitto_pub --cafile '%s' --cert '%s' --key '%s' -h 127.0.0.1 "
	             "-p %u -V mqttv5 -q 1 -t '%s' -m '%s'",
	             b->tls_ca, dv->crt, dv->key, b->port, topic, msg);
}

struct sub {
	pid_t pid;
	char out[PATHSZ];
};

/*
 * mosquitto_sub as @p dv on @p topic, for one message or @p wait_s seconds, running
 * until sub_finish(); returns once the broker has acknowledged the subscription.
 */
static bool sub_start(struct broker *b, const struct dev *dv, const char *topic, int wait_s,
                      const char *client_id, struct sub *s)
{
	char cmd[4 * PATHSZ], ack[128];
	snprintf(s->out, sizeof(s->out), "%s/sub-%s.out", b->dir, client_id);
	snprintf(cmd, sizeof(cmd),
	         "exec mosquitto_sub --cafile '%s' --cert '%s' --key '%s' -h 127.0.0.1 -p %u "
	         "-V mqttv5 -q 1 -i '%s' -t '%s' -C 1 -W %d -v",
	         b->tls_ca, dv->crt, dv->key, b->port, client_id, topic, wait_s);
	snprintf(ack, sizeof(ack), "Sending SUBACK to %s\n", client_id);
	int before = count_in_file(b->log, ack);
	pid_t pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		int fd = open(s->out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	track(pid);
	s->pid = pid;
	if (!wait_for_count(b->log, ack, before + 1, 5000)) {
		char *out = slurp(s->out);
		fprintf(stderr, "subscription of %s was not acknowledged: %s\n", client_id, out);
		free(out);
		return false;
	}
	return true;
}

/* Waits for the subscriber to exit; what it printed (caller frees). */
static char *sub_finish(struct sub *s)
{
	if (s->pid > 0 && wait_exit(s->pid, 15000) < 0) {
		kill(s->pid, SIGKILL);
		wait_exit(s->pid, 2000);
	}
	s->pid = 0;
	return slurp(s->out);
}

/* Stops a subscriber that is still running; what it printed (caller frees). */
static char *sub_stop(struct sub *s)
{
	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		if (wait_exit(s->pid, 3000) < 0) {
			kill(s->pid, SIGKILL);
			wait_exit(s->pid, 2000);
		}
	}
	s->pid = 0;
	return slurp(s->out);
}

/*
 * A TLS 1.2 handshake as @p dv with openssl s_client: in 1.2 the server's verdict on the
 * client certificate arrives within the handshake, so the alert it sends is seen. True
 * if accepted; otherwise the alert text (or whatever went wrong) in @p why.
 */
static bool tls_accepted(struct broker *b, const struct dev *dv, char *why, size_t whysz)
{
	char *out = NULL;
	int rc = t_run(&out,
	               "timeout 10 openssl s_client -tls1_2 -connect 127.0.0.1:%u -cert '%s' "
	               "-key '%s' -CAfile '%s' -verify_return_error < /dev/null",
	               b->port, dv->crt, dv->key, b->tls_ca);
	const char *alert = out ? strstr(out, "alert ") : NULL;
	bool ok = rc == 0 && !alert && out && strstr(out, "Verify return code: 0 (ok)");
	/* Why, in one line: the alert, else the verdict on the broker's certificate. */
	const char *line = alert ? alert : (out ? strstr(out, "Verify return code") : NULL);
	if (!line)
		line = out && rc != 124 ? out : "s_client timed out or printed nothing";
	snprintf(why, whysz, "%.*s", (int)strcspn(line, ":\n"), line);
	free(out);
	return ok;
}

/* The certificate's serial as openssl prints it (hex), or "" */
static void serial_of(const char *crt, char serial[80])
{
	char *out = NULL;
	serial[0] = '\0';
	if (t_run(&out, "openssl x509 -in '%s' -noout -serial", crt) == 0 && out &&
	    strncmp(out, "serial=", 7) == 0)
		snprintf(serial, 80, "%.*s", (int)strcspn(out + 7, "\n"), out + 7);
	free(out);
}

/*
 * Runs the refresh script until the broker's crlfile lists @p crt's serial (claimd's
 * CRL follows a revocation within 2 s). With @p signal, the run that installed it must
 * have reloaded the broker, and the broker must have reloaded before this returns;
 * without, the script is given a pid file of no process and the broker is left alone.
 */
static bool refresh_until_listed(struct fx *f, struct broker *b, const char *crt, bool signal)
{
	char serial[80], want[100], path[PATHSZ], nobody[PATHSZ];
	char *out = NULL, *text = NULL;
	bool listed = false;

	serial_of(crt, serial);
	if (!serial[0])
		return false;
	snprintf(want, sizeof(want), "Serial Number: %s\n", serial);
	snprintf(path, sizeof(path), "%s/crl.pem", b->dir);
	snprintf(nobody, sizeof(nobody), "%s/no-broker.pid", b->dir);
	int reloads = count_in_file(b->log, "Reloading config.");
	for (int i = 0; i < 40 && !listed; i++) {
		if (i)
			sleep_ms(200);
		free(out);
		out = NULL;
		if (refresh_by(f, b, signal ? b->pid_file : nobody, &out) != 0)
			break;
		free(text);
		text = NULL;
		t_run(&text, "openssl crl -in '%s' -noout -text", path);
		listed = text && strstr(text, want);
	}
	CHECKF(listed, "serial %s never reached the broker's CRL: %s", serial, out);
	CHECKF(out && strstr(out, "installed CRL number") &&
	           strstr(out, signal ? "sent SIGHUP" : "nothing to reload"),
	       "%s", out);
	free(out);
	free(text);
	if (signal)
		CHECKF(wait_for_count(b->log, "Reloading config.", reloads + 1, 5000),
		       "mosquitto did not reload");
	else
		CHECK(count_in_file(b->log, "Reloading config.") == reloads);
	return listed;
}

/* The device is refused by the broker: by mosquitto_pub, and with the revoked alert. */
static void check_refused_revoked(struct broker *b, const struct dev *dv)
{
	char topic[128], why[128], *out = NULL;
	snprintf(topic, sizeof(topic), "node/%s/status", dv->id);
	CHECKF(publish(b, dv, topic, "after", &out) != 0, "publish succeeded: %s", out);
	free(out);
	CHECKF(!tls_accepted(b, dv, why, sizeof(why)) && strstr(why, "alert certificate revoked"),
	       "%s", why);
}

/* @p dv publishes to its own topic and a subscription of its own receives it. */
static void check_publishes(struct broker *b, const struct dev *dv, const char *client_id)
{
	char topic[128], filter[128], want[160], why[128], *out = NULL;
	struct sub s;
	snprintf(topic, sizeof(topic), "node/%s/status", dv->id);
	snprintf(filter, sizeof(filter), "node/%s/#", dv->id);
	snprintf(want, sizeof(want), "%s hi\n", topic);
	CHECKF(tls_accepted(b, dv, why, sizeof(why)), "%s", why);
	if (!sub_start(b, dv, filter, 8, client_id, &s)) {
		t_failures++;
		return;
	}
	CHECKF(publish(b, dv, topic, "hi", &out) == 0 && out && !strstr(out, "Not authorized"),
	       "%s", out);
	free(out);
	out = sub_finish(&s);
	CHECKF(out && strcmp(out, want) == 0, "the subscriber got: %s", out);
	free(out);
}

/* The case's claimd (with MAC1 and MAC2 registered, or with the development identity
 * provider in <case>/idp when @p users is set) and the broker's files. */
static bool up(struct fx *f, struct broker *b, const char *name, bool users)
{
	static char yaml[256];
	char dir[DIRSZ], err[256];
	static bool registered;
	if (!registered)
		atexit(kill_children);
	registered = true;
	if (!users)
		return fx_up(f, name, NULL) && broker_files(f, b);
	snprintf(yaml, sizeof(yaml),
	         "users:\n  jwt:\n    jwks_file: idp/jwks.json\n    issuer: \"" ISSUER "\"\n"
	         "    audience: \"" AUDIENCE "\"\n");
	struct topts o = {.extra = yaml};
	if (!tenv_setup(&f->t, name, &o))
		return false;
	snprintf(dir, sizeof(dir), "%s/idp", f->t.dir);
	if (devidp_create(dir, "ec", "k1", err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return false;
	}
	return daemon_start(&f->t, &f->d) && broker_files(f, b);
}

static void down(struct fx *f, struct broker *b)
{
	if (t_failures) {
		broker_dump_log(b);
		char *out = slurp(b->out);
		fprintf(stderr, "--- %s ---\n%s---\n", b->out, out ? out : "");
		free(out);
	}
	broker_stop(b);
	fx_down(f);
}

/* A self-claimed device, with the files claimsim wrote, connects and publishes to its
 * own topic; the message reaches a subscriber. */
static void self_claimed_publishes(void)
{
	struct fx f;
	struct broker b;
	struct dev d1;
	char dir[DIRSZ];
	REQUIRE(up(&f, &b, "broker_self_claimed_publishes", false));
	snprintf(dir, sizeof(dir), "%s/dev1", f.t.dir);
	REQUIRE(claim_self(&f, MAC1, dir, NULL, &d1));
	REQUIRE(broker_start(&b));
	check_publishes(&b, &d1, "own");
	CHECK(count_in_file(b.log, "Received PUBLISH from") >= 1);
	CHECK(count_in_file(b.log, "Denied") == 0);
	down(&f, &b);
}

/* A node can neither publish to nor read another node's topic (the shipped ACL). */
static void other_node_topic_denied(void)
{
	struct fx f;
	struct broker b;
	struct dev d1, d2;
	struct sub owner, spy;
	char dir[DIRSZ], *out = NULL;
	REQUIRE(up(&f, &b, "broker_other_node_topic_denied", false));
	snprintf(dir, sizeof(dir), "%s/devices", f.t.dir);
	REQUIRE(claim_self(&f, MAC1, dir, NULL, &d1));
	REQUIRE(claim_self(&f, MAC2, dir, NULL, &d2));
	REQUIRE(broker_start(&b));
	/* MAC2 listens on its own topic; MAC1 listens there too (mosquitto accepts the
	 * subscription and checks every message it would deliver). */
	REQUIRE(sub_start(&b, &d2, "node/" MAC2 "/#", 8, "owner", &owner));
	REQUIRE(sub_start(&b, &d1, "node/" MAC2 "/#", 10, "spy", &spy));
	/* MAC1 writes into MAC2's topic: refused (PUBACK "not authorized" in MQTT 5). */
	CHECK(publish(&b, &d1, "node/" MAC2 "/status", "intruder", &out) == 0);
	CHECKF(out && strstr(out, "Not authorized"), "%s", out);
	free(out);
	CHECK(count_in_file(b.log, "Denied PUBLISH from") == 1);
	CHECK(count_in_file(b.log, "'node/" MAC2 "/status'") >= 1);
	/* Then MAC2 itself writes there: the first message its subscriber sees is its own. */
	CHECK(publish(&b, &d2, "node/" MAC2 "/status", "control", &out) == 0);
	free(out);
	out = sub_finish(&owner);
	CHECKF(out && strcmp(out, "node/" MAC2 "/status control\n") == 0, "owner got: %s", out);
	free(out);
	/* MAC1's subscription, still open after the owner got the message, got nothing. */
	sleep_ms(300);
	CHECK(wait_exit(spy.pid, 0) < 0);
	out = sub_stop(&spy);
	CHECKF(out && !strstr(out, "control") && !strstr(out, "intruder"), "spy got: %s", out);
	free(out);
	down(&f, &b);
}

/* After claimctl certs revoke and a CRL refresh, the device's TLS connection is refused;
 * another device is not; the script reloads only when the CRL changed and refuses a CRL
 * it cannot verify. */
static void revoked_refused(void)
{
	struct fx f;
	struct broker b;
	struct dev d1, d2;
	char dir[DIRSZ], crl[PATHSZ], *out = NULL, *before = NULL, *after = NULL;
	REQUIRE(up(&f, &b, "broker_revoked_refused", false));
	snprintf(dir, sizeof(dir), "%s/devices", f.t.dir);
	REQUIRE(claim_self(&f, MAC1, dir, NULL, &d1));
	REQUIRE(claim_self(&f, MAC2, dir, NULL, &d2));
	REQUIRE(broker_start(&b));
	check_publishes(&b, &d1, "before");
	CHECK(t_run(&out, "'%s' -c '%s' certs revoke --mac %s --reason keyCompromise",
	            t_bin("claimctl"), f.t.config, MAC1) == 0);
	free(out);
	REQUIRE(refresh_until_listed(&f, &b, d1.crt, true));
	check_refused_revoked(&b, &d1);
	check_publishes(&b, &d2, "other");
	/* Nothing new: no reload. */
	int reloads = count_in_file(b.log, "Reloading config.");
	CHECK(refresh(&f, &b, &out) == 0);
	CHECKF(out && strstr(out, "unchanged (CRL number"), "%s", out);
	free(out);
	sleep_ms(300);
	CHECK(count_in_file(b.log, "Reloading config.") == reloads);
	/* A CRL that does not verify against --ca-file is not installed. */
	snprintf(crl, sizeof(crl), "%s/crl.pem", b.dir);
	before = slurp(crl);
	CHECK(t_run(&out,
	            "sh '%s/config/mosquitto/claimd-crl-refresh' --url 'http://127.0.0.1:%u/crl' "
	            "--crl-file '%s' --ca-file '%s' --pid-file '%s'",
	            CLAIMD_SOURCE_DIR, f.d.port, crl, b.tls_ca, b.pid_file) == 1);
	CHECKF(out && strstr(out, "not signed by a CA in"), "%s", out);
	free(out);
	after = slurp(crl);
	CHECK(before && after && strcmp(before, after) == 0);
	free(before);
	free(after);
	down(&f, &b);
}

/* What docs/mqtt-broker.md says of Mosquitto 2.0.11: a changed crlfile is read on
 * SIGHUP, not before; a connection already open survives the reload; a reload with an
 * unreadable crlfile drops the revocation check, and the next refresh repairs it. */
static void crl_read_on_reload(void)
{
	struct fx f;
	struct broker b;
	struct dev d1;
	struct sub live;
	char dir[DIRSZ], why[128], *out = NULL;
	REQUIRE(up(&f, &b, "broker_crl_read_on_reload", false));
	snprintf(dir, sizeof(dir), "%s/devices", f.t.dir);
	REQUIRE(claim_self(&f, MAC1, dir, NULL, &d1));
	REQUIRE(broker_start(&b));
	REQUIRE(sub_start(&b, &d1, "node/" MAC1 "/#", 30, "live", &live));
	CHECK(t_run(&out, "'%s' -c '%s' certs revoke --mac %s", t_bin("claimctl"), f.t.config,
	            MAC1) == 0);
	free(out);
	/* The new CRL is in the crlfile, but the broker was not told: still accepted. */
	REQUIRE(refresh_until_listed(&f, &b, d1.crt, false));
	CHECKF(tls_accepted(&b, &d1, why, sizeof(why)), "%s", why);
	int reloads = count_in_file(b.log, "Reloading config.");
	CHECK(kill(b.pid, SIGHUP) == 0);
	CHECK(wait_for_count(b.log, "Reloading config.", reloads + 1, 5000));
	check_refused_revoked(&b, &d1);
	/* The subscription opened before the revocation is still there. */
	CHECK(wait_exit(live.pid, 0) < 0);
	CHECK(count_in_file(b.log, "Client live disconnected") == 0);
	free(sub_stop(&live));
	/* A crlfile broken in place, then a reload: the broker runs on, checking nothing. */
	CHECK(t_run(NULL, "echo broken > '%s/crl.pem'", b.dir) == 0);
	reloads = count_in_file(b.log, "Reloading config.");
	CHECK(kill(b.pid, SIGHUP) == 0);
	CHECK(wait_for_count(b.log, "Unable to load certificate revocation file", 1, 5000));
	CHECK(wait_for_count(b.log, "Reloading config.", reloads + 1, 5000));
	CHECKF(tls_accepted(&b, &d1, why, sizeof(why)), "%s", why);
	/* The script puts the CRL back and reloads: refused again. */
	reloads = count_in_file(b.log, "Reloading config.");
	CHECK(refresh(&f, &b, &out) == 0);
	CHECKF(out && strstr(out, "installed CRL number") && strstr(out, "sent SIGHUP"), "%s", out);
	free(out);
	CHECK(wait_for_count(b.log, "Reloading config.", reloads + 1, 5000));
	check_refused_revoked(&b, &d1);
	down(&f, &b);
}

/* A re-claim (same key, as after a reboot) supersedes the old certificate: once the CRL
 * is refreshed the old one is refused and the new one accepted. */
static void reclaim_old_refused(void)
{
	struct fx f;
	struct broker b;
	struct dev old, fresh;
	char dir[DIRSZ], key[PATHSZ];
	REQUIRE(up(&f, &b, "broker_reclaim_old_refused", false));
	snprintf(key, sizeof(key), "%s/device.key", f.t.dir);
	snprintf(dir, sizeof(dir), "%s/first", f.t.dir);
	REQUIRE(claim_self(&f, MAC1, dir, key, &old));
	REQUIRE(broker_start(&b));
	check_publishes(&b, &old, "first");
	snprintf(dir, sizeof(dir), "%s/second", f.t.dir);
	REQUIRE(claim_self(&f, MAC1, dir, key, &fresh));
	CHECK(sql_long(&f.t,
	               "SELECT count(*) FROM certificates WHERE node_id = '%s' AND "
	               "revocation_reason = 4",
	               MAC1) == 1);
	REQUIRE(refresh_until_listed(&f, &b, old.crt, true));
	check_refused_revoked(&b, &old);
	check_publishes(&b, &fresh, "second");
	down(&f, &b);
}

/* A user-claimed node (the RainMaker CLI flow) connects; after claimctl nodes release
 * and a CRL refresh it is refused. */
static void released_node_refused(void)
{
	struct fx f;
	struct broker b;
	struct dev dv;
	char idp[PATHSZ], dir[DIRSZ], err[256], *out = NULL;
	REQUIRE(up(&f, &b, "broker_released_node_refused", true));
	snprintf(idp, sizeof(idp), "%s/idp/idp.key", f.t.dir);
	struct devtoken tk = {.key_file = idp,
	                      .kid = "k1",
	                      .issuer = ISSUER,
	                      .audience = AUDIENCE,
	                      .user = "alice",
	                      .ttl = 600};
	char *token = devidp_token(&tk, err, sizeof(err));
	REQUIRE(token);
	snprintf(dir, sizeof(dir), "%s/user", f.t.dir);
	int rc = t_run(&out,
	               "mkdir -p '%s' && '%s' cli --url http://127.0.0.1:%u --token '%s' "
	               "--mac 7CDFA1000401 --out '%s' --root '%s'",
	               dir, t_bin("claimsim"), f.d.port, token, dir, f.t.root);
	free(token);
	const char *p = out ? strstr(out, " as node ") : NULL;
	CHECKF(rc == 0 && p, "%s", out);
	if (p)
		snprintf(dv.id, sizeof(dv.id), "%.*s", (int)strcspn(p + 9, ";"), p + 9);
	free(out);
	REQUIRE(rc == 0 && p && strlen(dv.id) == 22);
	snprintf(dv.crt, sizeof(dv.crt), "%s/%s.crt", dir, dv.id);
	snprintf(dv.key, sizeof(dv.key), "%s/%s.key", dir, dv.id);
	REQUIRE(broker_start(&b));
	check_publishes(&b, &dv, "user");
	CHECK(t_run(&out, "'%s' -c '%s' nodes release %s", t_bin("claimctl"), f.t.config, dv.id) ==
	      0);
	free(out);
	REQUIRE(refresh_until_listed(&f, &b, dv.crt, true));
	check_refused_revoked(&b, &dv);
	down(&f, &b);
}

static const struct t_case cases[] = {
    {"self_claimed_publishes", self_claimed_publishes},
    {"other_node_topic_denied", other_node_topic_denied},
    {"revoked_refused", revoked_refused},
    {"crl_read_on_reload", crl_read_on_reload},
    {"reclaim_old_refused", reclaim_old_refused},
    {"released_node_refused", released_node_refused},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
