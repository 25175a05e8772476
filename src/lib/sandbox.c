/*
 * The signer's confinement (sandbox.h): the one place <seccomp.h> is included. The
 * allow-list is what the signer's loop needs (a socket it already has, memory, time,
 * randomness) and nothing that reaches outside: no socket(), connect(), open() (unless
 * a PKCS#11 token needs it), execve(), fork or ptrace, and no mapping made executable.
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

static int load_filter(bool token_files, char *err, size_t errsz)
{
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
	     add_all(f, token_calls, sizeof(token_calls) / sizeof(token_calls[0])) < 0))
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

static int drop_root(const char *user, bool token_files, char *err, size_t errsz)
{
	struct passwd *pw = getpwnam(user);

	if (!pw) {
		snprintf(err, errsz,
		         "signer.user: no user \"%s\" to run the signer as (claimd started as "
		         "root): create it (useradd --system %s) or name another",
		         user, user);
		return -1;
	}
	if (pw->pw_uid == 0) {
		snprintf(err, errsz, "signer.user: \"%s\" is root", user);
		return -1;
	}
	if (!token_files && chroot(".") < 0) {
		snprintf(err, errsz, "signer: chroot: %s", strerror(errno));
		return -1;
	}
	if (setgroups(0, NULL) < 0 || setresgid(pw->pw_gid, pw->pw_gid, pw->pw_gid) < 0 ||
	    setresuid(pw->pw_uid, pw->pw_uid, pw->pw_uid) < 0) {
		snprintf(err, errsz, "signer: cannot become %s: %s", user, strerror(errno));
		return -1;
	}
	if (setuid(0) == 0 || seteuid(0) == 0) {
		snprintf(err, errsz, "signer: could become root again after dropping it");
		return -1;
	}
	return 0;
}

int sandbox_enter(const char *user, bool token_files, char *err, size_t errsz)
{
	bool root = geteuid() == 0;

	if (empty_dir(root, err, errsz) < 0)
		return -1;
	if (root && drop_root(user, token_files, err, errsz) < 0)
		return -1;
	/* After the uid change, which resets it: no core dump, no ptrace by our user. */
	if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0 || prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
		snprintf(err, errsz, "signer: prctl: %s", strerror(errno));
		return -1;
	}
	return load_filter(token_files, err, errsz);
}
