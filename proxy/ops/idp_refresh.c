/*
 * idp_refresh.c - IdP metadata from a URL (see idp_refresh.h).
 *
 * One thread for the process.  It looks at the published snapshot's SP,
 * fetches when its document is due, and sleeps until the next one is (or a
 * reload, or stop).  libcurl's easy interface, blocking: this client is off
 * the request path, like the upstream prober in health.c.  A failed fetch,
 * parse or signature keeps the last good document; auth/ remembers the
 * failure for /readyz, this file logs and counts it.
 */
#include "proxy/ops/idp_refresh.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>
#include <glib.h>

#include "base/log.h"
#include "base/periodic.h"
#include "proxy/core/counters.h"
#include "proxy/core/snapshot.h"

#define MAX_SLEEP_S 60 /* look again at least this often (a reload may be missed by none) */

struct body {
  char *data;
  size_t len;
  bool too_large;
};

static size_t on_data(char *data, size_t size, size_t n, void *userdata) {
  struct body *b = userdata;
  size_t add = size * n;
  if (b->len + add > SG_IDP_FETCH_MAX_BYTES) {
    b->too_large = true;
    return 0; /* CURLE_WRITE_ERROR: stop receiving now */
  }
  char *grown = realloc(b->data, b->len + add + 1);
  if (grown == NULL)
    return 0;
  memcpy(grown + b->len, data, add);
  b->data = grown;
  b->len += add;
  b->data[b->len] = '\0';
  return add;
}

/* Scheme, host and port of url ("https", "idp.example.com", "443"); 0 or -1. */
static int origin_of(const char *url, char *out, size_t cap) {
  CURLU *u = curl_url();
  char *scheme = NULL, *host = NULL, *port = NULL;
  int rc = -1;
  if (u != NULL && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK &&
      curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) == CURLUE_OK) {
    snprintf(out, cap, "%s://%s:%s", scheme, host, port);
    rc = 0;
  }
  curl_free(scheme);
  curl_free(host);
  curl_free(port);
  curl_url_cleanup(u);
  return rc;
}

/* Set by sg_idp_refresh_stop: a fetch in flight gives up within about a
 * second (libcurl calls the progress callback at least that often), so a
 * slow metadata host never holds up shutdown. */
static atomic_bool stopping;

static int on_progress(void *p, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
  (void)p, (void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
  return atomic_load(&stopping) ? 1 : 0;
}

/* One GET of url, no redirect followed; *location set on a 3xx (free()). */
static int fetch_one(const char *url, struct body *b, long *status, char **location, char *why,
                     size_t cap) {
  CURL *easy = curl_easy_init();
  char err[CURL_ERROR_SIZE] = "";
  if (easy == NULL) {
    snprintf(why, cap, "out of memory");
    return -1;
  }
  curl_easy_setopt(easy, CURLOPT_URL, url);
  curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L); /* decided below, hop by hop */
  curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, (long)SG_IDP_FETCH_CONNECT_MS);
  curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, (long)SG_IDP_FETCH_TOTAL_MS);
  curl_easy_setopt(easy, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)SG_IDP_FETCH_MAX_BYTES);
  curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(easy, CURLOPT_WRITEDATA, b);
  curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, err);
  curl_easy_setopt(easy, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(easy, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(easy, CURLOPT_USERAGENT, "ssogate/" SSOGATE_VERSION);
  curl_easy_setopt(easy, CURLOPT_ACCEPT_ENCODING, ""); /* gzip counts after decoding */
  CURLcode rc = curl_easy_perform(easy);
  curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, status);
  char *redirect = NULL;
  curl_easy_getinfo(easy, CURLINFO_REDIRECT_URL, &redirect);
  *location = redirect ? strdup(redirect) : NULL;
  curl_easy_cleanup(easy);
  if (b->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
    snprintf(why, cap, "larger than %d bytes: refused", SG_IDP_FETCH_MAX_BYTES);
    return -1;
  }
  if (rc != CURLE_OK) {
    snprintf(why, cap, "%s", err[0] ? err : curl_easy_strerror(rc));
    return -1;
  }
  return 0;
}

int sg_idp_fetch(const char *url, char **body_out, size_t *len, char *why, size_t cap) {
  *body_out = NULL;
  *len = 0;
  char origin[1200], hop_origin[1200];
  if (origin_of(url, origin, sizeof origin) < 0) {
    snprintf(why, cap, "not a URL");
    return -1;
  }
  char *current = strdup(url);
  for (int hop = 0; current != NULL; hop++) {
    struct body b = {0};
    long status = 0;
    char *location = NULL;
    int rc = fetch_one(current, &b, &status, &location, why, cap);
    free(current);
    current = NULL;
    if (rc < 0) {
      free(b.data);
      free(location);
      return -1;
    }
    if (status >= 300 && status < 400 && location != NULL) {
      free(b.data);
      /* A redirect is followed only where the URL itself could have led:
       * the same scheme, host and port.  Elsewhere is someone else's
       * document, whatever TLS says about that host. */
      if (hop >= SG_IDP_FETCH_MAX_REDIRECTS) {
        snprintf(why, cap, "more than %d redirects", SG_IDP_FETCH_MAX_REDIRECTS);
      } else if (origin_of(location, hop_origin, sizeof hop_origin) < 0 ||
                 strcmp(hop_origin, origin) != 0) {
        snprintf(why, cap, "redirect to %.200s refused (only the same scheme, host and port)",
                 location);
      } else {
        current = location;
        continue;
      }
      free(location);
      return -1;
    }
    free(location);
    if (status != 200) {
      free(b.data);
      snprintf(why, cap, "HTTP status %ld", status);
      return -1;
    }
    if (b.len == 0) {
      free(b.data);
      snprintf(why, cap, "empty body");
      return -1;
    }
    *body_out = b.data;
    *len = b.len;
    return 0;
  }
  snprintf(why, cap, "out of memory");
  return -1;
}

int sg_idp_refresh_once(struct sg_saml_sp *sp) {
  const char *url = sg_saml_sp_metadata_url(sp);
  if (url == NULL)
    return 0;
  char why[600];
  char *body = NULL, *error = NULL;
  size_t len = 0;
  int64_t now = (int64_t)time(NULL);
  bool changed = false;
  int rc = sg_idp_fetch(url, &body, &len, why, sizeof why);
  if (rc == 0) {
    rc = sg_saml_sp_metadata_offer(sp, body, len, now, &changed, &error);
    if (rc < 0)
      snprintf(why, sizeof why, "%s", error ? error : "refused");
  } else {
    g_autofree char *detail = g_strdup_printf("[saml] idp_metadata %s: %s", url, why);
    g_strlcpy(why, detail, sizeof why);
  }
  free(body);
  if (rc < 0) {
    sg_saml_sp_metadata_failed(sp, why, now);
    sg_metrics_event(SG_EV_IDP_METADATA_FAILED);
    struct sg_saml_idp *idp = sg_saml_sp_idp_ref(sp);
    sg_warn("IdP metadata refresh failed, %s: %s",
            idp ? "keeping the last good document" : "nobody can sign in yet", why);
    sg_saml_idp_unref(idp);
    free(error);
    return -1;
  }
  sg_metrics_event(SG_EV_IDP_METADATA_FETCHED);
  if (rc == 1)
    sg_warn("IdP metadata cache not written: %s", error);
  if (changed) {
    struct sg_saml_idp *idp = sg_saml_sp_idp_ref(sp);
    sg_info("IdP metadata loaded from %s: %zu signing certificate(s), trusted from the next login",
            url, idp ? sg_saml_idp_cert_count(idp) : (size_t)0);
    sg_saml_idp_unref(idp);
  } else {
    sg_debug("IdP metadata from %s unchanged", url);
  }
  free(error);
  return 0;
}

/* ---- the thread ------------------------------------------------------------- */

static struct sg_periodic *loop; /* main starts, wakes (reload) and stops it */

/* Refreshes the current snapshot's document when due; milliseconds to sleep. */
static int64_t refresh_if_due(void *arg) {
  (void)arg;
  struct sg_snapshot *s = sg_snapshot_current_ref();
  int64_t sleep_s = MAX_SLEEP_S;
  if (s != NULL && s->saml != NULL && sg_saml_sp_metadata_url(s->saml) != NULL) {
    int64_t now = (int64_t)time(NULL);
    if (sg_saml_sp_next_refresh(s->saml) <= now)
      sg_idp_refresh_once(s->saml);
    int64_t left = sg_saml_sp_next_refresh(s->saml) - (int64_t)time(NULL);
    sleep_s = left < 1 ? 1 : left < MAX_SLEEP_S ? left : MAX_SLEEP_S;
  }
  sg_snapshot_unref(s);
  return sleep_s * 1000;
}

int sg_idp_refresh_start(void) {
  loop = sg_periodic_new("sg-idp-refresh", refresh_if_due, NULL, 0);
  return loop != NULL ? 0 : -1;
}

void sg_idp_refresh_now(void) {
  if (loop != NULL)
    sg_periodic_wake(loop);
}

void sg_idp_refresh_stop(void) {
  if (loop == NULL)
    return;
  atomic_store(&stopping, true);
  sg_periodic_free(loop); /* a fetch in flight gives up within about a second */
  loop = NULL;
}
