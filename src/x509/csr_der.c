/*
 * PKCS#10 in DER, read by hand: a cursor over tag-length-value items that refuses every
 * BER liberty (indefinite or long-form-when-short lengths, multi-octet tags, bytes past
 * an item's end). It only locates fields; it never allocates and never trusts a length
 * it has not checked against what is left. Each refusal is named by its error code, so
 * a client learns which layer was wrong. Fuzzed by tests/fuzz/fuzz_csr.c against
 * OpenSSL's own parser.
 */
#include "x509/csr_der.h"

#include <stdio.h>
#include <string.h>

#include "lib/secure.h"

struct cur {
	const uint8_t *p, *end;
};

/* One item of tag @p tag: its value in *v, its whole encoding in *tlv (if asked). */
static bool item(struct cur *c, uint8_t tag, struct cur *v, const uint8_t **tlv, size_t *tlv_len)
{
	const uint8_t *start = c->p;
	size_t left = (size_t)(c->end - c->p), len, hdr;

	if (left < 2 || c->p[0] != tag)
		return false;
	if (c->p[1] < 0x80) {
		len = c->p[1];
		hdr = 2;
	} else {
		unsigned nb = c->p[1] & 0x7f;
		if (nb < 1 || nb > 3 || left < 2 + nb || c->p[2] == 0)
			return false;
		len = 0;
		for (unsigned i = 0; i < nb; i++)
			len = len << 8 | c->p[2 + i];
		if (len < 0x80) /* DER: the short form whenever it fits */
			return false;
		hdr = 2 + nb;
	}
	if (len > left - hdr)
		return false;
	v->p = c->p + hdr;
	v->end = v->p + len;
	c->p = v->end;
	if (tlv) {
		*tlv = start;
		*tlv_len = (size_t)(c->p - start);
	}
	return true;
}

static bool at_end(const struct cur *c)
{
	return c->p == c->end;
}

static bool is(const struct cur *v, const uint8_t *oid, size_t n)
{
	return (size_t)(v->end - v->p) == n && memcmp(v->p, oid, n) == 0;
}

/* The OIDs we recognise, as the content octets of their OBJECT IDENTIFIER. */
static const uint8_t OID_EC_PUBKEY[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01};
static const uint8_t OID_P256[] = {0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07};
static const uint8_t OID_RSA[] = {0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01};
static const uint8_t OID_CN[] = {0x55, 0x04, 0x03};
/* 1.3.6.1.4.1.37244.2.1 and .2.2: the Matter vendor and product id attributes. */
static const uint8_t OID_MATTER_VID[] = {0x2b, 0x06, 0x01, 0x04, 0x01,
                                         0x82, 0xa2, 0x7c, 0x02, 0x01};
static const uint8_t OID_MATTER_PID[] = {0x2b, 0x06, 0x01, 0x04, 0x01,
                                         0x82, 0xa2, 0x7c, 0x02, 0x02};

/* Keeps a Matter-relevant subject value: one of each kind is kept, all are counted. */
static void note_attr(struct csr_attr *a, uint8_t tag, const struct cur *val)
{
	if (a->count++ == 0) {
		a->tag = tag;
		a->p = val->p;
		a->len = (size_t)(val->end - val->p);
	}
}

static const struct {
	uint8_t oid[9];
	size_t len;
	enum csr_sig_alg alg;
	unsigned hash;
} sig_oids[] = {
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02}, 8, CSR_SIG_ECDSA, 256},
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03}, 8, CSR_SIG_ECDSA, 384},
    {{0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04}, 8, CSR_SIG_ECDSA, 512},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b}, 9, CSR_SIG_RSA, 256},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c}, 9, CSR_SIG_RSA, 384},
    {{0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d}, 9, CSR_SIG_RSA, 512},
};

/* An AlgorithmIdentifier: the OID in *oid, the parameters (if any, of any type) in *par.
 * Which parameters an algorithm may take is the caller's decision. */
static bool algorithm(struct cur *c, struct cur *oid, struct cur *par, bool *has_par,
                      uint8_t *par_tag)
{
	struct cur seq;
	if (!item(c, 0x30, &seq, NULL, NULL) || !item(&seq, 0x06, oid, NULL, NULL) ||
	    oid->p == oid->end)
		return false;
	*has_par = !at_end(&seq);
	if (*has_par) {
		*par_tag = seq.p[0];
		if ((*par_tag & 0x1f) == 0x1f || !item(&seq, *par_tag, par, NULL, NULL))
			return false; /* a multi-octet tag is not one we could know */
	}
	return at_end(&seq);
}

/* A BIT STRING with no unused bits: its octets. */
static bool bits(struct cur *c, struct cur *out)
{
	if (!item(c, 0x03, out, NULL, NULL) || out->p == out->end || out->p[0] != 0)
		return false;
	out->p++;
	return true;
}

/* A positive INTEGER in shortest form: its magnitude without a leading zero octet. */
static bool positive_integer(struct cur *c, const uint8_t **p, size_t *n)
{
	struct cur v;
	if (!item(c, 0x02, &v, NULL, NULL) || v.p == v.end || (v.p[0] & 0x80))
		return false;
	if (v.end - v.p > 1 && v.p[0] == 0) {
		if (!(v.p[1] & 0x80))
			return false; /* a needless leading zero is not DER */
		v.p++;
	}
	if (v.p[0] == 0)
		return false; /* zero */
	*p = v.p;
	*n = (size_t)(v.end - v.p);
	return true;
}

static bool spki(struct cur *c, struct csr_fields *f)
{
	struct cur seq, oid, par, key;
	bool has_par;
	uint8_t par_tag = 0;

	if (!item(c, 0x30, &seq, &f->spki, &f->spki_len) ||
	    !algorithm(&seq, &oid, &par, &has_par, &par_tag) || !bits(&seq, &key) || !at_end(&seq))
		return false;
	f->key = key.p;
	f->key_len = (size_t)(key.end - key.p);
	f->key_alg = CSR_KEY_OTHER;
	if (is(&oid, OID_EC_PUBKEY, sizeof(OID_EC_PUBKEY))) {
		if (has_par && par_tag == 0x06 && is(&par, OID_P256, sizeof(OID_P256)))
			f->key_alg = CSR_KEY_EC_P256;
	} else if (is(&oid, OID_RSA, sizeof(OID_RSA))) {
		/* RFC 3279 2.3.1: the parameters MUST be NULL; the certificate repeats them as
		 * given, so any others make this a key we do not sign. */
		if (!has_par || par_tag != 0x05 || par.p != par.end)
			return true;
		struct cur rk = key, rseq;
		if (!item(&rk, 0x30, &rseq, NULL, NULL) || !at_end(&rk) ||
		    !positive_integer(&rseq, &f->rsa_n, &f->rsa_n_len) ||
		    !positive_integer(&rseq, &f->rsa_e, &f->rsa_e_len) || !at_end(&rseq))
			return false;
		f->key_alg = CSR_KEY_RSA;
	}
	return true;
}

bool csr_spki_parse(const uint8_t *der, size_t len, struct csr_fields *f)
{
	struct cur c = {der, der + len};
	memset(f, 0, sizeof(*f));
	return spki(&c, f) && at_end(&c);
}

/* Name ::= SEQUENCE OF SET OF SEQUENCE { type OID, value ANY }: counts the values and
 * keeps the only one if it is a CN in UTF8String, PrintableString or IA5String. */
static bool subject(struct cur *c, struct csr_fields *f)
{
	struct cur name, rdn, atv, oid, val;
	const uint8_t *cn = NULL;
	size_t cn_len = 0;

	if (!item(c, 0x30, &name, NULL, NULL))
		return false;
	while (!at_end(&name)) {
		if (!item(&name, 0x31, &rdn, NULL, NULL) || at_end(&rdn))
			return false;
		while (!at_end(&rdn)) {
			if (!item(&rdn, 0x30, &atv, NULL, NULL) ||
			    !item(&atv, 0x06, &oid, NULL, NULL) || at_end(&atv))
				return false;
			uint8_t tag = atv.p[0];
			if ((tag & 0x1f) == 0x1f || !item(&atv, tag, &val, NULL, NULL) ||
			    !at_end(&atv))
				return false;
			if (++f->subject_entries == 1 && is(&oid, OID_CN, sizeof(OID_CN)) &&
			    (tag == 0x0c || tag == 0x13 || tag == 0x16)) {
				cn = val.p;
				cn_len = (size_t)(val.end - val.p);
			}
			if (is(&oid, OID_CN, sizeof(OID_CN)))
				note_attr(&f->m_cn, tag, &val);
			else if (is(&oid, OID_MATTER_VID, sizeof(OID_MATTER_VID)))
				note_attr(&f->m_vid, tag, &val);
			else if (is(&oid, OID_MATTER_PID, sizeof(OID_MATTER_PID)))
				note_attr(&f->m_pid, tag, &val);
		}
	}
	if (f->subject_entries == 1 && cn) {
		f->cn = cn;
		f->cn_len = cn_len;
	}
	return true;
}

enum claimd_err csr_der_read(const uint8_t *der, size_t len, struct csr_fields *f)
{
	struct cur all = {der, der + len}, req, info, ver, oid, par, sig;
	bool has_par;
	uint8_t par_tag = 0;

	memset(f, 0, sizeof(*f));
	if (!item(&all, 0x30, &req, NULL, NULL) || !at_end(&all) ||
	    !item(&req, 0x30, &info, &f->info, &f->info_len))
		return CE_CSR_DER;
	/* CertificationRequestInfo: version 0, subject, key, [0] attributes. The attributes
	 * are signed but never read: nothing from a CSR but its key reaches a certificate.
	 * Some encoders leave the (mandatory) [0] out; OpenSSL accepts that, so do we. */
	if (!item(&info, 0x02, &ver, NULL, NULL) || ver.p == ver.end)
		return CE_CSR_DER;
	if (ver.end - ver.p != 1 || ver.p[0] != 0)
		return CE_CSR_VERSION; /* RFC 2986 4.1: v1(0) is the only version */
	if (!subject(&info, f) || !spki(&info, f))
		return CE_CSR_DER;
	if (!at_end(&info)) {
		struct cur attrs;
		if (!item(&info, 0xa0, &attrs, NULL, NULL) || !at_end(&info))
			return CE_CSR_DER;
	}
	if (!algorithm(&req, &oid, &par, &has_par, &par_tag) || !bits(&req, &sig) || !at_end(&req))
		return CE_CSR_DER;
	f->sig = sig.p;
	f->sig_len = (size_t)(sig.end - sig.p);
	/* Absent parameters are the standard for ECDSA; an explicit NULL is what some
	 * mbedTLS versions write (docs/protocol.md 2.2); RSA's are NULL, absent is tolerated.
	 * Any other parameters (RSA-PSS's, say) make it an algorithm we do not verify. */
	f->sig_alg = CSR_SIG_OTHER;
	if (has_par && (par_tag != 0x05 || par.p != par.end))
		return CE_OK;
	for (size_t i = 0; i < sizeof(sig_oids) / sizeof(sig_oids[0]); i++)
		if (is(&oid, sig_oids[i].oid, sig_oids[i].len)) {
			f->sig_alg = sig_oids[i].alg;
			f->sig_hash = sig_oids[i].hash;
		}
	return CE_OK;
}

bool cert_der_serial(const uint8_t *der, size_t len, const uint8_t **serial, size_t *serial_len,
                     const uint8_t **spki, size_t *spki_len)
{
	struct cur all = {der, der + len}, cert, tbs, ver, alg, sig, skip;

	/* Certificate: tbsCertificate, signatureAlgorithm, signatureValue, and no more. */
	if (!item(&all, 0x30, &cert, NULL, NULL) || !at_end(&all) ||
	    !item(&cert, 0x30, &tbs, NULL, NULL) || !item(&cert, 0x30, &alg, NULL, NULL) ||
	    !bits(&cert, &sig) || !at_end(&cert))
		return false;
	/* TBSCertificate: [0] EXPLICIT version (absent for v1), then serialNumber. */
	if (tbs.p < tbs.end && tbs.p[0] == 0xa0 && !item(&tbs, 0xa0, &ver, NULL, NULL))
		return false;
	if (!positive_integer(&tbs, serial, serial_len))
		return false;
	/* signature, issuer, validity, subject: SEQUENCEs, passed over; then the key. */
	for (int i = 0; i < 4; i++)
		if (!item(&tbs, 0x30, &skip, NULL, NULL))
			return false;
	return item(&tbs, 0x30, &skip, spki, spki_len);
}

/* Consumes @p s at *p if the text there starts with it. */
static bool skip_prefix(const char **p, const char *end, const char *s)
{
	size_t n = strlen(s);
	if ((size_t)(end - *p) < n || memcmp(*p, s, n) != 0)
		return false;
	*p += n;
	return true;
}

/* Consumes one line break (LF or CR LF) at *p. */
static bool skip_eol(const char **p, const char *end)
{
	if (*p < end && **p == '\r')
		++*p;
	if (*p >= end || **p != '\n')
		return false;
	++*p;
	return true;
}

static bool is_b64(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
	       c == '+' || c == '/' || c == '=';
}

/* Whether the text at @p p starts a PEM boundary line ("-----BEGIN", "-----END"). */
static bool at_boundary(const char *p, const char *end)
{
	return end - p >= 5 && memcmp(p, "-----", 5) == 0;
}

/*
 * RFC 7468 section 3: generators wrap the base64 at 64 characters, parsers may accept
 * other widths, and clients use them: 76 (MIME tools), one long line (JSON producers),
 * CR LF (Windows). So the body is any number of lines of any width, each ended by LF
 * or CR LF; what is not accepted is whitespace inside a line, blank lines and anything
 * before or after the block but blank lines and whitespace. Still never looser than
 * OpenSSL's reader, which the fuzz target checks.
 */
enum claimd_err csr_pem_to_der(const char *pem, size_t len, uint8_t *der, size_t cap,
                               size_t *der_len)
{
	static const char *const labels[] = {"CERTIFICATE REQUEST", "NEW CERTIFICATE REQUEST"};
	const char *p = pem, *end = pem + len, *body;
	char tail[40];
	size_t i, body_len;

	for (const char *q = p; skip_eol(&q, end);) /* blank lines, nothing else, first */
		p = q;
	for (i = 0; i < 2; i++) {
		const char *q = p;
		if (skip_prefix(&q, end, "-----BEGIN ") && skip_prefix(&q, end, labels[i]) &&
		    skip_prefix(&q, end, "-----") && skip_eol(&q, end)) {
			p = q;
			break;
		}
	}
	if (i == 2)
		return CE_CSR_PEM;
	snprintf(tail, sizeof(tail), "-----END %s-----", labels[i]);
	body = p;
	while (!at_boundary(p, end)) {
		const char *line = p;
		while (p < end && is_b64(*p))
			p++;
		if (p == end || at_boundary(p, end))
			return CE_CSR_PEM; /* no END line, or not on a line of its own */
		if (p == line || !skip_eol(&p, end))
			return CE_CSR_BASE64; /* a blank line, or a character base64 has not */
	}
	body_len = (size_t)(p - body);
	if (!skip_prefix(&p, end, tail))
		return CE_CSR_PEM;            /* another label, or another BEGIN */
	for (const char *q = p; q < end; q++) /* only whitespace after the END line */
		if (*q != ' ' && *q != '\t' && *q != '\r' && *q != '\n')
			return CE_CSR_PEM;
	if (body_len == 0 || !b64_decode_lines(der, cap, der_len, body, body_len))
		return CE_CSR_BASE64;
	return CE_OK;
}
