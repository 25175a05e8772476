/*
 * The privilege-separated signer, checked from outside as root: after real claims the
 * network-facing claimd's memory (/proc/PID/mem over every readable mapping) holds
 * neither the CA's private key nor the secrets key, while the same scan of the signer
 * finds them; the signer runs as another user, non-dumpable, under a seccomp filter,
 * with no descriptor but its channel; a hung or dead signer gives 503 with Retry-After
 * and claimd exits for its supervisor; CA keys in SoftHSM2 (P-256 and RSA-2048, the
 * token made here) sign claims and a wrong PIN stops start-up with a clear message.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api_support.h"
#include "signer/server.h"
#include "signer/signer.h"
#include "signer/wire.h"
#include "lib/util.h"
#include "harness.h"
#include "proc_scan.h"

/* The case's secrets key and the sealing subkey the signer derives from it. */
static bool secrets_needles(const struct tenv *t, struct needle *master, struct needle *seal)
{
	char path[1100], *text;
	uint8_t key[SECRETS_KEY_BYTES], sub[32];
	size_t n = 0, klen = 0;

	snprintf(path, sizeof(path), "%s/secrets.key", t->dir);
	if (!(text = file_read_all(path, 1024, &n)) ||
	    !b64_decode(key, sizeof(key), &klen, text, n) || klen != sizeof(key)) {
		free(text);
		return false;
	}
	free(text);
	secrets_seal_subkey(key, sub);
	needle_set(master, "secrets key", key, sizeof(key));
	needle_set(seal, "sealing subkey", sub, sizeof(sub));
	return true;
}

/* A few self claims, so the keys have been used since start-up. */
static void some_claims(struct fx *f, int n)
{
	struct sim_device dv = device(MAC1, "esp32s3", "ec");
	for (int i = 0; i < n; i++)
		CHECK(fx_self_claim(f, &dv));
	EVP_PKEY_free(dv.key);
}

/* claimd up for case @p name, and its signer's pid (or -1). */
static pid_t up_with_signer(struct fx *f, const char *name, const struct topts *o)
{
	if (!fx_up(f, name, o))
		return -1;
	return signer_of(f->d.pid);
}

static void separation_memory_scan(void)
{
	struct fx f;
	struct needle ca, master, seal;
	char path[1100];

	REQUIRE(geteuid() == 0); /* reading another user's non-dumpable process needs root */
	REQUIRE(fx_up(&f, "signer_scan", NULL));
	snprintf(path, sizeof(path), "%s/intermediate.key", f.t.ca_dir);
	REQUIRE(key_secret(path, &ca) && secrets_needles(&f.t, &master, &seal));
	some_claims(&f, 3);
	pid_t sg = signer_of(f.d.pid);
	CHECKF(sg > 0, "no claimd-signer child of %d", (int)f.d.pid);
	CHECKF(!memory_holds(f.d.pid, &ca), "claimd holds the %s", ca.what);
	CHECKF(!memory_holds(f.d.pid, &master), "claimd holds the %s", master.what);
	CHECKF(!memory_holds(f.d.pid, &seal), "claimd holds the %s", seal.what);
	/* The same scan of claimd finds what claimd is meant to hold: the auth_id subkey. */
	uint8_t authid[32], challenge[32];
	struct needle own;
	secrets_authid_keys(f.t.secrets, authid, challenge);
	needle_set(&own, "auth_id subkey", authid, sizeof(authid));
	CHECKF(memory_holds(f.d.pid, &own), "the scan of claimd misses its own %s", own.what);
	/* The scan works: the process that signs has them. */
	if (sg > 0) {
		CHECKF(memory_holds(sg, &ca), "the signer lacks the %s", ca.what);
		CHECKF(memory_holds(sg, &seal), "the signer lacks the %s", seal.what);
	}
	fx_down(&f);
}

/* The value of "Name:" in /proc/PID/status, or "". */
static void proc_status(pid_t pid, const char *name, char *out, size_t outsz)
{
	char path[64], line[256];
	size_t n = strlen(name);
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	out[0] = '\0';
	if (!(f = fopen(path, "r")))
		return;
	while (fgets(line, sizeof(line), f))
		if (strncmp(line, name, n) == 0 && line[n] == ':') {
			snprintf(out, outsz, "%s", line + n + 1 + strspn(line + n + 1, " \t"));
			out[strcspn(out, "\n")] = '\0';
			break;
		}
	fclose(f);
}

static void signer_confined(void)
{
	struct fx f;
	char v[128], path[64], link[512];
	struct passwd *nobody = getpwnam("nobody");
	struct stat st;

	REQUIRE(geteuid() == 0 && nobody);
	pid_t sg = up_with_signer(&f, "signer_confined", NULL);
	REQUIRE(sg > 0);
	some_claims(&f, 1);
	proc_status(sg, "Seccomp", v, sizeof(v));
	CHECKF(strcmp(v, "2") == 0, "Seccomp: %s (2 = filter)", v);
	proc_status(sg, "NoNewPrivs", v, sizeof(v));
	CHECKF(strcmp(v, "1") == 0, "NoNewPrivs: %s", v);
	proc_status(sg, "Uid", v, sizeof(v));
	CHECKF(atoi(v) == (int)nobody->pw_uid &&
	           strtol(strrchr(v, '\t') + 1, NULL, 10) == (long)nobody->pw_uid,
	       "Uid: %s", v);
	proc_status(sg, "Groups", v, sizeof(v));
	CHECKF(v[0] == '\0', "Groups: %s", v);
	/* Not dumpable: its /proc files belong to root although it runs as nobody. */
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)sg);
	CHECK(stat(path, &st) == 0 && st.st_uid == 0);
	/* Its root is an empty directory that no longer exists. */
	snprintf(path, sizeof(path), "/proc/%d/root", (int)sg);
	ssize_t n = readlink(path, link, sizeof(link) - 1);
	link[n > 0 ? n : 0] = '\0';
	CHECKF(strstr(link, "(deleted)") != NULL, "root: %s", link);
	/* No descriptor but stdio and the channel. */
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)sg);
	DIR *d = opendir(path);
	struct dirent *e;
	int extra = 0;
	while (d && (e = readdir(d)))
		if (e->d_name[0] != '.' && atoi(e->d_name) > 3)
			extra++;
	if (d)
		closedir(d);
	CHECKF(extra == 0, "the signer holds %d descriptors above 3", extra);
	fx_down(&f);
}

/* Waits up to @p ms for @p pid to end; its exit status, or -1 if it did not. */
static int wait_exit(pid_t pid, int ms)
{
	int st;
	for (int i = 0; i < ms / 10; i++) {
		if (waitpid(pid, &st, WNOHANG) == pid) {
			t_forget(pid);
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		}
		usleep(10000);
	}
	return -1;
}

static bool log_has(const struct daemon *d, const char *s)
{
	size_t n = 0;
	char *text = file_read_all(d->log, 1 << 22, &n);
	bool ok = text && strstr(text, s);
	free(text);
	return ok;
}

/* claimd must exit 1 (for its supervisor) soon, having logged @p why; then the case's
 * environment goes. */
static void expect_exit(struct fx *f, const char *why)
{
	int st = wait_exit(f->d.pid, 15000);
	CHECKF(st == 1, "claimd exited with %d", st);
	CHECK(log_has(&f->d, why));
	CHECK(log_has(&f->d, "exiting for the supervisor"));
	if (st != 1 || t_failures)
		daemon_dump_log(&f->d);
	if (st < 0)
		daemon_stop(&f->d);
	f->d.pid = -1;
	tenv_teardown(&f->t);
}

/* A signer that stops answering: the claim gets 503 + Retry-After in about the
 * timeout, the signer is killed and claimd exits 1 for its supervisor. */
static void signer_hang_gives_503(void)
{
	struct fx f;
	struct topts o = {.extra = "signer:\n  user: nobody\n  timeout_seconds: 1\n"};
	struct session s;
	struct http_response r = {0};
	struct sim_device dv = device(MAC1, "esp32s3", "ec");
	char ra[16] = "";

	pid_t sg = up_with_signer(&f, "signer_hang", &o);
	REQUIRE(sg > 0);
	REQUIRE(initiate(&f.d, MAC1, "esp32s3", &s)); /* needs no signer */
	REQUIRE(kill(sg, SIGSTOP) == 0);
	char *body = verify_body(&s, K1, dv.key, MAC1);
	time_t t0 = time(NULL);
	REQUIRE(body && verify(&f.d, body, &r) == 0);
	CHECKF(r.status == 503, "status %d", r.status);
	CHECK(http_header(&r, "Retry-After", ra, sizeof(ra)) && atoi(ra) >= 1);
	CHECK(time(NULL) - t0 <= 5);
	http_response_free(&r);
	free(body);
	EVP_PKEY_free(dv.key);
	expect_exit(&f, "no answer in time");
}

/* A signer that dies: claimd notices without any request, says why, and exits 1. */
static void signer_death_exits(void)
{
	struct fx f;

	pid_t sg = up_with_signer(&f, "signer_death", NULL);
	REQUIRE(sg > 0);
	REQUIRE(kill(sg, SIGKILL) == 0);
	expect_exit(&f, "was ended by signal 9");
}

/* systemd stops a service by signalling its whole group: the signer leaves SIGTERM to
 * claimd, which drains and exits 0 (signalled first here, so a signer that died of it
 * would make claimd exit 1 for certain). */
static void group_stop_exits_0(void)
{
	struct fx f;

	pid_t sg = up_with_signer(&f, "signer_group_stop", NULL);
	REQUIRE(sg > 0);
	REQUIRE(kill(sg, SIGTERM) == 0 && kill(sg, SIGINT) == 0 && kill(sg, SIGHUP) == 0);
	usleep(200000);
	CHECKF(kill(sg, 0) == 0, "the signer died of SIGTERM, SIGINT or SIGHUP");
	some_claims(&f, 1);
	fx_down(&f); /* SIGTERM to claimd: exit status 0 required */
}

/* A reload starts a new signer and retires the old one; claims go on. */
static void reload_replaces_signer(void)
{
	struct fx f;

	pid_t before = up_with_signer(&f, "signer_reload", NULL);
	REQUIRE(before > 0);
	REQUIRE(kill(f.d.pid, SIGHUP) == 0);
	pid_t after = -1;
	for (int i = 0; i < 500 && (after <= 0 || after == before); i++) {
		usleep(10000);
		after = signer_of(f.d.pid);
	}
	CHECKF(after > 0 && after != before, "signer %d, then %d", (int)before, (int)after);
	some_claims(&f, 1);
	for (int i = 0; i < 500 && kill(before, 0) == 0; i++)
		usleep(10000);
	CHECKF(kill(before, 0) < 0, "the old signer %d still runs", (int)before);
	CHECK(kill(f.d.pid, 0) == 0); /* a retired signer's end is not a reason to exit */
	fx_down(&f);
}

/* ---- PKCS#11 through SoftHSM2 ---- */

/* A SoftHSM2 token holding the case's CA key (hsm_token()). */
static bool ca_token(const struct tenv *t, const char *pin, char *uri, size_t urisz)
{
	char key[1100];
	snprintf(key, sizeof(key), "%s/intermediate.key", t->ca_dir);
	return hsm_token(t, key, pin, uri, urisz);
}

/* Claims signed through the token; the key file is gone and the network process
 * holds no copy of the key. */
static void hsm_claims(const char *ca_type)
{
	struct fx f;
	struct topts o = {.ca_type = ca_type};
	struct needle ca;
	char uri[1400], path[1100], name[64];

	snprintf(name, sizeof(name), "signer_hsm_%s", ca_type);
	REQUIRE(tenv_setup(&f.t, name, &o));
	snprintf(path, sizeof(path), "%s/intermediate.key", f.t.ca_dir);
	REQUIRE(key_secret(path, &ca));
	REQUIRE(ca_token(&f.t, "1234", uri, sizeof(uri)));
	REQUIRE(unlink(path) == 0); /* only the token has the key now */
	f.t.o.ca_key = uri;
	REQUIRE(tenv_write_config(&f.t));
	REQUIRE(tenv_add_device(&f.t, MAC1, "esp32s3", K1));
	REQUIRE(daemon_start(&f.t, &f.d));
	some_claims(&f, 3);
	CHECKF(!memory_holds(f.d.pid, &ca), "claimd holds the %s", ca.what);
	CHECK(log_has(&f.d, strcmp(ca_type, "ec") == 0 ? "CA key ec-p256" : "CA key rsa-2048"));
	CHECK(log_has(&f.d, "claimd runs as root")); /* the tests run as root */
	/* The CRL is signed through the token too. */
	char *out = NULL;
	int rc = fx_claimctl(&f, &out, "crl"); /* claimctl reads the same URI */
	CHECKF(rc == 0 && out && strstr(out, "BEGIN X509 CRL"), "claimctl crl: %d %s", rc,
	       out ? out : "");
	free(out);
	struct http_response r = {0};
	CHECK(raw(&f.d, "GET /crl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r) == 0 &&
	      r.status == 200 && r.len > 100);
	http_response_free(&r);
	fx_down(&f);
	unsetenv("SOFTHSM2_CONF");
}

static void hsm_p256_claims(void)
{
	hsm_claims("ec");
}

static void hsm_rsa2048_claims(void)
{
	hsm_claims("rsa2048");
}

/* A wrong PIN stops claimd at start-up (and claimd -t) with a message naming it. */
static void hsm_wrong_pin_refused(void)
{
	struct tenv t;
	char uri[1400], *out = NULL;

	REQUIRE(tenv_setup(&t, "signer_hsm_pin", NULL));
	REQUIRE(ca_token(&t, "9999", uri, sizeof(uri)));
	t.o.ca_key = uri;
	REQUIRE(tenv_write_config(&t));
	int rc = t_run(&out, "'%s' -t -c '%s' 2>&1", t_bin("claimd"), t.config);
	CHECKF(rc != 0 && out && strstr(out, "refused the PIN (CKR_PIN_INCORRECT)"), "rc %d: %s",
	       rc, out ? out : "");
	free(out);
	out = NULL;
	rc = t_run(&out, "timeout 20 '%s' -c '%s' 2>&1", t_bin("claimd"), t.config);
	CHECKF(rc == 1 && out && strstr(out, "ca.key: the token \"claimd-ca\" refused the PIN"),
	       "rc %d: %s", rc, out ? out : "");
	free(out);
	unsetenv("SOFTHSM2_CONF");
	tenv_teardown(&t);
}

/* signer_answer()'s verdict (0 or -1) on payload @p w of operation @p op. */
static int answer(struct signer_keys *k, uint32_t op, struct wire_out *w)
{
	uint8_t *out = NULL;
	size_t outn = 0;
	int rc = w->bad ? -2 : signer_answer(k, op, w->p, w->n, &out, &outn);
	free(out);
	wire_out_clear(w);
	return rc;
}

/* signer_answer()'s verdict on an ISSUE of a device certificate valid [nb, na]. */
static int issue_answer(struct signer_keys *k, const uint8_t *spki, size_t spki_len, int64_t nb,
                        int64_t na)
{
	struct cert_request rq = {
	    .profile = CERT_PROFILE_DEVICE,
	    .spki = spki,
	    .spki_len = spki_len,
	    .cn = "7CDFA1000001",
	    .vendor_id = "",
	    .product_id = "",
	    .serial = {0x41, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
	    .not_before = nb,
	    .not_after = na,
	};
	struct wire_out w = {0};
	wire_put_issue(&w, &rq);
	return answer(k, SIGNER_OP_ISSUE, &w);
}

/*
 * CHECK_ISSUE with a sealed eFuse key and the response @p right or not, asking for a
 * certificate valid [nb, na]: signer_answer()'s verdict, and in *@p verdict and
 * *@p cert_len the answer's verdict byte and what follows it (serial and certificate).
 */
static int check_issue_answer(struct signer_keys *k, const uint8_t *spki, size_t spki_len,
                              bool right, int64_t nb, int64_t na, int *verdict, size_t *cert_len)
{
	const char *mac = "7CDFA1000001";
	char challenge[SIGNER_CHALLENGE_HEX + 1];
	uint8_t efuse[EFUSE_KEY_BYTES] = {7}, sealed[SEALED_EFUSE_BYTES], resp[HMAC_SHA512_BYTES];
	struct cert_request rq = {
	    .profile = CERT_PROFILE_DEVICE,
	    .spki = spki,
	    .spki_len = spki_len,
	    .cn = mac,
	    .vendor_id = "",
	    .product_id = "",
	    .not_before = nb,
	    .not_after = na,
	};
	struct wire_out w = {0};
	uint8_t *out = NULL;
	size_t outn = 0;

	memset(challenge, 'a', SIGNER_CHALLENGE_HEX);
	challenge[SIGNER_CHALLENGE_HEX] = '\0';
	efuse_seal(k->secrets, mac, efuse, sealed);
	secure_hmac_sha512(resp, efuse, sizeof(efuse), challenge, SIGNER_CHALLENGE_HEX);
	resp[0] ^= right ? 0 : 1;
	wire_put_check(&w, mac, sealed, challenge, resp);
	wire_put_issue(&w, &rq);
	int rc = signer_answer(k, SIGNER_OP_CHECK_ISSUE, w.p, w.n, &out, &outn);
	*verdict = rc == 0 && outn ? out[0] : -1;
	*cert_len = rc == 0 && outn ? outn - 1 : 0;
	free(out);
	wire_out_clear(&w);
	return rc;
}

/* signer_answer()'s verdict on a CRL request with one entry of @p reason. */
static int crl_answer(struct signer_keys *k, int64_t number, int64_t this_update,
                      int64_t next_update, int64_t reason)
{
	struct revoked_entry e = {"41000000000000000000000000000001", this_update - 60, reason};
	struct crl_request rq = {number, this_update, next_update, &e, 1};
	struct wire_out w = {0};
	wire_put_crl(&w, &rq);
	return answer(k, SIGNER_OP_CRL, &w);
}

/* A signer's keys on the test's development CA (secrets key bytes @p seed, 0...),
 * ca.validity_days 365 and revocation.crl_hours 24, and a P-256 device key's
 * SubjectPublicKeyInfo (DER) for its requests: what signer_policy and signer_chooses
 * drive signer_answer() with. */
struct signer_fx {
	struct tenv t;
	struct signer_keys k;
	EVP_PKEY *dev;
	uint8_t *spki;
	size_t spki_len;
};

static bool signer_fx_setup(struct signer_fx *f, const char *name, uint8_t seed)
{
	char cert[1100], key[1100], err[512];
	uint8_t sk[SECRETS_KEY_BYTES] = {seed};

	memset(f, 0, sizeof(*f));
	if (!tenv_setup(&f->t, name, NULL))
		return false;
	snprintf(cert, sizeof(cert), "%s/intermediate.pem", f->t.ca_dir);
	snprintf(key, sizeof(key), "%s/intermediate.key", f->t.ca_dir);
	f->k.validity_days = 365;
	f->k.crl_hours = 24;
	f->k.ca = ca_load(cert, key, "", err, sizeof(err));
	f->k.secrets = secrets_from_bytes(sk);
	f->dev = EVP_EC_gen("P-256");
	int n = f->dev ? i2d_PUBKEY(f->dev, &f->spki) : -1;
	f->spki_len = n > 0 ? (size_t)n : 0;
	return f->k.ca && f->k.secrets && n > 0;
}

static void signer_fx_free(struct signer_fx *f)
{
	OPENSSL_free(f->spki);
	EVP_PKEY_free(f->dev);
	ca_free(f->k.ca);
	secrets_free(f->k.secrets);
	tenv_teardown(&f->t);
}

/*
 * The signer's own policy, whatever the network process asks (a compromised claimd
 * included): certificates only from an hour before now to ca.validity_days ahead, CRLs
 * dated now, lasting at most revocation.crl_hours, with RFC 5280 reasons and a number
 * that never goes back. Called in-process on real keys (a development CA).
 */
static void signer_policy(void)
{
	struct signer_fx f;
	REQUIRE(signer_fx_setup(&f, "signer_policy", 1));
	int64_t now = now_unix(), day = 86400;
	/* What claimd asks for: an hour back, validity_days ahead. */
	CHECK(issue_answer(&f.k, f.spki, f.spki_len, now - 3600, now + 365 * day) == 0);
	CHECK(issue_answer(&f.k, f.spki, f.spki_len, now - 3600, now + 366 * day) < 0);
	CHECK(issue_answer(&f.k, f.spki, f.spki_len, now - 2 * day, now + day) < 0);
	CHECK(issue_answer(&f.k, f.spki, f.spki_len, now + day, now + 2 * day) < 0);
	CHECK(issue_answer(&f.k, f.spki, f.spki_len, 0, 253402300799LL) < 0);
	CHECK(issue_answer(&f.k, f.spki, f.spki_len, now, now) < 0);
	/* The check and the certificate in one exchange: a certificate for a right
	 * response only, under the same policy. */
	int verdict = -1;
	size_t cert_len = 0;
	CHECK(check_issue_answer(&f.k, f.spki, f.spki_len, true, now - 3600, now + 365 * day,
	                         &verdict, &cert_len) == 0);
	CHECKF(verdict == SIGNER_RIGHT && cert_len > 16 + 100, "verdict %d, %zu bytes", verdict,
	       cert_len);
	CHECK(check_issue_answer(&f.k, f.spki, f.spki_len, false, now - 3600, now + 365 * day,
	                         &verdict, &cert_len) == 0);
	CHECKF(verdict == SIGNER_WRONG && cert_len == 0, "verdict %d, %zu bytes", verdict,
	       cert_len);
	CHECK(check_issue_answer(&f.k, f.spki, f.spki_len, true, now - 3600, now + 366 * day,
	                         &verdict, &cert_len) < 0);
	/* CRLs: now, at most crl_hours, numbers never back, reasons RFC 5280's. */
	CHECK(crl_answer(&f.k, 5, now, now + 24 * 3600, 1) == 0);
	CHECK(crl_answer(&f.k, 5, now, now + 24 * 3600, 4) == 0); /* a retried transaction */
	CHECK(crl_answer(&f.k, 4, now, now + 24 * 3600, 1) < 0);
	CHECK(crl_answer(&f.k, 6, now, now + 25 * 3600, 1) < 0);
	CHECK(crl_answer(&f.k, 6, now - day, now + 3600, 1) < 0);
	CHECK(crl_answer(&f.k, 6, now, now + 3600, 7) < 0);
	CHECK(crl_answer(&f.k, 6, now, now + 3600, 11) < 0);
	CHECK(crl_answer(&f.k, 6, now, now + 3600, 5) == 0);
	signer_fx_free(&f);
}

/*
 * The signer chooses what it signs: the serial a (compromised) network process proposes
 * is ignored, the one drawn comes back first in the reply and is the certificate's; a
 * CRL number may step at most SIGNER_CRL_NUMBER_STEP_MAX past the last one signed, and
 * the first at most SIGNER_CRL_NUMBER_FIRST_MAX. Driven through the shared wire codec.
 */
static void signer_chooses(void)
{
	struct signer_fx f;
	uint8_t *out = NULL;
	size_t outn = 0;

	REQUIRE(signer_fx_setup(&f, "signer_chooses", 2));
	int64_t now = now_unix();
	const uint8_t proposed[16] = {0x41, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
	uint8_t first[16] = {0};
	for (int i = 0; i < 2; i++) {
		struct cert_request rq = {.profile = CERT_PROFILE_DEVICE,
		                          .spki = f.spki,
		                          .spki_len = f.spki_len,
		                          .cn = "7CDFA1000001",
		                          .vendor_id = "",
		                          .product_id = "",
		                          .not_before = now - 3600,
		                          .not_after = now + 86400};
		memcpy(rq.serial, proposed, sizeof(proposed));
		struct wire_out w = {0};
		wire_put_issue(&w, &rq);
		REQUIRE(signer_answer(&f.k, SIGNER_OP_ISSUE, w.p, w.n, &out, &outn) == 0 &&
		        outn > 16);
		wire_out_clear(&w);
		CHECK(memcmp(out, proposed, 16) != 0);
		CHECK(i == 0 || memcmp(out, first, 16) != 0);
		memcpy(first, out, 16);
		/* The serial announced is the certificate's own. */
		const unsigned char *q = out + 16;
		X509 *x = d2i_X509(NULL, &q, (long)(outn - 16));
		BIGNUM *bn = x ? ASN1_INTEGER_to_BN(X509_get0_serialNumber(x), NULL) : NULL;
		uint8_t in_cert[16] = {0};
		CHECK(bn && BN_bn2binpad(bn, in_cert, 16) == 16 && memcmp(in_cert, out, 16) == 0);
		BN_free(bn);
		X509_free(x);
		/* What claimd stores: issued_from_der() under the serial announced. */
		struct issued is;
		memcpy(rq.serial, out, 16);
		CHECK(issued_from_der(&rq, out + 16, outn - 16, &is) == 0);
		issued_clear(&is);
		memcpy(rq.serial, proposed, 16);
		CHECK(issued_from_der(&rq, out + 16, outn - 16, &is) < 0);
		free(out);
	}
	/* CRL numbers: the first one bounded, then steps of at most the bound. */
	CHECK(crl_answer(&f.k, SIGNER_CRL_NUMBER_FIRST_MAX + 1, now, now + 3600, 1) < 0);
	CHECK(crl_answer(&f.k, 7, now, now + 3600, 1) == 0);
	CHECK(crl_answer(&f.k, 7 + SIGNER_CRL_NUMBER_STEP_MAX + 1, now, now + 3600, 1) < 0);
	CHECK(crl_answer(&f.k, INT64_MAX, now, now + 3600, 1) < 0);
	CHECK(crl_answer(&f.k, 7 + SIGNER_CRL_NUMBER_STEP_MAX, now, now + 3600, 1) == 0);
	CHECK(crl_answer(&f.k, 8 + SIGNER_CRL_NUMBER_STEP_MAX, now, now + 3600, 1) == 0);
	/* A ping: an empty payload only. */
	CHECK(signer_answer(&f.k, SIGNER_OP_PING, NULL, 0, &out, &outn) == 0 && outn == 0);
	free(out);
	CHECK(signer_answer(&f.k, SIGNER_OP_PING, (const uint8_t *)"x", 1, &out, &outn) < 0);
	free(out);
	signer_fx_free(&f);
}

/* One thread of signer_pipelined: ISSUEs for a key and CN of its own through the shared
 * client, each answer checked to be its own certificate. */
struct pipe_thread {
	struct signer *s;
	int id, n;
	int ok, foreign, down, failed;
	bool stop_on_down;
	long longest_ms; /* the longest signer_issue() */
};

static void *pipe_worker(void *arg)
{
	struct pipe_thread *p = arg;
	struct dev_key d;
	bool have = dev_key_new(&d);
	char cn[16];

	snprintf(cn, sizeof(cn), "pipe%03d", p->id);
	for (int i = 0; i < p->n && have; i++) {
		bool mine = false;
		uint64_t t0 = now_ms_monotonic();
		int rc = issue_checked(p->s, &d, cn, &mine);
		if ((long)(now_ms_monotonic() - t0) > p->longest_ms)
			p->longest_ms = (long)(now_ms_monotonic() - t0);
		if (rc == SIGNER_OK) {
			mine ? p->ok++ : p->foreign++;
		} else if (rc == SIGNER_DOWN) {
			p->down++;
			if (p->stop_on_down)
				break;
		} else {
			p->failed++;
		}
	}
	dev_key_free(&d);
	return NULL;
}

/* Runs @p n threads of @p per requests each on @p s; totals in @p sum. */
static void pipe_run(struct signer *s, int n, int per, bool stop_on_down, struct pipe_thread *sum)
{
	struct pipe_thread p[16];
	pthread_t th[16];

	memset(sum, 0, sizeof(*sum));
	for (int i = 0; i < n; i++) {
		p[i] =
		    (struct pipe_thread){.s = s, .id = i, .n = per, .stop_on_down = stop_on_down};
		REQUIRE(pthread_create(&th[i], NULL, pipe_worker, &p[i]) == 0);
	}
	for (int i = 0; i < n; i++) {
		pthread_join(th[i], NULL);
		sum->ok += p[i].ok;
		sum->foreign += p[i].foreign;
		sum->down += p[i].down;
		sum->failed += p[i].failed;
		if (p[i].longest_ms > sum->longest_ms)
			sum->longest_ms = p[i].longest_ms;
	}
}

/* The case's config in *@p cfg and a signer client started on it, or NULL (said). */
static struct signer *pipe_signer(struct tenv *t, const char *name, struct claimd_config **cfg)
{
	struct topts o = {.extra = "signer:\n  user: nobody\n  timeout_seconds: 1\n"};
	char err[1024] = "";
	struct signer *s = NULL;

	*cfg = NULL;
	if (tenv_setup(t, name, &o) && (*cfg = config_load(t->config, err, sizeof(err))))
		s = signer_start(t_bin("claimd"), *cfg, err, sizeof(err));
	if (!s)
		fprintf(stderr, "signer_start: %s\n", err);
	return s;
}

/*
 * Requests to the signer are pipelined (signer/client.c): many threads write their
 * frames while earlier ones are answered, and each reads its own reply in turn. Every
 * one of 12 threads x 40 requests gets the certificate for its own key and CN, with the
 * pinger running; then, with requests in flight, a signer that stops answering sends
 * every waiting thread home SIGNER_DOWN within about the timeout (none hangs, none gets
 * another's reply), and it is killed.
 */
static void signer_pipelined(void)
{
	struct tenv t;
	struct claimd_config *cfg = NULL;
	struct pipe_thread sum;
	struct signer *s = pipe_signer(&t, "signer_pipelined", &cfg);
	REQUIRE(s);

	pipe_run(s, 12, 40, false, &sum);
	CHECKF(sum.ok == 12 * 40 && sum.foreign == 0 && sum.down == 0 && sum.failed == 0,
	       "ok %d, another's %d, down %d, refused %d", sum.ok, sum.foreign, sum.down,
	       sum.failed);
	CHECK(signer_ready(s));

	/* Stopped with requests in flight: all of them end, none with another's reply. */
	pid_t pid = signer_pid(s);
	struct pipe_thread late;
	REQUIRE(kill(pid, SIGSTOP) == 0);
	time_t t0 = time(NULL);
	pipe_run(s, 8, 1000, true, &late);
	CHECKF(late.down == 8 && late.foreign == 0, "down %d, another's %d", late.down,
	       late.foreign);
	CHECKF(time(NULL) - t0 <= 4, "%ld s to give up", (long)(time(NULL) - t0));
	CHECK(!signer_ready(s));
	int st = 0;
	for (int i = 0; i < 100 && !signer_reap(s, &st); i++)
		usleep(20000);
	CHECKF(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL, "signer status %#x", st);
	signer_free(s);
	config_free(cfg);
	tenv_teardown(&t);
}

/* The pauser of signer_paused_pipeline: stops and continues the signer, each stop
 * shorter than the timeout, until told to end. */
struct pauser {
	pid_t pid;
	atomic_bool end;
	int stops;
};

static void *pause_loop(void *arg)
{
	struct pauser *z = arg;
	unsigned seed = 1;

	while (!atomic_load(&z->end)) {
		usleep(50000 + (useconds_t)(rand_r(&seed) % 100) * 1000);
		if (kill(z->pid, SIGSTOP) < 0)
			break;
		usleep(100000 + (useconds_t)(rand_r(&seed) % 250) * 1000);
		kill(z->pid, SIGCONT);
		z->stops++;
	}
	return NULL;
}

/*
 * Pipelined requests while the signer is stopped again and again, each stop well
 * under signer.timeout_seconds, with the pinger's holds and left-over pongs among the
 * requests: every request gets its own certificate, none is sent home SIGNER_DOWN, and
 * the signer is never killed.
 */
static void signer_paused_pipeline(void)
{
	struct tenv t;
	struct claimd_config *cfg = NULL;
	struct pipe_thread sum;
	pthread_t th;
	struct signer *s = pipe_signer(&t, "signer_paused_pipeline", &cfg);
	REQUIRE(s);

	struct pauser z = {.pid = signer_pid(s)};
	atomic_init(&z.end, false);
	REQUIRE(pthread_create(&th, NULL, pause_loop, &z) == 0);
	pipe_run(s, 8, 200, false, &sum);
	atomic_store(&z.end, true);
	pthread_join(th, NULL);
	kill(z.pid, SIGCONT);
	fprintf(stderr, "%d stops, longest request %ld ms\n", z.stops, sum.longest_ms);
	CHECKF(sum.ok == 8 * 200 && sum.foreign == 0 && sum.down == 0 && sum.failed == 0,
	       "ok %d, another's %d, down %d, refused %d", sum.ok, sum.foreign, sum.down,
	       sum.failed);
	int st = 0;
	CHECK(!signer_reap(s, &st));
	/* The pinger reads what is left and readiness comes back. */
	for (int i = 0; i < 100 && !signer_ready(s); i++)
		usleep(20000);
	CHECK(signer_ready(s));
	signer_free(s);
	config_free(cfg);
	tenv_teardown(&t);
}

/* A CRL request of @p n made-up entries, number 1, dated now: what makes the signer slow
 * per request in signer_slow_queue (signing grows with the entries). */
struct slow_crl {
	struct signer *s;
	size_t n;
	int rc;
	long ms;
};

static void *slow_crl_run(void *arg)
{
	struct slow_crl *c = arg;
	struct revoked_entry *e = calloc(c->n, sizeof(*e));
	uint8_t *der = NULL;
	size_t len = 0;
	int64_t now = now_unix();

	c->rc = SIGNER_FAILED;
	if (!e)
		return NULL;
	for (size_t i = 0; i < c->n; i++) {
		snprintf(e[i].serial, sizeof(e[i].serial), "41%030zX", i + 1);
		e[i].revoked_at = now - 60;
		e[i].reason = 4;
	}
	struct crl_request rq = {1, now, now + 3600, e, c->n};
	uint64_t t0 = now_ms_monotonic();
	c->rc = signer_crl(c->s, &rq, &der, &len);
	c->ms = (long)(now_ms_monotonic() - t0);
	free(der);
	free(e);
	return NULL;
}

/*
 * A CRL of 1,000 entries signed by the confined signer: OpenSSL sorts them, and glibc's
 * qsort of that many asked the kernel for the memory size, a system call the signer's
 * filter did not allow (the signer died on the first CRL of more than 127 entries).
 */
static void signer_large_crl(void)
{
	struct tenv t;
	struct claimd_config *cfg = NULL;
	struct signer *s = pipe_signer(&t, "signer_large_crl", &cfg);
	REQUIRE(s);

	struct slow_crl c = {s, 1000, 0, 0};
	slow_crl_run(&c);
	CHECKF(c.rc == SIGNER_OK, "rc %d", c.rc);
	int st = 0;
	CHECK(!signer_reap(s, &st));
	/* And the entries are all in it. */
	struct revoked_entry e[1] = {{"41000000000000000000000000000001", now_unix() - 60, 4}};
	struct crl_request rq = {2, now_unix(), now_unix() + 3600, e, 1};
	uint8_t *der = NULL;
	size_t len = 0;
	CHECK(signer_crl(s, &rq, &der, &len) == SIGNER_OK && len > 0);
	free(der);
	signer_free(s);
	config_free(cfg);
	tenv_teardown(&t);
}

/*
 * signer_slow_queue's signer, run as this program with "--signer-child CONFIG" in place
 * of claimd's: what the signer child does (keys, start-up proof, hello, answers) but with
 * every answer but a ping's held SLOW_SIGNER_MS milliseconds first, and no confinement.
 */
static int slow_signer(const char *config)
{
	char err[512];
	struct claimd_config *cfg = config_load(config, err, sizeof(err));
	struct signer_keys k = {0};
	struct signer_hello h = {0};
	struct wire_out w = {0};
	const char *ms = getenv("SLOW_SIGNER_MS");

	if (secure_init() < 0 || !cfg)
		return 1;
	k.validity_days = cfg->validity_days;
	k.crl_hours = cfg->crl_hours;
	k.secrets = secrets_load(cfg->secrets_key_file, err, sizeof(err));
	k.ca = ca_load(cfg->ca_certificate, cfg->ca_key, cfg->ca_chain, err, sizeof(err));
	if (!k.secrets || !k.ca || ca_prove(k.ca, err, sizeof(err)) < 0)
		return 1;
	h.key_type = ca_key_type(k.ca);
	h.chain = ca_chain_pem(k.ca);
	h.largest_leaf = ca_largest_leaf_pem(k.ca);
	secrets_authid_keys(k.secrets, h.authid_keys, h.authid_keys + 32);
	wire_put_hello(&w, &h);
	if (wire_send(SIGNER_FD, 0, &w, 0) < 0)
		return 1;
	for (;;) {
		uint8_t *p = NULL;
		size_t n = 0;
		uint32_t op = 0;
		struct wire_out out = {0};
		if (wire_recv(SIGNER_FD, &op, &p, &n, 0) < 0)
			return 0;
		if (op != SIGNER_OP_PING && ms)
			usleep((useconds_t)atoi(ms) * 1000);
		int rc = signer_answer(&k, op, p, n, &out.p, &out.n);
		free(p);
		int sent = wire_send(SIGNER_FD, rc < 0 ? 1 : 0, &out, 0);
		free(out.p);
		if (sent < 0)
			return 1;
	}
}

/* One request of signer_slow_queue: its result and how long it took. */
struct queued {
	struct signer *s;
	int id, rc;
	bool mine;
	long ms;
};

static void *queued_issue(void *arg)
{
	struct queued *q = arg;
	struct dev_key d;
	char cn[16];
	uint64_t t0 = now_ms_monotonic();

	snprintf(cn, sizeof(cn), "slowq%03d", q->id);
	q->rc = dev_key_new(&d) ? issue_checked(q->s, &d, cn, &q->mine) : SIGNER_FAILED;
	q->ms = (long)(now_ms_monotonic() - t0);
	dev_key_free(&d);
	return NULL;
}

/* signer_slow_queue's and signer_slow_drain's set-up: a test environment @p name with
 * a timeout of 1 s and slow_signer() (400 ms an answer) started as its signer; NULL when
 * any of it failed (said on stderr). */
static struct signer *slow_signer_start(struct tenv *t, const char *name,
                                        struct claimd_config **cfg)
{
	struct topts o = {.extra = "signer:\n  user: nobody\n  timeout_seconds: 1\n"};
	char err[1024] = "", self[1024];
	ssize_t sl = readlink("/proc/self/exe", self, sizeof(self) - 1);
	struct signer *s = NULL;

	if (sl <= 0 || !tenv_setup(t, name, &o))
		return NULL;
	self[sl] = '\0';
	if (!(*cfg = config_load(t->config, err, sizeof(err)))) {
		fprintf(stderr, "config_load: %s\n", err);
		return NULL;
	}
	setenv("SLOW_SIGNER_MS", "400", 1);
	if (!(s = signer_start(self, *cfg, err, sizeof(err))))
		fprintf(stderr, "signer_start: %s\n", err);
	return s;
}

/* @p n (at most 8) requests of @p q (ids 0 to n - 1) started 20 ms apart on @p s, and
 * all ended; one that could not start keeps rc SIGNER_FAILED. */
static void queue_requests(struct signer *s, struct queued *q, int n)
{
	pthread_t th[8];
	int started = 0;

	for (int i = 0; i < n && i < 8; i++) {
		q[i] = (struct queued){.s = s, .id = i, .rc = SIGNER_FAILED};
		if (pthread_create(&th[i], NULL, queued_issue, &q[i]) != 0)
			break;
		started++;
		usleep(20000);
	}
	for (int i = 0; i < started; i++)
		pthread_join(th[i], NULL);
}

/*
 * A signer slow on every request (400 ms) but within the timeout (1 s) on each, with a
 * queue behind it: no request waits for its turn longer than the timeout. Five requests
 * written 20 ms apart: the first three have their turn within a second and get their own
 * certificates; the last two would have theirs after 1.2 and 1.6 s, so they are sent
 * home SIGNER_DOWN ("busy") at about 1 s. The signer is not blamed (not killed), the
 * replies of those that gave up are dropped by whoever comes next, and the next request
 * gets its own certificate.
 */
static void signer_slow_queue(void)
{
	struct tenv t;
	struct claimd_config *cfg = NULL;
	struct signer *s = slow_signer_start(&t, "signer_slow_queue", &cfg);
	REQUIRE(s);

	struct queued q[5];
	queue_requests(s, q, 5);
	for (int i = 0; i < 5; i++)
		fprintf(stderr, "request %d: rc %d after %ld ms\n", i, q[i].rc, q[i].ms);
	for (int i = 0; i < 3; i++)
		CHECKF(q[i].rc == SIGNER_OK && q[i].mine, "request %d: rc %d, own %d", i, q[i].rc,
		       q[i].mine);
	for (int i = 3; i < 5; i++)
		CHECKF(q[i].rc == SIGNER_DOWN && q[i].ms >= 900 && q[i].ms <= 1150,
		       "request %d: rc %d after %ld ms", i, q[i].rc, q[i].ms);
	int st = 0;
	CHECK(!signer_reap(s, &st));
	/* The abandoned replies (due at about 1.6 and 2.0 s) are read and dropped by the
	 * next request, which gets its own. */
	struct queued next = {.s = s, .id = 9};
	queued_issue(&next);
	CHECKF(next.rc == SIGNER_OK && next.mine, "next: rc %d, own %d", next.rc, next.mine);
	for (int i = 0; i < 100 && !signer_ready(s); i++)
		usleep(20000);
	CHECK(signer_ready(s));
	CHECK(!signer_reap(s, &st));
	unsetenv("SLOW_SIGNER_MS");
	signer_free(s);
	config_free(cfg);
	tenv_teardown(&t);
}

/*
 * The same slow signer with a longer queue: eight requests 20 ms apart, the last five
 * giving up at about 1 s, then one more request that finds their five replies (due at
 * 1.6 to 3.2 s) ahead of its own. It reads and drops them only while its own time
 * lasts: it ends (its own reply, or "busy") within twice the timeout, not after all five
 * and its own (about 2.4 s), and the signer is not blamed. What is left the pinger
 * drops with no request behind.
 */
static void signer_slow_drain(void)
{
	struct tenv t;
	struct claimd_config *cfg = NULL;
	struct signer *s = slow_signer_start(&t, "signer_slow_drain", &cfg);
	REQUIRE(s);

	struct queued q[8];
	queue_requests(s, q, 8);
	for (int i = 3; i < 8; i++)
		CHECKF(q[i].rc == SIGNER_DOWN, "request %d: rc %d after %ld ms", i, q[i].rc,
		       q[i].ms);
	struct queued late = {.s = s, .id = 8};
	queued_issue(&late);
	fprintf(stderr, "late request: rc %d after %ld ms\n", late.rc, late.ms);
	CHECKF(late.ms < 2000 && (late.rc == SIGNER_DOWN || (late.rc == SIGNER_OK && late.mine)),
	       "late: rc %d, own %d, after %ld ms", late.rc, late.mine, late.ms);
	int st = 0;
	CHECK(!signer_reap(s, &st));
	/* The replies left (due 2.8 to 3.6 s) are dropped by the pinger with no request
	 * behind them, each as it comes: the signer answers all the while, so it stays ready
	 * (were they left unread, it would not be ready from about 3.4 s). */
	int not_ready = 0;
	for (int i = 0; i < 44; i++) {
		not_ready += !signer_ready(s);
		usleep(50000);
	}
	CHECKF(not_ready == 0, "not ready %d times of 44", not_ready);
	struct queued next = {.s = s, .id = 9};
	queued_issue(&next);
	CHECKF(next.rc == SIGNER_OK && next.mine && next.ms < 900, "next: rc %d, own %d, %ld ms",
	       next.rc, next.mine, next.ms);
	CHECK(!signer_reap(s, &st));
	unsetenv("SLOW_SIGNER_MS");
	signer_free(s);
	config_free(cfg);
	tenv_teardown(&t);
}

static const struct t_case cases[] = {
    {"signer_slow_drain", signer_slow_drain},
    {"signer_slow_queue", signer_slow_queue},
    {"signer_large_crl", signer_large_crl},
    {"signer_paused_pipeline", signer_paused_pipeline},
    {"signer_pipelined", signer_pipelined},
    {"separation_memory_scan", separation_memory_scan},
    {"signer_confined", signer_confined},
    {"signer_hang_gives_503", signer_hang_gives_503},
    {"signer_death_exits", signer_death_exits},
    {"reload_replaces_signer", reload_replaces_signer},
    {"group_stop_exits_0", group_stop_exits_0},
    {"hsm_p256_claims", hsm_p256_claims},
    {"hsm_rsa2048_claims", hsm_rsa2048_claims},
    {"hsm_wrong_pin_refused", hsm_wrong_pin_refused},
    {"signer_policy", signer_policy},
    {"signer_chooses", signer_chooses},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--signer-child") == 0)
		return slow_signer(argv[2]); /* signer_slow_queue's signer */
	return t_main(argc, argv, cases);
}
