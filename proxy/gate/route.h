/*
 * route.h - which door a request takes, decided from its raw target.
 */
#ifndef SSOGATE_ROUTE_H
#define SSOGATE_ROUTE_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/core/request.h"
#include "proxy/core/target.h" /* sg_path_is_public, sg_target_path_len */

enum sg_route sg_route_for(const char *target, char *const *public_paths);

/*
 * How ssogate answers a request that needs a session and has none, from
 * what the client says it is (Fetch Metadata, else Accept).  The decision is
 * made here only.
 */
enum sg_login_answer {
  SG_LOGIN_REDIRECT,     /* a top-level navigation: 302 to the login */
  SG_LOGIN_UNAUTHORIZED, /* a script, an API client, any non-GET: 401 JSON */
  SG_LOGIN_FRAME_PAGE,   /* inside a frame: a page with a sign-in link in a new window */
};
/* Any header may be NULL (not sent). */
enum sg_login_answer sg_login_answer_for(const char *method, const char *sec_fetch_mode,
                                         const char *sec_fetch_dest, const char *accept,
                                         const char *x_requested_with);
#endif
