/*
 * The signer's confinement (sandbox.h): the one place <seccomp.h> is included. The
 * allow-list is what the signer's loop needs (a socket it already has, memory, time,
 * randomness) and nothing that reaches outside: no socket(), connect(), open() (unless
 * a PKCS#11 token needs it), execve(), fork or ptrace, and no mapping made executable.
 * It also drops root for good, for the signer and for the network process.
 */
#include "lib/sandbox.h"

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

/* What every signer calls after start-up. */
static const int base_calls[] = {
    SCMP_SYS(read),
    SCMP_SYS(write),
    SCMP_SYS(readv),
    SCMP_SYS(writev),
    SCMP_SYS(recvfrom),
    SCMP_SYS(sendto),
    SCMP_SYS(poll),
    SCMP_SYS(ppoll),
    SCMP_SYS(close),
    SCMP_SYS(exit),
    SCMP_SYS(exit_group),
    SCMP_SYS(rt_sigreturn),
    SCMP_SYS(rt_sigprocmask),
    SCMP_SYS(brk),
    SCMP_SYS(munmap),
    SCMP_SYS(mremap),
    SCMP_SYS(madvise),
    SCMP_SYS(futex),
    SCMP_SYS(getrandom),
    SCMP_SYS(clock_gettime),
    SCMP_SYS(clock_nanosleep),
    SCMP_SYS(nanosleep),
    SCMP_SYS(gettimeofday),
    SCMP_SYS(time),
    SCMP_SYS(getpid),
    SCMP_SYS(gettid),
    SCMP_SYS(fstat),
    SCMP_SYS(newfstatat),
    SCMP_SYS(lseek),
    SCMP_SYS(sched_yield),
    SCMP_SYS(restart_syscall),
    SCMP_SYS(tgkill),
    SCMP_SYS(mlock),
    SCMP_SYS(munlock),
    SCMP_SYS(sigaltstack),
    SCMP_SYS(sched_getaffinity),
    /* glibc before 2.37 (Debian 12) asks how much memory there is the first time qsort
     * sorts 1 KiB or more: OpenSSL sorts a CRL's entries, 128 of them are enough. */
    SCMP_SYS(sysinfo),
};

/* A PKCS#11 module's file access while it signs (SoftHSM checks its token files). */
static const int token_calls[] = {
    SCMP_SYS(openat),    SCMP_SYS(open),       SCMP_SYS(stat),      SCMP_SYS(lstat),
    SCMP_SYS(statx),     SCMP_SYS(access),     SCMP_SYS(faccessat), SCMP_SYS(fcntl),
    SCMP_SYS(flock),     SCMP_SYS(getdents64), SCMP_SYS(pread64),   SCMP_SYS(fsync),
    SCMP_SYS(fdatasync), SCMP_SYS(getuid),     SCMP_SYS(geteuid),   SCMP_SYS(getgid),
    SCMP_SYS(getegid),   SCMP_SYS(umask),      SCMP_SYS(getcwd),    SCMP_SYS(uname),
};

/* A call outside the list: say which (async-signal-safe), then end. */
static void on_sigsys(int sig, siginfo_t *si, void *uc)
{
	char msg[80] = "claimd-signer: system call ", num[12];
	int n = si->si_syscall, i = 0;
	size_t len;

	(void)sig;
	(void)uc;
	do {
		num[i++] = (char)('0' + n % 10);
		n /= 10;
	} while (n && i < 11);
	len = strlen(msg);
	while (i > 0)
		msg[len++] = num[--i];
	memcpy(msg + len, " is not allowed: exiting\n", 25);
	len += 25;
	if (write(2, msg, len) < 0) {
		/* nothing more to do */
	}
	_exit(159);
}

static int add_all(scmp_filter_ctx f, const int *calls, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (seccomp_rule_add(f, SCMP_ACT_ALLOW, calls[i], 0) < 0)
			return -1;
	return 0;
}

/* An external signer's: taking a connection and asking who is on its other end. */
static const int listener_calls[] = {
    SCMP_SYS(listen), /* after the drop: a client's SO_PEERCRED names the listener then */
    SCMP_SYS(accept4),
    SCMP_SYS(accept),
    SCMP_SYS(getsockopt),
};

static int load_filter(unsigned flags, char *err, size_t errsz)
{
	bool token_files = flags & SANDBOX_TOKEN;
	scmp_filter_ctx f = seccomp_init(SCMP_ACT_TRAP);
	struct sigaction sa;
	int rc = -1;

	memset(&sa, 0, sizeof(sa));
	sa.sa_sigaction = on_sigsys;
	sa.sa_flags = SA_SIGINFO;
	/* TSYNC: the filter covers every thread, also any a PKCS#11 module started while it
	 * was loaded or logged in; if one cannot be synchronised, loading fails. */
	if (!f || sigaction(SIGSYS, &sa, NULL) < 0 ||
	    seccomp_attr_set(f, SCMP_FLTATR_CTL_TSYNC, 1) < 0)
		goto out;
	if (add_all(f, base_calls, sizeof(base_calls) / sizeof(base_calls[0])) < 0 ||
	    (token_files &&
	     add_all(f, token_calls, sizeof(token_calls) / sizeof(token_calls[0])) < 0) ||
	    ((flags & SANDBOX_LISTENER) &&
	     add_all(f, listener_calls, sizeof(listener_calls) / sizeof(listener_calls[0])) < 0))
		goto out;
	/* Memory, but never executable memory: no new code once the keys are in. */
	if (seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
	                     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)) < 0 ||
	    seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
	                     SCMP_A2(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)) < 0)
		goto out;
	/* A token behind a local daemon (pcscd for smart cards) is reached over a Unix
	 * socket; no other address family, so no network either way. */
	if (token_files && (seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
	                                     SCMP_A0(SCMP_CMP_EQ, AF_UNIX)) < 0 ||
	                    seccomp_rule_add(f, SCMP_ACT_ALLOW, SCMP_SYS(connect), 0) < 0))
		goto out;
	if (seccomp_load(f) < 0)
		goto out;
	rc = 0;
out:
	if (rc < 0)
		snprintf(err, errsz, "signer: cannot load the seccomp filter");
	seccomp_release(f);
	return rc;
}

/* An empty directory nobody can add to: made, entered and removed. */
static int empty_dir(bool root, char *err, size_t errsz)
{
	const char *tmp = getenv("TMPDIR");
	char path[4096];

	snprintf(path, sizeof(path), "%s/claimd-signer.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
	if (!mkdtemp(path) || chdir(path) < 0 || rmdir(path) < 0) {
		/* A read-only file system: without root there is nothing to confine to, and
		 * the seccomp filter keeps the file system out of reach all the same. */
		if (!root && chdir("/") == 0)
			return 0;
		snprintf(err, errsz, "signer: cannot make an empty directory in %s: %s",
		         tmp && tmp[0] ? tmp : "/tmp", strerror(errno));
		return -1;
	}
	return 0;
}

int sandbox_user(const char *key, const char *user, uid_t *uid, gid_t *gid, char *err, size_t errsz)
{
	struct passwd *pw = getpwnam(user);
	char *end = NULL;

	if (pw) {
		*uid = pw->pw_uid;
		*gid = pw->pw_gid;
	} else if (user[0] >= '0' && user[0] <= '9') {
		/* A uid without a name (a container's runAsUser): its own group. */
		errno = 0;
		unsigned long v = strtoul(user, &end, 10);
		if (errno || *end || v >= 0xffffffffUL) {
			snprintf(err, errsz, "%s: \"%s\" is not a user name or uid", key, user);
			return -1;
		}
		*uid = (uid_t)v;
		*gid = (gid_t)v;
	} else {
		snprintf(err, errsz,
		         "%s: no user \"%s\" (claimd started as root): create it (useradd "
		         "--system %s) or name another",
		         key, user, user);
		return -1;
	}
	if (*uid == 0) {
		snprintf(err, errsz, "%s: \"%s\" is root", key, user);
		return -1;
	}
	return 0;
}

/* Becomes @p uid:@p gid (@p user's) and checks there is no way back. */
static int become(const char *key, const char *user, uid_t uid, gid_t gid, char *err, size_t errsz)
{
	if (setgroups(0, NULL) < 0 || setresgid(gid, gid, gid) < 0 ||
	    setresuid(uid, uid, uid) < 0) {
		snprintf(err, errsz, "%s: cannot become %s: %s", key, user, strerror(errno));
		return -1;
	}
	/* Checked, not assumed: no saved uid, group or supplementary group of root left. */
	uid_t r, e, s;
	gid_t rg, eg, sg;
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0 || getresuid(&r, &e, &s) < 0 ||
	    getresgid(&rg, &eg, &sg) < 0 || r != uid || e != uid || s != uid || rg != gid ||
	    eg != gid || sg != gid || getgroups(0, NULL) != 0) {
		snprintf(err, errsz, "%s: could become root again after dropping it", key);
		return -1;
	}
	return 0;
}

int sandbox_become(const char *key, const char *user, char *err, size_t errsz)
{
	uid_t uid;
	gid_t gid;

	if (sandbox_user(key, user, &uid, &gid, err, errsz) < 0)
		return -1;
	return become(key, user, uid, gid, err, errsz);
}

int sandbox_enter(const char *user, unsigned flags, char *err, size_t errsz)
{
	bool root = geteuid() == 0, token_files = flags & SANDBOX_TOKEN;
	uid_t uid = 0;
	gid_t gid = 0;

	/* The user database is read before the chroot leaves it behind. */
	if (root && sandbox_user("signer.user", user, &uid, &gid, err, errsz) < 0)
		return -1;
	if (empty_dir(root, err, errsz) < 0)
		return -1;
	if (root && !token_files && chroot(".") < 0) {
		snprintf(err, errsz, "signer: chroot: %s", strerror(errno));
		return -1;
	}
	if (root && become("signer.user", user, uid, gid, err, errsz) < 0)
		return -1;
	/* After the uid change, which resets it: no core dump, no ptrace by our user. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(err, errsz, "signer: prctl: %s", strerror(errno));
		return -1;
	}
	return load_filter(flags, err, errsz);
}
