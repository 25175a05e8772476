/*
 * Pure helpers with no dependencies beyond libc. Every parser here is strict and
 * length-bounded because its input comes straight from the network or a CSV file.
 */
#include "lib/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

int hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void hex_encode(char *out, const uint8_t *in, size_t n, const char *digits)
{
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

void hex_encode_upper(char *out, const uint8_t *in, size_t n)
{
	hex_encode(out, in, n, "0123456789ABCDEF");
}

void hex_encode_lower(char *out, const uint8_t *in, size_t n)
{
	hex_encode(out, in, n, "0123456789abcdef");
}

bool hex_decode(uint8_t *out, size_t n, const char *in, size_t len, bool allow_spaces)
{
	size_t got = 0;
	int hi = -1;

	for (size_t i = 0; i < len; i++) {
		if (allow_spaces && in[i] == ' ')
			continue;
		int v = hex_value(in[i]);
		if (v < 0 || got >= n)
			return false;
		if (hi < 0) {
			hi = v;
		} else {
			out[got++] = (uint8_t)(hi << 4 | v);
			hi = -1;
		}
	}
	return got == n && hi < 0;
}

void mac_to_bytes(uint8_t out[6], const char mac[MAC_LEN + 1])
{
	for (int i = 0; i < 6; i++)
		out[i] = (uint8_t)(hex_value(mac[2 * i]) << 4 | hex_value(mac[2 * i + 1]));
}

void mac_from_bytes(char out[MAC_LEN + 1], const uint8_t in[6])
{
	hex_encode_upper(out, in, 6);
}

char *file_read_all(const char *path, size_t max, size_t *len_out)
{
	FILE *f = fopen(path, "rb");
	char *buf = NULL;
	size_t n = 0, cap = 0;

	if (!f)
		return NULL;
	for (;;) {
		if (n + 4096 + 1 > cap) {
			size_t ncap = cap ? cap * 2 : 8192;
			char *nb = realloc(buf, ncap);
			if (!nb) {
				free(buf);
				fclose(f);
				errno = ENOMEM;
				return NULL;
			}
			buf = nb;
			cap = ncap;
		}
		size_t r = fread(buf + n, 1, cap - n - 1, f);
		n += r;
		if (n > max) {
			free(buf);
			fclose(f);
			errno = EFBIG;
			return NULL;
		}
		if (r == 0)
			break;
	}
	if (ferror(f)) {
		free(buf);
		fclose(f);
		errno = EIO;
		return NULL;
	}
	fclose(f);
	buf[n] = '\0';
	if (len_out)
		*len_out = n;
	return buf;
}

uint64_t now_ms_monotonic(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t now_us_monotonic(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int64_t now_unix(void)
{
	return (int64_t)time(NULL);
}

const char *user_name(uid_t uid, char *buf, size_t bufsz)
{
	struct passwd pw, *res = NULL;
	char tmp[1024];
	if (getpwuid_r(uid, &pw, tmp, sizeof(tmp), &res) == 0 && res)
		snprintf(buf, bufsz, "%s", pw.pw_name);
	else
		snprintf(buf, bufsz, "uid %u", (unsigned)uid);
	return buf;
}

int key_file_access(const char *path, const struct stat *st, char *why, size_t whysz)
{
	char me[64], owner[64];

	if (access(path, R_OK) == 0)
		return 0;
	if (errno != EACCES) {
		snprintf(why, whysz, "cannot open: %s", strerror(errno));
		return -1;
	}
	user_name(geteuid(), me, sizeof(me));
	user_name(st->st_uid, owner, sizeof(owner));
	snprintf(why, whysz,
	         "permission denied: this process runs as %s and the file is owned by %s, mode "
	         "%04o; it needs to be owned by %s, mode 0600 (chown %s FILE)",
	         me, owner, (unsigned)(st->st_mode & 07777), me, me);
	return -1;
}
