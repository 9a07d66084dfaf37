/*
 * connection.h - one non-blocking connection to an upstream.
 *
 * Opens a TCP connection without waiting (the caller's epoll loop reports
 * when it is up), then reads and writes through a small table of operations:
 * plain send/recv, or TLS (tls/tls.h: certificate and name verified, sessions
 * resumed by the context).  Not here: timeouts (the caller's clock), HTTP,
 * pooling.
 */
#ifndef SSOGATE_UPSTREAM_CONNECTION_H
#define SSOGATE_UPSTREAM_CONNECTION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#define SG_IO_AGAIN (-1)  /* would block: wait for the next readiness event */
#define SG_IO_ERROR (-2)  /* broken; sg_conn_error() says why */

struct sg_conn;
struct sg_tls;
struct sg_tls_ctx;

/* Byte transport under a connection.  Return bytes moved, 0 on read for
 * end of stream, or SG_IO_AGAIN / SG_IO_ERROR. */
struct sg_conn_ops {
  ssize_t (*read)(struct sg_conn *c, void *buf, size_t len);
  ssize_t (*writev)(struct sg_conn *c, const struct iovec *iov, int n);
  void (*release)(struct sg_conn *c); /* frees what the transport holds (not the fd) */
};

/* What a pooled connection can be reused for. */
struct sg_conn_key {
  struct sockaddr_storage addr;
  socklen_t addr_len;
  bool tls;
  char host[256]; /* TLS: the name verified (SNI); empty for plain */
  const struct sg_tls_ctx *tls_ctx; /* TLS: the trust it was verified with */
};

struct sg_conn {
  int fd;
  const struct sg_conn_ops *ops;
  struct sg_tls *tls; /* NULL for plain */
  struct sg_conn_key key;

  bool tcp_up;      /* TCP connected */
  bool connected;   /* TCP and, for TLS, the handshake done */
  bool readable;    /* edge-triggered readiness not yet used up */
  bool writable;
  bool reused;      /* carried an earlier request */
  unsigned uses;
  int64_t idle_since_ms;
  void *owner;      /* the exchange using it; NULL while idle */
  struct sg_conn *prev, *next; /* pool links */

  int saved_errno;
  const char *error; /* static text, or the TLS layer's (valid while c lives) */
};

bool sg_conn_key_matches(const struct sg_conn_key *key, const struct sockaddr *addr,
                         socklen_t addr_len, bool tls, const char *host,
                         const struct sg_tls_ctx *tls_ctx);

/* Starts a connection to addr (TCP_NODELAY set); with tls, over tls_ctx,
 * verifying host.  NULL with *error set on a failure that is known at once
 * (refused locally, no memory). */
struct sg_conn *sg_conn_open(const struct sockaddr *addr, socklen_t addr_len, bool tls,
                             const char *host, struct sg_tls_ctx *tls_ctx, const char **error);

/* On each event until connected: 0 once connected (TCP, and the TLS
 * handshake), 1 while the handshake still waits for the network, -1 when
 * it failed (sg_conn_error()). */
int sg_conn_finish_connect(struct sg_conn *c);

ssize_t sg_conn_read(struct sg_conn *c, void *buf, size_t len);
ssize_t sg_conn_writev(struct sg_conn *c, const struct iovec *iov, int n);

/* A short reason for the last failure ("connection refused", ...). */
const char *sg_conn_error(const struct sg_conn *c);

/* Closes the fd and frees c (NULL is fine). */
void sg_conn_close(struct sg_conn *c);

#endif
