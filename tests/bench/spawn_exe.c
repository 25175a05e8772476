/*
 * For tests/bench/cost.sh only, loaded with LD_PRELOAD into a claimd that runs under
 * valgrind: claimd starts its signer by running /proc/self/exe, which under valgrind is
 * valgrind's tool, not claimd. This posix_spawn() runs $CLAIMD_EXE instead of that one
 * path and changes nothing else; the signer then runs natively, outside valgrind.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>

int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	int (*next)(pid_t *, const char *, const posix_spawn_file_actions_t *,
	            const posix_spawnattr_t *, char *const[], char *const[]);
	const char *exe = getenv("CLAIMD_EXE");

	*(void **)&next = dlsym(RTLD_NEXT, "posix_spawn");
	if (exe && strcmp(path, "/proc/self/exe") == 0)
		path = exe;
	return next(pid, path, fa, attr, argv, envp);
}
