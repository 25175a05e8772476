/*
 * The YAML config file: one key table drives parsing, defaults, validation and the
 * example file. This module only reads and checks text; it loads no keys or
 * certificates (the signer does, src/signer/signer_main.c; claimctl for its local
 * paths) and never logs values, since some name secrets.
 */
#ifndef CLAIMD_CONFIG_H
#define CLAIMD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "lib/log.h"

/* revocation.on_reclaim: whether a re-claim revokes the node's earlier certificates. */
enum reclaim_policy { RECLAIM_SUPERSEDE, RECLAIM_KEEP };
/* claim.transfer: what a user's claim of a MAC that another user holds does to the other
 * user's node (docs/operations.md, "Ownership transfer"). */
enum transfer_policy { TRANSFER_RELEASE, TRANSFER_KEEP, TRANSFER_REFUSE };
/* server.metrics: the listener that serves /metrics. */
enum metrics_listener { METRICS_PUBLIC, METRICS_ADMIN };
/* server.event_loop: libmicrohttpd's mode. */
enum event_loop_kind { EVENT_LOOP_EPOLL, EVENT_LOOP_POLL };
/* server.listen_sharing: whether another process may listen on the same address. */
enum listen_sharing_kind { LISTEN_EXCLUSIVE, LISTEN_SHARED };

struct claimd_config {
	char *file; /* as given */
	char *dir;  /* its folder: relative paths are relative to it */

	char *listen; /* server.listen, "host:port" */
	char *listen_host;
	unsigned listen_port;
	char **trusted_proxies;
	size_t n_trusted_proxies;
	unsigned threads;
	unsigned max_body_bytes;
	unsigned connection_timeout;
	char *log_level;

	char *db_url;
	unsigned db_timeout_ms;

	char *ca_certificate;
	char *ca_key;
	char *ca_chain;
	char *ca_crl_url;
	unsigned validity_days;

	char *secrets_key_file;

	unsigned challenge_ttl;
	unsigned max_attempts;
	char *mqtt_host;
	char *mqtt_cred_host;
	char **extra_platforms; /* claim.extra_platforms: canonical (canon.h), NULL-terminated */
	size_t n_extra_platforms;
	char *transfer; /* claim.transfer: "release", "keep" or "refuse" */

	char *jwt_jwks_file;
	char *jwt_issuer;
	char *jwt_audience;
	char *jwt_user_claim;
	char *jwt_audience_claim; /* users.jwt.audience_claim: "aud", or "client_id" */
	unsigned quota;

	unsigned address_per_minute, address_burst;
	unsigned mac_per_minute, mac_burst;
	unsigned user_per_minute, user_burst;
	unsigned lockout_failures, lockout_seconds, lockout_max_seconds;
	unsigned claims_in_flight;
	unsigned request_seconds;
	unsigned max_connections, max_connections_per_address;
	unsigned connection_memory_bytes;

	unsigned crl_hours;
	char *on_reclaim; /* "supersede" or "keep" */
	/* matter: all empty when Matter is not configured */
	char *matter_pai_certificate;
	char *matter_pai_key;
	char *matter_vendor_id;    /* four upper-case hex digits */
	char **matter_product_ids; /* the same form, NULL-terminated; none = any */
	size_t n_matter_product_ids;

	char *log_format;     /* "text" or "json" */
	char *metrics_on;     /* server.metrics: "public" or "admin" */
	char *event_loop;     /* server.event_loop: "epoll" or "poll" */
	char *listen_sharing; /* server.listen_sharing: "exclusive" or "shared" */
	char *admin_listen;   /* admin.listen, "host:port"; "" = no management API */
	/* The word-valued keys above, read once at load into what the code compares: */
	enum log_level log_level_value;      /* server.log_level */
	enum log_format log_format_value;    /* log.format */
	enum reclaim_policy reclaim;         /* revocation.on_reclaim */
	enum transfer_policy transfer_value; /* claim.transfer */
	enum metrics_listener metrics_where; /* server.metrics */
	enum event_loop_kind loop;           /* server.event_loop */
	enum listen_sharing_kind sharing;    /* server.listen_sharing */
	char *admin_listen_host;
	unsigned admin_listen_port;
	char *admin_tokens_file; /* "" = none (every management request is refused) */

	char *signer_user;       /* the signer's user when started as root */
	unsigned signer_timeout; /* seconds */
	char *signer_socket;     /* an external signer's Unix socket; "" = claimd starts one */
	char *server_user;       /* the network process's user when started as root */
	char *run_as_root_text;  /* server.run_as_root as written: "yes" or "no" */
	bool run_as_root;        /* the network process may stay root (no separation) */
};

/**
 * Loads and validates @p path. On failure returns NULL and writes
 * "FILE:LINE:COLUMN: message" (or "FILE: message") into @p err.
 */
struct claimd_config *config_load(const char *path, char *err, size_t errsz);
/** Frees @p c; NULL is a no-op. */
void config_free(struct claimd_config *c);
/** The same from a buffer (fuzzing, tests); @p name stands for the file in messages. */
struct claimd_config *config_load_buffer(const char *name, const char *buf, size_t len, char *err,
                                         size_t errsz);
/**
 * The next key, from index *@p pos on, whose change takes effect only at a restart
 * (server.listen, server.threads, database.url, the connection limits) and whose value
 * differs between @p old and @p cur. Advances *@p pos (start at 0); NULL when none is left.
 */
const char *config_next_restart_change(const struct claimd_config *old,
                                       const struct claimd_config *cur, size_t *pos);
/** Writes the documented example file, every key with its default, to @p out. */
void config_write_example(FILE *out);

#endif
