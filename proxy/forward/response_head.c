/*
 * response_head.c - the upstream's response head as it goes to the client
 * (see response_head.h).
 */
#include "proxy/forward/response_head.h"

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "base/log.h"
#include "proxy/core/cookies.h"
#include "proxy/core/worker.h"
#include "proxy/forward/app_cookies.h"

void sg_add_response_headers(struct sg_request *r, struct MHD_Response *response) {
  const char *name, *value;
  size_t off = 0;
  char *const *app_names = r->snap->config->session.app_cookies;
  struct sg_app_jar jar = {0};
  bool set_by_app[SG_APP_COOKIES_MAX] = {false}, app_set = false;
  int64_t now = (int64_t)time(NULL);
  if (!r->app_cookies_stripped)
    jar = r->app_jar;
  memset(&r->response_connection, 0, sizeof r->response_connection);
  while (sg_response_next_header(&r->answer, &off, &name, &value))
    if (strcasecmp(name, "Connection") == 0)
      sg_connection_tokens_add(&r->response_connection, value);
  off = 0;
  while (sg_response_next_header(&r->answer, &off, &name, &value)) {
    if (sg_response_header_verdict(name, &r->response_connection) != SG_HEADER_KEEP)
      continue;
    if (strcasecmp(name, "Set-Cookie") == 0 &&
        sg_set_cookie_names_one_of(value, r->snap->own_cookies)) {
      sg_log(SG_LOG_WARN, r->request_id, "dropped upstream Set-Cookie for ssogate's own cookie");
      continue;
    }
    if (app_names[0] != NULL && strcasecmp(name, "Set-Cookie") == 0) {
      int i = sg_app_jar_apply_set_cookie(&jar, app_names, value, now);
      if (i >= 0)
        set_by_app[i] = app_set = true;
    }
    if (MHD_add_response_header(response, name, value) != MHD_YES)
      sg_log(SG_LOG_DEBUG, r->request_id, "dropped upstream header %s: refused by the server",
             name);
  }
  if (app_names[0] != NULL)
    sg_settle_app_cookies(r, response, &jar, set_by_app, app_set);
  if (sg_workers_draining())
    MHD_add_response_header(response, MHD_HTTP_HEADER_CONNECTION, "close");
}
