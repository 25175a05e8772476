/*
 * What the signer process gives up once its keys are loaded: core dumps and ptrace by
 * its own user (PR_SET_DUMPABLE 0), root (its own unprivileged user), the file system
 * (an empty, deleted root or working directory) and every system call outside a
 * seccomp allow-list, which has no socket, no exec and no executable mappings.
 */
#ifndef CLAIMD_SANDBOX_H
#define CLAIMD_SANDBOX_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* What sandbox_enter() keeps beside the signer's base list. */
enum sandbox_flags {
	SANDBOX_TOKEN = 1,    /* a PKCS#11 module's file access and Unix sockets (pcscd) */
	SANDBOX_LISTENER = 2, /* an external signer's listen(), accept4(), getsockopt() */
};

/**
 * Confines the calling (single-threaded) process for good. When it runs as root it
 * becomes @p user (sandbox_become()) inside a chroot; otherwise it only moves to an
 * empty directory. SANDBOX_TOKEN in @p flags keeps the file-system calls a PKCS#11
 * module makes while signing (open, stat, locks: SoftHSM re-reads its token files) and
 * Unix-domain sockets (pcscd), and skips the chroot; SANDBOX_LISTENER keeps listen(),
 * accept4() and getsockopt(). A system call outside the list ends the process after one line on
 * stderr naming it. 0, or -1 with a message in @p err (an unknown @p user, a failed
 * call).
 */
int sandbox_enter(const char *user, unsigned flags, char *err, size_t errsz);
/**
 * Resolves @p user, a name in the user database or a numeric uid (then its gid is the
 * same number), for config key @p key. 0 with *@p uid and *@p gid, or -1 with a message
 * naming @p key in @p err: no such user, not a number, or root (uid 0).
 */
int sandbox_user(const char *key, const char *user, uid_t *uid, gid_t *gid, char *err,
                 size_t errsz);
/**
 * Becomes @p user (sandbox_user()) for good: no supplementary groups, real, effective
 * and saved gid and uid all @p user's, then checks that neither setuid(0), seteuid(0)
 * nor setgid(0) succeeds and no id of root is left. Needs root. 0, or -1 with a
 * message naming config key @p key in @p err.
 */
int sandbox_become(const char *key, const char *user, char *err, size_t errsz);

#endif
