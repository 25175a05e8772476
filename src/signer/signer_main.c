/*
 * The signer process's main (server.h): what "claimd --signer CONFIG" runs. Sheds
 * what it inherited, loads the keys its config names, drops its privileges, says hello
 * with the public side of its keys and serves requests until claimd closes the
 * channel. claimd starts it (signer_start(), signer.h) before it opens a socket.
 */
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <unistd.h>

#include "lib/config.h"
#include "lib/log.h"
#include "lib/sandbox.h"
#include "lib/secure.h"
#include "signer/server.h"
#include "signer/wire.h"

static void hello_failed(const char *msg)
{
	struct wire_out w = {0};
	wire_put_str(&w, msg, strlen(msg));
	wire_send(SIGNER_FD, 1, &w, 0);
	free(w.p);
}

int signer_main(const char *config)
{
	struct claimd_config *cfg = NULL;
	struct signer_keys k = {0};
	struct wire_out w = {0};
	struct signer_hello h = {0};
	char err[1024];
	int rc = 1;

	/* Nothing of the parent's but stdio and the channel: no listening socket, no
	 * database connection, whatever the parent forgot to mark close-on-exec. */
	if (close_range(SIGNER_FD + 1, ~0U, 0) < 0) {
		/* An old kernel, or a container profile that refuses close_range(2): one by one. */
		struct rlimit rl = {1024, 1024};
		getrlimit(RLIMIT_NOFILE, &rl);
		for (rlim_t fd = SIGNER_FD + 1; fd < rl.rlim_cur && fd < 1048576; fd++)
			close((int)fd);
	}
	signal(SIGPIPE, SIG_IGN);
	/* claimd's to handle: a stop (systemd signals the whole group, a terminal's Ctrl-C
	 * the foreground group) must let claimd drain with its signer, which exits when
	 * claimd closes the channel. */
	signal(SIGTERM, SIG_IGN);
	signal(SIGINT, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	prctl(PR_SET_NAME, "claimd-signer", 0, 0, 0); /* not "exe", for ps and top */
	if (secure_init() < 0) {
		hello_failed("signer: cannot initialise libsodium");
		return 1;
	}
	if (!(cfg = config_load(config, err, sizeof(err))))
		goto fail;
	k.validity_days = cfg->validity_days;
	k.crl_hours = cfg->crl_hours;
	k.product_ids = cfg->matter_product_ids;
	log_set_level(cfg->log_level_value);
	log_set_format(cfg->log_format_value);
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
	if (sandbox_enter(cfg->signer_user, token, err, sizeof(err)) < 0)
		goto fail;
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
	int sent = wire_send(SIGNER_FD, 0, &w, 0);
	wire_out_clear(&w);
	if (sent == 0)
		rc = signer_serve(SIGNER_FD, &k);
	goto out;
fail:
	hello_failed(err); /* claimd reports it: at start-up, with -t, or refusing a reload */
out:
	ca_free(k.ca);
	pai_free(k.pai);
	secrets_free(k.secrets);
	config_free(cfg);
	return rc;
}
