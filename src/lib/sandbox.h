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

/**
 * Confines the calling (single-threaded) process for good. When it runs as root it
 * becomes @p user (setgroups, setresgid, setresuid; checked irreversible) inside a
 * chroot; otherwise it only moves to an empty directory. @p token_files keeps the
 * file-system calls a PKCS#11 module makes while signing (open, stat, locks: SoftHSM
 * re-reads its token files) and Unix-domain sockets (pcscd), and skips the chroot. A system call
 * outside the list ends the process after one line on stderr naming it.
 * 0, or -1 with a message in @p err (an unknown @p user, a failed call).
 */
int sandbox_enter(const char *user, bool token_files, char *err, size_t errsz);

#endif
