/*
 * request.h - one HTTP request's state, from the URI callback to the
 * completed callback.  Owned by the worker thread that accepted it.
 */
#ifndef SSOGATE_REQUEST_H
#define SSOGATE_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include <curl/curl.h>
#include <microhttpd.h>

#include "proxy/client_deadline.h"
#include "proxy/credential.h"
#include "proxy/headers.h"
#include "proxy/ring.h"
#include "proxy/snapshot.h"
#include "proxy/xff.h"

struct sg_worker;

enum sg_route {
  SG_ROUTE_APP,     /* needs a session */
  SG_ROUTE_PUBLIC,  /* [access] public_paths */
  SG_ROUTE_HEALTH,  /* /healthz, /readyz */
  SG_ROUTE_SSOGATE, /* /ssogate/... */
  SG_ROUTE_CREDENTIAL, /* no session, an app credential ([access] app_credentials) */
  SG_ROUTE_COUNT
};

/* Upstream response headers, collected until the head is complete. */
struct sg_header_buf {
  char *data; /* "name\0value\0" pairs */
  size_t len, cap;
  unsigned count;
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
  enum sg_route route;
  enum sg_credential_kind credential; /* on SG_ROUTE_CREDENTIAL */
  bool credential_prepaid;            /* its failure token is already taken */

  bool started;        /* access handler saw the head */
  bool first_call;     /* inside the access handler's first call */
  bool body_announced; /* the client sends a body (Content-Length > 0 or chunked) */
  bool suspended;      /* we suspended the MHD connection */
  bool upload_done;
  bool head_ready; /* response (upstream's or an error) ready to queue */
  bool queued;
  bool in_transfer; /* easy handle is in the multi */
  bool upstream_done;
  bool upstream_ok;
  bool read_paused, write_paused;
  bool has_body;
  bool head_request;

  int status;
  int64_t content_length; /* upstream's, -1 = unknown */
  uint64_t start_ns, upstream_start_ns, upstream_end_ns;
  uint64_t deadline_ms; /* upstream head must arrive by then */
  uint64_t bytes_out;
  const char *error_reason; /* why an upstream leg failed */

  /* Later access-handler calls (body chunks, resumes) go here; NULL once
   * the answer is queued. */
  enum MHD_Result (*on_more)(struct sg_request *r, const char *data, size_t *size);
  char *body; /* a body ssogate reads itself (the ACS form), bounded */
  size_t body_len, body_cap;

  CURL *easy;
  struct curl_slist *upstream_headers;
  struct sg_upstream_set *upstream_set; /* held from the pick until the request ends */
  struct sg_upstream_target *upstream;  /* in upstream_set */
  struct sg_ring upload, download;
  struct sg_header_buf response_headers;
  struct sg_connection_tokens response_connection;
  struct MHD_Response *response;
  char curl_error[CURL_ERROR_SIZE];
};

uint64_t sg_now_ns(void);
int64_t sg_now_ms(void);

#endif
