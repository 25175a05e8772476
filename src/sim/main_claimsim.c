/*
 * claimsim: a simulated device (and, later, phone app, CLI and load generator). The
 * 'self' mode behaves exactly like ESP RainMaker firmware doing a self claim and
 * writes the device key and the certificate it received.
 */
#include <errno.h>
#include <getopt.h>
#include <sys/stat.h>
#include <openssl/pem.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim/bench.h"
#include "lib/secure.h"
#include "sim/sim.h"
#include "lib/util.h"

static void usage(FILE *f)
{
	fputs("usage: claimsim self --url URL --mac MAC --efuse-key HEX [--platform P]\n"
	      "                     [--key ec|rsa] [--key-file F] [--out DIR] [--root CA.pem]\n"
	      "                     [--node-policies S] [--cacert FILE]\n"
	      "  Self-claims like ESP RainMaker firmware against URL (the firmware's\n"
	      "  CONFIG_ESP_RMAKER_CLAIM_SERVICE_BASE_URL). Writes DIR/MAC.key and DIR/MAC.crt;\n"
	      "  --key-file reuses a key across runs (as the device does after a reboot);\n"
	      "  --root also verifies the chain up to that root. Exit 0 on success.\n"
	      "       claimsim app|cli --url URL --token TOKEN --mac MAC [--platform P]\n"
	      "                     [--ios] [--key ec|rsa] [--key-file F] [--out DIR] [--root "
	      "CA.pem]\n"
	      "                     [--cacert FILE]\n"
	      "  Assisted claiming as the phone app relays it (Android's Gson escaping, or\n"
	      "  --ios), or host-driven claiming as the RainMaker CLI does it, with a user's\n"
	      "  access token. Writes DIR/NODE_ID.key and DIR/NODE_ID.crt. cli first asks\n"
	      "  URL/mqtt_host as the CLI does, and after the claim writes and checks the files\n"
	      "  the CLI's NVS image reads, in DIR/MAC/ (node.info, endpoint.info,\n"
	      "  mqtt_cred_host.info, node.crt, node.key, node_info.csv). Defaults:\n"
	      "  platform esp32 (app) or host (cli).\n"
	      "       claimsim cli --matter --vendor-id VID --product-id PID --url URL --token T\n"
	      "                     --mac MAC [--platform P] [--key-file F] [--out DIR]\n"
	      "                     [--root PAA.pem] [--cacert FILE]\n"
	      "  A Matter claim as `esp-rainmaker-cli claim --matter` makes it (P-256 CSR with\n"
	      "  the vendor and product id, ?matter=True); the reply is split into the DAC and\n"
	      "  the PAI, written as DIR/NODE_ID.dac.der and DIR/NODE_ID.pai.der; --root\n"
	      "  verifies DAC -> PAI -> that PAA.\n"
	      "       claimsim bench --url URL --devices FILE.csv [--concurrency N] [--count N]\n"
	      "                      [--duration S] [--key ec|rsa] [--verify] [--root CA.pem]\n"
	      "                      [--pid PID] [--cfssl] [--keep-alive] [--rate N] [--cacert "
	      "FILE]\n"
	      "                      [--pause MS] [--serials FILE] [--replies FILE]\n"
	      "                      [--user-share PCT --idp DIR --issuer ISS [--audience AUD]\n"
	      "                       [--kid KID] [--users N]]\n"
	      "  Many devices doing complete self claims (keys and CSRs prepared first, a new\n"
	      "  connection per request as the firmware does). Prints claims/s, requests/s,\n"
	      "  latency percentiles per endpoint, errors by kind, the CPU time per claim and,\n"
	      "  with --pid, claimd's share of it and its peak RSS. Defaults: 64 clients, 10 s.\n"
	      "  --cfssl instead sends each device's CSR\n"
	      "  to a cfssl server's /api/v1/cfssl/sign (the comparison in tests/bench).\n"
	      "  --keep-alive keeps one connection per client (as a reverse proxy would).\n"
	      "  --rate N starts N claims per second in all (a line of devices arriving)\n"
	      "  instead of as many as the clients can; latency counts from when each was due.\n"
	      "  --pause MS waits between each initiate and its verify (a device answering).\n"
	      "  --user-share PCT makes PCT of every hundred claims assisted claims as the\n"
	      "  Android app relays them (0-100; 100: user claims only): initiate with a\n"
	      "  user's access token, a CSR for the node_id it returns, verify. The tokens are\n"
	      "  minted before the clock from the development IdP in DIR (claimctl dev-idp:\n"
	      "  DIR/idp.key, key id KID, default dev-1) for ISS and AUD, one each for users\n"
	      "  bench-user-1 to bench-user-N (default 16), who take the claims in turn. The\n"
	      "  report then adds a line per flow (self claims:, user claims:).\n"
	      "  The replies are counted as a device sees them: 200, 503 with Retry-After and\n"
	      "  the failure body, other, transport errors, cut short, later than 5 s.\n"
	      "  --serials FILE writes \"SERIAL NODE_ID\" for every certificate received (the\n"
	      "  claims acknowledged), \"SERIAL NODE_ID MAC USER\" for a user claim's;\n"
	      "  --replies FILE a line per exchange: \"UNIX_TIME STAGE CLASS STATUS MS FLOW\"\n"
	      "  (CLASS 200, 503-retry-after, other, transport or cut; FLOW self, user or\n"
	      "  cfssl).\n"
	      "  SIGINT or SIGTERM ends a bench early: claims under way finish, then the report.\n"
	      "Every URL may be https://: the server's certificate is then verified against\n"
	      "--cacert FILE (PEM; default the system's trust store) and the URL's host, as the\n"
	      "firmware checks its claiming server; replies are framed and checked the same.\n"
	      "options: -h, --help; -V, --version\n",
	      f);
}

/* Options every device-simulating command takes. */
struct dev_opts {
	const char *url, *keytype, *keyfile, *out, *root, *cacert;
};

/* --out DIR: made (mode 0700, one level) when missing, as a new user expects; false
 * after a message naming the directory when it cannot be. */
static bool out_dir_ready(const struct dev_opts *o)
{
	struct stat st;

	if (stat(o->out, &st) == 0 && S_ISDIR(st.st_mode))
		return true;
	if (mkdir(o->out, 0700) == 0)
		return true;
	fprintf(stderr, "claimsim: --out %s: cannot create the directory: %s\n", o->out,
	        strerror(errno));
	return false;
}

static bool dev_opt(int c, struct dev_opts *o)
{
	switch (c) {
	case 'u':
		o->url = optarg;
		return true;
	case 'k':
		o->keytype = optarg;
		return true;
	case 'f':
		o->keyfile = optarg;
		return true;
	case 'o':
		o->out = optarg;
		return true;
	case 'r':
		o->root = optarg;
		return true;
	case 'C':
		o->cacert = optarg;
		return true;
	default:
		return false;
	}
}

/* Parses @p url and, for https, loads --cacert; false (after a message) on failure. */
static bool url_setup(const char *url, const char *cacert, struct http_url *u)
{
	char err[512];

	if (!http_url_parse(url, u)) {
		fprintf(stderr,
		        "claimsim: --url must be http://HOST[:PORT][/BASE] or https://...\n");
		return false;
	}
	if (http_url_tls(u, cacert, err, sizeof(err)) < 0) {
		fprintf(stderr, "claimsim: %s\n", err);
		return false;
	}
	return true;
}

static int write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return -1;
	fputs(text, f);
	fputc('\n', f);
	return fclose(f);
}

/* Writes @p n bytes to @p path; 0 or -1. */
static int write_bytes(const char *path, const uint8_t *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	int rc = f && fwrite(p, 1, n, f) == n ? 0 : -1;
	if (f && fclose(f) != 0)
		rc = -1;
	return rc;
}

/* The self claim once the URL is ready: key, claim, files. */
static int self_run(const struct http_url *u, struct sim_device *d, const struct dev_opts *o,
                    const char *policies)
{
	struct sim_result res;
	char path[4096], keypath[4096];
	const char *keyfile;

	keyfile = o->keyfile;
	if (!keyfile) {
		snprintf(keypath, sizeof(keypath), "%s/%s.key", o->out, d->mac);
		keyfile = keypath;
	}
	if (!(d->key = sim_key_load_or_create(keyfile, o->keytype))) {
		fprintf(stderr, "claimsim: cannot load or create %s\n", keyfile);
		return 1;
	}
	if (sim_self_claim(u, d, policies, o->root, &res) < 0) {
		fprintf(stderr, "claimsim: self claim of %s failed at %s: %s\n", d->mac,
		        res.stage == 1   ? "initiate"
		        : res.stage == 2 ? "verify"
		                         : "checking",
		        res.err);
		EVP_PKEY_free(d->key);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/%s.crt", o->out, d->mac);
	if (write_file(path, res.certificate) < 0) {
		fprintf(stderr, "claimsim: cannot write %s\n", path);
		free(res.certificate);
		EVP_PKEY_free(d->key);
		return 1;
	}
	printf("claimsim: %s self-claimed; certificate chain in %s (key %s)\n", d->mac, path,
	       keyfile);
	free(res.certificate);
	EVP_PKEY_free(d->key);
	return 0;
}

static int cmd_self(int argc, char **argv)
{
	static const struct option opts[] = {{"url", required_argument, NULL, 'u'},
	                                     {"mac", required_argument, NULL, 'm'},
	                                     {"efuse-key", required_argument, NULL, 'e'},
	                                     {"platform", required_argument, NULL, 'p'},
	                                     {"key", required_argument, NULL, 'k'},
	                                     {"key-file", required_argument, NULL, 'f'},
	                                     {"out", required_argument, NULL, 'o'},
	                                     {"root", required_argument, NULL, 'r'},
	                                     {"node-policies", required_argument, NULL, 'n'},
	                                     {"cacert", required_argument, NULL, 'C'},
	                                     {NULL, 0, NULL, 0}};
	struct dev_opts o = {.keytype = "ec", .out = "."};
	const char *mac = NULL, *efuse = NULL, *policies = NULL;
	struct sim_device d = {0};
	struct http_url u;
	int c;

	strcpy(d.platform, "esp32s3");
	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (dev_opt(c, &o))
			continue;
		switch (c) {
		case 'm':
			mac = optarg;
			break;
		case 'e':
			efuse = optarg;
			break;
		case 'p':
			snprintf(d.platform, sizeof(d.platform), "%s", optarg);
			break;
		case 'n':
			policies = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (!o.url || !mac || !efuse) {
		usage(stderr);
		return 2;
	}
	if (!mac_normalize(d.mac, mac, strlen(mac)) ||
	    !hex_decode(d.efuse_key, 16, efuse, strlen(efuse), true)) {
		fprintf(stderr, "claimsim: --mac needs 12 hex digits, --efuse-key 32\n");
		return 2;
	}
	if (!out_dir_ready(&o))
		return 1;
	if (!url_setup(o.url, o.cacert, &u))
		return 2;
	int rc = self_run(&u, &d, &o, policies);
	http_url_free(&u);
	return rc;
}

/*
 * The files the RainMaker CLI writes after a claim and hands to the NVS partition
 * generator (rmaker_claim/claim.py: save_claim_data, set_csv_file_data), in DIR/MAC/:
 * the CSV names five files, and the generator stops at the first one missing. They are
 * written from what the replies carried, then every file the CSV names is checked as
 * the generator would read it. 0, or -1 after a message naming the file.
 */
static int cli_nvs_inputs(const char *out, const char *mac, const struct sim_user_result *res,
                          const char *cert, EVP_PKEY *key)
{
	static const char *const names[][2] = {{"node_id", "node.info"},
	                                       {"mqtt_host", "endpoint.info"},
	                                       {"mqtt_cred_host", "mqtt_cred_host.info"},
	                                       {"client_cert", "node.crt"},
	                                       {"client_key", "node.key"}};
	char dir[2048], path[4096];
	FILE *f;
	bool ok;

	snprintf(dir, sizeof(dir), "%s/%s", out, mac);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "claimsim: cannot make %s: %s\n", dir, strerror(errno));
		return -1;
	}
	/* The CLI writes mqtt_cred_host.info only when the reply's member is non-empty. */
	const char *text[] = {res->node_id, res->mqtt_host,
	                      res->mqtt_cred_host[0] ? res->mqtt_cred_host : NULL, cert};
	for (size_t i = 0; i < 4; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, names[i][1]);
		/* As the CLI writes them: the bare text, no line end (NVS stores it all). */
		if (text[i] && write_bytes(path, (const uint8_t *)text[i], strlen(text[i])) < 0) {
			fprintf(stderr, "claimsim: cannot write %s\n", path);
			return -1;
		}
	}
	snprintf(path, sizeof(path), "%s/node.key", dir);
	f = fopen(path, "w");
	ok = f && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
	if (f && fclose(f) != 0)
		ok = false;
	snprintf(path, sizeof(path), "%s/node_info.csv", dir);
	if (!ok || !(f = fopen(path, "w"))) {
		fprintf(stderr, "claimsim: cannot write the CLI's files in %s\n", dir);
		return -1;
	}
	fputs("key,type,encoding,value\nrmaker_creds,namespace,,\n", f);
	for (size_t i = 0; i < 5; i++)
		fprintf(f, "%s,file,binary,%s/%s\n", names[i][0], dir, names[i][1]);
	if (fclose(f) != 0)
		return -1;
	for (size_t i = 0; i < 5; i++) {
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i][1]);
		if (stat(path, &st) < 0 || st.st_size == 0) {
			fprintf(stderr,
			        "claimsim: the CLI's NVS image would fail: %s (key %s) %s\n", path,
			        names[i][0],
			        st.st_size == 0 && errno != ENOENT ? "is empty" : "is missing");
			return -1;
		}
	}
	return 0;
}

/* The app or CLI claim once the URL is ready: key, claim, files. */
static int user_run(const struct http_url *u, enum sim_client client, const char *token,
                    const char *mac, const char *platform, const struct dev_opts *o)
{
	struct sim_user_result res;
	EVP_PKEY *key;
	char path[4096];

	/* The node_id is not known before initiate, so a reusable key needs --key-file. */
	key = o->keyfile ? sim_key_load_or_create(o->keyfile, o->keytype) : sim_key_new(o->keytype);
	if (!key) {
		fprintf(stderr, "claimsim: cannot make the device key\n");
		return 1;
	}
	if (sim_user_claim(u, client, token, mac, platform, key, o->root, &res) < 0) {
		fprintf(stderr, "claimsim: %s claim of %s failed at %s: %s\n",
		        client == SIM_CLI ? "cli" : "app", mac,
		        res.stage == 0   ? "GET /mqtt_host"
		        : res.stage == 1 ? "initiate"
		        : res.stage == 2 ? "verify"
		                         : "checking",
		        res.err);
		EVP_PKEY_free(key);
		return 1;
	}
	snprintf(path, sizeof(path), "%s/%s.crt", o->out, res.node_id);
	int rc = write_file(path, res.certificate);
	if (rc == 0 && !o->keyfile) {
		char kp[4096];
		snprintf(kp, sizeof(kp), "%s/%s.key", o->out, res.node_id);
		FILE *f = fopen(kp, "w");
		rc = f && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL) ? 0 : -1;
		if (f)
			fclose(f);
	}
	if (rc < 0)
		fprintf(stderr, "claimsim: cannot write %s\n", path);
	else if (client == SIM_CLI && cli_nvs_inputs(o->out, mac, &res, res.certificate, key) < 0)
		rc = -1;
	else
		printf("claimsim: %s claimed %s as node %s; certificate chain in %s\n",
		       client == SIM_CLI   ? "cli"
		       : client == SIM_IOS ? "ios app"
		                           : "android app",
		       mac, res.node_id, path);
	free(res.certificate);
	free(res.body);
	EVP_PKEY_free(key);
	return rc == 0 ? 0 : 1;
}

/* claimsim cli --matter: the claim, then the two DER files and the key. */
static int matter_run(const struct http_url *u, const char *token, const char *mac,
                      const char *platform, const char *vid, const char *pid,
                      const struct dev_opts *o)
{
	struct sim_matter_result res;
	EVP_PKEY *key = o->keyfile ? sim_key_load_or_create(o->keyfile, "ec") : sim_key_new("ec");
	char dac[4096], pai[4096], kp[4096];
	int rc = 1;

	if (!key) {
		fprintf(stderr, "claimsim: cannot make the device key\n");
		return 1;
	}
	if (sim_matter_claim(u, token, mac, platform, key, vid, pid, o->root, &res) < 0) {
		fprintf(stderr, "claimsim: matter claim of %s failed at %s: %s\n", mac,
		        res.u.stage == 0   ? "GET /mqtt_host"
		        : res.u.stage == 1 ? "initiate"
		        : res.u.stage == 2 ? "verify"
		                           : "checking",
		        res.u.err);
		goto out;
	}
	snprintf(dac, sizeof(dac), "%s/%s.dac.der", o->out, res.u.node_id);
	snprintf(pai, sizeof(pai), "%s/%s.pai.der", o->out, res.u.node_id);
	snprintf(kp, sizeof(kp), "%s/%s.key", o->out, res.u.node_id);
	if (write_bytes(dac, res.dac, res.dac_len) < 0 ||
	    write_bytes(pai, res.pai, res.pai_len) < 0) {
		fprintf(stderr, "claimsim: cannot write %s or %s\n", dac, pai);
		goto out;
	}
	if (!o->keyfile) {
		FILE *f = fopen(kp, "w");
		bool ok = f && PEM_write_PrivateKey(f, key, NULL, NULL, 0, NULL, NULL);
		if (f)
			fclose(f);
		if (!ok) {
			fprintf(stderr, "claimsim: cannot write %s\n", kp);
			goto out;
		}
	}
	if (cli_nvs_inputs(o->out, mac, &res.u, res.u.certificate, key) < 0)
		goto out;
	printf("claimsim: cli claimed %s as Matter node %s; DAC in %s, PAI in %s\n", mac,
	       res.u.node_id, dac, pai);
	rc = 0;
out:
	sim_matter_result_free(&res);
	EVP_PKEY_free(key);
	return rc;
}

static int cmd_user(int argc, char **argv, bool cli)
{
	static const struct option opts[] = {{"url", required_argument, NULL, 'u'},
	                                     {"token", required_argument, NULL, 't'},
	                                     {"mac", required_argument, NULL, 'm'},
	                                     {"platform", required_argument, NULL, 'p'},
	                                     {"ios", no_argument, NULL, 'i'},
	                                     {"key", required_argument, NULL, 'k'},
	                                     {"key-file", required_argument, NULL, 'f'},
	                                     {"out", required_argument, NULL, 'o'},
	                                     {"root", required_argument, NULL, 'r'},
	                                     {"cacert", required_argument, NULL, 'C'},
	                                     {"matter", no_argument, NULL, 'M'},
	                                     {"vendor-id", required_argument, NULL, 'V'},
	                                     {"product-id", required_argument, NULL, 'P'},
	                                     {NULL, 0, NULL, 0}};
	struct dev_opts o = {.keytype = "ec", .out = "."};
	const char *token = NULL, *mac = NULL, *platform = cli ? "host" : "esp32";
	const char *vid = NULL, *pid = NULL;
	bool matter = false;
	enum sim_client client = cli ? SIM_CLI : SIM_ANDROID;
	struct http_url u;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (dev_opt(c, &o))
			continue;
		switch (c) {
		case 't':
			token = optarg;
			break;
		case 'm':
			mac = optarg;
			break;
		case 'p':
			platform = optarg;
			break;
		case 'i':
			client = cli ? SIM_CLI : SIM_IOS;
			break;
		case 'M':
			matter = true;
			break;
		case 'V':
			vid = optarg;
			break;
		case 'P':
			pid = optarg;
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	/* Matter is the CLI's alone, and needs both ids for the CSR's subject. */
	if (!o.url || !token || !mac || (matter && (!cli || !vid || !pid)) ||
	    (!matter && (vid || pid))) {
		usage(stderr);
		return 2;
	}
	if (!out_dir_ready(&o))
		return 1;
	if (!url_setup(o.url, o.cacert, &u))
		return 2;
	int rc = matter ? matter_run(&u, token, mac, platform, vid, pid, &o)
	                : user_run(&u, client, token, mac, platform, &o);
	http_url_free(&u);
	return rc;
}

static void on_stop_signal(int sig)
{
	(void)sig;
	bench_stop();
}

static int cmd_bench(int argc, char **argv)
{
	static const struct option opts[] = {{"url", required_argument, NULL, 'u'},
	                                     {"devices", required_argument, NULL, 'd'},
	                                     {"concurrency", required_argument, NULL, 'c'},
	                                     {"count", required_argument, NULL, 'n'},
	                                     {"duration", required_argument, NULL, 't'},
	                                     {"key", required_argument, NULL, 'k'},
	                                     {"verify", no_argument, NULL, 'v'},
	                                     {"root", required_argument, NULL, 'r'},
	                                     {"pid", required_argument, NULL, 'p'},
	                                     {"cfssl", no_argument, NULL, 'x'},
	                                     {"keep-alive", no_argument, NULL, 'K'},
	                                     {"rate", required_argument, NULL, 'R'},
	                                     {"cacert", required_argument, NULL, 'C'},
	                                     {"serials", required_argument, NULL, 'S'},
	                                     {"replies", required_argument, NULL, 'L'},
	                                     {"pause", required_argument, NULL, 'P'},
	                                     {"user-share", required_argument, NULL, 'U'},
	                                     {"idp", required_argument, NULL, 'I'},
	                                     {"issuer", required_argument, NULL, 'i'},
	                                     {"audience", required_argument, NULL, 'a'},
	                                     {"kid", required_argument, NULL, 'D'},
	                                     {"users", required_argument, NULL, 'N'},
	                                     {NULL, 0, NULL, 0}};
	struct bench_opts o = {.key_type = "ec", .concurrency = 64, .duration = 10, .users = 16};
	long share = 0, users = 16;
	int c;

	optind = 1;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'u':
			o.url = optarg;
			break;
		case 'd':
			o.devices_file = optarg;
			break;
		case 'c':
			o.concurrency = (unsigned)atoi(optarg);
			break;
		case 'n':
			o.count = atol(optarg);
			break;
		case 't':
			o.duration = atof(optarg);
			break;
		case 'k':
			o.key_type = optarg;
			break;
		case 'v':
			o.verify = true;
			break;
		case 'r':
			o.root = optarg;
			break;
		case 'p':
			o.pid = atoi(optarg);
			break;
		case 'x':
			o.cfssl = true;
			break;
		case 'K':
			o.keep_alive = true;
			break;
		case 'R':
			o.rate = atof(optarg);
			break;
		case 'C':
			o.cacert = optarg;
			break;
		case 'S':
			o.serials_file = optarg;
			break;
		case 'L':
			o.replies_file = optarg;
			break;
		case 'P':
			o.pause_ms = (unsigned)atoi(optarg);
			break;
		case 'U':
			share = atol(optarg);
			break;
		case 'I':
			o.idp_dir = optarg;
			break;
		case 'i':
			o.issuer = optarg;
			break;
		case 'a':
			o.audience = optarg;
			break;
		case 'D':
			o.kid = optarg;
			break;
		case 'N':
			users = atol(optarg);
			break;
		default:
			usage(stderr);
			return 2;
		}
	}
	/* A user share needs the IdP to mint the users' tokens; cfssl has no users. */
	if (share < 0 || share > 100 || users < 1 || users > 100000 ||
	    (share > 0 && (!o.idp_dir || !o.issuer || o.cfssl))) {
		usage(stderr);
		return 2;
	}
	o.user_share = (unsigned)share;
	o.users = (unsigned)users;
	if (!o.url || !o.devices_file || o.concurrency == 0 || o.concurrency > 4096 || o.rate < 0) {
		usage(stderr);
		return 2;
	}
	/* SIGINT or SIGTERM ends the run early with its report (and complete log files). */
	struct sigaction sa = {.sa_handler = on_stop_signal};
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	return bench_run(&o, stdout);
}

int main(int argc, char **argv)
{
	if (argc >= 2 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0)) {
		usage(stdout);
		return 0;
	}
	/* claimsim SUBCOMMAND --help (or -h anywhere among its options): the usage, exit 0,
	 * as claimctl answers every command's --help. */
	for (int i = 2; i < argc; i++)
		if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
			usage(stdout);
			return 0;
		}
	if (argc >= 2 && (strcmp(argv[1], "-V") == 0 || strcmp(argv[1], "--version") == 0)) {
		printf("claimsim %s\n", CLAIMD_VERSION);
		return 0;
	}
	if (secure_init() < 0)
		return 1;
	/* A TLS write to a server that has hung up must be an error, not the end. */
	signal(SIGPIPE, SIG_IGN);
	if (argc >= 2 && strcmp(argv[1], "self") == 0)
		return cmd_self(argc - 1, argv + 1);
	if (argc >= 2 && (strcmp(argv[1], "app") == 0 || strcmp(argv[1], "cli") == 0))
		return cmd_user(argc - 1, argv + 1, strcmp(argv[1], "cli") == 0);
	if (argc >= 2 && strcmp(argv[1], "bench") == 0)
		return cmd_bench(argc - 1, argv + 1);
	usage(stderr);
	return 2;
}
