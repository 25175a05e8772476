/*
 * The signer's policy and server (server.h): what it refuses to sign whatever the
 * network process asks, and its answer to each request frame, read and written with
 * wire.h's codec. Its keys are used through x509/ (OpenSSL) and lib/secure.c
 * (libsodium), never here directly.
 */
#include "signer/server.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"
#include "signer/wire.h"

/* 12 upper-case hex digits, the form claimd stores a MAC in. */
static bool mac_ok(const char *m)
{
	for (int i = 0; i < MAC_LEN; i++)
		if (!((m[i] >= '0' && m[i] <= '9') || (m[i] >= 'A' && m[i] <= 'F')))
			return false;
	return true;
}

/* Slack for clocks and queueing between claimd's "now" and the signer's, seconds. */
#define CLOCK_SLACK 300

/*
 * What claimd's own policy asks for (claim.c, revocation.c), checked again here so that
 * a compromised network process cannot have a long-lived certificate or CRL signed:
 * a certificate starts between an hour (the backdating) before now and now, and lasts
 * at most validity_days; a CRL's thisUpdate is now, its nextUpdate at most crl_hours
 * later, its reasons RFC 5280 codes, and its number never below one already signed.
 */
static bool validity_ok(const struct signer_keys *k, const struct cert_request *rq)
{
	int64_t now = k->now ? k->now : now_unix();
	bool ok = rq->not_before >= now - 3600 - CLOCK_SLACK &&
	          rq->not_before <= now + CLOCK_SLACK && rq->not_after > rq->not_before &&
	          rq->not_after <= now + (int64_t)k->validity_days * 86400 + CLOCK_SLACK;
	if (!ok)
		log_error("signer: validity %lld..%lld is outside policy (now %lld, %u days)",
		          (long long)rq->not_before, (long long)rq->not_after, (long long)now,
		          k->validity_days);
	return ok;
}

static bool crl_ok(struct signer_keys *k, const struct crl_request *rq)
{
	int64_t now = k->now ? k->now : now_unix();
	bool ok = rq->this_update >= now - CLOCK_SLACK && rq->this_update <= now + CLOCK_SLACK &&
	          rq->next_update > rq->this_update &&
	          rq->next_update - rq->this_update <= (int64_t)k->crl_hours * 3600 + CLOCK_SLACK &&
	          rq->number >= 1 && rq->number >= k->crl_number &&
	          rq->number <= (k->crl_number ? k->crl_number + SIGNER_CRL_NUMBER_STEP_MAX
	                                       : SIGNER_CRL_NUMBER_FIRST_MAX);
	for (size_t i = 0; ok && i < rq->n; i++)
		ok = rq->e[i].reason >= 0 && rq->e[i].reason <= 10 && rq->e[i].reason != 7;
	if (!ok) {
		log_error("signer: CRL number %lld (last %lld), %lld..%lld is outside policy (now "
		          "%lld)",
		          (long long)rq->number, (long long)k->crl_number,
		          (long long)rq->this_update, (long long)rq->next_update, (long long)now);
		return false;
	}
	k->crl_number = rq->number;
	return true;
}

/* A DAC's product id is one matter.product_ids allows (none listed: any). */
static bool product_ok(const struct signer_keys *k, const char *pid)
{
	if (!k->product_ids || !k->product_ids[0])
		return true;
	for (char *const *p = k->product_ids; *p; p++)
		if (pid && strcmp(*p, pid) == 0)
			return true;
	log_error("signer: product id %s is not in matter.product_ids", pid ? pid : "(none)");
	return false;
}

static int serve_issue(const struct signer_keys *k, struct wire_in *r, struct wire_out *out)
{
	struct wire_issue in;
	struct cert_request *rq = &in.rq;
	uint8_t *der = NULL;
	size_t len = 0;
	int rc = -1;

	/* Each profile has its key; ca_issue() and pai_sign() check the rest. The serial
	 * is this process's choice, whatever was proposed: two certificates never share one
	 * however the network process asks. */
	if (!wire_get_issue(r, &in) || !validity_ok(k, rq))
		return -1;
	cert_random_serial(rq->serial);
	if (rq->profile == CERT_PROFILE_MATTER_DAC)
		rc =
		    k->pai && product_ok(k, rq->product_id) ? pai_sign(k->pai, rq, &der, &len) : -1;
	else
		rc = ca_issue(k->ca, rq, &der, &len);
	if (rc == 0) {
		wire_put(out, rq->serial, sizeof(rq->serial));
		wire_put(out, der, len);
	}
	free(der);
	return rc < 0 ? -1 : 0;
}

static int serve_crl(struct signer_keys *k, struct wire_in *r, struct wire_out *out)
{
	struct crl_request rq;
	struct revoked_entry *e = NULL;
	uint8_t *der = NULL;
	size_t len = 0;
	int rc = -1;

	if (wire_get_crl(r, &rq, &e) && crl_ok(k, &rq) &&
	    ca_crl_sign(k->ca, rq.number, rq.e, rq.n, rq.this_update, rq.next_update, &der, &len) ==
	        0) {
		wire_put(out, der, len);
		rc = 0;
	}
	free(der);
	free(e);
	return rc;
}

static int serve_check(const struct signer_keys *k, struct wire_in *r, struct wire_out *out)
{
	char mac[MAC_LEN + 1], challenge[SIGNER_CHALLENGE_HEX];
	uint8_t sealed[SEALED_EFUSE_BYTES], response[HMAC_SHA512_BYTES];
	uint8_t key[EFUSE_KEY_BYTES], expect[HMAC_SHA512_BYTES];
	uint8_t verdict = SIGNER_UNOPENABLE;

	if (!wire_get_check(r, mac, sealed, challenge, response) || !mac_ok(mac))
		return -1;
	if (efuse_open(k->secrets, mac, sealed, sizeof(sealed), key)) {
		secure_hmac_sha512(expect, key, sizeof(key), challenge, sizeof(challenge));
		verdict =
		    secure_equal(expect, response, sizeof(expect)) ? SIGNER_RIGHT : SIGNER_WRONG;
	}
	secure_wipe(key, sizeof(key));
	secure_wipe(expect, sizeof(expect));
	wire_put(out, &verdict, 1);
	return 0;
}

static int serve_seal(const struct signer_keys *k, struct wire_in *r, struct wire_out *out)
{
	char mac[MAC_LEN + 1];
	uint8_t key[EFUSE_KEY_BYTES], sealed[SEALED_EFUSE_BYTES], tag[EFUSE_TAG_BYTES];

	if (!wire_get_seal(r, mac, key) || !mac_ok(mac)) {
		secure_wipe(key, sizeof(key));
		return -1;
	}
	efuse_seal(k->secrets, mac, key, sealed);
	efuse_tag(k->secrets, mac, key, tag);
	secure_wipe(key, sizeof(key));
	wire_put(out, sealed, sizeof(sealed));
	wire_put(out, tag, sizeof(tag));
	return 0;
}

int signer_answer(struct signer_keys *k, uint32_t op, const uint8_t *p, size_t n, uint8_t **out,
                  size_t *outn)
{
	struct wire_in r = {p, n, false};
	struct wire_out w = {0};
	int rc = -1;

	switch (op) {
	case SIGNER_OP_ISSUE:
		rc = serve_issue(k, &r, &w);
		break;
	case SIGNER_OP_CRL:
		rc = serve_crl(k, &r, &w);
		break;
	case SIGNER_OP_CHECK:
		rc = serve_check(k, &r, &w);
		break;
	case SIGNER_OP_SEAL:
		rc = serve_seal(k, &r, &w);
		break;
	case SIGNER_OP_PING:
		rc = n == 0 ? 0 : -1;
		break;
	default:
		log_error("signer: unknown operation %u", op);
		break;
	}
	if (w.bad) /* the reply did not fit or memory ran out: not sent half-made */
		rc = -1;
	if (rc < 0)
		wire_out_clear(&w);
	*out = w.p;
	*outn = w.n;
	return rc < 0 ? -1 : 0;
}

int signer_serve(int fd, struct signer_keys *k)
{
	for (;;) {
		uint8_t *p = NULL;
		size_t n = 0;
		uint32_t op = 0;
		struct wire_out out = {0};

		/* End-of-file: claimd closed the channel (a reload, a stop, or it died). */
		if (wire_recv(fd, &op, &p, &n, 0) < 0)
			return 0;
		int rc = signer_answer(k, op, p, n, &out.p, &out.n);
		secure_wipe(p, n);
		free(p);
		int sent = wire_send(fd, rc < 0 ? 1 : 0, &out, 0);
		wire_out_clear(&out);
		if (sent < 0)
			return 1;
	}
}

/* One frame from @p fd answered; -1 when the connection is to be closed. */
static int serve_one(int fd, struct signer_keys *k, unsigned timeout_ms)
{
	uint8_t *p = NULL;
	size_t n = 0;
	uint32_t op = 0;
	struct wire_out out = {0};

	if (wire_recv(fd, &op, &p, &n, now_ms_monotonic() + timeout_ms) < 0)
		return -1;
	int rc = signer_answer(k, op, p, n, &out.p, &out.n);
	secure_wipe(p, n);
	free(p);
	int sent = wire_send(fd, rc < 0 ? 1 : 0, &out, now_ms_monotonic() + timeout_ms);
	wire_out_clear(&out);
	return sent;
}

/* A new connection on @p lfd: its descriptor if its peer is @p peer_uid and took the
 * hello, else -1 (closed). */
static int admit(int lfd, uid_t peer_uid, const struct wire_out *hello, unsigned timeout_ms)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return -1;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || len != sizeof(cred) ||
	    cred.uid != peer_uid) {
		log_warn(
		    "signer: refused a connection from uid %ld, pid %ld (only server.user, uid "
		    "%ld, may connect)",
		    len == sizeof(cred) ? (long)cred.uid : -1L,
		    len == sizeof(cred) ? (long)cred.pid : -1L, (long)peer_uid);
		close(fd);
		return -1;
	}
	if (wire_send(fd, 0, hello, now_ms_monotonic() + timeout_ms) < 0) {
		close(fd);
		return -1;
	}
	log_info("signer: claimd (pid %ld) connected", (long)cred.pid);
	return fd;
}

int signer_listen(int lfd, uid_t peer_uid, const struct wire_out *hello, struct signer_keys *k,
                  unsigned timeout_ms)
{
	struct pollfd p[1 + SIGNER_PEERS_MAX];
	size_t n = 0;

	for (;;) {
		p[0] = (struct pollfd){lfd, n < SIGNER_PEERS_MAX ? POLLIN : 0, 0};
		for (size_t i = 0; i < n; i++)
			p[1 + i].revents = 0;
		if (poll(p, 1 + n, -1) < 0) {
			if (errno == EINTR)
				continue;
			log_error("signer: poll: %s", strerror(errno));
			return 1;
		}
		for (size_t i = 0; i < n;) {
			if (p[1 + i].revents && serve_one(p[1 + i].fd, k, timeout_ms) < 0) {
				close(p[1 + i].fd);
				p[1 + i] = p[n--];
				continue;
			}
			i++;
		}
		if (p[0].revents & POLLIN) {
			int fd = admit(lfd, peer_uid, hello, timeout_ms);
			if (fd >= 0)
				p[1 + n++] = (struct pollfd){fd, POLLIN, 0};
		}
	}
}
