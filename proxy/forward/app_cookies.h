/*
 * app_cookies.h - the app's own login cookies ([session] app_cookies) on
 * the upstream leg, bound to the gate session (core/cookies.h holds the
 * jar and the binding's cookie lines).
 *
 * For: deciding, before the head goes out, whether the app sees them, and
 * after the app answers, expiring the withheld ones and binding a changed
 * jar again.  Not for: parsing cookies (core/cookies.c) or the HMAC
 * (auth/session.c).
 */
#ifndef SSOGATE_APP_COOKIES_H
#define SSOGATE_APP_COOKIES_H

#include <stdbool.h>

#include "proxy/core/request.h"

/* Reads the request's app cookies into r->app_jar and sets
 * r->app_cookies_stripped unless the binding cookie says they were issued
 * under this very session. */
void sg_judge_app_cookies(struct sg_request *r);

/* After the app's Set-Cookie lines (jar: the request's jar with the app's
 * changes; set_by_app: which names the app set). */
void sg_settle_app_cookies(struct sg_request *r, struct MHD_Response *response,
                           const struct sg_app_jar *jar, const bool *set_by_app, bool app_set);

#endif
