/*
 * /proc/PID/mem scans (proc_scan.h).
 */
#include "proc_scan.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

#define SOFTHSM "/usr/lib/softhsm/libsofthsm2.so"

#define REGION_MAX (1UL << 30) /* larger: a sanitizer's shadow, reserved, never a key */

void needle_set(struct needle *nd, const char *what, const uint8_t *b, size_t n)
{
	nd->what = what;
	nd->n = n;
	memcpy(nd->be, b, n);
	for (size_t i = 0; i < n; i++)
		nd->le[i] = b[n - 1 - i];
}

/* Whether process @p pid's readable memory holds @p nd in either order. */
bool memory_holds(pid_t pid, const struct needle *nd)
{
	char path[64], line[512];
	bool found = false;
	size_t scanned = 0;
	uint8_t *buf = malloc((1 << 20) + 512);
	FILE *maps;
	int mem;

	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	maps = fopen(path, "r");
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	mem = open(path, O_RDONLY);
	if (!maps || mem < 0 || !buf) {
		fprintf(stderr, "cannot read the memory of %d: %s\n", (int)pid, strerror(errno));
		if (maps)
			fclose(maps);
		if (mem >= 0)
			close(mem);
		free(buf);
		return false;
	}
	while (!found && fgets(line, sizeof(line), maps)) {
		unsigned long lo, hi;
		char perms[8];
		if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) != 3 || perms[0] != 'r' ||
		    strstr(line, "[vvar]") || strstr(line, "[vsyscall]") || hi - lo > REGION_MAX)
			continue;
		size_t carry = 0;
		for (unsigned long a = lo; a < hi && !found;) {
			size_t want = hi - a < (1 << 20) ? hi - a : (1 << 20);
			ssize_t r = pread(mem, buf + carry, want, (off_t)a);
			if (r <= 0)
				break;
			size_t have = carry + (size_t)r;
			found =
			    memmem(buf, have, nd->be, nd->n) || memmem(buf, have, nd->le, nd->n);
			/* Keep the tail: a key may straddle two reads. */
			carry = have < nd->n - 1 ? have : nd->n - 1;
			memmove(buf, buf + have - carry, carry);
			a += (unsigned long)r;
			scanned += (size_t)r;
		}
	}
	fclose(maps);
	close(mem);
	free(buf);
	/* A scan that finds nothing must have read something like a whole process. */
	CHECKF(found || scanned > (1 << 20), "scanned only %zu bytes of %d", scanned, (int)pid);
	return found;
}

/* The claimd signer child of @p parent, from /proc (its comm is "claimd-signer"). */
pid_t signer_of(pid_t parent)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	pid_t found = -1;

	while (d && (e = readdir(d))) {
		char path[300], buf[512];
		int pid = atoi(e->d_name), ppid = 0;
		if (pid <= 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		FILE *f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(buf, sizeof(buf), f)) {
			char *rp = strrchr(buf, ')');
			if (rp && sscanf(rp + 2, "%*c %d", &ppid) == 1 && ppid == parent &&
			    strstr(buf, "(claimd-signer)"))
				found = pid;
		}
		fclose(f);
	}
	if (d)
		closedir(d);
	return found;
}

/* The private scalar (EC) or first prime (RSA) of the PEM key at @p path. */
bool key_secret(const char *path, struct needle *nd)
{
	FILE *f = fopen(path, "r");
	EVP_PKEY *k = f ? PEM_read_PrivateKey(f, NULL, NULL, NULL) : NULL;
	BIGNUM *bn = NULL;
	uint8_t b[512];
	int n = 0;

	if (f)
		fclose(f);
	if (k && EVP_PKEY_is_a(k, "EC") && EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_PRIV_KEY, &bn))
		n = BN_bn2binpad(bn, b, 32);
	else if (k && EVP_PKEY_get_bn_param(k, OSSL_PKEY_PARAM_RSA_FACTOR1, &bn))
		n = BN_bn2bin(bn, b);
	if (n > 0)
		needle_set(nd, EVP_PKEY_is_a(k, "EC") ? "CA EC scalar" : "CA RSA prime p", b,
		           (size_t)n);
	BN_clear_free(bn);
	EVP_PKEY_free(k);
	return n > 0;
}

bool hsm_token(const struct tenv *t, const char *key_pem, const char *pin_in_file, char *uri,
               size_t urisz)
{
	char cmd[16384], dir[1100];
	struct passwd *nobody = getpwnam("nobody");

	snprintf(dir, sizeof(dir), "%s/hsm", t->dir);
	snprintf(cmd, sizeof(cmd),
	         "set -e; rm -rf '%s'; mkdir -p '%s/tokens'; printf 'directories.tokendir = "
	         "%s/tokens\\nobjectstore.backend = file\\nlog.level = ERROR\\n' > "
	         "'%s/softhsm2.conf'; export SOFTHSM2_CONF='%s/softhsm2.conf'; "
	         "softhsm2-util --init-token --free --label claimd-ca --pin 1234 --so-pin 4321 "
	         ">/dev/null; openssl pkcs8 -topk8 -nocrypt -in '%s' -out '%s/key.p8'; "
	         "softhsm2-util --import '%s/key.p8' --token claimd-ca --label ca --id 01 "
	         "--pin 1234 >/dev/null; rm -f '%s/key.p8'; printf '%s\\n' > '%s/pin'; "
	         "chmod 600 '%s/pin'; chown -R %d '%s'",
	         dir, dir, dir, dir, dir, key_pem, dir, dir, dir, pin_in_file, dir, dir,
	         nobody ? (int)nobody->pw_uid : 65534, dir);
	if (t_run(NULL, "%s", cmd) != 0)
		return false;
	snprintf(cmd, sizeof(cmd), "%s/softhsm2.conf", dir);
	setenv("SOFTHSM2_CONF", cmd, 1); /* claimd and its signer inherit it */
	snprintf(uri, urisz,
	         "pkcs11:token=claimd-ca;object=ca;type=private?module-path=" SOFTHSM
	         "&pin-source=file:%s/pin",
	         dir);
	return true;
}
