/*
 * tls.c - client TLS over a caller's fd (see tls.h): one SSL_CTX per
 * configured CA set, one SSL per connection, a per-host session cache.
 *
 * Not for: sockets, DNS, servers.  Every verification decision is OpenSSL's
 * (chain, validity, name); this file only asks for it and words the reason.
 */
#include "tls/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <glib.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "base/clock.h"

/* Hosts whose newest session is kept; the least recently used goes first. */
#define SESSION_CACHE_SLOTS 64
#define HOST_MAX 256
#define SESSION_DER_MAX 16384 /* a session with its peer certificate; larger ones are not kept */

/* Sessions are kept serialised, so no SSL_SESSION object is shared between
 * threads: each connection decodes its own copy (OpenSSL's reference counts
 * are atomics ThreadSanitizer cannot see, and a shared session races in it). */
struct session_slot {
  char host[HOST_MAX];
  unsigned char *der; /* NULL: free slot */
  size_t der_len;
  time_t expires;
  uint64_t used; /* ctx->tick when last stored or taken */
};

struct sg_tls_ctx {
  SSL_CTX *ssl_ctx;
  pthread_mutex_t lock; /* guards the slots and tick */
  struct session_slot slots[SESSION_CACHE_SLOTS];
  uint64_t tick;
};

struct sg_tls {
  struct sg_tls_ctx *ctx;
  SSL *ssl;
  char host[HOST_MAX]; /* the session cache key */
  bool handshake_done;
  bool failed;      /* a fatal error: no close_notify may follow (OpenSSL's rule) */
  bool peer_closed; /* SG_TLS_CLOSED was answered */
  bool close_notified;
  char error[256];
};

static int tls_index = -1; /* SSL ex_data slot holding the struct sg_tls */
static pthread_once_t tls_index_once = PTHREAD_ONCE_INIT;

static void make_tls_index(void) { tls_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, NULL); }

/* ---- session cache ------------------------------------------------------------------------ */

static void slot_clear(struct session_slot *slot) {
  g_free(slot->der);
  slot->der = NULL;
  slot->der_len = 0;
}

/* OpenSSL hands us every new session (TLS 1.3: tickets after the handshake);
 * the newest per host wins.  Returns 0: OpenSSL keeps its reference. */
static int on_new_session(SSL *ssl, SSL_SESSION *session) {
  struct sg_tls *t = SSL_get_ex_data(ssl, tls_index);
  if (t == NULL || !SSL_SESSION_is_resumable(session))
    return 0;
  int len = i2d_SSL_SESSION(session, NULL);
  if (len <= 0 || len > SESSION_DER_MAX)
    return 0;
  unsigned char *der = g_malloc((size_t)len), *p = der;
  if (i2d_SSL_SESSION(session, &p) != len) {
    g_free(der);
    return 0;
  }
  time_t expires = (time_t)SSL_SESSION_get_time(session) + (time_t)SSL_SESSION_get_timeout(session);
  struct sg_tls_ctx *ctx = t->ctx;
  pthread_mutex_lock(&ctx->lock);
  struct session_slot *slot = NULL, *oldest = &ctx->slots[0];
  for (size_t i = 0; i < SESSION_CACHE_SLOTS && slot == NULL; i++) {
    struct session_slot *s = &ctx->slots[i];
    if (s->der != NULL && strcmp(s->host, t->host) == 0)
      slot = s;
    else if (s->der == NULL || (oldest->der != NULL && s->used < oldest->used))
      oldest = s;
  }
  if (slot == NULL) {
    slot = oldest;
    snprintf(slot->host, sizeof slot->host, "%s", t->host);
  }
  slot_clear(slot);
  slot->der = der;
  slot->der_len = (size_t)len;
  slot->expires = expires;
  slot->used = ++ctx->tick;
  pthread_mutex_unlock(&ctx->lock);
  return 0;
}

/* A fresh copy of the host's cached session (SSL_SESSION_free it), or NULL. */
static SSL_SESSION *cached_session_new(struct sg_tls_ctx *ctx, const char *host) {
  unsigned char der[SESSION_DER_MAX];
  size_t len = 0;
  time_t now = time(NULL);
  pthread_mutex_lock(&ctx->lock);
  for (size_t i = 0; i < SESSION_CACHE_SLOTS; i++) {
    struct session_slot *s = &ctx->slots[i];
    if (s->der == NULL || strcmp(s->host, host) != 0)
      continue;
    if (s->expires > now) {
      len = s->der_len;
      memcpy(der, s->der, len);
      s->used = ++ctx->tick;
    } else {
      slot_clear(s);
    }
    break;
  }
  pthread_mutex_unlock(&ctx->lock);
  const unsigned char *p = der;
  return len ? d2i_SSL_SESSION(NULL, &p, (long)len) : NULL;
}

/* ---- context ------------------------------------------------------------------------------- */

/* The first queued OpenSSL reason, without the library/function noise. */
static void openssl_reason(char *buf, size_t cap, const char *fallback) {
  unsigned long e = ERR_peek_last_error();
  const char *reason = e ? ERR_reason_error_string(e) : NULL;
  snprintf(buf, cap, "%s", reason ? reason : fallback);
  ERR_clear_error();
}

struct sg_tls_ctx *sg_tls_ctx_new(const char *ca_file, char **error) {
  pthread_once(&tls_index_once, make_tls_index);
  *error = NULL;
  char why[200];
  SSL_CTX *ssl_ctx = SSL_CTX_new(TLS_client_method());
  if (ssl_ctx == NULL || tls_index < 0) {
    openssl_reason(why, sizeof why, "out of memory");
    *error = g_strdup_printf("TLS: cannot create a context: %s", why);
    SSL_CTX_free(ssl_ctx);
    return NULL;
  }
  SSL_CTX_set_min_proto_version(ssl_ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ssl_ctx, SSL_VERIFY_PEER, NULL);
  /* Partial writes and a moving buffer suit ring buffers; idle pooled
   * connections give their 2 x 16 KiB record buffers back. */
  SSL_CTX_set_mode(ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                                SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_session_cache_mode(ssl_ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
  SSL_CTX_sess_set_new_cb(ssl_ctx, on_new_session);
  int ok = ca_file != NULL && ca_file[0] != '\0' ? SSL_CTX_load_verify_file(ssl_ctx, ca_file)
                                                 : SSL_CTX_set_default_verify_paths(ssl_ctx);
  if (!ok) {
    openssl_reason(why, sizeof why, "unreadable");
    *error = ca_file && ca_file[0] ? g_strdup_printf("TLS: CA file %s: %s", ca_file, why)
                                   : g_strdup_printf("TLS: system CAs: %s", why);
    SSL_CTX_free(ssl_ctx);
    return NULL;
  }
  struct sg_tls_ctx *ctx = g_new0(struct sg_tls_ctx, 1);
  ctx->ssl_ctx = ssl_ctx;
  pthread_mutex_init(&ctx->lock, NULL);
  return ctx;
}

void sg_tls_ctx_free(struct sg_tls_ctx *ctx) {
  if (ctx == NULL)
    return;
  for (size_t i = 0; i < SESSION_CACHE_SLOTS; i++)
    slot_clear(&ctx->slots[i]);
  SSL_CTX_free(ctx->ssl_ctx);
  pthread_mutex_destroy(&ctx->lock);
  g_free(ctx);
}

/* ---- one connection ------------------------------------------------------------------------ */

/* "[::1]" -> "::1" in out; true when host is an IPv4 or IPv6 literal. */
static bool ip_literal(const char *host, char *out, size_t cap) {
  size_t n = strlen(host);
  if (n >= 2 && host[0] == '[' && host[n - 1] == ']')
    snprintf(out, cap, "%.*s", (int)(n - 2), host + 1);
  else
    snprintf(out, cap, "%s", host);
  unsigned char addr[16];
  return inet_pton(AF_INET, out, addr) == 1 || inet_pton(AF_INET6, out, addr) == 1;
}

struct sg_tls *sg_tls_new(struct sg_tls_ctx *ctx, int fd, const char *host, char **error) {
  *error = NULL;
  if (host == NULL || host[0] == '\0' || strlen(host) >= HOST_MAX) {
    *error = g_strdup("TLS: a host name to verify is required");
    return NULL;
  }
  struct sg_tls *t = g_new0(struct sg_tls, 1);
  t->ctx = ctx;
  char name[HOST_MAX];
  bool is_ip = ip_literal(host, name, sizeof name);
  snprintf(t->host, sizeof t->host, "%s", name);
  t->ssl = SSL_new(ctx->ssl_ctx);
  bool ok =
      t->ssl != NULL && SSL_set_fd(t->ssl, fd) == 1 && SSL_set_ex_data(t->ssl, tls_index, t) == 1;
  if (ok && is_ip)
    ok = X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(t->ssl), name) == 1;
  else if (ok)
    ok = SSL_set_tlsext_host_name(t->ssl, name) == 1 && SSL_set1_host(t->ssl, name) == 1;
  if (!ok) {
    char why[200];
    openssl_reason(why, sizeof why, "out of memory");
    *error = g_strdup_printf("TLS: cannot set up a connection to %s: %s", name, why);
    SSL_free(t->ssl);
    g_free(t);
    return NULL;
  }
  SSL_set_connect_state(t->ssl);
  SSL_SESSION *session = cached_session_new(ctx, t->host);
  if (session != NULL) {
    SSL_set_session(t->ssl, session); /* takes its own reference */
    SSL_SESSION_free(session);
  }
  return t;
}

void sg_tls_free(struct sg_tls *t) {
  if (t == NULL)
    return;
  if (t->handshake_done && !t->failed)
    (void)SSL_shutdown(t->ssl); /* one non-blocking attempt; the answer is not awaited */
  SSL_free(t->ssl);
  ERR_clear_error();
  g_free(t);
}

/* Turns an SSL_get_error() verdict into our codes and reason. */
static int verdict(struct sg_tls *t, int ret, const char *during) {
  int e = SSL_get_error(t->ssl, ret);
  int saved_errno = errno;
  switch (e) {
  case SSL_ERROR_WANT_READ: ERR_clear_error(); return SG_TLS_WANT_READ;
  case SSL_ERROR_WANT_WRITE: ERR_clear_error(); return SG_TLS_WANT_WRITE;
  case SSL_ERROR_ZERO_RETURN:
    ERR_clear_error();
    t->peer_closed = t->close_notified = true;
    return SG_TLS_CLOSED;
  default: break;
  }
  t->failed = true;
  long v = SSL_get_verify_result(t->ssl);
  unsigned long err = ERR_peek_last_error();
  if (!t->handshake_done && v != X509_V_OK) {
    snprintf(t->error, sizeof t->error, "certificate verify failed: %s",
             X509_verify_cert_error_string(v));
  } else if (e == SSL_ERROR_SSL && ERR_GET_REASON(err) == SSL_R_UNEXPECTED_EOF_WHILE_READING) {
    if (t->handshake_done) { /* a bare EOF after the handshake: closed, not broken */
      ERR_clear_error();
      t->failed = false;
      t->peer_closed = true;
      return SG_TLS_CLOSED;
    }
    snprintf(t->error, sizeof t->error, "connection closed by the peer during the %s", during);
  } else if (e == SSL_ERROR_SYSCALL) {
    if (saved_errno != 0)
      snprintf(t->error, sizeof t->error, "%s: %s", during, strerror(saved_errno));
    else
      snprintf(t->error, sizeof t->error, "connection closed by the peer during the %s", during);
  } else {
    char why[200];
    openssl_reason(why, sizeof why, "unknown error");
    snprintf(t->error, sizeof t->error, "%s failed: %s", during, why);
  }
  ERR_clear_error();
  return SG_TLS_ERROR;
}

int sg_tls_handshake(struct sg_tls *t) {
  if (t->handshake_done)
    return 0;
  if (t->failed)
    return SG_TLS_ERROR;
  ERR_clear_error();
  errno = 0;
  int ret = SSL_do_handshake(t->ssl);
  if (ret == 1) {
    t->handshake_done = true;
    return 0;
  }
  return verdict(t, ret, "handshake");
}

ssize_t sg_tls_read(struct sg_tls *t, void *buf, size_t len) {
  int rc = sg_tls_handshake(t);
  if (rc != 0)
    return rc;
  if (t->peer_closed)
    return SG_TLS_CLOSED;
  if (len == 0)
    return 0;
  ERR_clear_error();
  errno = 0;
  size_t got = 0;
  if (SSL_read_ex(t->ssl, buf, len, &got) == 1)
    return (ssize_t)got;
  return verdict(t, 0, "read");
}

ssize_t sg_tls_write(struct sg_tls *t, const void *buf, size_t len) {
  int rc = sg_tls_handshake(t);
  if (rc != 0)
    return rc;
  if (t->failed)
    return SG_TLS_ERROR;
  if (len == 0)
    return 0;
  ERR_clear_error();
  errno = 0;
  size_t put = 0;
  if (SSL_write_ex(t->ssl, buf, len, &put) == 1)
    return (ssize_t)put;
  return verdict(t, 0, "write");
}

size_t sg_tls_pending(const struct sg_tls *t) {
  int n = SSL_pending(t->ssl);
  return n > 0 ? (size_t)n : 0;
}

const char *sg_tls_error(const struct sg_tls *t) { return t->error; }

bool sg_tls_resumed(const struct sg_tls *t) {
  return t->handshake_done && SSL_session_reused(t->ssl) == 1;
}

bool sg_tls_close_notified(const struct sg_tls *t) { return t->close_notified; }

/* ---- blocking helpers ---------------------------------------------------------------------- */

/* Waits for what a WANT_* code asks; 0, or SG_TLS_TIMEOUT / SG_TLS_ERROR. */
static int wait_for(struct sg_tls *t, int want, int64_t deadline) {
  struct pollfd p = {.fd = SSL_get_fd(t->ssl),
                     .events = want == SG_TLS_WANT_READ ? POLLIN : POLLOUT};
  for (;;) {
    int64_t left = deadline - sg_now_ms();
    if (left <= 0)
      return SG_TLS_TIMEOUT;
    int n = poll(&p, 1, (int)left);
    if (n > 0)
      return 0; /* readable, writable or in error: the next TLS call tells which */
    if (n < 0 && errno != EINTR) {
      snprintf(t->error, sizeof t->error, "poll: %s", strerror(errno));
      return SG_TLS_ERROR;
    }
  }
}

int sg_tls_handshake_blocking(struct sg_tls *t, int timeout_ms) {
  int64_t deadline = sg_now_ms() + timeout_ms;
  for (;;) {
    int rc = sg_tls_handshake(t);
    if (rc != SG_TLS_WANT_READ && rc != SG_TLS_WANT_WRITE)
      return rc;
    if ((rc = wait_for(t, rc, deadline)) != 0)
      return rc;
  }
}

ssize_t sg_tls_read_blocking(struct sg_tls *t, void *buf, size_t len, int timeout_ms) {
  int64_t deadline = sg_now_ms() + timeout_ms;
  for (;;) {
    ssize_t n = sg_tls_read(t, buf, len);
    if (n != SG_TLS_WANT_READ && n != SG_TLS_WANT_WRITE)
      return n;
    int rc = wait_for(t, (int)n, deadline);
    if (rc != 0)
      return rc;
  }
}

int sg_tls_write_all_blocking(struct sg_tls *t, const void *buf, size_t len, int timeout_ms) {
  int64_t deadline = sg_now_ms() + timeout_ms;
  const char *p = buf;
  while (len > 0) {
    ssize_t n = sg_tls_write(t, p, len);
    if (n > 0) {
      p += n;
      len -= (size_t)n;
      continue;
    }
    if (n != SG_TLS_WANT_READ && n != SG_TLS_WANT_WRITE)
      return n == 0 ? SG_TLS_ERROR : (int)n;
    int rc = wait_for(t, (int)n, deadline);
    if (rc != 0)
      return rc;
  }
  return 0;
}
