/*
 * Simulated firmware. Request bodies are printed with the firmware's own formats;
 * replies are read with the firmware's limits (63-character auth_id, 129-character
 * challenge, 3071-byte body, status exactly 200 with a Content-Length).
 */
#include "sim/sim.h"

#include <fcntl.h>
#include <jansson.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/secure.h"
#include "lib/util.h"

#define TOKEN_HDR_MAX 9000

EVP_PKEY *sim_key_new(const char *type)
{
	if (strcmp(type, "ec") == 0)
		return EVP_EC_gen("P-256");
	if (strcmp(type, "rsa") == 0)
		return EVP_RSA_gen(2048);
	return NULL;
}

EVP_PKEY *sim_key_load_or_create(const char *path, const char *type)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k;
	int fd;

	if (f) {
		k = PEM_read_PrivateKey(f, NULL, NULL, NULL);
		fclose(f);
		return k;
	}
	if (!(k = sim_key_new(type)))
		return NULL;
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || !(f = fdopen(fd, "w"))) {
		if (fd >= 0)
			close(fd);
		EVP_PKEY_free(k);
		return NULL;
	}
	if (!PEM_write_PrivateKey(f, k, NULL, NULL, 0, NULL, NULL)) {
		fclose(f);
		EVP_PKEY_free(k);
		return NULL;
	}
	fclose(f);
	return k;
}

char *sim_csr_pem(EVP_PKEY *key, const char *cn, bool cli_style)
{
	X509_REQ *r = X509_REQ_new();
	BIO *b = BIO_new(BIO_s_mem());
	STACK_OF(X509_EXTENSION) *exts = NULL;
	char *data, *out = NULL;
	long n;

	if (!r || !b || !X509_REQ_set_version(r, 0) ||
	    !X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(r), "CN", MBSTRING_ASC,
	                                (const unsigned char *)cn, -1, -1, 0) ||
	    !X509_REQ_set_pubkey(r, key))
		goto out;
	if (cli_style) {
		exts = sk_X509_EXTENSION_new_null();
		X509_EXTENSION *e =
		    X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:FALSE");
		if (!exts || !e || !sk_X509_EXTENSION_push(exts, e) ||
		    !X509_REQ_add_extensions(r, exts)) {
			X509_EXTENSION_free(e);
			goto out;
		}
	}
	if (!X509_REQ_sign(r, key, EVP_sha256()) || !PEM_write_bio_X509_REQ(b, r))
		goto out;
	n = BIO_get_mem_data(b, &data);
	/* mbedtls writes no trailing newline after the END line; the CLI keeps one. */
	if (!cli_style)
		while (n > 0 && data[n - 1] == '\n')
			n--;
	out = strndup(data, (size_t)n);
out:
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	BIO_free(b);
	X509_REQ_free(r);
	return out;
}

char *sim_firmware_escape(const char *pem)
{
	size_t n = strlen(pem);
	char *out = malloc(2 * n + 1), *o = out;

	if (!out)
		return NULL;
	if (n > 0 && pem[n - 1] == '\n')
		n--;
	for (size_t i = 0; i < n; i++) {
		if (pem[i] == '\n') {
			*o++ = '\\';
			*o++ = 'n';
		} else {
			*o++ = pem[i];
		}
	}
	*o = '\0';
	return out;
}

bool sim_firmware_string(const char *body, const char *key, char *out, size_t max, bool unescape)
{
	char pat[64];
	const char *p, *end;
	json_t *j, *v;
	bool same;

	snprintf(pat, sizeof(pat), "\"%s\":\"", key);
	if (!(p = strstr(body, pat)))
		return false;
	p += strlen(pat);
	for (end = p; *end && *end != '"'; end++)
		if (*end == '\\' && end[1])
			end++;
	if (*end != '"' || (size_t)(end - p) >= max)
		return false;
	memcpy(out, p, (size_t)(end - p));
	out[end - p] = '\0';
	if (unescape) {
		/* The firmware's unescape: "\n" -> newline, any other "\x" -> "x". */
		char *s = out, *t = out;
		while (*s) {
			if (*s == '\\') {
				s++;
				if (*s == 'n') {
					*t++ = '\n';
					s++;
					continue;
				}
			}
			*t++ = *s++;
		}
		*t = '\0';
	}
	/* What the firmware read must be what the JSON says. */
	j = json_loads(body, 0, NULL);
	v = j ? json_object_get(j, key) : NULL;
	same = v && json_is_string(v) && strcmp(json_string_value(v), out) == 0;
	json_decref(j);
	return same;
}

void sim_challenge_response(const uint8_t efuse_key[16], const char *challenge, char out[129])
{
	uint8_t mac[64];
	secure_hmac_sha512(mac, efuse_key, 16, challenge, strlen(challenge));
	hex_encode_upper(out, mac, sizeof(mac));
}

static STACK_OF(X509) * read_chain(const char *pem)
{
	BIO *b = BIO_new_mem_buf(pem, -1);
	STACK_OF(X509) *sk = sk_X509_new_null();
	X509 *x;

	while (b && sk && (x = PEM_read_bio_X509(b, NULL, NULL, NULL)) != NULL)
		sk_X509_push(sk, x);
	ERR_clear_error();
	BIO_free(b);
	return sk;
}

/* Whether @p leaf verifies up to the root(s) in @p root_file through @p untrusted, for
 * @p purpose (0: any). 0, or -1 with a message naming @p root_file. */
static int verify_to_root(X509 *leaf, STACK_OF(X509) * untrusted, const char *root_file,
                          int purpose, char *err, size_t errsz)
{
	X509_STORE *store = X509_STORE_new();
	X509_STORE_CTX *ctx = X509_STORE_CTX_new();
	int rc = -1;

	if (!store || !ctx || X509_STORE_load_file(store, root_file) != 1 ||
	    !X509_STORE_CTX_init(ctx, store, leaf, untrusted)) {
		snprintf(err, errsz, "cannot load %s", root_file);
		goto out;
	}
	if (purpose)
		X509_STORE_CTX_set_purpose(ctx, purpose);
	if (X509_verify_cert(ctx) != 1) {
		snprintf(err, errsz, "chain does not verify against %s: %s", root_file,
		         X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx)));
		goto out;
	}
	rc = 0;
out:
	ERR_clear_error();
	X509_STORE_CTX_free(ctx);
	X509_STORE_free(store);
	return rc;
}

bool sim_leaf_serial(const char *chain_pem, char *out, size_t outsz)
{
	STACK_OF(X509) *sk = read_chain(chain_pem);
	const ASN1_INTEGER *serial =
	    sk && sk_X509_num(sk) > 0 ? X509_get0_serialNumber(sk_X509_value(sk, 0)) : NULL;
	/* The DER content octets: a positive serial's bytes, as claimd chose them. */
	const unsigned char *b = serial ? ASN1_STRING_get0_data(serial) : NULL;
	int n = serial ? ASN1_STRING_length(serial) : 0;
	bool ok = b && n > 0 && (size_t)n * 2 < outsz;

	if (ok)
		hex_encode_upper(out, b, (size_t)n);
	sk_X509_pop_free(sk, X509_free);
	return ok;
}

int sim_check_chain(const char *chain_pem, EVP_PKEY *key, const char *cn, const char *root_file,
                    char *err, size_t errsz)
{
	STACK_OF(X509) *sk = read_chain(chain_pem);
	X509 *leaf, *issuer;
	char got[128];
	int rc = -1;
	size_t n = strlen(chain_pem);

	if (n == 0 || chain_pem[n - 1] == '\n' || strstr(chain_pem, "\n\n") ||
	    strchr(chain_pem, '\r')) {
		snprintf(err, errsz, "chain has a trailing newline, a blank line or a CR");
		goto out;
	}
	if (!sk || sk_X509_num(sk) < 2) {
		snprintf(err, errsz, "expected the leaf and the issuing CA certificate");
		goto out;
	}
	leaf = sk_X509_value(sk, 0);
	issuer = sk_X509_value(sk, 1);
	if (EVP_PKEY_eq(X509_get0_pubkey(leaf), key) != 1) {
		snprintf(err, errsz, "certificate key does not match the device key");
		goto out;
	}
	X509_NAME *subj = X509_get_subject_name(leaf);
	if (X509_NAME_entry_count(subj) != 1 ||
	    X509_NAME_get_text_by_NID(subj, NID_commonName, got, sizeof(got)) < 0 ||
	    strcmp(got, cn) != 0) {
		snprintf(err, errsz, "certificate subject is not CN=%s", cn);
		goto out;
	}
	if (X509_verify(leaf, X509_get0_pubkey(issuer)) != 1) {
		snprintf(err, errsz, "leaf is not signed by the CA certificate that follows it");
		goto out;
	}
	if (!(X509_get_extended_key_usage(leaf) & XKU_SSL_CLIENT) || X509_check_ca(leaf) != 0) {
		snprintf(err, errsz, "leaf lacks clientAuth or claims to be a CA");
		goto out;
	}
	if (root_file &&
	    verify_to_root(leaf, sk, root_file, X509_PURPOSE_SSL_CLIENT, err, errsz) < 0)
		goto out;
	rc = 0;
out:
	ERR_clear_error();
	sk_X509_pop_free(sk, X509_free);
	return rc;
}

/* The firmware accepts only status 200 with a positive Content-Length and a body that
 * fits its 3072-byte buffer. */
static int firmware_accepts(const struct http_response *r, struct sim_result *res)
{
	res->status = r->status;
	if (r->status != 200 || r->content_length <= 0 || r->chunked || r->len > SIM_RESPONSE_MAX) {
		snprintf(
		    res->err, sizeof(res->err),
		    "firmware would reject: status %d, Content-Length %ld%s, %zu bytes: %.200s",
		    r->status, r->content_length, r->chunked ? ", chunked" : "", r->len,
		    r->body ? r->body : "");
		return -1;
	}
	return 0;
}

/*
 * What the device does with a verify reply: reads "certificate" as its parser does and
 * (beyond what the firmware checks) verifies it. Returns the chain, or NULL + @p err.
 */
static char *device_takes_certificate(const struct http_response *r, EVP_PKEY *key, const char *cn,
                                      const char *root_file, char *err, size_t errsz)
{
	char *cert = malloc(r->len + 1);
	if (!cert || !sim_firmware_string(r->body, "certificate", cert, r->len + 1, true)) {
		snprintf(
		    err, errsz,
		    "the device cannot read \"certificate\" (missing or escapes other than \\n)");
		free(cert);
		return NULL;
	}
	if (sim_check_chain(cert, key, cn, root_file, err, errsz) < 0) {
		free(cert);
		return NULL;
	}
	return cert;
}

int sim_self_claim(const struct http_url *u, const struct sim_device *d, const char *policies,
                   const char *root_file, struct sim_result *res)
{
	struct http_response r = {0};
	char body[4096], auth_id[64], challenge[130], response[129];
	char *csr = NULL, *esc = NULL, *vbody = NULL, *cert = NULL;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	res->stage = 1;
	snprintf(body, sizeof(body), "{\"mac_addr\":\"%s\",\"platform\":\"%s\"}", d->mac,
	         d->platform);
	if (http_post(u, "claim/initiate", "", body, strlen(body), 5000, &r, res->err,
	              sizeof(res->err)) < 0 ||
	    firmware_accepts(&r, res) < 0)
		goto out;
	if (!sim_firmware_string(r.body, "auth_id", auth_id, sizeof(auth_id), false) ||
	    !sim_firmware_string(r.body, "challenge", challenge, sizeof(challenge), false)) {
		snprintf(res->err, sizeof(res->err), "firmware cannot parse the initiate reply");
		goto out;
	}
	http_response_free(&r);
	sim_challenge_response(d->efuse_key, challenge, response);
	res->stage = 2;
	if (!(csr = sim_csr_pem(d->key, d->mac, false)) || !(esc = sim_firmware_escape(csr)))
		goto out;
	if (policies)
		rc = asprintf(&vbody,
		              "{\"auth_id\":\"%s\",\"challenge_response\":\"%s\",\"csr\":\"%s\","
		              "\"node_policies\":\"%s\"}",
		              auth_id, response, esc, policies);
	else
		rc = asprintf(&vbody,
		              "{\"auth_id\":\"%s\",\"challenge_response\":\"%s\",\"csr\":\"%s\"}",
		              auth_id, response, esc);
	if (rc < 0) {
		vbody = NULL;
		goto out;
	}
	rc = -1;
	if (http_post(u, "claim/verify", "", vbody, strlen(vbody), 5000, &r, res->err,
	              sizeof(res->err)) < 0 ||
	    firmware_accepts(&r, res) < 0)
		goto out;
	res->stage = 3;
	if (!(cert = device_takes_certificate(&r, d->key, d->mac, root_file, res->err,
	                                      sizeof(res->err))))
		goto out;
	res->certificate = cert;
	cert = NULL;
	rc = 0;
out:
	http_response_free(&r);
	free(cert);
	free(vbody);
	free(esc);
	free(csr);
	return rc;
}

char *sim_json_string(const char *s, enum sim_client client)
{
	size_t n = strlen(s);
	char *out = malloc(6 * n + 3), *o = out;

	if (!out)
		return NULL;
	*o++ = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		unsigned char c = *p;
		if (c == '"' || c == '\\') {
			*o++ = '\\';
			*o++ = (char)c;
		} else if (c == '\n') {
			*o++ = '\\';
			*o++ = 'n';
		} else if (c < 0x20 || (client == SIM_ANDROID && strchr("<>=&'", c))) {
			o += sprintf(o, "\\u%04x", c);
		} else if (client == SIM_IOS && c == '/') {
			*o++ = '\\';
			*o++ = '/';
		} else {
			*o++ = (char)c;
		}
	}
	*o++ = '"';
	*o = '\0';
	return out;
}

int sim_cli_mqtt_hosts(const struct http_url *u, struct sim_user_result *res)
{
	struct http_response r = {0};
	char *req = NULL;
	int rc = -1;

	res->stage = 0;
	if (asprintf(&req,
	             "GET %s/mqtt_host HTTP/1.1\r\nHost: %s:%s\r\nUser-Agent: python-requests\r\n"
	             "Accept: */*\r\n\r\n",
	             u->base, u->host, u->port) < 0) {
		req = NULL;
		snprintf(res->err, sizeof(res->err), "out of memory");
		return -1;
	}
	if (http_exchange(u, req, strlen(req), 10000, &r, res->err, sizeof(res->err)) < 0)
		goto out;
	res->status = r.status;
	/* What the CLI does with the reply: raise on a status >= 400, give up without
	 * mqtt_host, write endpoint.info, and write mqtt_cred_host.info only when truthy,
	 * while its NVS CSV always names the file. */
	if (r.status != 200) {
		snprintf(res->err, sizeof(res->err), "GET mqtt_host: status %d: %.300s", r.status,
		         r.body ? r.body : "");
		goto out;
	}
	if (!sim_firmware_string(r.body, "mqtt_host", res->mqtt_host, sizeof(res->mqtt_host),
	                         false) ||
	    !res->mqtt_host[0]) {
		snprintf(res->err, sizeof(res->err),
		         "GET mqtt_host: no non-empty mqtt_host (the CLI's endpoint.info): %.300s",
		         r.body ? r.body : "");
		goto out;
	}
	if (!sim_firmware_string(r.body, "mqtt_cred_host", res->mqtt_cred_host,
	                         sizeof(res->mqtt_cred_host), false) ||
	    !res->mqtt_cred_host[0]) {
		snprintf(res->err, sizeof(res->err),
		         "GET mqtt_host: no non-empty mqtt_cred_host (the CLI's NVS image needs "
		         "mqtt_cred_host.info): %.300s",
		         r.body ? r.body : "");
		goto out;
	}
	rc = 0;
out:
	http_response_free(&r);
	free(req);
	return rc;
}

/*
 * The user flow's headers and initiate, as @p client sends them: the token raw, the
 * client's Content-Type, the client's JSON spacing. Fills @p hdr and res->node_id.
 */
static int user_initiate(const struct http_url *u, enum sim_client client, const char *token,
                         const char *mac, const char *platform, char hdr[TOKEN_HDR_MAX],
                         struct sim_user_result *res)
{
	struct http_response r = {0};
	char body[512];
	bool cli = client == SIM_CLI;
	int rc = -1;

	res->stage = 1;
	if (snprintf(hdr, TOKEN_HDR_MAX, "Authorization: %s\r\n%s", token,
	             cli ? "Content-Type: application/json\r\n"
	                 : "Content-Type: application/json; charset=utf-8\r\n") >= TOKEN_HDR_MAX) {
		snprintf(res->err, sizeof(res->err), "token too long");
		return -1;
	}
	snprintf(body, sizeof(body),
	         cli ? "{\"mac_addr\": \"%s\", \"platform\": \"%s\"}"
	             : "{\"mac_addr\":\"%s\",\"platform\":\"%s\"}",
	         mac, platform);
	if (http_post(u, "claim/initiate", hdr, body, strlen(body), 10000, &r, res->err,
	              sizeof(res->err)) < 0)
		goto out;
	res->status = r.status;
	if (r.status != 200 ||
	    !sim_firmware_string(r.body, "node_id", res->node_id, sizeof(res->node_id), false)) {
		snprintf(res->err, sizeof(res->err), "initiate: status %d: %.300s", r.status,
		         r.body ? r.body : "");
		goto out;
	}
	rc = 0;
out:
	http_response_free(&r);
	return rc;
}

int sim_user_claim(const struct http_url *u, enum sim_client client, const char *token,
                   const char *mac, const char *platform, EVP_PKEY *key, const char *root_file,
                   struct sim_user_result *res)
{
	struct http_response r = {0};
	char hdr[TOKEN_HDR_MAX], *csr = NULL, *csr_json = NULL, *vbody = NULL;
	char *cert = NULL;
	bool cli = client == SIM_CLI;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	/* The CLI asks its API host for the MQTT hosts before it makes a key. */
	if (cli && sim_cli_mqtt_hosts(u, res) < 0)
		return -1;
	if (user_initiate(u, client, token, mac, platform, hdr, res) < 0)
		return -1;
	/* The device (app flow) or the CLI makes a CSR for the node_id it was given. */
	res->stage = 2;
	if (!(csr = sim_csr_pem(key, res->node_id, cli)) ||
	    !(csr_json = sim_json_string(csr, client)))
		goto out;
	if (cli)
		rc = asprintf(&vbody, "{\"csr\": %s}", csr_json);
	else
		rc = asprintf(&vbody, "{\"csr\":%s,\"send_mqtt_host\":true}", csr_json);
	if (rc < 0) {
		vbody = NULL;
		goto out;
	}
	rc = -1;
	/* The CLI's query string: requests writes Python's True/False (test=True until late
	 * 2025). */
	if (http_post(u, cli ? "claim/verify?matter=False&test=True" : "claim/verify", hdr, vbody,
	              strlen(vbody), 10000, &r, res->err, sizeof(res->err)) < 0)
		goto out;
	res->status = r.status;
	if (r.status != 200 || r.content_length <= 0 || r.chunked || r.len > SIM_RESPONSE_MAX) {
		snprintf(res->err, sizeof(res->err), "verify: status %d, %zu bytes: %.300s",
		         r.status, r.len, r.body ? r.body : "");
		goto out;
	}
	/* The app forwards this reply to the device, which parses it like a self claim's. */
	res->stage = 3;
	if (!(cert = device_takes_certificate(&r, key, res->node_id, root_file, res->err,
	                                      sizeof(res->err))))
		goto out;
	res->certificate = cert;
	res->body = r.body;
	r.body = NULL;
	cert = NULL;
	rc = 0;
out:
	http_response_free(&r);
	free(cert);
	free(vbody);
	free(csr_json);
	free(csr);
	return rc;
}

char *sim_matter_csr_pem(EVP_PKEY *key, const char *cn, const char *vendor_id,
                         const char *product_id)
{
	X509_REQ *r = X509_REQ_new();
	BIO *b = BIO_new(BIO_s_mem());
	STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
	X509_EXTENSION *e =
	    X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:FALSE");
	X509_NAME *n = r ? X509_REQ_get_subject_name(r) : NULL;
	char *data, *out = NULL;
	long len;

	/* As the CLI's gen_host_csr(): CN, then each pair in order, one RDN each, all
	 * UTF8String (the cryptography package's default for these attributes). */
	if (!n || !b || !exts || !e || !X509_REQ_set_version(r, 0) ||
	    !X509_NAME_add_entry_by_txt(n, "CN", V_ASN1_UTF8STRING, (const unsigned char *)cn, -1,
	                                -1, 0) ||
	    (vendor_id &&
	     !X509_NAME_add_entry_by_txt(n, "1.3.6.1.4.1.37244.2.1", V_ASN1_UTF8STRING,
	                                 (const unsigned char *)vendor_id, -1, -1, 0)) ||
	    (product_id &&
	     !X509_NAME_add_entry_by_txt(n, "1.3.6.1.4.1.37244.2.2", V_ASN1_UTF8STRING,
	                                 (const unsigned char *)product_id, -1, -1, 0)) ||
	    !X509_REQ_set_pubkey(r, key))
		goto out;
	if (!sk_X509_EXTENSION_push(exts, e))
		goto out;
	e = NULL;
	if (!X509_REQ_add_extensions(r, exts) || !X509_REQ_sign(r, key, EVP_sha256()) ||
	    !PEM_write_bio_X509_REQ(b, r))
		goto out;
	len = BIO_get_mem_data(b, &data);
	out = strndup(data, (size_t)len); /* the CLI keeps the trailing newline */
out:
	X509_EXTENSION_free(e);
	sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
	BIO_free(b);
	X509_REQ_free(r);
	return out;
}

/* DER of one PEM certificate; -1 when @p pem is not exactly one. */
static int pem_to_der(const char *pem, size_t n, uint8_t **der, size_t *len)
{
	BIO *b = BIO_new_mem_buf(pem, (int)n);
	X509 *x = b ? PEM_read_bio_X509(b, NULL, NULL, NULL) : NULL, *extra = NULL;
	unsigned char *out = NULL;
	int dl = -1, rc = -1;

	if (x && !(extra = PEM_read_bio_X509(b, NULL, NULL, NULL)) &&
	    (dl = i2d_X509(x, &out)) > 0) {
		*der = out;
		*len = (size_t)dl;
		out = NULL;
		rc = 0;
	}
	ERR_clear_error();
	OPENSSL_free(out);
	X509_free(extra);
	X509_free(x);
	BIO_free(b);
	return rc;
}

/*
 * What the CLI does with a Matter reply: json.loads, then the certificate string split
 * at the second BEGIN line into the DAC and the PAI, each written as DER. Anything but
 * exactly two certificates fails, as the partition needs both.
 */
static int cli_split_matter(const char *body, struct sim_matter_result *res)
{
	static const char begin[] = "-----BEGIN CERTIFICATE-----";
	json_t *j = json_loads(body, 0, NULL);
	const char *cert = json_string_value(json_object_get(j, "certificate"));
	const char *second =
	    cert && strncmp(cert, begin, strlen(begin)) == 0 ? strstr(cert + 1, begin) : NULL;
	int rc = -1;

	if (!second || strstr(second + 1, begin)) {
		snprintf(res->u.err, sizeof(res->u.err),
		         "the reply's certificate is not exactly two PEM certificates");
		goto out;
	}
	if (pem_to_der(cert, (size_t)(second - cert), &res->dac, &res->dac_len) < 0 ||
	    pem_to_der(second, strlen(second), &res->pai, &res->pai_len) < 0) {
		snprintf(res->u.err, sizeof(res->u.err),
		         "a certificate of the reply does not parse");
		goto out;
	}
	res->u.certificate = strdup(cert);
	rc = res->u.certificate ? 0 : -1;
out:
	json_decref(j);
	return rc;
}

/* The DAC holds @p key and is signed by the PAI; with @p paa_file the path verifies
 * (any purpose: a DAC has no extendedKeyUsage). */
static int check_dac_chain(struct sim_matter_result *res, EVP_PKEY *key, const char *paa_file)
{
	const unsigned char *p = res->dac, *q = res->pai;
	X509 *dac = d2i_X509(NULL, &p, (long)res->dac_len);
	X509 *pai = d2i_X509(NULL, &q, (long)res->pai_len);
	STACK_OF(X509) *untrusted = sk_X509_new_null();
	char *err = res->u.err;
	size_t errsz = sizeof(res->u.err);
	int rc = -1;

	if (!dac || !pai || !untrusted || !sk_X509_push(untrusted, pai)) {
		snprintf(err, errsz, "cannot read the DAC or PAI");
		X509_free(pai);
		goto out;
	}
	/* pai is the stack's now */
	if (EVP_PKEY_eq(X509_get0_pubkey(dac), key) != 1) {
		snprintf(err, errsz, "the DAC does not hold the CLI's key");
		goto out;
	}
	if (X509_verify(dac, X509_get0_pubkey(pai)) != 1) {
		snprintf(err, errsz, "the DAC is not signed by the PAI");
		goto out;
	}
	if (paa_file && verify_to_root(dac, untrusted, paa_file, 0, err, errsz) < 0)
		goto out;
	rc = 0;
out:
	ERR_clear_error();
	sk_X509_pop_free(untrusted, X509_free);
	X509_free(dac);
	return rc;
}

int sim_matter_claim(const struct http_url *u, const char *token, const char *mac,
                     const char *platform, EVP_PKEY *key, const char *vendor_id,
                     const char *product_id, const char *paa_file, struct sim_matter_result *res)
{
	struct http_response r = {0};
	char hdr[TOKEN_HDR_MAX], *csr = NULL, *csr_json = NULL, *vbody = NULL;
	int rc = -1;

	memset(res, 0, sizeof(*res));
	if (sim_cli_mqtt_hosts(u, &res->u) < 0 ||
	    user_initiate(u, SIM_CLI, token, mac, platform, hdr, &res->u) < 0)
		return -1;
	res->u.stage = 2;
	if (!(csr = sim_matter_csr_pem(key, res->u.node_id, vendor_id, product_id)) ||
	    !(csr_json = sim_json_string(csr, SIM_CLI)) ||
	    asprintf(&vbody, "{\"csr\": %s}", csr_json) < 0) {
		vbody = NULL;
		snprintf(res->u.err, sizeof(res->u.err), "cannot make the CSR");
		goto out;
	}
	if (http_post(u, "claim/verify?matter=True&test=True", hdr, vbody, strlen(vbody), 10000, &r,
	              res->u.err, sizeof(res->u.err)) < 0)
		goto out;
	res->u.status = r.status;
	if (r.status != 200 || r.content_length <= 0 || r.chunked || r.len > SIM_RESPONSE_MAX) {
		snprintf(res->u.err, sizeof(res->u.err), "verify: status %d, %zu bytes: %.300s",
		         r.status, r.len, r.body ? r.body : "");
		goto out;
	}
	res->u.stage = 3;
	if (cli_split_matter(r.body, res) < 0 || check_dac_chain(res, key, paa_file) < 0)
		goto out;
	res->u.body = r.body;
	r.body = NULL;
	rc = 0;
out:
	http_response_free(&r);
	free(vbody);
	free(csr_json);
	free(csr);
	return rc;
}

void sim_matter_result_free(struct sim_matter_result *res)
{
	free(res->u.certificate);
	free(res->u.body);
	OPENSSL_free(res->dac);
	OPENSSL_free(res->pai);
	memset(res, 0, sizeof(*res));
}
