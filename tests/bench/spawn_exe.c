/*
 * For tests/bench/cost.sh only, loaded with LD_PRELOAD into claimd (and inherited by
 * its signer). claimd starts its signer by running /proc/self/exe, which under valgrind
 * is valgrind's tool, not claimd: this posix_spawn() runs $CLAIMD_EXE instead of that
 * one path, natively. With $CLAIMD_SIGNER_VALGRIND (valgrind's options, separated by
 * spaces) it runs the signer under valgrind with those options instead, and then the
 * signer's chroot() and seccomp filter are skipped (valgrind needs its files and system
 * calls the filter refuses): a measuring harness, never a way to run claimd.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>

#define ARGS_MAX 32

int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	int (*next)(pid_t *, const char *, const posix_spawn_file_actions_t *,
	            const posix_spawnattr_t *, char *const[], char *const[]);
	const char *exe = getenv("CLAIMD_EXE"), *vg = getenv("CLAIMD_SIGNER_VALGRIND");
	static char opts[4096];
	char *args[ARGS_MAX + 1];
	int n = 0;

	*(void **)&next = dlsym(RTLD_NEXT, "posix_spawn");
	if (!exe || strcmp(path, "/proc/self/exe") != 0)
		return next(pid, path, fa, attr, argv, envp);
	if (!vg)
		return next(pid, exe, fa, attr, argv, envp);
	strncpy(opts, vg, sizeof(opts) - 1);
	args[n++] = "valgrind";
	for (char *t = strtok(opts, " \n"); t && n < ARGS_MAX - 8; t = strtok(NULL, " \n"))
		args[n++] = t;
	args[n++] = (char *)exe;
	for (int i = 1; argv[i] && n < ARGS_MAX; i++)
		args[n++] = argv[i];
	args[n] = NULL;
	return next(pid, "/usr/bin/valgrind", fa, attr, args, envp);
}

int chroot(const char *path)
{
	int (*next)(const char *);

	if (getenv("CLAIMD_SIGNER_VALGRIND"))
		return 0;
	*(void **)&next = dlsym(RTLD_NEXT, "chroot");
	return next(path);
}

int seccomp_load(void *ctx)
{
	int (*next)(void *);

	if (getenv("CLAIMD_SIGNER_VALGRIND"))
		return 0;
	*(void **)&next = dlsym(RTLD_NEXT, "seccomp_load");
	return next(ctx);
}

/* libseccomp asks the kernel (the seccomp system call, which valgrind does not know)
 * whether it can synchronise threads; the filter is skipped anyway. */
int seccomp_attr_set(void *ctx, int attr, unsigned value)
{
	int (*next)(void *, int, unsigned);

	if (getenv("CLAIMD_SIGNER_VALGRIND"))
		return 0;
	*(void **)&next = dlsym(RTLD_NEXT, "seccomp_attr_set");
	return next(ctx, attr, value);
}
