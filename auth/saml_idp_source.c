/*
 * saml_idp_source.c - where the IdP document comes from and which one is
 * current: a file read once, or a URL whose fetches (proxy/'s refresh)
 * are offered here, swapped in when good, written to the cache, remembered
 * for the next reload; and the status /readyz and --check report.
 *
 * Not for: fetching (proxy/), nor reading a document (saml_idp.c).
 */
#include "auth/saml_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- metadata from a URL: the swap, the cache ------------------------------- */

/* The last good URL document of this process, so that a reload while the
 * IdP's host is down starts from it even without [saml] metadata_cache. */
static pthread_mutex_t memo_lock = PTHREAD_MUTEX_INITIALIZER;
static char *memo_url, *memo_xml;
static size_t memo_len;
static int64_t memo_at;

static void memo_set(const char *url, const char *xml, size_t len, int64_t at) {
  pthread_mutex_lock(&memo_lock);
  if (memo_url == NULL || strcmp(memo_url, url) != 0 || memo_len != len ||
      memcmp(memo_xml, xml, len) != 0) {
    free(memo_url);
    free(memo_xml);
    memo_url = strdup(url);
    memo_xml = strndup(xml, len);
    memo_len = memo_url && memo_xml ? len : 0;
  }
  memo_at = at;
  pthread_mutex_unlock(&memo_lock);
}

void sg_saml_memo_clear(void) {
  pthread_mutex_lock(&memo_lock);
  free(memo_url);
  free(memo_xml);
  memo_url = memo_xml = NULL;
  memo_len = 0;
  pthread_mutex_unlock(&memo_lock);
}

/* A copy of the memo for url (g_free()), or NULL. */
static char *memo_get_new(const char *url, size_t *len, int64_t *at) {
  char *out = NULL;
  pthread_mutex_lock(&memo_lock);
  if (memo_url != NULL && memo_xml != NULL && strcmp(memo_url, url) == 0) {
    out = g_strndup(memo_xml, memo_len);
    *len = memo_len;
    *at = memo_at;
  }
  pthread_mutex_unlock(&memo_lock);
  return out;
}

/* temp + fsync + rename, mode 0600: a reader sees the old or the new file. */
static int write_cache(const char *path, const char *xml, size_t len, char **error) {
  g_autofree char *tmp = g_strdup_printf("%s.tmp.XXXXXX", path);
  int fd = mkostemp(tmp, O_CLOEXEC);
  if (fd < 0) {
    set_error(error, "[saml] metadata_cache %s: %s", path, strerror(errno));
    return -1;
  }
  size_t done = 0;
  bool ok = fchmod(fd, 0600) == 0;
  while (ok && done < len) {
    ssize_t n = write(fd, xml + done, len - done);
    if (n < 0 && errno == EINTR)
      continue;
    ok = n > 0;
    done += ok ? (size_t)n : 0;
  }
  ok = ok && fsync(fd) == 0;
  int saved = errno;
  ok = close(fd) == 0 && ok;
  if (!ok || rename(tmp, path) != 0) {
    saved = ok ? errno : saved;
    unlink(tmp);
    set_error(error, "[saml] metadata_cache %s: %s", path, strerror(saved));
    return -1;
  }
  return 0;
}

/* When the next fetch is due after a good one: metadata_refresh, shortened
 * by the document's cacheDuration and validUntil, never below 5 s. */
static int64_t next_refresh(const struct sg_saml_sp *sp, const struct sg_saml_idp *idp,
                            int64_t now) {
  int64_t interval = (int64_t)(sp->refresh_ms / 1000);
  if (idp->cache_duration > 0 && idp->cache_duration < interval)
    interval = idp->cache_duration;
  if (idp->valid_until > 0 && idp->valid_until - now < interval)
    interval = idp->valid_until - now;
  return now + MAX(interval, 5);
}

/* Makes idp the current one (takes its reference). */
static void install_idp(struct sg_saml_sp *sp, struct sg_saml_idp *idp, int64_t good_at,
                        int64_t now) {
  pthread_mutex_lock(&sp->lock);
  struct sg_saml_idp *old = sp->idp;
  sp->idp = idp;
  sp->last_good_at = good_at;
  sp->next_refresh_at = next_refresh(sp, idp, now);
  sp->last_error[0] = '\0';
  pthread_mutex_unlock(&sp->lock);
  sg_saml_idp_unref(old); /* logins still holding it keep it alive */
}

int sg_saml_sp_metadata_offer(struct sg_saml_sp *sp, const char *xml, size_t len, int64_t now,
                              bool *changed, char **error) {
  if (error != NULL)
    *error = NULL;
  *changed = false;
  if (sp->metadata_url == NULL) {
    set_error(error, "[saml] idp_metadata is a file, not a URL");
    return -1;
  }
  struct sg_saml_idp *current = sg_saml_sp_idp_ref(sp);
  bool same = current != NULL && current->len == len && memcmp(current->xml, xml, len) == 0;
  if (same) {
    pthread_mutex_lock(&sp->lock);
    sp->last_good_at = now;
    sp->next_refresh_at = next_refresh(sp, current, now);
    sp->last_error[0] = '\0';
    pthread_mutex_unlock(&sp->lock);
    sg_saml_idp_unref(current);
    memo_set(sp->metadata_url, xml, len, now);
    return 0;
  }
  sg_saml_idp_unref(current);
  g_autofree char *source = g_strdup_printf("[saml] idp_metadata %s", sp->metadata_url);
  struct sg_saml_idp *idp = sg_saml_idp_new(sp, xml, len, source, sp->md_signing_key, error);
  if (idp == NULL)
    return -1;
  if (idp->valid_until > 0 && idp->valid_until <= now) {
    set_error(error, "%s: validUntil has passed (%" G_GINT64_FORMAT " s ago)", source,
              now - idp->valid_until);
    sg_saml_idp_unref(idp);
    return -1;
  }
  /* The cache first: once a login can use this document, a restart finds it. */
  int rc = sp->metadata_cache != NULL && write_cache(sp->metadata_cache, xml, len, error) < 0;
  install_idp(sp, idp, now, now);
  *changed = true;
  memo_set(sp->metadata_url, xml, len, now);
  return rc; /* 1: installed, *error says why the cache was not written */
}

void sg_saml_sp_metadata_failed(struct sg_saml_sp *sp, const char *reason, int64_t now) {
  pthread_mutex_lock(&sp->lock);
  g_strlcpy(sp->last_error, reason ? reason : "unknown error", sizeof sp->last_error);
  /* A failed fetch is retried within a minute, whatever the interval. */
  sp->next_refresh_at = now + MAX(MIN((int64_t)(sp->refresh_ms / 1000), 60), 5);
  pthread_mutex_unlock(&sp->lock);
}

/* At construction: the process's last good document for this URL, else the
 * cache on disk (its mtime = when it was fetched).  Failing both is not an
 * error: the refresh fetches, /readyz says why nobody can sign in yet. */
void sg_saml_load_url_start(struct sg_saml_sp *sp, int64_t now) {
  size_t len = 0;
  int64_t at = 0;
  char *error = NULL;
  char *xml = memo_get_new(sp->metadata_url, &len, &at);
  const char *from = "memory";
  if (xml == NULL && sp->metadata_cache != NULL) {
    struct stat st;
    xml = read_file("metadata_cache", sp->metadata_cache, MAX_METADATA_FILE, false, &len, &error);
    at = xml != NULL && stat(sp->metadata_cache, &st) == 0 ? (int64_t)st.st_mtime : now;
    from = "cache";
  }
  if (xml != NULL) {
    g_autofree char *source =
        g_strdup_printf("[saml] metadata_cache %s", sp->metadata_cache ? sp->metadata_cache : "");
    struct sg_saml_idp *idp = sg_saml_idp_new(
        sp, xml, len, strcmp(from, "cache") == 0 ? source : "[saml] idp_metadata (memory)",
        sp->md_signing_key, &error);
    if (idp != NULL)
      install_idp(sp, idp, at, now);
    g_free(xml);
  }
  pthread_mutex_lock(&sp->lock);
  sp->next_refresh_at = 0; /* fetch now, whatever was loaded */
  if (sp->idp == NULL)
    snprintf(sp->last_error, sizeof sp->last_error, "not fetched yet%s%s",
             error ? "; " : (sp->metadata_cache ? "" : " (no [saml] metadata_cache)"),
             error ? error : "");
  pthread_mutex_unlock(&sp->lock);
  free(error);
}

int sg_saml_load_idp_file(struct sg_saml_sp *sp, const char *path, char **error) {
  size_t len = 0;
  char *xml = read_file("idp_metadata", path, MAX_METADATA_FILE, false, &len, error);
  if (xml == NULL)
    return -1;
  g_autofree char *source = g_strdup_printf("[saml] idp_metadata %s", path);
  struct sg_saml_idp *idp = sg_saml_idp_new(sp, xml, len, source, NULL, error);
  g_free(xml);
  if (idp == NULL)
    return -1;
  install_idp(sp, idp, 0, 0);
  return 0;
}

/* ---- what /readyz, the refresh and --check read ------------------------------ */

const char *sg_saml_sp_metadata_url(const struct sg_saml_sp *sp) { return sp->metadata_url; }

int64_t sg_saml_sp_next_refresh(const struct sg_saml_sp *csp) {
  struct sg_saml_sp *sp = (struct sg_saml_sp *)csp;
  pthread_mutex_lock(&sp->lock);
  int64_t t = sp->next_refresh_at;
  pthread_mutex_unlock(&sp->lock);
  return t;
}

int64_t sg_saml_sp_metadata_last_good(const struct sg_saml_sp *csp) {
  struct sg_saml_sp *sp = (struct sg_saml_sp *)csp;
  pthread_mutex_lock(&sp->lock);
  int64_t t = sp->last_good_at;
  pthread_mutex_unlock(&sp->lock);
  return t;
}

static void format_utc(int64_t t, char *out, size_t cap) {
  time_t tt = (time_t)t;
  struct tm tm;
  if (gmtime_r(&tt, &tm) == NULL || strftime(out, cap, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
    snprintf(out, cap, "%" G_GINT64_FORMAT, t);
}

int sg_saml_sp_idp_status(const struct sg_saml_sp *csp, int64_t now, char *reason, size_t cap) {
  struct sg_saml_sp *sp = (struct sg_saml_sp *)csp;
  pthread_mutex_lock(&sp->lock);
  struct sg_saml_idp *idp = sp->idp;
  if (idp != NULL)
    atomic_fetch_add_explicit(&idp->refs, 1, memory_order_relaxed);
  int64_t last_good = sp->last_good_at;
  char last_error[sizeof sp->last_error];
  g_strlcpy(last_error, sp->last_error, sizeof last_error);
  pthread_mutex_unlock(&sp->lock);

  int rc = 0;
  char when[32];
  if (idp == NULL) {
    snprintf(reason, cap, "IdP metadata from %s not loaded: %s", sp->metadata_url, last_error);
    return -1;
  }
  size_t latest = 0;
  for (size_t i = 1; i < idp->n_certs; i++)
    if (idp->not_after[i] > idp->not_after[latest])
      latest = i;
  if (idp->not_after[latest] <= now) {
    format_utc(idp->not_after[latest], when, sizeof when);
    if (sp->trust.accept_expired_idp_certificate) {
      snprintf(reason, cap,
               "ok (IdP signing certificate '%s' expired at %s; accepted by [saml] "
               "accept_expired_idp_certificate)",
               idp->subjects[latest], when);
    } else {
      snprintf(reason, cap,
               "IdP signing certificate '%s' expired at %s: logins are refused (new IdP "
               "metadata, or [saml] accept_expired_idp_certificate = true)",
               idp->subjects[latest], when);
      rc = -1;
    }
  } else {
    snprintf(reason, cap, "ok");
  }
  if (rc == 0 && sp->metadata_url != NULL && now - last_good > SG_SAML_METADATA_STALE_S) {
    format_utc(last_good, when, sizeof when);
    snprintf(reason, cap, "stale: no good fetch of %s since %s: %s", sp->metadata_url, when,
             last_error[0] ? last_error : "not refreshed");
    rc = -1;
  }
  sg_saml_idp_unref(idp);
  return rc;
}
