/*
 * api.h - a blocking client for Redash's admin API, for the sync threads.
 * Never on the request path: every call waits for Redash (bounded by the
 * timeout).  The API key travels only in "Authorization: Key <key>"
 * (Redash's get_api_key_from_request), never in a URL, never in a reason.
 */
#ifndef SSOGATE_REDASH_API_H
#define SSOGATE_REDASH_API_H

#include <stdatomic.h>
#include <stddef.h>

struct sg_redash_api {
  const char *base_url; /* "http://redash-server:5000", no trailing slash */
  const char *api_key;
  long timeout_ms;
  const atomic_bool *stop; /* when set, a call in progress gives up at once */
};

struct sg_redash_answer {
  long status; /* HTTP status */
  char *body;  /* NUL-terminated (g_free) */
  size_t len;
};

/*
 * method: "GET", "POST" or "DELETE"; path starts with "/api/"; json_body
 * NULL or the JSON to POST.  0 when Redash answered (any status: the caller
 * decides), -1 when it did not (reason in why: connect, timeout, too big).
 */
int sg_redash_api_call(const struct sg_redash_api *api, const char *method, const char *path,
                       const char *json_body, struct sg_redash_answer *answer, char *why,
                       size_t why_size);
void sg_redash_answer_clear(struct sg_redash_answer *answer);

#endif
