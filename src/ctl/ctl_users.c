/*
 * claimctl's user commands: users quota. The rule (which quotas are allowed) and the
 * write are src/core/operator.c's; this file parses and prints.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/operator.h"
#include "ctl.h"

int ctl_users_quota(int argc, char **argv)
{
	char *end;
	if (argc != 3) {
		ctl_usage_of("users quota", stderr);
		return 2;
	}
	unsigned long n = strtoul(argv[2], &end, 10);
	if (*end || !argv[2][0] || !operator_quota_ok(argv[1], n)) {
		fprintf(stderr, "users quota: N must be 0-1000000, USER 1-255 characters\n");
		return 2;
	}
	struct db *db = ctl_db();
	if (!db)
		return 1;
	struct operator_who who = ctl_who();
	enum db_status s = operator_set_quota(db, &who, argv[1], (unsigned)n);
	db_close(db);
	if (s < DB_NO_ROWS)
		return 1;
	printf("users quota: %s may hold %lu device(s)%s\n", argv[1], n, n ? "" : " (unlimited)");
	return 0;
}
