/*
 * server.c - libmicrohttpd daemon and request lifecycle (see server.h).
 *
 * The access handler's first call is where a request is routed; every later
 * call belongs to the phase the request is in (today only the upstream leg
 * has later calls).  The completed callback is the one place a request ends.
 */
#include "proxy/server.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "proxy/core/counters.h"
#include "proxy/core/respond.h"
#include "proxy/core/worker.h"
#include "proxy/forward/forward.h"
#include "proxy/gate/app.h"
#include "proxy/gate/endpoints.h"
#include "proxy/gate/route.h"
#include "proxy/ops/accesslog.h"
#include "proxy/ops/health.h"

/* Per connection, for request headers and response framing; libmicrohttpd
 * zeroes it after every request, so bigger is slower (large cookies still fit). */
#define CONNECTION_MEMORY (32 * 1024)

static void *on_request_born(void *cls, const char *uri, struct MHD_Connection *conn) {
  struct sg_worker *w = cls;
  struct sg_request *r = sg_worker_take_request(w);
  if (r == NULL)
    return NULL;
  r->worker = w;
  r->conn = conn;
  const union MHD_ConnectionInfo *info =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  r->client = info ? info->socket_context : NULL;
  r->snap = sg_snapshot_ref(w->snap);
  r->start_ns = sg_now_ns();
  r->target = strdup(uri); /* MHD unescapes its copy in place right after this */
  r->content_length = -1;
  w->live_requests++;
  return r;
}

static void read_peer_address(struct MHD_Connection *conn, char out[SG_IP_MAX]) {
  const union MHD_ConnectionInfo *info =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  const struct sockaddr *sa = info ? info->client_addr : NULL;
  out[0] = '\0';
  if (sa == NULL)
    return;
  if (sa->sa_family == AF_INET)
    inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, out, SG_IP_MAX);
  else if (sa->sa_family == AF_INET6)
    inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr, out,
              SG_IP_MAX);
}

struct head_walk {
  struct sg_head_check check;
  char xff[1024];
  size_t xff_len;
};

static enum MHD_Result walk_header(void *cls, enum MHD_ValueKind kind, const char *name,
                                   size_t name_len, const char *value, size_t value_len) {
  struct head_walk *h = cls;
  (void)kind;
  (void)name_len;
  sg_head_check_header(&h->check, name, value, value_len);
  if (strcasecmp(name, "X-Forwarded-For") == 0) {
    int n = snprintf(h->xff + h->xff_len, sizeof h->xff - h->xff_len, "%s%.*s",
                     h->xff_len ? ", " : "", (int)value_len, value);
    if (n > 0 && (size_t)n < sizeof h->xff - h->xff_len)
      h->xff_len += (size_t)n;
  }
  return MHD_YES;
}

/* One pass over the head: the client address the trusted proxies vouch for
 * (rate limits, logs), and the rules the head must keep.  Returns the first
 * rule broken, or NULL. */
static const char *read_head(struct sg_request *r, const char *version) {
  struct head_walk h = {.check.http10 = strcmp(version, MHD_HTTP_VERSION_1_0) == 0};
  char unused[8];
  MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND, walk_header, &h);
  sg_xff_resolve(h.xff_len ? h.xff : NULL, r->peer_ip, r->snap->config->server.trusted_proxies,
                 r->client_ip, unused, sizeof unused);
  return sg_head_check_problem(&h.check);
}

static void assign_request_id(struct sg_request *r) {
  const char *given = MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "X-Request-Id");
  if (given != NULL && sg_request_id_acceptable(given)) {
    strcpy(r->request_id, given); /* acceptable ids are <= 128 bytes */
    return;
  }
  char id[33];
  sg_worker_new_request_id(r->worker, id);
  memcpy(r->request_id, id, sizeof id);
}

static bool is_logout_path(const char *target, char *const *paths) {
  size_t len = sg_target_path_len(target);
  for (; *paths != NULL; paths++)
    if (strlen(*paths) == len && memcmp(target, *paths, len) == 0)
      return true;
  return false;
}

/* The head has arrived: route the request to its door. */
static enum MHD_Result route_request(struct sg_request *r, const char *version) {
  const struct sg_config *cfg = r->snap->config;

  read_peer_address(r->conn, r->peer_ip);
  const char *problem = read_head(r, version);
  assign_request_id(r);
  r->head_request = strcmp(r->method, "HEAD") == 0;

  if (r->target == NULL)
    return sg_respond_error(r, 503, "ssogate is out of memory.");
  if (problem != NULL) {
    /* Closed after the answer: no byte of an ambiguous body is ever read as
     * a next request. */
    sg_log(SG_LOG_INFO, r->request_id, "refused request with %s", problem);
    r->error_reason = problem;
    struct MHD_Response *response =
        sg_error_response_new(r, 400, "The request's headers are malformed or ambiguous.");
    if (response != NULL)
      MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
    return sg_respond_queue(r, 400, response);
  }
  if (r->target[0] != '/') {
    sg_log(SG_LOG_INFO, r->request_id, "refused request-target that is not a path");
    return sg_respond_error(r, 400, "The request target must be a path.");
  }
  if (strcmp(r->method, "CONNECT") == 0 || strcmp(r->method, "TRACE") == 0) {
    sg_log(SG_LOG_INFO, r->request_id, "refused method %s", r->method);
    return sg_respond_error(r, 405, "This method is not allowed.");
  }
  r->route = sg_route_for(r->target, cfg->access.public_paths);
  if (sg_endpoints_is_acs_path(r->target, cfg->saml.acs_path))
    r->route = SG_ROUTE_SSOGATE; /* [saml] acs_path: never forwarded, even if public */
  if (r->route == SG_ROUTE_APP && is_logout_path(r->target, cfg->session.logout_paths)) {
    r->route = SG_ROUTE_SSOGATE;
    return sg_endpoints_logout(r);
  }
  switch (r->route) {
  case SG_ROUTE_HEALTH: return sg_health_respond(r);
  case SG_ROUTE_SSOGATE: return sg_endpoints_respond(r);
  case SG_ROUTE_PUBLIC: return sg_app_forward(r, NULL);
  case SG_ROUTE_APP:
  default: return sg_app_handle(r);
  }
}

static bool announces_body(struct MHD_Connection *conn) {
  const char *length = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
  return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding") != NULL ||
         (length != NULL && strspn(length, "0") != strlen(length));
}

/* The head is in.  A request that streams to the upstream is no longer
 * ours to time (a slow upload is legitimate); one that ssogate answers itself
 * must send its body within the same deadline as its head. */
static void stop_waiting_if_streaming(struct sg_request *r) {
  if (r->client == NULL)
    return;
  r->client->head_done = true;
  if (r->in_transfer)
    sg_client_disarm(&r->worker->clients, r->client);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **req_cls) {
  struct sg_request *r = *req_cls;
  (void)cls;
  (void)conn;
  (void)url;
  if (r == NULL)
    return MHD_NO;
  if (!r->started) {
    r->started = true;
    r->method = method;
    r->body_announced = announces_body(conn);
    r->first_call = true;
    enum MHD_Result result = route_request(r, version);
    r->first_call = false;
    stop_waiting_if_streaming(r);
    return result;
  }
  if (r->on_more != NULL)
    return r->on_more(r, upload_data, upload_data_size);
  /* A body sent to one of our own answers: already queued, just drop it. */
  *upload_data_size = 0;
  return MHD_YES;
}

static void on_request_done(void *cls, struct MHD_Connection *conn, void **req_cls,
                            enum MHD_RequestTerminationCode toe) {
  struct sg_worker *w = cls;
  struct sg_request *r = *req_cls;
  if (r == NULL)
    return;
  *req_cls = NULL;
  sg_forward_abort(r);
  if (r->response != NULL)
    MHD_destroy_response(r->response);
  if (!r->started) { /* never routed: the log line still says who it was */
    read_peer_address(conn, r->client_ip);
    sg_worker_new_request_id(w, r->request_id);
  }
  bool deadline_passed = r->client != NULL && r->client->timed_out;
  if (deadline_passed || (!r->started && toe == MHD_REQUEST_TERMINATED_TIMEOUT_REACHED)) {
    r->status = 408;
    r->refusal = "client_timeout";
    r->error_reason = "request not received within [server] client_timeout";
    if (deadline_passed)
      r->client->reported = true;
  } else if (!r->started) {
    r->status = 400; /* MHD refused the head itself (too large, malformed) */
    r->refusal = "bad_request";
  } else if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && r->status < 400)
    r->error_reason = r->error_reason ? r->error_reason : "client connection ended early";
  sg_app_credential_done(r);
  uint64_t now = sg_now_ns();
  sg_metrics_request(w->index, r->route, r->status, now - r->start_ns,
                     r->upstream_start_ns
                         ? (r->upstream_end_ns ? r->upstream_end_ns : now) - r->upstream_start_ns
                         : 0);
  sg_accesslog_write(w, r, now);
  sg_ring_release(&r->upload);
  sg_ring_release(&r->download);
  free(r->body);
  free(r->target);
  sg_snapshot_unref(r->snap);
  if (r->client != NULL && !r->client->timed_out)
    sg_worker_await_client(w, r->client); /* keep-alive: the next request's turn */
  sg_worker_release_request(w, r);
  w->live_requests--;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
  struct sg_worker *w = cls;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    sg_metrics_connections(w->index, 1);
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct sg_client *c = info ? sg_client_new(info->connect_fd) : NULL;
    if (c != NULL)
      sg_worker_await_client(w, c);
    *socket_context = c;
    return;
  }
  sg_metrics_connections(w->index, -1);
  struct sg_client *c = *socket_context;
  if (c == NULL)
    return;
  if (c->timed_out && !c->reported) {
    char peer[SG_IP_MAX];
    read_peer_address(conn, peer);
    sg_log(SG_LOG_INFO, NULL,
           "closed a connection from %s: no complete request line within "
           "[server] client_timeout",
           peer);
  }
  sg_client_disarm(&w->clients, c);
  free(c);
  *socket_context = NULL;
}

struct MHD_Daemon *sg_server_start_daemon(struct sg_worker *w, int listen_fd, unsigned limit,
                                          uint64_t client_timeout_ms) {
  unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_TURBO;
  return MHD_start_daemon(
      flags, 0, NULL, NULL, on_access, w, MHD_OPTION_EXTERNAL_LOGGER, sg_log_mhd_error, NULL,
      MHD_OPTION_LISTEN_SOCKET, listen_fd, MHD_OPTION_URI_LOG_CALLBACK, on_request_born, w,
      MHD_OPTION_NOTIFY_COMPLETED, on_request_done, w, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
      w, MHD_OPTION_CONNECTION_LIMIT, limit, MHD_OPTION_CONNECTION_TIMEOUT,
      (unsigned)((client_timeout_ms + 999) / 1000), MHD_OPTION_CONNECTION_MEMORY_LIMIT,
      (size_t)CONNECTION_MEMORY, MHD_OPTION_STRICT_FOR_CLIENT, 1, MHD_OPTION_END);
}
