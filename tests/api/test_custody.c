/*
 * The keys out of the network process's reach, checked from outside as root, in both
 * ways claimd separates users: started as root (it runs its signer as signer.user,
 * nobody here, and becomes server.user, daemon here, before it listens) and with an
 * external signer ("claimd --signer -c FILE" on signer.socket). In each: the network
 * process's uid is neither 0 nor the signer's, that uid cannot open a key file
 * (EACCES), claims of all three flows succeed, and its memory holds no key. Also:
 * /readyz follows a stopped signer with no traffic, a key the network user can read and
 * a token the confined signer cannot use stop start-up with a message that says what
 * to fix, an external signer answers only server.user's uid, and one restarted under
 * pipelined load is connected to again with no reply handed to the wrong request.
 */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api_support.h"
#include "harness.h"
#include "lib/util.h"
#include "matter_pki.h"
#include "proc_scan.h"
#include "signer/signer.h"

#define NET_USER    "daemon" /* server.user in these cases: every Debian system has it */
#define SIGNER_USER "nobody"

/* A world for both flows and Matter: users, the Matter PKI, the IdP, MAC1. */
struct cfx {
	struct fx f;
	char idp[1200];
	char yaml[4096];
	char sock[600];
	pid_t ext; /* the external signer, or 0 */
	char ext_log[1100];
};

/* The uid and gid of @p name (the case stops when it is missing). */
static void ids_of(const char *name, uid_t *uid, gid_t *gid)
{
	struct passwd *pw = getpwnam(name);
	*uid = pw ? pw->pw_uid : (uid_t)-1;
	*gid = pw ? pw->pw_gid : (gid_t)-1;
}

/* The first number of "Name:" in /proc/PID/status, and whether all four agree. */
static long status_ids(pid_t pid, const char *name, bool *same)
{
	char path[64], line[256];
	long v[4] = {-1, -2, -3, -4};
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	*same = false;
	if (!(f = fopen(path, "r")))
		return -1;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, name, strlen(name)) == 0 && line[strlen(name)] == ':' &&
		    sscanf(line + strlen(name) + 1, "%ld %ld %ld %ld", &v[0], &v[1], &v[2],
		           &v[3]) == 4)
			break;
	fclose(f);
	*same = v[0] == v[1] && v[1] == v[2] && v[2] == v[3];
	return v[0];
}

/*
 * Sets up case @p name: server.user daemon, signer.user nobody, with @p signer_extra in
 * the signer: section (the socket); the case's folder belongs to daemon (claimd writes
 * its ready file there after the drop), the key files stay root's, mode 0600.
 */
static bool cfx_setup(struct cfx *c, const char *name, bool external)
{
	char users[512];
	uid_t uid;
	gid_t gid;

	memset(c, 0, sizeof(*c));
	struct topts o = {.mqtt_host = "mqtt.test", .server = "  user: " NET_USER "\n"};
	if (!tenv_setup(&c->f.t, name, &o))
		return false;
	snprintf(c->sock, sizeof(c->sock), "%s/signer.sock", c->f.t.dir);
	test_users_yaml(users, sizeof(users), 0);
	snprintf(c->yaml, sizeof(c->yaml),
	         "signer:\n  user: " SIGNER_USER "\n%s%s%s"
	         "%smatter:\n  pai_certificate: matter/pai.pem\n  pai_key: matter/pai.key\n"
	         "  vendor_id: \"131B\"\n  product_ids: [\"8000\"]\n",
	         external ? "  socket: \"" : "", external ? c->sock : "", external ? "\"\n" : "",
	         users);
	c->f.t.o.extra = c->yaml;
	char dir[1200];
	snprintf(dir, sizeof(dir), "%s/matter", c->f.t.dir);
	if (!pki_make(dir) || !tenv_write_config(&c->f.t) ||
	    !test_idp_create(&c->f.t, "ec", c->idp) ||
	    !tenv_add_device(&c->f.t, MAC1, "esp32s3", K1))
		return false;
	ids_of(NET_USER, &uid, &gid);
	return chown(c->f.t.dir, uid, gid) == 0 && chmod(c->f.t.dir, 0755) == 0;
}

/* Starts the external signer on the case's config and waits for its socket. */
static bool ext_start(struct cfx *c)
{
	snprintf(c->ext_log, sizeof(c->ext_log), "%s/signer.log", c->f.t.dir);
	unlink(c->sock);
	pid_t pid = fork();
	if (pid < 0)
		return false;
	if (pid == 0) {
		int fd = open(c->ext_log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execl(t_bin("claimd"), "claimd", "--signer", "-c", c->f.t.config, (char *)NULL);
		_exit(127);
	}
	c->ext = pid;
	t_adopt(pid);
	struct stat st;
	for (int i = 0; i < 500; i++) {
		if (stat(c->sock, &st) == 0 && S_ISSOCK(st.st_mode))
			return true;
		if (waitpid(pid, NULL, WNOHANG) == pid)
			break;
		usleep(10000);
	}
	char *log = file_read_all(c->ext_log, 1 << 20, &(size_t){0});
	fprintf(stderr, "the external signer did not listen:\n%s\n", log ? log : "");
	free(log);
	return false;
}

static void ext_stop(struct cfx *c)
{
	if (c->ext > 0) {
		kill(c->ext, SIGTERM);
		waitpid(c->ext, NULL, 0);
		t_forget(c->ext);
	}
	c->ext = 0;
}

/* Whether uid @p uid (gid @p gid, no other group) gets EACCES opening each of the
 * case's key files; says which did not. */
static bool keys_refuse(const struct cfx *c, uid_t uid, gid_t gid)
{
	const char *keys[] = {"ca/intermediate.key", "secrets.key", "matter/pai.key"};
	bool ok = true;

	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		char path[1200];
		snprintf(path, sizeof(path), "%s/%s", c->f.t.dir, keys[i]);
		pid_t pid = fork();
		if (pid == 0) {
			if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
				_exit(2);
			int fd = open(path, O_RDONLY);
			_exit(fd < 0 && errno == EACCES ? 0 : 1);
		}
		int st = -1;
		waitpid(pid, &st, 0);
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "uid %ld: opening %s did not fail with EACCES\n", (long)uid,
			        path);
			ok = false;
		}
	}
	return ok;
}

/* A self, a user and a Matter claim, each succeeding. */
static void three_flows(struct cfx *c, const char *tag)
{
	struct sim_device dv = device(MAC1, "esp32s3", "ec");
	CHECKF(fx_self_claim(&c->f, &dv), "%s: self claim", tag);
	EVP_PKEY_free(dv.key);

	char *tok = test_token(c->idp, "alice");
	struct sim_user_result r = {0};
	EVP_PKEY *k = sim_key_new("ec");
	int rc = sim_user_claim(&c->f.d.url, SIM_ANDROID, tok, "7CDFA1000101", "esp32", k,
	                        c->f.t.root, &r);
	CHECKF(rc == 0, "%s: user claim: %s", tag, r.err);
	free(r.certificate);
	free(r.body);
	EVP_PKEY_free(k);

	struct sim_matter_result m = {0};
	char paa[1200];
	snprintf(paa, sizeof(paa), "%s/matter/paa.pem", c->f.t.dir);
	k = sim_key_new("ec");
	rc = sim_matter_claim(&c->f.d.url, tok, "7CDFA1000601", "host", k, VID, "8000", paa, &m);
	CHECKF(rc == 0, "%s: Matter claim: %s", tag, m.u.err);
	sim_matter_result_free(&m);
	EVP_PKEY_free(k);
	free(tok);
}

/* The checks both modes share, with claimd up and its signer @p sg. */
static void two_users(struct cfx *c, pid_t sg, const char *tag)
{
	uid_t net_uid, signer_uid;
	gid_t net_gid, signer_gid;
	bool same;
	struct needle ca, pai, master;
	char path[1200];

	ids_of(NET_USER, &net_uid, &net_gid);
	ids_of(SIGNER_USER, &signer_uid, &signer_gid);
	long uid = status_ids(c->f.d.pid, "Uid", &same);
	CHECKF(same && uid == (long)net_uid && uid != 0, "%s: claimd's uids: %ld", tag, uid);
	long gid = status_ids(c->f.d.pid, "Gid", &same);
	CHECKF(same && gid == (long)net_gid, "%s: claimd's gids: %ld", tag, gid);
	long suid = status_ids(sg, "Uid", &same);
	CHECKF(same && suid == (long)signer_uid && suid != uid && suid != 0,
	       "%s: the signer's uids: %ld", tag, suid);
	CHECK(keys_refuse(c, net_uid, net_gid));
	three_flows(c, tag);
	/* The memory scans of the signer's tests: the keys are in the signer only. */
	snprintf(path, sizeof(path), "%s/intermediate.key", c->f.t.ca_dir);
	REQUIRE(key_secret(path, &ca));
	snprintf(path, sizeof(path), "%s/matter/pai.key", c->f.t.dir);
	REQUIRE(key_secret(path, &pai));
	char *text = NULL;
	size_t n = 0, klen = 0;
	uint8_t key[SECRETS_KEY_BYTES];
	snprintf(path, sizeof(path), "%s/secrets.key", c->f.t.dir);
	REQUIRE((text = file_read_all(path, 1024, &n)) &&
	        b64_decode(key, sizeof(key), &klen, text, n) && klen == sizeof(key));
	free(text);
	needle_set(&master, "secrets key", key, sizeof(key));
	CHECKF(!memory_holds(c->f.d.pid, &ca), "%s: claimd holds the %s", tag, ca.what);
	CHECKF(!memory_holds(c->f.d.pid, &pai), "%s: claimd holds the PAI's %s", tag, pai.what);
	CHECKF(!memory_holds(c->f.d.pid, &master), "%s: claimd holds the %s", tag, master.what);
	CHECKF(memory_holds(sg, &ca), "%s: the signer lacks the %s", tag, ca.what);
	CHECKF(memory_holds(sg, &pai), "%s: the signer lacks the PAI's %s", tag, pai.what);
}

/* One self claim of MAC1 that must succeed. */
static void some_claim(struct fx *f)
{
	struct sim_device dv = device(MAC1, "esp32s3", "ec");
	CHECK(fx_self_claim(f, &dv));
	EVP_PKEY_free(dv.key);
}

static bool log_has(const char *file, const char *s)
{
	size_t n = 0;
	char *text = file_read_all(file, 1 << 22, &n);
	bool ok = text && strstr(text, s);
	free(text);
	return ok;
}

/* Started as root: claimd runs as daemon, its signer as nobody; a reload keeps it. */
static void root_start_two_users(void)
{
	struct cfx c;

	REQUIRE(cfx_setup(&c, "custody_root", false));
	REQUIRE(daemon_start(&c.f.t, &c.f.d));
	pid_t sg = signer_of(c.f.d.pid);
	REQUIRE(sg > 0);
	two_users(&c, sg, "root start");
	CHECK(log_has(c.f.d.log, "running as " NET_USER));
	/* A reload as daemon keeps the signer root started, and claims go on. */
	REQUIRE(kill(c.f.d.pid, SIGHUP) == 0);
	for (int i = 0; i < 300 && !log_has(c.f.d.log, "reloaded"); i++)
		usleep(10000);
	CHECK(log_has(c.f.d.log, "reloaded"));
	CHECKF(signer_of(c.f.d.pid) == sg, "the signer changed on reload");
	some_claim(&c.f);
	fx_down(&c.f);
}

/* Whether a connection to @p sock gets no hello: the signer closes it at once. */
static bool refused_at(const char *sock)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	char b[8];
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct timeval tv = {3, 0};

	if (strlen(sock) >= sizeof(a.sun_path))
		return false;
	memcpy(a.sun_path, sock, strlen(sock) + 1);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	bool closed = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && read(fd, b, 8) == 0;
	close(fd);
	return closed;
}

/* /readyz's status, or -1. */
static int readyz(struct daemon *d)
{
	struct http_response r = {0};
	int st = raw(d, "GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r) == 0
	             ? r.status
	             : -1;
	http_response_free(&r);
	return st;
}

/* Milliseconds until /readyz answers @p status (polled every 50 ms), or -1 after
 * @p max_ms. */
static long until_readyz(struct daemon *d, int status, long max_ms)
{
	uint64_t t0 = now_ms_monotonic();
	for (;;) {
		long ms = (long)(now_ms_monotonic() - t0);
		if (readyz(d) == status)
			return ms;
		if (ms > max_ms)
			return -1;
		usleep(50000);
	}
}

/* An external signer of its own (as nobody), claimd (as daemon) connected to it. */
static void external_signer_two_users(void)
{
	struct cfx c;

	REQUIRE(cfx_setup(&c, "custody_external", true));
	REQUIRE(ext_start(&c));
	REQUIRE(daemon_start(&c.f.t, &c.f.d));
	CHECKF(signer_of(c.f.d.pid) < 0, "claimd started a signer of its own");
	two_users(&c, c.ext, "external signer");
	/* Root is not server.user: no hello, the connection closed. */
	CHECK(refused_at(c.sock));
	CHECK(log_has(c.ext_log, "refused a connection from uid 0"));
	/* A restarted signer: not ready meanwhile, then connected again and serving. */
	ext_stop(&c);
	CHECK(until_readyz(&c.f.d, 503, 5000) >= 0);
	REQUIRE(ext_start(&c));
	CHECK(until_readyz(&c.f.d, 200, 8000) >= 0);
	some_claim(&c.f);
	fx_down(&c.f);
	ext_stop(&c);
	tenv_teardown(&c.f.t);
}

/* A stopped signer with no traffic: /readyz not ready within signer.timeout_seconds,
 * ready again once it runs; claimd neither kills it nor exits. */
static void readyz_follows_signer(void)
{
	struct fx f;
	struct topts o = {.extra = "signer:\n  user: nobody\n  timeout_seconds: 2\n"};

	REQUIRE(fx_up(&f, "custody_readyz", &o));
	pid_t sg = signer_of(f.d.pid);
	REQUIRE(sg > 0);
	CHECK(readyz(&f.d) == 200);
	REQUIRE(kill(sg, SIGSTOP) == 0);
	long ms = until_readyz(&f.d, 503, 4000);
	CHECKF(ms >= 0 && ms <= 2000 + 300, "not ready after %ld ms (timeout 2000)", ms);
	REQUIRE(kill(sg, SIGCONT) == 0);
	ms = until_readyz(&f.d, 200, 3000);
	CHECKF(ms >= 0, "not ready again after SIGCONT");
	CHECK(kill(sg, 0) == 0 && signer_of(f.d.pid) == sg);
	some_claim(&f);
	fx_down(&f);
}

/* claimd -c CONFIG as root, run to its end (it must not start): exit status and output. */
static int refused(const struct tenv *t, char **out)
{
	return t_run(out, "timeout 20 '%s' -c '%s' 2>&1", t_bin("claimd"), t->config);
}

/* The network user may not read a key, and may not be root. */
static void network_user_checked(void)
{
	struct cfx c;
	uid_t uid;
	gid_t gid;
	char path[1200], *out = NULL;

	REQUIRE(cfx_setup(&c, "custody_checked", false));
	ids_of(NET_USER, &uid, &gid);
	snprintf(path, sizeof(path), "%s/secrets.key", c.f.t.dir);
	REQUIRE(chown(path, uid, gid) == 0);
	int rc = refused(&c.f.t, &out);
	CHECKF(rc == 1 && out && strstr(out, "secrets.key_file: ") && strstr(out, path) &&
	           strstr(out, "can be read by uid 1,"),
	       "rc %d: %s", rc, out ? out : "");
	free(out);
	REQUIRE(chown(path, 0, 0) == 0);
	c.f.t.o.server = "  user: root\n";
	REQUIRE(tenv_write_config(&c.f.t));
	rc = refused(&c.f.t, &out);
	CHECKF(rc == 1 && out && strstr(out, "server.user: \"root\" is root"), "rc %d: %s", rc,
	       out ? out : "");
	free(out);
	tenv_teardown(&c.f.t);
}

/* A SoftHSM2 token whose files only root may read stops start-up, naming the key, the
 * token directory and the signer's user; the same token readable by that user works. */
static void token_must_be_readable(void)
{
	struct fx f;
	char key[1100], uri[1400], tokens[1200], *out = NULL;

	REQUIRE(tenv_setup(&f.t, "custody_token", NULL));
	snprintf(key, sizeof(key), "%s/intermediate.key", f.t.ca_dir);
	REQUIRE(hsm_token(&f.t, key, "1234", uri, sizeof(uri)));
	f.t.o.ca_key = uri;
	REQUIRE(tenv_write_config(&f.t));
	REQUIRE(tenv_add_device(&f.t, MAC1, "esp32s3", K1));
	snprintf(tokens, sizeof(tokens), "%s/hsm/tokens", f.t.dir);
	REQUIRE(t_run(NULL, "chown -R root:root '%s' && chmod 700 '%s'", tokens, tokens) == 0);
	int rc = refused(&f.t, &out);
	CHECKF(rc == 1 && out && strstr(out, "ca.key: the confined signer (user nobody)") &&
	           strstr(out, tokens) && strstr(out, "by user nobody"),
	       "rc %d: %s", rc, out ? out : "");
	free(out);
	REQUIRE(t_run(NULL, "chown -R nobody '%s'", tokens) == 0);
	REQUIRE(daemon_start(&f.t, &f.d));
	some_claim(&f);
	fx_down(&f);
	unsetenv("SOFTHSM2_CONF");
}

/* One worker of external_signer_restarts: ISSUEs for a key of its own until told to
 * end; a reply for another key counts as foreign. */
struct ext_worker {
	struct signer *s;
	int id;
	atomic_bool *end;
	int ok, foreign, down, failed;
	long longest_ms;
};

static void *ext_work(void *arg)
{
	struct ext_worker *w = arg;
	struct dev_key d;
	bool have = dev_key_new(&d);
	char cn[16];

	snprintf(cn, sizeof(cn), "ext%03d", w->id);
	while (have && !atomic_load(w->end)) {
		bool mine = false;
		uint64_t t0 = now_ms_monotonic();
		int rc = issue_checked(w->s, &d, cn, &mine);
		long ms = (long)(now_ms_monotonic() - t0);
		if (ms > w->longest_ms)
			w->longest_ms = ms;
		if (rc == SIGNER_OK) {
			mine ? w->ok++ : w->foreign++;
		} else if (rc == SIGNER_DOWN) {
			w->down++;
			usleep(5000);
		} else {
			w->failed++;
		}
	}
	dev_key_free(&d);
	return NULL;
}

/* The client side of external_signer_restarts, as server.user in a child: 0 when all
 * went right. Asks the parent (@p ask) to restart the signer and waits (@p done). */
static int ext_client(const char *config, int ask, int done)
{
	char err[1024], b;
	struct ext_worker w[8];
	pthread_t th[8];
	atomic_bool end;
	int bad = 0;

	struct claimd_config *cfg = config_load(config, err, sizeof(err));
	struct signer *s = cfg ? signer_start(t_bin("claimd"), cfg, err, sizeof(err)) : NULL;
	if (!s) {
		fprintf(stderr, "signer_start: %s\n", err);
		return 2;
	}
	for (int round = 0; round < 4; round++) {
		atomic_init(&end, false);
		for (int i = 0; i < 8; i++) {
			w[i] = (struct ext_worker){.s = s, .id = i, .end = &end};
			pthread_create(&th[i], NULL, ext_work, &w[i]);
		}
		usleep(400000);
		if (round < 3) { /* restarted under load */
			if (write(ask, "R", 1) != 1 || read(done, &b, 1) != 1)
				return 3;
			/* Wait for the pinger to connect again, with the workers hammering. */
			uint64_t t0 = now_ms_monotonic();
			while (!signer_ready(s) && now_ms_monotonic() - t0 < 10000)
				usleep(20000);
			if (!signer_ready(s)) {
				fprintf(stderr, "round %d: not ready again within 10 s\n", round);
				bad++;
			}
			usleep(400000);
		}
		atomic_store(&end, true);
		int ok = 0, foreign = 0, down = 0, failed = 0;
		long longest = 0;
		for (int i = 0; i < 8; i++) {
			pthread_join(th[i], NULL);
			ok += w[i].ok;
			foreign += w[i].foreign;
			down += w[i].down;
			failed += w[i].failed;
			if (w[i].longest_ms > longest)
				longest = w[i].longest_ms;
		}
		fprintf(stderr,
		        "round %d: ok %d, another's %d, down %d, refused %d, longest %ld ms\n",
		        round, ok, foreign, down, failed, longest);
		bad += foreign + failed + (ok == 0) + (longest > 5000);
		if (round == 3)
			bad += down; /* no restart in the last round */
	}
	signer_free(s);
	config_free(cfg);
	return bad ? 1 : 0;
}

/*
 * An external signer restarted three times while eight threads send it pipelined
 * requests through one client: no request gets another's certificate or hangs, the
 * client connects again each time, and the last round, with no restart, has every
 * request answered.
 */
static void external_signer_restarts(void)
{
	struct cfx c;
	int ask[2], done[2];
	uid_t uid;
	gid_t gid;

	REQUIRE(cfx_setup(&c, "custody_ext_restarts", true));
	REQUIRE(ext_start(&c));
	REQUIRE(pipe(ask) == 0 && pipe(done) == 0);
	ids_of(NET_USER, &uid, &gid);
	pid_t pid = fork();
	REQUIRE(pid >= 0);
	if (pid == 0) {
		close(ask[0]);
		close(done[1]);
		if (setgroups(0, NULL) < 0 || setgid(gid) < 0 || setuid(uid) < 0)
			_exit(4);
		_exit(ext_client(c.f.t.config, ask[1], done[0]));
	}
	close(ask[1]);
	close(done[0]);
	char b;
	while (read(ask[0], &b, 1) == 1) {
		ext_stop(&c);
		usleep(200000);
		if (!ext_start(&c))
			break;
		if (write(done[1], "D", 1) != 1)
			break;
	}
	int st = -1;
	waitpid(pid, &st, 0);
	CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "the client's status %#x", st);
	close(ask[0]);
	close(done[1]);
	ext_stop(&c);
	tenv_teardown(&c.f.t);
}

static const struct t_case cases[] = {
    {"external_signer_restarts", external_signer_restarts},
    {"root_start_two_users", root_start_two_users},
    {"external_signer_two_users", external_signer_two_users},
    {"readyz_follows_signer", readyz_follows_signer},
    {"network_user_checked", network_user_checked},
    {"token_must_be_readable", token_must_be_readable},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
