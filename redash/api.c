/*
 * api.c - Redash's admin API over libcurl (see api.h).  One easy handle per
 * call: the sync makes a few calls per login, so reuse would buy nothing
 * worth the shared state.
 */
#include "redash/api.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include <curl/curl.h>
#include <glib.h>
#include <openssl/crypto.h>

#define MAX_ANSWER (4 * 1024 * 1024) /* a page of 250 users is ~150 KiB */

struct sink {
  GString *body;
  bool too_big;
};

static size_t on_data(char *data, size_t size, size_t n, void *userdata) {
  struct sink *s = userdata;
  size_t len = size * n;
  if (s->body->len + len > MAX_ANSWER) {
    s->too_big = true;
    return 0; /* curl stops with CURLE_WRITE_ERROR */
  }
  g_string_append_len(s->body, data, (gssize)len);
  return len;
}

static int on_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow) {
  (void)dltotal;
  (void)dlnow;
  (void)ultotal;
  (void)ulnow;
  const atomic_bool *stop = userdata;
  return stop != NULL && atomic_load(stop) ? 1 : 0;
}

int sg_redash_api_call(const struct sg_redash_api *api, const char *method, const char *path,
                       const char *json_body, struct sg_redash_answer *answer, char *why,
                       size_t why_size) {
  memset(answer, 0, sizeof *answer);
  CURL *curl = curl_easy_init();
  if (curl == NULL) {
    snprintf(why, why_size, "cannot create a curl handle");
    return -1;
  }
  char *url = g_strconcat(api->base_url, path, NULL);
  size_t key_len = strlen(api->api_key);
  char *auth = g_strconcat("Authorization: Key ", api->api_key, NULL);
  struct curl_slist *headers = curl_slist_append(NULL, auth);
  headers = curl_slist_append(headers, "Accept: application/json");
  if (json_body != NULL)
    headers = curl_slist_append(headers, "Content-Type: application/json");
  struct sink sink = {g_string_new(NULL), false};
  char error[CURL_ERROR_SIZE] = "";

  curl_easy_setopt(curl, CURLOPT_URL, url);
  curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
  if (json_body != NULL)
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, json_body);
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *)api->stop);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, api->timeout_ms);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, api->timeout_ms);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(curl, CURLOPT_FOLLOWLOCATION, 0L); /* a redirect would be to a login page */
  curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, error);

  CURLcode rc = curl_easy_perform(curl);
  int result = 0;
  if (rc != CURLE_OK) {
    if (sink.too_big)
      snprintf(why, why_size, "%s %s: the answer is over %d bytes", method, path, MAX_ANSWER);
    else if (rc == CURLE_ABORTED_BY_CALLBACK)
      snprintf(why, why_size, "%s %s: stopped (ssogate is shutting down)", method, path);
    else
      snprintf(why, why_size, "%s %s: %s", method, path, error[0] ? error : curl_easy_strerror(rc));
    result = -1;
    g_string_free(sink.body, TRUE);
  } else {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &answer->status);
    answer->len = sink.body->len;
    answer->body = g_string_free(sink.body, FALSE);
  }
  OPENSSL_cleanse(headers->data, strlen(headers->data)); /* curl's copy of the key line */
  curl_slist_free_all(headers);
  OPENSSL_cleanse(auth, key_len + 19);
  g_free(auth);
  g_free(url);
  curl_easy_cleanup(curl);
  return result;
}

void sg_redash_answer_clear(struct sg_redash_answer *answer) {
  g_free(answer->body);
  memset(answer, 0, sizeof *answer);
}
