/*
 * connection.c - non-blocking upstream connections (see connection.h).
 */
#include "upstream/connection.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <glib.h>

#include "tls/tls.h"

/* A failed recv or sendmsg (EINTR already retried), as the ops answer it.
 * Off the hot path: a call that moved bytes never comes here. */
static ssize_t plain_failed(struct sg_conn *c) {
  if (errno == EAGAIN || errno == EWOULDBLOCK)
    return SG_IO_AGAIN;
  c->saved_errno = errno;
  c->error = NULL;
  return SG_IO_ERROR;
}

static ssize_t plain_read(struct sg_conn *c, void *buf, size_t len) {
  ssize_t n;
  do
    n = recv(c->fd, buf, len, 0);
  while (n < 0 && errno == EINTR);
  return n >= 0 ? n : plain_failed(c);
}

static ssize_t plain_writev(struct sg_conn *c, const struct iovec *iov, int n) {
  struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
  ssize_t sent;
  do
    sent = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
  while (sent < 0 && errno == EINTR);
  return sent >= 0 ? sent : plain_failed(c);
}

static void plain_release(struct sg_conn *c) { (void)c; }

static const struct sg_conn_ops plain_ops = {plain_read, plain_writev, plain_release};

static ssize_t tls_result(struct sg_conn *c, ssize_t n) {
  if (n > 0)
    return n;
  switch (n) {
  case SG_TLS_WANT_READ:
  case SG_TLS_WANT_WRITE: return SG_IO_AGAIN;
  case SG_TLS_CLOSED: return 0;
  default:
    c->error = sg_tls_error(c->tls);
    if (c->error == NULL || c->error[0] == '\0')
      c->error = "TLS error";
    return SG_IO_ERROR;
  }
}

static ssize_t tls_read(struct sg_conn *c, void *buf, size_t len) {
  return tls_result(c, sg_tls_read(c->tls, buf, len));
}

/* One record per call: after WANT_*, the caller offers the same first
 * buffer again, as OpenSSL requires. */
static ssize_t tls_writev(struct sg_conn *c, const struct iovec *iov, int n) {
  if (n <= 0 || iov[0].iov_len == 0)
    return 0;
  ssize_t sent = tls_result(c, sg_tls_write(c->tls, iov[0].iov_base, iov[0].iov_len));
  return sent == 0 ? (c->error = "TLS peer closed", SG_IO_ERROR) : sent;
}

static void tls_release(struct sg_conn *c) {
  sg_tls_free(c->tls);
  c->tls = NULL;
}

static const struct sg_conn_ops tls_ops = {tls_read, tls_writev, tls_release};

bool sg_conn_key_matches(const struct sg_conn_key *key, const struct sockaddr *addr,
                         socklen_t addr_len, bool tls, const char *host,
                         const struct sg_tls_ctx *tls_ctx) {
  if (key->addr_len != addr_len || key->tls != tls || memcmp(&key->addr, addr, addr_len) != 0)
    return false;
  return !tls || (key->tls_ctx == tls_ctx && strcmp(key->host, host != NULL ? host : "") == 0);
}

struct sg_conn *sg_conn_open(const struct sockaddr *addr, socklen_t addr_len, bool tls,
                             const char *host, struct sg_tls_ctx *tls_ctx, const char **error) {
  if (addr_len == 0 || addr_len > sizeof(struct sockaddr_storage)) {
    *error = "upstream name did not resolve";
    return NULL;
  }
  if (tls && tls_ctx == NULL) {
    *error = "no TLS context for an https upstream";
    return NULL;
  }
  struct sg_conn *c = calloc(1, sizeof *c);
  if (c == NULL) {
    *error = "out of memory";
    return NULL;
  }
  c->fd = socket(addr->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
  if (c->fd < 0) {
    *error = "cannot create a socket";
    free(c);
    return NULL;
  }
  int one = 1;
  setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one);
  memcpy(&c->key.addr, addr, addr_len);
  c->key.addr_len = addr_len;
  c->key.tls = tls;
  snprintf(c->key.host, sizeof c->key.host, "%s", tls && host != NULL ? host : "");
  c->key.tls_ctx = tls ? tls_ctx : NULL;
  c->ops = &plain_ops;
  int rc;
  do
    rc = connect(c->fd, addr, addr_len);
  while (rc != 0 && errno == EINTR);
  if (rc != 0 && errno != EINPROGRESS) {
    *error = errno == ECONNREFUSED ? "connection refused" : "connect failed";
    close(c->fd);
    free(c);
    return NULL;
  }
  c->tcp_up = rc == 0;
  c->connected = rc == 0 && !tls;
  if (tls) {
    char *why = NULL;
    c->tls = sg_tls_new(tls_ctx, c->fd, host, &why);
    g_free(why);
    if (c->tls == NULL) {
      *error = "cannot start TLS";
      close(c->fd);
      free(c);
      return NULL;
    }
    c->ops = &tls_ops;
  }
  return c;
}

int sg_conn_finish_connect(struct sg_conn *c) {
  if (c->connected)
    return 0;
  if (!c->tcp_up) {
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
      err = errno;
    if (err == EINPROGRESS || err == EALREADY)
      return 1;
    if (err != 0) {
      c->saved_errno = err;
      c->error = NULL;
      return -1;
    }
    c->tcp_up = true;
  }
  if (c->tls != NULL) {
    int rc = sg_tls_handshake(c->tls);
    if (rc == SG_TLS_WANT_READ || rc == SG_TLS_WANT_WRITE)
      return 1;
    if (rc != 0) {
      c->error = sg_tls_error(c->tls);
      if (c->error == NULL || c->error[0] == '\0')
        c->error = rc == SG_TLS_CLOSED ? "TLS handshake: the upstream closed the connection"
                                       : "TLS handshake failed";
      return -1;
    }
  }
  c->connected = true;
  return 0;
}

ssize_t sg_conn_read(struct sg_conn *c, void *buf, size_t len) { return c->ops->read(c, buf, len); }

ssize_t sg_conn_writev(struct sg_conn *c, const struct iovec *iov, int n) {
  return c->ops->writev(c, iov, n);
}

const char *sg_conn_error(const struct sg_conn *c) {
  if (c->error != NULL)
    return c->error;
  switch (c->saved_errno) {
  case 0: return "no error";
  case ECONNREFUSED: return "connection refused";
  case ECONNRESET: return "connection reset by the upstream";
  case EPIPE: return "connection closed by the upstream";
  case ETIMEDOUT: return "connection timed out";
  case EHOSTUNREACH: return "host unreachable";
  case ENETUNREACH: return "network unreachable";
  default: return "i/o error";
  }
}

void sg_conn_close(struct sg_conn *c) {
  if (c == NULL)
    return;
  c->ops->release(c);
  if (c->fd >= 0)
    close(c->fd);
  free(c);
}
