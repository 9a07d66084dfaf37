/*
 * redis_conn.c - a Redis connection over our own socket, plain or TLS (see
 * redis_conn.h).  hiredis formats (redisvFormatCommand) and parses
 * (redisReader); this file moves the bytes with a deadline per step.
 *
 * Not for: pooling, backoff, AUTH/SELECT (store_redis.c decides those).
 */
#include "auth/redis_conn.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <glib.h>

#include "base/clock.h"

#define READ_CHUNK 16384
#define REPLY_MAX (32 * 1024 * 1024) /* a reply larger than this is a broken server */

struct redis_conn {
  int fd;
  struct sg_tls *tls; /* NULL: plain */
  redisReader *reader;
  bool broken;
  char error[200];
};

/* 1: ready, 0: timed out, -1: poll failed (errno). */
static int wait_fd(int fd, short events, int64_t deadline) {
  struct pollfd p = {.fd = fd, .events = events};
  for (;;) {
    int64_t left = deadline - sg_now_ms();
    if (left <= 0)
      return 0;
    int n = poll(&p, 1, (int)left);
    if (n > 0)
      return 1;
    if (n < 0 && errno != EINTR)
      return -1;
  }
}

/* A non-blocking socket connected to one address, or -1 with errno. */
static int connect_one(const struct addrinfo *ai, int64_t deadline) {
  int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
  if (fd < 0)
    return -1;
  if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
    if (errno != EINPROGRESS)
      goto fail;
    int ready = wait_fd(fd, POLLOUT, deadline);
    int so_error = 0;
    socklen_t len = sizeof so_error;
    if (ready == 0)
      errno = ETIMEDOUT;
    if (ready <= 0)
      goto fail;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &so_error, &len) != 0)
      goto fail;
    if (so_error != 0) {
      errno = so_error;
      goto fail;
    }
  }
  int one = 1;
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  return fd;
fail:;
  int saved = errno;
  close(fd);
  errno = saved;
  return -1;
}

struct redis_conn *sg_redis_conn_new(const char *host, int port, struct sg_tls_ctx *tls,
                                     int timeout_ms, char *err, size_t cap) {
  char service[8];
  snprintf(service, sizeof service, "%d", port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *ais = NULL;
  int rc = getaddrinfo(host, service, &hints, &ais);
  if (rc != 0) {
    snprintf(err, cap, "resolve %s: %s", host, gai_strerror(rc));
    return NULL;
  }
  int64_t deadline = sg_now_ms() + timeout_ms;
  int fd = -1, last_errno = 0;
  for (const struct addrinfo *ai = ais; ai != NULL && fd < 0; ai = ai->ai_next)
    if ((fd = connect_one(ai, deadline)) < 0)
      last_errno = errno;
  freeaddrinfo(ais);
  if (fd < 0) {
    snprintf(err, cap, "connect %s:%d: %s", host, port,
             last_errno == ETIMEDOUT ? "timed out" : strerror(last_errno));
    return NULL;
  }
  struct redis_conn *c = g_new0(struct redis_conn, 1);
  c->fd = fd;
  c->reader = redisReaderCreate();
  if (tls != NULL) {
    char *why = NULL;
    c->tls = sg_tls_new(tls, fd, host, &why);
    if (c->tls == NULL) {
      snprintf(err, cap, "%s", why);
      g_free(why);
      sg_redis_conn_free(c);
      return NULL;
    }
    rc = sg_tls_handshake_blocking(c->tls, timeout_ms);
    if (rc != 0) {
      snprintf(err, cap, "TLS: %s (%s:%d)",
               rc == SG_TLS_TIMEOUT ? "handshake timed out" : sg_tls_error(c->tls), host, port);
      sg_redis_conn_free(c);
      return NULL;
    }
  }
  if (c->reader == NULL) {
    snprintf(err, cap, "out of memory");
    sg_redis_conn_free(c);
    return NULL;
  }
  return c;
}

void sg_redis_conn_free(struct redis_conn *c) {
  if (c == NULL)
    return;
  sg_tls_free(c->tls);
  if (c->reader != NULL)
    redisReaderFree(c->reader);
  close(c->fd);
  g_free(c);
}

static void set_broken(struct redis_conn *c, const char *fmt, const char *detail) {
  c->broken = true;
  snprintf(c->error, sizeof c->error, fmt, detail);
}

static void tls_broken(struct redis_conn *c, int rc, const char *doing) {
  c->broken = true;
  if (rc == SG_TLS_TIMEOUT)
    snprintf(c->error, sizeof c->error, "redis: timed out %s", doing);
  else if (rc == SG_TLS_CLOSED)
    snprintf(c->error, sizeof c->error, "redis closed the connection");
  else
    snprintf(c->error, sizeof c->error, "TLS: %s", sg_tls_error(c->tls));
}

/* 0 when all of buf went out before the deadline. */
static int send_all(struct redis_conn *c, const char *buf, size_t len, int64_t deadline) {
  if (c->tls != NULL) {
    int left = (int)(deadline - sg_now_ms());
    int rc = sg_tls_write_all_blocking(c->tls, buf, len, left > 0 ? left : 0);
    if (rc != 0)
      tls_broken(c, rc, "sending a command");
    return rc == 0 ? 0 : -1;
  }
  while (len > 0) {
    ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);
    if (n > 0) {
      buf += n;
      len -= (size_t)n;
    } else if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (wait_fd(c->fd, POLLOUT, deadline) != 1) {
        set_broken(c, "%s", "redis: timed out sending a command");
        return -1;
      }
    } else {
      set_broken(c, "redis: send: %s", strerror(errno));
      return -1;
    }
  }
  return 0;
}

/* >0 bytes read, or -1 with the connection marked broken. */
static ssize_t receive_some(struct redis_conn *c, char *buf, size_t cap, int64_t deadline) {
  if (c->tls != NULL) {
    int left = (int)(deadline - sg_now_ms());
    ssize_t n = sg_tls_read_blocking(c->tls, buf, cap, left > 0 ? left : 0);
    if (n <= 0)
      tls_broken(c, (int)n, "waiting for a reply");
    return n > 0 ? n : -1;
  }
  for (;;) {
    ssize_t n = recv(c->fd, buf, cap, 0);
    if (n > 0)
      return n;
    if (n == 0) {
      set_broken(c, "%s", "redis closed the connection");
      return -1;
    }
    if (errno != EAGAIN && errno != EINTR) {
      set_broken(c, "redis: recv: %s", strerror(errno));
      return -1;
    }
    if (wait_fd(c->fd, POLLIN, deadline) != 1) {
      set_broken(c, "%s", "redis: timed out waiting for a reply");
      return -1;
    }
  }
}

redisReply *sg_redis_conn_vcommand(struct redis_conn *c, int timeout_ms, const char *fmt,
                                   va_list ap) {
  if (c->broken)
    return NULL;
  int64_t deadline = sg_now_ms() + timeout_ms;
  char *cmd = NULL;
  int len = redisvFormatCommand(&cmd, fmt, ap);
  if (len < 0) {
    set_broken(c, "%s", "redis: cannot format a command");
    return NULL;
  }
  int sent = send_all(c, cmd, (size_t)len, deadline);
  free(cmd); /* hiredis allocates it with malloc */
  if (sent != 0)
    return NULL;
  char buf[READ_CHUNK];
  size_t total = 0;
  for (;;) {
    void *reply = NULL;
    if (redisReaderGetReply(c->reader, &reply) != REDIS_OK) {
      set_broken(c, "redis: protocol error: %s", c->reader->errstr);
      return NULL;
    }
    if (reply != NULL) {
      if (c->reader->len > c->reader->pos) /* bytes nobody asked for: out of step */
        set_broken(c, "%s", "redis: unexpected bytes after a reply");
      return reply;
    }
    ssize_t n = receive_some(c, buf, sizeof buf, deadline);
    if (n < 0)
      return NULL;
    total += (size_t)n;
    if (total > REPLY_MAX) {
      set_broken(c, "%s", "redis: reply larger than 32 MiB");
      return NULL;
    }
    if (redisReaderFeed(c->reader, buf, (size_t)n) != REDIS_OK) {
      set_broken(c, "redis: protocol error: %s", c->reader->errstr);
      return NULL;
    }
  }
}

redisReply *sg_redis_conn_command(struct redis_conn *c, int timeout_ms, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  redisReply *reply = sg_redis_conn_vcommand(c, timeout_ms, fmt, ap);
  va_end(ap);
  return reply;
}

bool sg_redis_conn_usable(const struct redis_conn *c) { return !c->broken; }

const char *sg_redis_conn_error(const struct redis_conn *c) { return c->error; }
