/*
 * Request and claim counters (docs/operations.md, "Metrics, alerts and the dashboard"). Counting is
 * a few atomic adds on the request's completion; a route's slot is found by its label's address, so
 * the lock is taken only the first time a route finishes. Writing reads the counters as they are: a
 * scrape may see a request counted in one family and not yet in another.
 */
#include "lib/metrics.h"

#include <dirent.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* The status codes claimd and libmicrohttpd send, each its own series; any other
 * goes to the last slot, labelled by the first such code seen ("other" before). */
static const unsigned statuses[METRICS_STATUS - 1] = {200, 304, 400, 401, 403, 404, 405, 408,
                                                      409, 413, 414, 429, 431, 500, 503};

/* Upper bounds of the duration buckets, seconds (the last one is +Inf). A claim's
 * database transaction takes about a millisecond, a whole claim a few. */
static const double bounds[METRICS_BUCKETS - 1] = {0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                   0.1,   0.25,   0.5,   1,    2.5,   5};

static const char *const flows[FLOW__COUNT] = {
    [FLOW_SELF] = "self", [FLOW_USER] = "user", [FLOW_MATTER] = "matter"};

int metrics_init(struct metrics *m)
{
	struct timespec ts;

	memset(m, 0, sizeof(*m));
	clock_gettime(CLOCK_REALTIME, &ts);
	m->start_time = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
	return pthread_mutex_init(&m->lock, NULL) == 0 ? 0 : -1;
}

void metrics_destroy(struct metrics *m)
{
	pthread_mutex_destroy(&m->lock);
}

static struct metrics_route *route_slot(struct metrics *m, const char *label)
{
	struct metrics_route *r = NULL;

	for (int i = 0; i < METRICS_ROUTES; i++) {
		const char *l = __atomic_load_n(&m->routes[i].label, __ATOMIC_ACQUIRE);
		if (!l)
			break;
		if (l == label || strcmp(l, label) == 0)
			return &m->routes[i];
	}
	pthread_mutex_lock(&m->lock);
	for (int i = 0; i < METRICS_ROUTES && !r; i++) {
		const char *l = m->routes[i].label;
		if (!l) {
			__atomic_store_n(&m->routes[i].label, label, __ATOMIC_RELEASE);
			r = &m->routes[i];
		} else if (l == label || strcmp(l, label) == 0) {
			r = &m->routes[i];
		}
	}
	pthread_mutex_unlock(&m->lock);
	return r;
}

void metrics_observe(struct metrics_histogram *h, uint64_t us)
{
	int b = METRICS_BUCKETS - 1;

	for (int i = METRICS_BUCKETS - 2; i >= 0 && (double)us / 1e6 <= bounds[i]; i--)
		b = i;
	atomic_fetch_add(&h->buckets[b], 1);
	atomic_fetch_add(&h->sum_us, (long long)us);
}

void metrics_request(struct metrics *m, const char *label, unsigned status, uint64_t duration_us)
{
	struct metrics_route *r = route_slot(m, label);
	int s = METRICS_STATUS - 1;

	if (!r)
		return;
	for (int i = 0; i < METRICS_STATUS - 1; i++)
		if (statuses[i] == status)
			s = i;
	atomic_fetch_add(&r->by_status[s], 1);
	metrics_observe(&r->duration, duration_us);
}

void metrics_claim(struct metrics *m, enum metrics_flow flow, enum claimd_err e)
{
	if (flow >= 0 && flow < FLOW__COUNT && e >= 0 && e < CE__COUNT)
		atomic_fetch_add(&m->claims[flow][e], 1);
}

void metrics_issued(struct metrics *m, enum metrics_flow flow)
{
	if (flow >= 0 && flow < FLOW__COUNT)
		atomic_fetch_add(&m->issued[flow], 1);
}

void metrics_device_source(struct metrics *m, enum metrics_device_source src)
{
	if (m && src >= 0 && src < DEVICE_FROM__COUNT)
		atomic_fetch_add(&m->device_from[src], 1);
}

void metrics_db_tx(struct metrics_db *db, enum metrics_tx outcome, uint64_t us)
{
	if (!db || outcome < 0 || outcome >= TX__COUNT)
		return;
	atomic_fetch_add(&db->tx[outcome], 1);
	metrics_observe(&db->tx_duration, us);
}

void metrics_db_retry(struct metrics_db *db, enum metrics_retry why)
{
	if (db && why >= 0 && why < RETRY__COUNT)
		atomic_fetch_add(&db->retries[why], 1);
}

void metrics_db_connection_error(struct metrics_db *db)
{
	if (db)
		atomic_fetch_add(&db->connection_errors, 1);
}

/* The label set `route="<path>"` of a route, escaped as the exposition format asks
 * (route labels are route-table paths, so nothing is expected to need it). */
static void route_labels(char *out, size_t cap, const char *path)
{
	size_t n = (size_t)snprintf(out, cap, "route=\"");

	for (; *path && n + 4 < cap; path++) {
		if (*path == '\\' || *path == '"')
			out[n++] = '\\';
		out[n++] = *path == '\n' ? ' ' : *path;
	}
	out[n++] = '"';
	out[n] = '\0';
}

/* Resident memory in bytes from /proc/self/statm, or -1. */
static long resident_bytes(void)
{
	long pages = -1, size;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f && fscanf(f, "%ld %ld", &size, &pages) != 2)
		pages = -1;
	if (f)
		fclose(f);
	return pages < 0 ? -1 : pages * sysconf(_SC_PAGESIZE);
}

/* Open file descriptors, from /proc/self/fd, or -1. */
static long open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	long n = 0;
	if (!d)
		return -1;
	for (struct dirent *e; (e = readdir(d));)
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1; /* the directory's own descriptor */
}

static void write_process(const struct metrics *m, FILE *f)
{
	struct rusage ru;
	long rss = resident_bytes(), fds = open_fds();

	if (getrusage(RUSAGE_SELF, &ru) == 0)
		fprintf(f,
		        "# HELP process_cpu_seconds_total User and system CPU time spent.\n"
		        "# TYPE process_cpu_seconds_total counter\n"
		        "process_cpu_seconds_total %.3f\n",
		        (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
		            (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6);
	if (rss >= 0)
		fprintf(f,
		        "# HELP process_resident_memory_bytes Resident memory size.\n"
		        "# TYPE process_resident_memory_bytes gauge\n"
		        "process_resident_memory_bytes %ld\n",
		        rss);
	if (fds >= 0)
		fprintf(f,
		        "# HELP process_open_fds Open file descriptors.\n"
		        "# TYPE process_open_fds gauge\n"
		        "process_open_fds %ld\n",
		        fds);
	fprintf(f,
	        "# HELP process_start_time_seconds Start time of the process since the epoch.\n"
	        "# TYPE process_start_time_seconds gauge\n"
	        "process_start_time_seconds %.3f\n",
	        m->start_time);
}

/* The _bucket, _sum and _count lines of histogram @p name for one label set @p labels
 * ("route=\"/claim/verify\"", or "" for none). */
static void write_histogram(FILE *f, const char *name, const char *labels,
                            const struct metrics_histogram *h)
{
	const char *sep = labels[0] ? "," : "";
	long cumulative = 0;

	for (int b = 0; b < METRICS_BUCKETS; b++) {
		cumulative += atomic_load(&h->buckets[b]);
		if (b < METRICS_BUCKETS - 1)
			fprintf(f, "%s_bucket{%s%sle=\"%g\"} %ld\n", name, labels, sep, bounds[b],
			        cumulative);
		else
			fprintf(f, "%s_bucket{%s%sle=\"+Inf\"} %ld\n", name, labels, sep,
			        cumulative);
	}
	if (labels[0]) {
		fprintf(f, "%s_sum{%s} %.6f\n", name, labels,
		        (double)atomic_load(&h->sum_us) / 1e6);
		fprintf(f, "%s_count{%s} %ld\n", name, labels, cumulative);
	} else {
		fprintf(f, "%s_sum %.6f\n", name, (double)atomic_load(&h->sum_us) / 1e6);
		fprintf(f, "%s_count %ld\n", name, cumulative);
	}
}

/* A counter family with one label: "# HELP NAME HELP", its TYPE line, and one
 * NAME{LABEL="names[i]"} line per counter of @p v (n of them). */
static void write_counters(FILE *f, const char *name, const char *help, const char *label,
                           const char *const *names, const atomic_long *v, int n)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", name, help, name);
	for (int i = 0; i < n; i++)
		fprintf(f, "%s{%s=\"%s\"} %ld\n", name, label, names[i], atomic_load(&v[i]));
}

static void write_db(const struct metrics_db *db, FILE *f)
{
	static const char *const outcomes[TX__COUNT] = {
	    [TX_OK] = "ok", [TX_BUSY] = "busy", [TX_ERROR] = "error"};
	static const char *const reasons[RETRY__COUNT] = {
	    [RETRY_CONFLICT] = "conflict", [RETRY_CONNECTION] = "connection"};

	fputs("# HELP claimd_db_transaction_duration_seconds Database transactions, from the "
	      "first statement to the last reply, retries included.\n"
	      "# TYPE claimd_db_transaction_duration_seconds histogram\n",
	      f);
	write_histogram(f, "claimd_db_transaction_duration_seconds", "", &db->tx_duration);
	write_counters(f, "claimd_db_transactions_total",
	               "Database transactions by outcome (busy: retries exhausted, answered 503; "
	               "error: a hard failure, answered 500).",
	               "outcome", outcomes, db->tx, TX__COUNT);
	write_counters(f, "claimd_db_transaction_retries_total",
	               "Transactions tried again, by reason (conflict: serialization failure or "
	               "deadlock; connection: the connection was lost or down).",
	               "reason", reasons, db->retries, RETRY__COUNT);
	fprintf(f,
	        "# HELP claimd_db_connection_errors_total Connects and reconnects to the database "
	        "that failed.\n"
	        "# TYPE claimd_db_connection_errors_total counter\n"
	        "claimd_db_connection_errors_total %ld\n",
	        atomic_load(&db->connection_errors));
}

void metrics_write(struct metrics *m, const struct metrics_gauges *g, FILE *f)
{
	int n = 0;

	while (n < METRICS_ROUTES && __atomic_load_n(&m->routes[n].label, __ATOMIC_ACQUIRE))
		n++;
	fputs("# HELP claimd_http_requests_total HTTP requests finished, by route and status "
	      "code.\n# TYPE claimd_http_requests_total counter\n",
	      f);
	for (int i = 0; i < n; i++) {
		char labels[160];
		route_labels(labels, sizeof(labels), m->routes[i].label);
		for (int s = 0; s < METRICS_STATUS; s++) {
			long v = atomic_load(&m->routes[i].by_status[s]);
			if (!v)
				continue;
			if (s < METRICS_STATUS - 1)
				fprintf(f, "claimd_http_requests_total{%s,code=\"%u\"} %ld\n",
				        labels, statuses[s], v);
			else
				fprintf(f, "claimd_http_requests_total{%s,code=\"other\"} %ld\n",
				        labels, v);
		}
	}
	fputs("# HELP claimd_http_request_duration_seconds Time from a request's first byte "
	      "to its reply being queued, by route.\n"
	      "# TYPE claimd_http_request_duration_seconds histogram\n",
	      f);
	for (int i = 0; i < n; i++) {
		char labels[160];
		route_labels(labels, sizeof(labels), m->routes[i].label);
		write_histogram(f, "claimd_http_request_duration_seconds", labels,
		                &m->routes[i].duration);
	}
	fputs("# HELP claimd_claims_total Claim requests (initiate and verify) by flow and "
	      "outcome (the error-table name, OK for success).\n"
	      "# TYPE claimd_claims_total counter\n",
	      f);
	for (int fl = 0; fl < FLOW__COUNT; fl++)
		for (int e = 0; e < CE__COUNT; e++) {
			long v = atomic_load(&m->claims[fl][e]);
			if (v)
				fprintf(f, "claimd_claims_total{flow=\"%s\",outcome=\"%s\"} %ld\n",
				        flows[fl], err_name((enum claimd_err)e), v);
		}
	write_counters(f, "claimd_certificates_issued_total",
	               "Certificates sent to clients, by flow.", "flow", flows, m->issued,
	               FLOW__COUNT);
	static const char *const sources[DEVICE_FROM__COUNT] = {
	    [DEVICE_FROM_MEMO] = "memo",
	    [DEVICE_FROM_LOOKUP] = "lookup",
	    [DEVICE_FROM_MEMO_THEN_LOOKUP] = "memo_then_lookup",
	};
	write_counters(f, "claimd_self_verify_device_total",
	               "Self verifies by where the device's record came from: memo (what this "
	               "daemon's initiate read), lookup (another daemon's initiate, or the memo "
	               "entry gone), memo_then_lookup (judged again on a lookup).",
	               "source", sources, m->device_from, DEVICE_FROM__COUNT);
	write_db(&m->db, f);
	fprintf(f,
	        "# HELP claimd_build_info The running build.\n"
	        "# TYPE claimd_build_info gauge\n"
	        "claimd_build_info{version=\"%s\"} 1\n"
	        "# HELP claimd_ca_not_after_timestamp_seconds When the issuing CA certificate "
	        "expires.\n"
	        "# TYPE claimd_ca_not_after_timestamp_seconds gauge\n"
	        "claimd_ca_not_after_timestamp_seconds %lld\n"
	        "# HELP claimd_claims_in_flight Claim requests between their headers and their "
	        "reply.\n"
	        "# TYPE claimd_claims_in_flight gauge\n"
	        "claimd_claims_in_flight %ld\n",
	        g->version, (long long)g->ca_not_after, g->claims_in_flight);
	write_process(m, f);
}
