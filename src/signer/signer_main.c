/*
 * The signer process's main (server.h): what "claimd --signer-child CONFIG" (started
 * by claimd, signer_start()) and "claimd --signer -c CONFIG" (an external signer on a
 * Unix socket) run. Sheds what it inherited, loads the keys its config names, drops
 * its privileges, makes its start-up proofs confined, says hello with the public side
 * of its keys and serves requests.
 */
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/sandbox.h"
#include "lib/secure.h"
#include "signer/server.h"
#include "signer/wire.h"

/* In the channel's mode, claimd reports the message (at start-up, with -t, or refusing
 * a reload); an external signer has nobody to tell but its log. */
static void hello_failed(enum signer_mode mode, const char *msg)
{
	struct wire_out w = {0};

	if (mode == SIGNER_EXTERNAL) {
		log_error("%s", msg);
		return;
	}
	wire_put_str(&w, msg, strlen(msg));
	wire_send(SIGNER_FD, 1, &w, 0);
	free(w.p);
}

/* Where a SoftHSM2 token keeps its files (directories.tokendir of $SOFTHSM2_CONF), for
 * the message when the confined signer cannot use them; "" when unknown. */
static void token_dir(char *out, size_t outsz)
{
	const char *conf = getenv("SOFTHSM2_CONF");
	char line[1024];
	FILE *f = fopen(conf && conf[0] ? conf : "/etc/softhsm/softhsm2.conf", "r");

	out[0] = '\0';
	while (f && fgets(line, sizeof(line), f)) {
		char *v = line + strspn(line, " \t");
		if (strncmp(v, "directories.tokendir", 20) != 0)
			continue;
		v += 20;
		v += strspn(v, " \t=");
		v[strcspn(v, " \t\r\n")] = '\0';
		snprintf(out, outsz, "%s", v);
	}
	if (f)
		fclose(f);
}

/* Why the confined signer could not use @p key_name (a file or a token): the key, the
 * path or token directory and the user that must be able to read it. */
static void unusable(char *err, size_t errsz, const char *key_name, const char *ref,
                     const char *tokdir, const char *user)
{
	if (strncmp(ref, "pkcs11:", 7) == 0) /* the URI may hold a PIN: never in a message */
		snprintf(err, errsz,
		         "%s: the confined signer (user %s) cannot sign with the token: its files "
		         "(token directory %s) must be readable and writable by user %s",
		         key_name, user, tokdir[0] ? tokdir : "of the PKCS#11 module", user);
	else
		snprintf(err, errsz,
		         "%s: the confined signer (user %s) cannot sign with %s: it must be "
		         "readable by user %s",
		         key_name, user, ref, user);
}

/* The start-up proofs, made as the process that will serve: a test certificate, a test
 * DAC, and a test eFuse key sealed and opened again. */
static int prove(const struct claimd_config *cfg, struct signer_keys *k, const char *tokdir,
                 const char *user, char *err, size_t errsz)
{
	char why[256];
	uint8_t key[EFUSE_KEY_BYTES] = {1}, back[EFUSE_KEY_BYTES], sealed[SEALED_EFUSE_BYTES];

	if (ca_prove(k->ca, why, sizeof(why)) < 0) {
		unusable(err, errsz, "ca.key", cfg->ca_key, tokdir, user);
		return -1;
	}
	if (k->pai && pai_prove(k->pai, why, sizeof(why)) < 0) {
		unusable(err, errsz, "matter.pai_key", cfg->matter_pai_key, tokdir, user);
		return -1;
	}
	efuse_seal(k->secrets, "000000000000", key, sealed);
	bool ok = efuse_open(k->secrets, "000000000000", sealed, sizeof(sealed), back) &&
	          secure_equal(key, back, sizeof(key));
	secure_wipe(back, sizeof(back));
	if (!ok) {
		snprintf(err, errsz,
		         "secrets.key_file: the confined signer cannot seal and open "
		         "a test key");
		return -1;
	}
	return 0;
}

/* The external signer's socket at signer.socket, bound before the privileges go (the
 * directory may be root's); listen() comes after the drop, since a client's
 * SO_PEERCRED names the listener as it was then. Any user may connect (the volume or
 * directory decides who reaches it); the peer's uid decides who is answered. */
static int listen_on(const char *path, char *err, size_t errsz)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	/* A socket left by a signer that ended; anything else at the path is not ours. */
	struct stat st;
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		unlink(path);
	mode_t old = umask(0);
	int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&a, sizeof(a));
	umask(old);
	if (rc < 0 || chmod(path, 0666) < 0) {
		snprintf(err, errsz, "signer.socket: %s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

int signer_main(const char *config, enum signer_mode mode)
{
	struct claimd_config *cfg = NULL;
	struct signer_keys k = {0};
	struct wire_out w = {0};
	struct signer_hello h = {0};
	char err[1024], tokdir[512] = "", user[256];
	int rc = 1, lfd = -1;
	uid_t peer = 0;
	gid_t peer_gid;
	int keep = mode == SIGNER_CHILD ? SIGNER_FD : 2;

	/* Nothing of the parent's but stdio and the channel: no listening socket, no
	 * database connection, whatever the parent forgot to mark close-on-exec. */
	if (close_range((unsigned)keep + 1, ~0U, 0) < 0) {
		/* An old kernel, or a container profile that refuses close_range(2): one by one. */
		struct rlimit rl = {1024, 1024};
		getrlimit(RLIMIT_NOFILE, &rl);
		for (rlim_t fd = (rlim_t)keep + 1; fd < rl.rlim_cur && fd < 1048576; fd++)
			close((int)fd);
	}
	signal(SIGPIPE, SIG_IGN);
	if (mode == SIGNER_CHILD) {
		/* claimd's to handle: a stop (systemd signals the whole group, a terminal's
		 * Ctrl-C the foreground group) must let claimd drain with its signer, which
		 * exits when claimd closes the channel. An external signer stops on SIGTERM. */
		signal(SIGTERM, SIG_IGN);
		signal(SIGINT, SIG_IGN);
		signal(SIGHUP, SIG_IGN);
	}
	prctl(PR_SET_NAME, "claimd-signer", 0, 0, 0); /* not "exe", for ps and top */
	if (secure_init() < 0) {
		hello_failed(mode, "signer: cannot initialise libsodium");
		return 1;
	}
	if (!(cfg = config_load(config, err, sizeof(err))))
		goto fail;
	k.validity_days = cfg->validity_days;
	k.crl_hours = cfg->crl_hours;
	k.product_ids = cfg->matter_product_ids;
	log_set_level(cfg->log_level_value);
	log_set_format(cfg->log_format_value);
	if (mode == SIGNER_EXTERNAL) {
		if (!cfg->signer_socket[0]) {
			snprintf(err, sizeof(err),
			         "%s: signer.socket: required for claimd --signer", cfg->file);
			goto fail;
		}
		if (sandbox_user("server.user", cfg->server_user, &peer, &peer_gid, err,
		                 sizeof(err)) < 0)
			goto fail;
	}
	if (!(k.secrets = secrets_load(cfg->secrets_key_file, err, sizeof(err))))
		goto fail;
	if (!(k.ca = ca_load(cfg->ca_certificate, cfg->ca_key, cfg->ca_chain, err, sizeof(err))))
		goto fail;
	if (ca_set_crl_url(k.ca, cfg->ca_crl_url, err, sizeof(err)) < 0)
		goto fail;
	if (cfg->matter_pai_certificate[0] &&
	    !(k.pai = pai_load(cfg->matter_pai_certificate, cfg->matter_pai_key,
	                       cfg->matter_vendor_id, err, sizeof(err))))
		goto fail;
	bool token = ca_key_in_token(k.ca) || (k.pai && pai_key_in_token(k.pai));
	if (token)
		token_dir(tokdir, sizeof(tokdir));
	if (mode == SIGNER_EXTERNAL && (lfd = listen_on(cfg->signer_socket, err, sizeof(err))) < 0)
		goto fail;
	/* The user the confined signer will be, named now: no user database after. */
	if (geteuid() == 0) {
		snprintf(user, sizeof(user), "%s", cfg->signer_user);
	} else {
		struct passwd *pw = getpwuid(getuid());
		if (pw)
			snprintf(user, sizeof(user), "%s", pw->pw_name);
		else
			snprintf(user, sizeof(user), "uid %ld", (long)getuid());
	}
	unsigned flags = (token ? SANDBOX_TOKEN : 0) | (lfd >= 0 ? SANDBOX_LISTENER : 0);
	if (sandbox_enter(cfg->signer_user, flags, err, sizeof(err)) < 0)
		goto fail;
	if (prove(cfg, &k, tokdir, user, err, sizeof(err)) < 0)
		goto fail;
	if (lfd >= 0 && listen(lfd, SIGNER_PEERS_MAX) < 0) {
		snprintf(err, sizeof(err), "signer.socket: %s: listen: %s", cfg->signer_socket,
		         strerror(errno));
		goto fail;
	}
	h.key_type = ca_key_type(k.ca);
	h.chain = ca_chain_pem(k.ca);
	h.largest_leaf = ca_largest_leaf_pem(k.ca);
	secrets_authid_keys(k.secrets, h.authid_keys, h.authid_keys + 32);
	if (k.pai) {
		h.pai = pai_pem(k.pai);
		h.largest_dac = pai_largest_dac_pem(k.pai);
	}
	wire_put_hello(&w, &h);
	secure_wipe(h.authid_keys, sizeof(h.authid_keys));
	if (mode == SIGNER_EXTERNAL) {
		log_info("signer: listening on %s for uid %ld (CA key %s)", cfg->signer_socket,
		         (long)peer, ca_key_type(k.ca));
		rc = signer_listen(lfd, peer, &w, &k, cfg->signer_timeout * 1000);
	} else if (wire_send(SIGNER_FD, 0, &w, 0) == 0) {
		rc = signer_serve(SIGNER_FD, &k);
	}
	wire_out_clear(&w);
	goto out;
fail:
	hello_failed(mode, err);
out:
	if (lfd >= 0)
		close(lfd);
	ca_free(k.ca);
	pai_free(k.pai);
	secrets_free(k.secrets);
	config_free(cfg);
	return rc;
}
