/*
 * The nginx fixture of the proxy tests (see nginx_fixture.h).
 */
#include "nginx_fixture.h"

#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Debian's nginx (in /usr/sbin, which a non-root PATH may lack). */
static const char *nginx_bin(void)
{
	return access("/usr/sbin/nginx", X_OK) == 0 ? "/usr/sbin/nginx" : "nginx";
}

/* A TLS root and a server certificate for "localhost" only (no IP address in it). */
static bool make_server_cert(const char *dir)
{
	return t_run(NULL,
	             "cd '%s' && printf "
	             "'subjectAltName=DNS:localhost\\nextendedKeyUsage=serverAuth\\n'"
	             " > server.ext && "
	             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2"
	             " -subj '/CN=claimd test TLS root' -keyout tls-root.key -out tls-root.pem && "
	             "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
	             " -subj '/CN=localhost' -keyout server.key -out server.csr && "
	             "openssl x509 -req -in server.csr -CA tls-root.pem -CAkey tls-root.key"
	             " -CAcreateserial -days 2 -extfile server.ext -out server.pem",
	             dir) == 0;
}

/*
 * Starts nginx with the shipped site file in front of @p n claimd. The placeholders are
 * filled by the same sed command docs/operations.md gives operators; a small main
 * config around it keeps every path (pid, logs, temp) in the case's directory.
 */
bool nginx_start(struct tenv *t, struct nginx *ng, struct daemon *up, int n)
{
	char ups[512] = "", url[128], err[256], conf[1300];
	size_t o = 0;
	FILE *f;

	memset(ng, 0, sizeof(*ng));
	snprintf(ng->dir, sizeof(ng->dir), "%s/nginx", t->dir);
	snprintf(ng->tls_ca, sizeof(ng->tls_ca), "%s/tls-root.pem", ng->dir);
	if (t_run(NULL, "mkdir -p '%s/tmp'", ng->dir) != 0 || !make_server_cert(ng->dir))
		return false;
	for (int i = 0; i < n; i++)
		o +=
		    (size_t)snprintf(ups + o, sizeof(ups) - o, "server 127.0.0.1:%u; ", up[i].port);
	if (!(ng->port = t_free_port()))
		return false;
	if (t_run(NULL,
	          "sed -e 's|@LISTEN@|127.0.0.1:%u|' -e 's|@CERT@|%s/server.pem|'"
	          " -e 's|@KEY@|%s/server.key|' -e 's|@UPSTREAMS@|%s|' -e 's|@TIMEOUT@|%ds|'"
	          " '%s/config/nginx/claimd.conf' > '%s/claimd.conf'",
	          ng->port, ng->dir, ng->dir, ups, CLIENT_TIMEOUT_S, CLAIMD_SOURCE_DIR,
	          ng->dir) != 0)
		return false;
	/* Every placeholder filled: nothing of the form @NAME@ is left. */
	CHECK(t_run(NULL, "grep -q '@[A-Z_]*@' '%s/claimd.conf'", ng->dir) == 1);
	snprintf(conf, sizeof(conf), "%s/nginx.conf", ng->dir);
	if (!(f = fopen(conf, "w")))
		return false;
	fprintf(f,
	        "daemon off;\nmaster_process on;\nworker_processes 1;\n"
	        "pid %s/nginx.pid;\nerror_log %s/error.log info;\n"
	        "events { worker_connections 256; }\n"
	        "http {\n  access_log %s/access.log;\n"
	        "  client_body_temp_path %s/tmp/body;\n  proxy_temp_path %s/tmp/proxy;\n"
	        "  fastcgi_temp_path %s/tmp/fastcgi;\n  uwsgi_temp_path %s/tmp/uwsgi;\n"
	        "  scgi_temp_path %s/tmp/scgi;\n  include %s/claimd.conf;\n}\n",
	        ng->dir, ng->dir, ng->dir, ng->dir, ng->dir, ng->dir, ng->dir, ng->dir, ng->dir);
	if (fclose(f) != 0)
		return false;
	char *out = NULL;
	int st = t_run(&out, "'%s' -t -p '%s' -c '%s' -e '%s/error.log'", nginx_bin(), ng->dir,
	               conf, ng->dir);
	CHECKF(st == 0, "nginx -t: %s", out ? out : "");
	free(out);
	if (st != 0)
		return false;
	if ((ng->pid = fork()) < 0)
		return false;
	if (ng->pid == 0) {
		char log[1200];
		snprintf(log, sizeof(log), "%s/stderr.log", ng->dir);
		int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp(nginx_bin(), "nginx", "-p", ng->dir, "-c", conf, "-e", "stderr",
		       (char *)NULL);
		_exit(127);
	}
	t_adopt(ng->pid);
	snprintf(url, sizeof(url), "https://localhost:%u", ng->port);
	if (!http_url_parse(url, &ng->front.url) ||
	    http_url_tls(&ng->front.url, ng->tls_ca, err, sizeof(err)) < 0) {
		fprintf(stderr, "%s\n", err);
		return false;
	}
	/* Up when /healthz answers through it (bounded: 40 tries). */
	for (int i = 0; i < 40; i++) {
		static const char hz[] = "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n";
		struct http_response r;
		if (http_exchange(&ng->front.url, hz, strlen(hz), 500, &r, err, sizeof(err)) == 0) {
			bool up200 = r.status == 200;
			http_response_free(&r);
			if (up200)
				return true;
		}
		if (waitpid(ng->pid, NULL, WNOHANG) == ng->pid) {
			t_forget(ng->pid);
			ng->pid = 0;
			break;
		}
		usleep(50 * 1000);
	}
	t_run(NULL, "cat '%s/stderr.log' >&2", ng->dir);
	return false;
}

void nginx_stop(struct nginx *ng)
{
	int st = -1;
	if (ng->pid > 0) {
		kill(ng->pid, SIGTERM);
		waitpid(ng->pid, &st, 0);
		t_forget(ng->pid);
		CHECKF(WIFEXITED(st) && WEXITSTATUS(st) == 0, "nginx exit status %d", st);
	}
	if (t_failures) {
		char *out = NULL;
		t_run(&out, "tail -n 30 '%s/stderr.log' '%s/access.log'", ng->dir, ng->dir);
		fprintf(stderr, "--- nginx ---\n%s---\n", out ? out : "");
		free(out);
	}
	ng->pid = 0;
	http_url_free(&ng->front.url);
}
