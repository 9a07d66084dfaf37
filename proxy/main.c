/*
 * main.c - argv, signals, start and stop.  Nothing else.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <malloc.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "auth/saml_sp.h"
#include "auth/store.h"
#include "base/log.h"
#include "conf/config.h"
#include "proxy/core/counters.h"
#include "proxy/core/snapshot.h"
#include "proxy/core/worker.h"
#include "proxy/forward/forward.h"
#include "proxy/ops/accesslog.h"
#include "proxy/ops/check_response.h"
#include "proxy/ops/health.h"
#include "proxy/ops/idp_refresh.h"
#include "proxy/ops/metrics.h"
#include "proxy/ops/reload.h"
#include "proxy/server.h"
#include "redash/sync.h"

static void usage(FILE *out) {
  fprintf(out, "usage: ssogate [-c FILE]          run (without -c: SSOGATE_* variables only)\n"
               "       ssogate --check -c FILE    validate config, keys, IdP metadata, upstream; "
               "exit 1 on a problem\n"
               "       ssogate --metadata -c FILE print the SP metadata XML\n"
               "       ssogate --check-response CAPTURE -c FILE [--at TIME] [--request-id ID]\n"
               "                                  run every ACS rule on a captured SAMLResponse; "
               "exit 0 only if it would be accepted\n"
               "       ssogate --help | --version\n"
               "Every setting can also come from SSOGATE_<SECTION>_<KEY> environment variables.\n");
}

/* One socket bound to addr, with SO_REUSEPORT when it is one of a group. */
static int bind_listen_socket(const struct sockaddr_storage *addr, socklen_t len, bool reuseport) {
  int fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int one = 1;
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
      (reuseport && setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) != 0) ||
      bind(fd, (const struct sockaddr *)addr, len) != 0 || listen(fd, 1024) != 0) {
    int saved = errno;
    if (fd >= 0)
      close(fd);
    errno = saved;
    return -1;
  }
  return fd;
}

/*
 * One listening socket per worker, in one SO_REUSEPORT group: the kernel
 * spreads new connections over the workers by their addresses.  A single
 * shared socket lets whichever worker wakes first take a burst of
 * connections (seen: 0/128 and 122/6 over two workers), and a keep-alive
 * connection stays where it was accepted.  The first bind is made without
 * SO_REUSEPORT so that a port already in use is still an error.
 */
static int open_listen_sockets(const char *host, uint16_t port, unsigned n, int *fds) {
  struct sockaddr_storage addr = {0};
  socklen_t len;
  struct sockaddr_in *v4 = (struct sockaddr_in *)&addr;
  struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr;
  if (inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(port);
    len = sizeof *v4;
  } else if (inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(port);
    len = sizeof *v6;
  } else {
    sg_error("[server] listen: '%s' is not an IP address", host);
    return -1;
  }
  int probe = bind_listen_socket(&addr, len, false);
  if (probe < 0) {
    sg_error("[server] listen: cannot listen on %s:%u: %s", host, port, strerror(errno));
    return -1;
  }
  socklen_t got = len;
  getsockname(probe, (struct sockaddr *)&addr, &got); /* port 0: the one chosen */
  close(probe);
  for (unsigned i = 0; i < n; i++) {
    fds[i] = bind_listen_socket(&addr, len, n > 1);
    if (fds[i] < 0) {
      sg_error("[server] listen: cannot listen on %s:%u: %s", host, port, strerror(errno));
      while (i-- > 0)
        close(fds[i]);
      return -1;
    }
  }
  sg_info("listening on %s:%u", host,
          ntohs(addr.ss_family == AF_INET ? v4->sin_port : v6->sin6_port));
  return 0;
}

static unsigned worker_count(const struct sg_config *cfg) {
  if (cfg->server.workers > 0)
    return cfg->server.workers;
  long cpus = sysconf(_SC_NPROCESSORS_ONLN);
  return cpus > 0 ? (unsigned)cpus : 1;
}

/* Every client connection needs a socket and its upstream leg may need
 * another; containers often start with a soft limit of 1024, far below
 * max_connections.  Raise it, as far as the hard limit allows. */
static void raise_open_file_limit(unsigned max_connections) {
  struct rlimit rl;
  rlim_t want = (rlim_t)max_connections * 2 + 256;
  if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
    return;
  rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= want ? want : rl.rlim_max;
  if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
    getrlimit(RLIMIT_NOFILE, &rl);
  if (rl.rlim_cur < want)
    sg_warn("open file limit %llu is below the %llu that [server] max_connections = %u needs; "
            "raise the hard limit (ulimit -n, or the ECS task's nofile ulimit)",
            (unsigned long long)rl.rlim_cur, (unsigned long long)want, max_connections);
}

/* Prints one certificate's expiry; returns 1 when it is a problem. */
static int print_cert_expiry(const char *what, int64_t not_after, int64_t now) {
  int64_t days = (not_after - now) / 86400;
  if (not_after <= now) {
    printf("  %s: EXPIRED %" PRId64 " days ago\n", what, -days);
    return 1;
  }
  printf("  %s: expires in %" PRId64 " days%s\n", what, days,
         days < 30 ? " (WARNING: under 30 days)" : "");
  return 0;
}

static int check_saml(const struct sg_snapshot *s) {
  int problems = 0;
  int64_t now = (int64_t)time(NULL);
  if (s->saml == NULL) {
    printf("saml: [saml] idp_metadata is not set: nobody can sign in\n");
    return 1;
  }
  const char *url = sg_saml_sp_metadata_url(s->saml);
  printf("saml:\n");
  if (url != NULL) {
    /* The same fetch as the refresh thread's; a failure is a problem even
     * when the cache let ssogate start. */
    if (sg_idp_refresh_once(s->saml) == 0) {
      printf("  IdP metadata: fetched from %s\n", url);
    } else {
      printf("  IdP metadata: NOT fetched from %s (see the log line above)\n", url);
      problems++;
    }
  }
  if (sg_saml_sp_idp_entity_id(s->saml) == NULL) {
    char why[700];
    sg_saml_sp_idp_status(s->saml, now, why, sizeof why);
    printf("  IdP: %s\n  ACS URL: %s\n", why, sg_saml_sp_acs_url(s->saml));
    return problems + 1;
  }
  printf("  IdP entity id: %s\n  IdP SSO URL: %s\n  ACS URL: %s\n",
         sg_saml_sp_idp_entity_id(s->saml), sg_saml_sp_idp_sso_url(s->saml),
         sg_saml_sp_acs_url(s->saml));
  if (s->config->saml.accept_expired_idp_certificate)
    printf("  WARNING: [saml] accept_expired_idp_certificate = true: signatures by expired IdP "
           "certificates are accepted\n");
  for (size_t i = 0; i < sg_saml_sp_idp_cert_count(s->saml); i++) {
    char what[64];
    snprintf(what, sizeof what, "IdP signing certificate %zu", i + 1);
    problems += print_cert_expiry(what, sg_saml_sp_idp_cert_not_after(s->saml, i), now);
  }
  if (sg_saml_sp_sp_cert_not_after(s->saml) != 0)
    problems += print_cert_expiry("SP certificate", sg_saml_sp_sp_cert_not_after(s->saml), now);
  printf("  decryption keys: %zu\n", sg_saml_sp_decryption_key_count(s->saml));
  /* A username NameID and no email attribute: what needs an email refuses everyone. */
  const char *needed_by = sg_config_email_needed_by(s->config);
  if (needed_by != NULL && s->config->saml.email_attribute == NULL &&
      sg_saml_sp_idp_name_id_email(s->saml) == 0)
    printf("  WARNING: %s needs an email address, but the IdP metadata lists no emailAddress "
           "NameIDFormat (only persistent, transient or unspecified) and [saml] email_attribute "
           "is not set: a username NameID will be refused. Set email_attribute to the attribute "
           "that carries the email, or let people in by allowed_groups (or allowed_domains = *); "
           "--check-response on a captured login shows what the IdP sends\n",
           needed_by);
  if (sg_saml_sp_allows_sha1(s->saml))
    printf("  WARNING: [saml] allow_sha1 = true: rsa-sha1 signatures and sha1 digests are "
           "accepted (SHA-1 collisions are practical); set the IdP to RSA-SHA256\n");
  if (sg_saml_sp_allows_rsa15(s->saml))
    printf("  WARNING: [saml] allow_rsa15_key_transport = true: RSA-1.5 key transport is "
           "accepted (Bleichenbacher); set the IdP to RSA-OAEP\n");
  return problems;
}

/* Probes every upstream target once, as /readyz would. */
static int check_upstreams(const struct sg_snapshot *s) {
  int problems = 0;
  char names[400];
  printf("upstream targets:\n");
  /* Just resolved: only a name without any address can be a problem. */
  if (sg_upstreams_resolve_problem(s->upstreams, 0, names, sizeof names)) {
    printf("  %s\n", names);
    problems++;
  }
  struct sg_upstream_set *set = sg_upstreams_acquire(s->upstreams);
  for (size_t i = 0; i < set->count; i++) {
    char reason[300];
    if (sg_health_probe_target(set->targets[i], s->config->upstream.health_path,
                               (long)s->config->upstream.connect_timeout_ms,
                               s->config->upstream.tls_ca_file, reason, sizeof reason) == 0) {
      printf("  %s: reachable (%s answered)\n", set->targets[i]->label,
             s->config->upstream.health_path);
    } else {
      printf("  %s: NOT reachable: %s\n", set->targets[i]->label, reason);
      problems++;
    }
  }
  sg_upstream_set_release(set);
  return problems;
}

/* The store outlives reloads ([store] url needs a restart), so it is opened
 * once from a first read of the configuration. */
static struct sg_store *open_store(const char *path) {
  char *error = NULL;
  struct sg_config *config = sg_config_load_new(path, environ, &error);
  struct sg_store *store =
      config ? sg_store_new(config->store.url, config->store.tls_ca_file, &error) : NULL;
  if (store == NULL)
    fprintf(stderr, "ssogate: %s\n", error ? error : "invalid configuration");
  free(error);
  sg_config_unref(config);
  return store;
}

static int check_only(const char *path) {
  char *error = NULL;
  struct sg_snapshot *s = sg_snapshot_load_new(path, &error);
  if (s == NULL) {
    fprintf(stderr, "ssogate --check: %s\n", error ? error : "invalid configuration");
    free(error);
    return 1;
  }
  sg_config_print_summary(s->config, stdout);
  int problems = check_saml(s) + check_upstreams(s);
  printf(problems ? "FAILED: %d problem(s)\n" : "OK\n", problems);
  sg_snapshot_unref(s);
  return problems ? 1 : 0;
}

static int print_metadata(const char *path) {
  char *error = NULL;
  struct sg_snapshot *s = sg_snapshot_load_new(path, &error);
  char *xml = s && s->saml ? sg_saml_sp_metadata_new(s->saml) : NULL;
  if (xml == NULL) {
    fprintf(stderr, "ssogate --metadata: %s\n",
            error ? error
            : s   ? "[saml] idp_metadata is not set"
                  : "invalid configuration");
    free(error);
    sg_snapshot_unref(s);
    return 1;
  }
  fputs(xml, stdout);
  free(xml);
  sg_snapshot_unref(s);
  return 0;
}

/* Waits for signals: HUP reloads, TERM/INT drain and return. */
static void serve_signals(const char *path, const sigset_t *set) {
  for (;;) {
    int sig;
    if (sigwait(set, &sig) != 0)
      continue;
    if (sig == SIGHUP) {
      char *error = NULL;
      if (sg_reload(path, &error) == 0) {
        sg_metrics_event(SG_EV_RELOAD_OK);
        sg_info("reloaded configuration, generation %u", sg_snapshot_current_generation());
        sg_workers_wake();
        sg_health_probe_now();
        sg_idp_refresh_now();
      } else {
        sg_metrics_event(SG_EV_RELOAD_FAILED);
        sg_error("reload failed, keeping generation %u: %s", sg_snapshot_current_generation(),
                 error ? error : "unknown error");
      }
      free(error);
      continue;
    }
    sg_info("%s: draining in-flight requests", sig == SIGTERM ? "SIGTERM" : "SIGINT");
    return;
  }
}

/* The worker loop's users, wired here so that the loop includes none of
 * them (worker.h). */
static const struct sg_worker_ops worker_ops = {
    .start_daemon = sg_server_start_daemon,
    .conn_event = sg_forward_on_event,
    .check_deadlines = sg_forward_check_deadlines,
    .fail = sg_forward_fail,
    .end_of_turn = sg_accesslog_flush,
};

int main(int argc, char **argv) {
  static const struct option options[] = {
      {"config", required_argument, NULL, 'c'},
      {"check", no_argument, NULL, 'k'},
      {"metadata", no_argument, NULL, 'm'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {"check-response", required_argument, NULL, 'r'},
      {"at", required_argument, NULL, 'a'},
      {"request-id", required_argument, NULL, 'i'},
      {NULL, 0, NULL, 0},
  };
  const char *path = NULL, *capture = NULL, *at = NULL, *request_id = NULL;
  bool check = false, metadata = false;
  int opt;
  while ((opt = getopt_long(argc, argv, "c:hV", options, NULL)) != -1) {
    switch (opt) {
    case 'c': path = optarg; break;
    case 'k': check = true; break;
    case 'm': metadata = true; break;
    case 'r': capture = optarg; break;
    case 'a': at = optarg; break;
    case 'i': request_id = optarg; break;
    case 'h': usage(stdout); return 0;
    case 'V': printf("ssogate %s\n", SSOGATE_VERSION); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind < argc || ((at || request_id) && capture == NULL)) {
    usage(stderr);
    return 2;
  }
  /* Keep freed memory for the next request instead of trimming it back to
   * the kernel and faulting it in again (measured: ~5 page faults per
   * request without this). */
  mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
  mallopt(M_MMAP_THRESHOLD, 1024 * 1024);
  mallopt(M_ARENA_MAX, 4);

  /* Library init, in this order, before any thread exists. */
  curl_global_init(CURL_GLOBAL_ALL);
  if (sg_saml_global_init() != 0) {
    fprintf(stderr, "ssogate: cannot initialise the SAML library\n");
    return 1;
  }
  if (capture != NULL) { /* before open_store: it never touches the store */
    int rc = sg_check_response_main(capture, path, at, request_id);
    sg_saml_global_cleanup();
    curl_global_cleanup();
    return rc;
  }
  struct sg_store *store = open_store(path);
  if (store == NULL)
    return 1;
  sg_snapshot_set_store(store);
  if (check || metadata) {
    int rc = check ? check_only(path) : print_metadata(path);
    sg_upstreams_resolver_stop(); /* never started: drops this thread's cached set */
    sg_store_free(store);
    sg_saml_global_cleanup();
    curl_global_cleanup();
    return rc;
  }

  /* Signals are taken synchronously by the main thread only. */
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGHUP);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, NULL);
  signal(SIGPIPE, SIG_IGN);

  char *error = NULL;
  if (sg_reload(path, &error) != 0) {
    sg_error("cannot start: %s", error ? error : "invalid configuration");
    free(error);
    return 1;
  }
  struct sg_snapshot *s = sg_snapshot_current_ref();
  const struct sg_config *cfg = s->config;
  unsigned n = worker_count(cfg);
  raise_open_file_limit(cfg->server.max_connections);
  int *listen_fds = calloc(n, sizeof *listen_fds);
  if (listen_fds == NULL ||
      open_listen_sockets(cfg->server.listen_host, cfg->server.listen_port, n, listen_fds) != 0 || sg_metrics_init(n) != 0 ||
      (cfg->metrics.listen_host &&
       sg_metrics_listen(cfg->metrics.listen_host, cfg->metrics.listen_port) != 0) ||
      sg_workers_start(listen_fds, n, cfg->server.max_connections, cfg->server.client_timeout_ms,
                       &worker_ops) != 0 ||
      sg_health_start() != 0 || sg_upstreams_resolver_start(sg_health_probe_now) != 0 ||
      sg_redash_sync_start() != 0 ||
      sg_idp_refresh_start() != 0) {
    sg_error("cannot start");
    return 1;
  }
  sg_info("ssogate %s started: %u workers, upstream %s, store %s", SSOGATE_VERSION, n,
          cfg->upstream.urls[0], sg_store_kind(store));
  sg_snapshot_unref(s);

  serve_signals(path, &set);

  s = sg_snapshot_current_ref();
  uint64_t drain_ms = s->config->server.drain_timeout_ms;
  sg_snapshot_unref(s);
  sg_workers_drain_and_join(drain_ms); /* each worker closed its listening socket */
  free(listen_fds);
  sg_redash_sync_stop();
  sg_upstreams_resolver_stop();
  sg_health_stop();
  sg_idp_refresh_stop();
  sg_metrics_stop();
  sg_info("stopped");
  sg_snapshot_release_current();
  sg_store_free(store);
  sg_saml_global_cleanup();
  curl_global_cleanup();
  return 0;
}
