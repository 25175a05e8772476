/*
 * Request and claim counters (interface.md, "Metrics"). Counting is a few atomic adds
 * on the request's completion; a route's slot is found by its label's address, so the
 * lock is taken only the first time a route finishes. Writing reads the counters as
 * they are: a scrape may see a request counted in one family and not yet in another.
 */
#include "claimd/metrics.h"

#include <dirent.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

/* The status codes claimd and libmicrohttpd send, each its own series; any other
 * goes to the last slot, labelled by the first such code seen ("other" before). */
static const unsigned statuses[METRICS_STATUS - 1] = {200, 304, 400, 401, 403, 404, 405, 408,
                                                      409, 413, 414, 429, 431, 500, 503};

/* Upper bounds of the duration buckets, seconds (the last one is +Inf). */
static const double bounds[METRICS_BUCKETS - 1] = {0.005, 0.01, 0.025, 0.05, 0.1,
                                                   0.25,  0.5,  1,     2.5,  5};

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

void metrics_request(struct metrics *m, const char *label, unsigned status, uint64_t duration_us)
{
	struct metrics_route *r = route_slot(m, label);
	int s = METRICS_STATUS - 1, b = METRICS_BUCKETS - 1;

	if (!r)
		return;
	for (int i = 0; i < METRICS_STATUS - 1; i++)
		if (statuses[i] == status)
			s = i;
	for (int i = METRICS_BUCKETS - 2; i >= 0 && (double)duration_us / 1e6 <= bounds[i]; i--)
		b = i;
	atomic_fetch_add(&r->by_status[s], 1);
	atomic_fetch_add(&r->buckets[b], 1);
	atomic_fetch_add(&r->sum_us, (long long)duration_us);
	atomic_fetch_add(&r->count, 1);
}

void metrics_claim(struct metrics *m, enum metrics_flow flow, enum claimd_err e)
{
	if (flow >= 0 && flow < FLOW__COUNT && e >= 0 && e < CE__COUNT)
		atomic_fetch_add(&m->claims[flow][e], 1);
}

/* A label value: the route labels are route-table paths, so nothing needs escaping
 * but what the exposition format escapes anyway. */
static void label(FILE *f, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fputc('\\', f);
		fputc(*s == '\n' ? ' ' : *s, f);
	}
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

void metrics_write(struct metrics *m, const struct metrics_gauges *g, FILE *f)
{
	static const char *const flows[FLOW__COUNT] = {"self", "user", "matter"};
	int n = 0;

	while (n < METRICS_ROUTES && __atomic_load_n(&m->routes[n].label, __ATOMIC_ACQUIRE))
		n++;
	fputs("# HELP claimd_http_requests_total HTTP requests finished, by route and status "
	      "code.\n# TYPE claimd_http_requests_total counter\n",
	      f);
	for (int i = 0; i < n; i++)
		for (int s = 0; s < METRICS_STATUS; s++) {
			long v = atomic_load(&m->routes[i].by_status[s]);
			if (!v)
				continue;
			fputs("claimd_http_requests_total{route=\"", f);
			label(f, m->routes[i].label);
			if (s < METRICS_STATUS - 1)
				fprintf(f, "\",code=\"%u\"} %ld\n", statuses[s], v);
			else
				fprintf(f, "\",code=\"other\"} %ld\n", v);
		}
	fputs("# HELP claimd_http_request_duration_seconds Time from a request's first byte "
	      "to its reply being queued, by route.\n"
	      "# TYPE claimd_http_request_duration_seconds histogram\n",
	      f);
	for (int i = 0; i < n; i++) {
		long cumulative = 0;
		for (int b = 0; b < METRICS_BUCKETS; b++) {
			cumulative += atomic_load(&m->routes[i].buckets[b]);
			fputs("claimd_http_request_duration_seconds_bucket{route=\"", f);
			label(f, m->routes[i].label);
			if (b < METRICS_BUCKETS - 1)
				fprintf(f, "\",le=\"%g\"} %ld\n", bounds[b], cumulative);
			else
				fprintf(f, "\",le=\"+Inf\"} %ld\n", cumulative);
		}
		fputs("claimd_http_request_duration_seconds_sum{route=\"", f);
		label(f, m->routes[i].label);
		fprintf(f, "\"} %.6f\n", (double)atomic_load(&m->routes[i].sum_us) / 1e6);
		fputs("claimd_http_request_duration_seconds_count{route=\"", f);
		label(f, m->routes[i].label);
		fprintf(f, "\"} %ld\n", cumulative);
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
