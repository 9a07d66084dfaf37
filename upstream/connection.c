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

static ssize_t plain_read(struct sg_conn *c, void *buf, size_t len) {
  for (;;) {
    ssize_t n = recv(c->fd, buf, len, 0);
    if (n >= 0)
      return n;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return SG_IO_AGAIN;
    c->saved_errno = errno;
    c->error = NULL;
    return SG_IO_ERROR;
  }
}

static ssize_t plain_writev(struct sg_conn *c, const struct iovec *iov, int n) {
  struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)n};
  for (;;) {
    ssize_t sent = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
    if (sent >= 0)
      return sent;
    if (errno == EINTR)
      continue;
    if (errno == EAGAIN || errno == EWOULDBLOCK)
      return SG_IO_AGAIN;
    c->saved_errno = errno;
    c->error = NULL;
    return SG_IO_ERROR;
  }
}

static void plain_release(struct sg_conn *c) { (void)c; }

static const struct sg_conn_ops plain_ops = {plain_read, plain_writev, plain_release};

bool sg_conn_key_matches(const struct sg_conn_key *key, const struct sockaddr *addr,
                         socklen_t addr_len, bool tls, const char *host) {
  if (key->addr_len != addr_len || key->tls != tls || memcmp(&key->addr, addr, addr_len) != 0)
    return false;
  return !tls || strcmp(key->host, host != NULL ? host : "") == 0;
}

struct sg_conn *sg_conn_open(const struct sockaddr *addr, socklen_t addr_len, bool tls,
                             const char *host, const char **error) {
  if (addr_len == 0 || addr_len > sizeof(struct sockaddr_storage)) {
    *error = "upstream name did not resolve";
    return NULL;
  }
  if (tls) {
    *error = "https upstreams need the TLS layer (not built in yet)";
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
  c->ops = &plain_ops;
  int rc;
  do
    rc = connect(c->fd, addr, addr_len);
  while (rc != 0 && errno == EINTR);
  if (rc == 0) {
    c->connected = true;
  } else if (errno != EINPROGRESS) {
    *error = errno == ECONNREFUSED ? "connection refused" : "connect failed";
    close(c->fd);
    free(c);
    return NULL;
  }
  return c;
}

int sg_conn_finish_connect(struct sg_conn *c) {
  if (c->connected)
    return 0;
  int err = 0;
  socklen_t len = sizeof err;
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
    err = errno;
  if (err != 0) {
    c->saved_errno = err;
    c->error = NULL;
    return -1;
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
