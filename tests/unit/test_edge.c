/*
 * The edge's judgement of a request head (http_edge_check_head, http_framing_*): what it
 * lets through, what it waits for, and which error each fault gets. The same bytes go
 * to a real claimd in tests/api/test_framing.c.
 */
#include <stdio.h>
#include <string.h>

#include "daemon/http_edge.h"
#include "harness.h"

#define POST "POST /claim/initiate HTTP/1.1\r\nHost: x\r\n"

static enum claimd_err judge(const char *head, size_t *len)
{
	char m[32], t[64];
	return http_edge_check_head(head, strlen(head), 16384, len, m, t, sizeof(m));
}

static void heads_judged(void)
{
	static const struct {
		const char *head;
		enum claimd_err want;
		bool complete;
	} cases[] = {
	    {POST "Content-Length: 2\r\n\r\n{}", CE_OK, true},
	    {"\r\n" POST "Transfer-Encoding: Chunked\r\n\r\n", CE_OK, true},
	    {"GET /healthz HTTP/1.0\n\n", CE_OK, true},
	    {POST "Content-Length: 2\r\n", CE_OK, false},
	    {POST "Content-Le", CE_OK, false},
	    {POST "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", CE_LENGTH_AND_ENCODING,
	     true},
	    {POST "Transfer-Encoding: gzip\r\n\r\n", CE_TRANSFER_ENCODING, true},
	    {POST "Transfer-Encoding: identity\r\n\r\n", CE_TRANSFER_ENCODING, true},
	    {POST "Transfer-Encoding: gzip, chunked\r\n\r\n", CE_TRANSFER_ENCODING, true},
	    {POST "Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	     CE_TRANSFER_ENCODING, true},
	    {POST "Content-Length: -1\r\n\r\n", CE_CONTENT_LENGTH, true},
	    {POST "Content-Length: +5\r\n\r\n", CE_CONTENT_LENGTH, true},
	    {POST "Content-Length: 1e3\r\n\r\n", CE_CONTENT_LENGTH, true},
	    {POST "Content-Length: 1234567890123456789\r\n\r\n", CE_CONTENT_LENGTH, true},
	    {POST "Content-Length:\r\n\r\n", CE_CONTENT_LENGTH, true},
	    {POST "Content-Length: 5, 5\r\n\r\n", CE_CONTENT_LENGTH, true},
	    {POST "Content-Length: 5\r\nContent-Length: 5\r\n\r\n", CE_CONTENT_LENGTH, true},
	    {"POST /claim/initiate HTTP/1.1\r\n\r\n", CE_MALFORMED_REQUEST, true},
	    {"POST  /x HTTP/1.1\r\nHost: x\r\n\r\n", CE_MALFORMED_REQUEST, true},
	    {"GARBAGE\r\n\r\n", CE_MALFORMED_REQUEST, true},
	    {POST "Bad Name: v\r\n\r\n", CE_MALFORMED_REQUEST, true},
	    {POST "X-A: v\r\n folded\r\n\r\n", CE_MALFORMED_REQUEST, true},
	    {POST "X-A: v\rw\r\n\r\n", CE_MALFORMED_REQUEST, true},
	    {"GET / HTTP/2.0\r\nHost: x\r\n\r\n", CE_HTTP_VERSION, true},
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		size_t len = 1;
		enum claimd_err e = judge(cases[i].head, &len);
		CHECKF(e == cases[i].want, "case %zu: %s, want %s", i, err_name(e),
		       err_name(cases[i].want));
		if (e == CE_OK)
			CHECKF((len > 0) == cases[i].complete, "case %zu: head length %zu", i, len);
	}
}

static void head_limits(void)
{
	char big[20000];
	size_t len;
	int n = snprintf(big, sizeof(big), "GET /?a HTTP/1.1\r\nHost: x\r\n");
	/* 98 more fields: 100 with Host and the query argument. */
	for (int i = 0; i < 98; i++)
		n += snprintf(big + n, sizeof(big) - (size_t)n, "X-%d: v\r\n", i);
	snprintf(big + n, sizeof(big) - (size_t)n, "\r\n");
	CHECK(judge(big, &len) == CE_OK && len == strlen(big));
	snprintf(big + n, sizeof(big) - (size_t)n, "X-Last: v\r\n\r\n");
	CHECK(judge(big, &len) == CE_HEADERS_TOO_LARGE);
	/* No end of the head within the limit. */
	memset(big, 'a', sizeof(big) - 1);
	memcpy(big, "GET / HTTP/1.1\r\nX-Long: ", 24);
	big[sizeof(big) - 1] = '\0';
	CHECK(judge(big, &len) == CE_HEADERS_TOO_LARGE);
}

static const struct t_case cases[] = {
    {"heads_judged", heads_judged},
    {"head_limits", head_limits},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
	return t_main(argc, argv, cases);
}
