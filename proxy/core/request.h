/*
 * request.h - one HTTP request's state, from the URI callback to the
 * completed callback.  Owned by the worker thread that accepted it.
 */
#ifndef SSOGATE_REQUEST_H
#define SSOGATE_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include <microhttpd.h>

#include "base/clock.h"
#include "proxy/core/client_deadline.h"
#include "proxy/core/app_jar.h"
#include "proxy/core/credential.h"
#include "proxy/core/drain.h"
#include "proxy/core/headers.h"
#include "proxy/core/ring.h"
#include "proxy/core/snapshot.h"
#include "proxy/core/xff.h"
#include "upstream/connection.h"
#include "upstream/response.h"

struct sg_worker;

enum sg_route {
  SG_ROUTE_APP,     /* needs a session */
  SG_ROUTE_PUBLIC,  /* [access] public_paths */
  SG_ROUTE_HEALTH,  /* /healthz, /readyz */
  SG_ROUTE_SSOGATE, /* /ssogate/... */
  SG_ROUTE_CREDENTIAL, /* no session, an app credential ([access] app_credentials) */
  SG_ROUTE_COUNT
};

/* A growing byte buffer (the request head, the body going out). */
struct sg_buf {
  char *data;
  size_t len, cap;
  size_t sent; /* bytes of data already written upstream */
};

struct sg_request {
  struct sg_worker *worker;
  struct sg_snapshot *snap;
  struct MHD_Connection *conn;
  struct sg_client *client;       /* the connection's deadline entry (may be NULL) */
  struct sg_request *prev, *next; /* the worker's list of upstream transfers */

  char *target; /* raw request-target, as the client sent it */
  const char *method;
  char request_id[132];
  char client_ip[SG_IP_MAX];
  char peer_ip[SG_IP_MAX];
  char user[256]; /* for the access log, when known */
  char session_id[SG_SESSION_ID_LEN + 1]; /* the gate session's id; "" = none */
  struct sg_app_jar app_jar;  /* the app cookies the request carries (app_jar.h) */
  bool app_cookies_stripped;  /* not bound to this session: kept from the app */
  enum sg_route route;
  enum sg_credential_kind credential; /* on SG_ROUTE_CREDENTIAL */
  bool credential_prepaid;            /* its failure token is already taken */
  /* Set by whoever forwards r (app.c's credential door): told the upstream's
   * status once its head is in, before any byte reaches the client.  NULL:
   * nobody asked. */
  void (*on_upstream_status)(struct sg_request *r, int status);

  bool started;        /* access handler saw the head */
  bool first_call;     /* inside the access handler's first call */
  bool body_announced; /* the client sends a body (Content-Length > 0 or chunked) */
  bool suspended;      /* we suspended the MHD connection */
  bool upload_done;
  bool head_ready; /* response (upstream's or an error) ready to queue */
  bool queued;
  bool in_transfer; /* on the worker's list of upstream legs */
  bool upstream_done;
  bool upstream_ok;
  bool has_body;
  bool body_chunked;    /* the client's body is chunked: we send it chunked */
  bool body_taken;      /* a body byte left the upload ring (no retry after it) */
  bool body_end_queued; /* the whole body is in `out` */
  bool blocked_by_client; /* download ring full: not reading the upstream */
  bool head_request;
  bool no_reuse;          /* the connection must not go back to the pool */
  unsigned retries;

  int status;
  int64_t content_length; /* upstream's, -1 = unknown */
  uint64_t start_ns, upstream_start_ns, upstream_end_ns;
  uint64_t deadline_ms; /* upstream head must arrive by then */
  int64_t connect_deadline_ms;
  int64_t last_read_ms; /* body stall clock */
  uint64_t bytes_out;
  const char *error_reason; /* why an upstream leg failed */
  char error_text[160];     /* holds error_reason when it must outlive its source */
  /* Why ssogate answered itself (refused, or could not forward): a short
   * stable token, the access log's "reason" (docs/monitoring.md lists them).
   * Set where the decision is made; respond.c names the rest by status. */
  const char *refusal;

  /* Later access-handler calls (body chunks, resumes) go here; NULL once
   * the answer is queued. */
  enum MHD_Result (*on_more)(struct sg_request *r, const char *data, size_t *size);
  char *body; /* a body ssogate reads itself (the ACS form), bounded */
  size_t body_len, body_cap;

  struct sg_upstream_set *upstream_set; /* held from the pick until the request ends */
  struct sg_upstream_target *upstream;  /* in upstream_set */
  struct sg_conn *upconn; /* the upstream connection, while the leg runs */
  struct sg_buf head;   /* the request head, as sent */
  struct sg_buf out;    /* request body bytes staged for the socket */
  struct sg_response answer;
  struct sg_ring upload, download;
  struct sg_connection_tokens response_connection;
  struct MHD_Response *response;
};

#endif
