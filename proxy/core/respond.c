/*
 * respond.c - canned responses (see respond.h).
 *
 * Error pages say what happened in one line and give the request id; the
 * reason with details goes to the log, never to the page.
 */
#include "proxy/core/respond.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "proxy/core/drain.h"
#include "proxy/core/form.h"

static const char *status_text(int status) {
  switch (status) {
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 405: return "Method Not Allowed";
  case 413: return "Content Too Large";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return "Error";
  }
}

/* The refusal token of an answer of ours whose caller named none: one per
 * status, so every error line of the access log carries a reason. */
static void default_refusal(struct sg_request *r, int status) {
  if (r->refusal != NULL || status < 400)
    return;
  switch (status) {
  case 400: r->refusal = "bad_request"; break;
  case 401: r->refusal = "no_session"; break;
  case 403: r->refusal = "access_denied"; break;
  case 404: r->refusal = "not_found"; break;
  case 405: r->refusal = "method_not_allowed"; break;
  case 408: r->refusal = "client_timeout"; break;
  case 413: r->refusal = "body_too_large"; break;
  case 429: r->refusal = "rate_limited"; break;
  case 502: r->refusal = "upstream_error"; break;
  case 503: r->refusal = "unavailable"; break;
  case 504: r->refusal = "upstream_timeout"; break;
  default: r->refusal = "internal_error"; break;
  }
}

void sg_respond_add_common_headers(struct sg_request *r, struct MHD_Response *response) {
  MHD_add_response_header(response, "X-Request-Id", r->request_id);
  if (sg_workers_draining())
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
}

static struct MHD_Response *buffer_response_new(struct sg_request *r, const char *content_type,
                                                const char *body) {
  struct MHD_Response *response =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  if (response == NULL)
    return NULL;
  MHD_add_response_header(response, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
  MHD_add_response_header(response, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
  MHD_add_response_header(response, "X-Content-Type-Options", "nosniff");
  sg_respond_add_common_headers(r, response);
  return response;
}

struct MHD_Response *sg_response_new(struct sg_request *r, const char *content_type,
                                     const char *body) {
  return buffer_response_new(r, content_type, body);
}

struct MHD_Response *sg_error_response_new(struct sg_request *r, int status, const char *message) {
  char body[512];
  default_refusal(r, status);
  snprintf(body, sizeof body, "%d %s\n%s\nRequest id: %s\n", status, status_text(status), message,
           r->request_id);
  return buffer_response_new(r, "text/plain; charset=utf-8", body);
}

static enum MHD_Result queue_held(struct sg_request *r, const char *data, size_t *size) {
  (void)data;
  if (*size > 0) {
    *size = 0;
    return MHD_YES;
  }
  struct MHD_Response *response = r->response;
  r->response = NULL;
  r->on_more = NULL;
  return sg_respond_queue(r, r->status, response);
}

enum MHD_Result sg_respond_queue(struct sg_request *r, int status, struct MHD_Response *response) {
  if (response == NULL)
    return MHD_NO;
  r->status = status;
  /* libmicrohttpd closes the connection when a response is queued before
   * the request is complete; a bodiless request is complete one call
   * later, so hold the answer until then and keep the connection alive. */
  if (r->first_call && !r->body_announced) {
    r->response = response;
    r->on_more = queue_held;
    return MHD_YES;
  }
  r->queued = true;
  enum MHD_Result ret = MHD_queue_response(r->conn, (unsigned)status, response);
  MHD_destroy_response(response);
  return ret;
}

enum MHD_Result sg_respond(struct sg_request *r, int status, const char *content_type,
                           const char *body) {
  default_refusal(r, status);
  return sg_respond_queue(r, status, buffer_response_new(r, content_type, body));
}

enum MHD_Result sg_respond_error(struct sg_request *r, int status, const char *message) {
  return sg_respond_queue(r, status, sg_error_response_new(r, status, message));
}

enum MHD_Result sg_respond_redirect(struct sg_request *r, int status, const char *location) {
  struct MHD_Response *response = buffer_response_new(r, "text/plain; charset=utf-8", "");
  if (response == NULL)
    return MHD_NO;
  MHD_add_response_header(response, MHD_HTTP_HEADER_LOCATION, location);
  return sg_respond_queue(r, status, response);
}

/* "Need help? ..." with [pages] support_contact, on error pages only. */
static void support_line(struct sg_request *r, int status, char *out, size_t cap) {
  const char *contact = r->snap->config->pages.support_contact;
  out[0] = '\0';
  if (contact == NULL || status < 400)
    return;
  char escaped[1400];
  sg_html_escape(contact, escaped, sizeof escaped);
  bool web = strncmp(contact, "https://", 8) == 0 || strncmp(contact, "http://", 7) == 0;
  snprintf(out, cap,
           "<p class=\"support\">Need help? Contact <a href=\"%s%s\">%s</a> and quote "
           "the request id below.</p>",
           web ? "" : "mailto:", escaped, escaped);
}

static struct MHD_Response *page_response_new(struct sg_request *r, int status, const char *title,
                                              const char *message_html, const char *head_extra) {
  char support[3000];
  char body[32768]; /* room for a retry URL escaped twice (meta and link) */
  default_refusal(r, status);
  support_line(r, status, support, sizeof support);
  snprintf(body, sizeof body,
           "<!doctype html><html><head><meta charset=\"utf-8\">%s<title>%s</title>"
           "<style>body{font:16px system-ui,sans-serif;max-width:34em;margin:4em auto;padding:0 "
           "1em;color:#222}"
           "small{color:#777}</style></head><body><h1>%s</h1><p>%s</p>%s"
           "<p><small>Request id: %s</small></p></body></html>\n",
           head_extra, title, title, message_html, support, r->request_id);
  return buffer_response_new(r, "text/html; charset=utf-8", body);
}

enum MHD_Result sg_respond_page(struct sg_request *r, int status, const char *title,
                                const char *message_html) {
  return sg_respond_queue(r, status, page_response_new(r, status, title, message_html, ""));
}

enum MHD_Result sg_respond_too_many(struct sg_request *r, bool html, int64_t retry_after_s,
                                    const char *message, const char *retry_url) {
  char seconds[24];
  snprintf(seconds, sizeof seconds, "%" PRId64, retry_after_s);
  struct MHD_Response *response;
  if (!html) {
    response = sg_error_response_new(r, 429, message);
  } else {
    char escaped[6 * 2048], head[sizeof escaped + 100], text[sizeof escaped + 600];
    escaped[0] = head[0] = '\0';
    if (retry_url != NULL) {
      sg_html_escape(retry_url, escaped, sizeof escaped);
      /* The page tries again by itself: a person at 9:00 just waits. */
      snprintf(head, sizeof head, "<meta http-equiv=\"refresh\" content=\"%s;url=%s\">", seconds,
               escaped);
    }
    snprintf(text, sizeof text, "%s Please try again in %s second%s%s%s%s.", message, seconds,
             retry_after_s == 1 ? "" : "s",
             retry_url ? ": this page retries by itself, or <a href=\"" : "",
             retry_url ? escaped : "", retry_url ? "\">try again now</a>" : "");
    response = page_response_new(r, 429, "Too many sign-in attempts", text, head);
  }
  if (response != NULL)
    MHD_add_response_header(response, "Retry-After", seconds);
  return sg_respond_queue(r, 429, response);
}
