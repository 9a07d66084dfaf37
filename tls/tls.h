/*
 * tls.h - the client side of TLS (OpenSSL 3), for every connection ssogate
 * itself opens: https:// upstreams (proxy/) and rediss:// stores (auth/).
 *
 * What it checks: TLS >= 1.2, the peer's chain against the system CAs or one
 * CA file, and the name the caller dialled (DNS name via SNI + host check, IP
 * literal via the certificate's IP SANs).  Sessions are resumed across
 * connections to the same host through a small bounded cache in the context.
 *
 * Not for: servers, client certificates, opening sockets (the caller owns the
 * fd, connects it and closes it after sg_tls_free).
 *
 * Threads: a context may be shared by several threads (its session cache is
 * guarded by a mutex); one sg_tls belongs to one thread at a time.  Writes to
 * a closed peer raise SIGPIPE, which ssogate ignores process-wide (main.c).
 */
#ifndef SSOGATE_TLS_H
#define SSOGATE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Negative results of the calls below (0 or >0 means success). */
enum {
  SG_TLS_WANT_READ = -1,  /* retry once the fd is readable */
  SG_TLS_WANT_WRITE = -2, /* retry once the fd is writable */
  SG_TLS_CLOSED = -3,     /* the peer closed (close_notify or plain EOF) */
  SG_TLS_ERROR = -4,      /* failed for good; sg_tls_error() says why */
  SG_TLS_TIMEOUT = -5,    /* only from the *_blocking calls */
};

struct sg_tls_ctx;
struct sg_tls;

/* ca_file NULL or "": the system CAs.  NULL with *error (g_free) on failure. */
struct sg_tls_ctx *sg_tls_ctx_new(const char *ca_file, char **error);
void sg_tls_ctx_free(struct sg_tls_ctx *ctx);

/* A client over a connected (or connecting) fd; host is the name the caller
 * dialled: a DNS name or an IP literal ("[::1]" or "::1").  Does not take the
 * fd.  NULL with *error (g_free) on failure. */
struct sg_tls *sg_tls_new(struct sg_tls_ctx *ctx, int fd, const char *host, char **error);

/* Frees the connection after a best-effort, non-blocking close_notify (not
 * after an error).  Does not close the fd. */
void sg_tls_free(struct sg_tls *t);

/*
 * Non-blocking steps.  handshake: 0 when done.  read/write: bytes moved (>0).
 * Otherwise one of the negative codes above.  After a WANT_*, call again with
 * the same arguments (write: the same bytes; the buffer may move).  read may
 * answer WANT_WRITE and write WANT_READ (key updates): poll what it asks for.
 * read and write run the handshake first if it has not finished.
 */
int sg_tls_handshake(struct sg_tls *t);
ssize_t sg_tls_read(struct sg_tls *t, void *buf, size_t len);
ssize_t sg_tls_write(struct sg_tls *t, const void *buf, size_t len);

/* Bytes already decrypted and buffered: read them before waiting for the fd
 * again (edge-triggered loops would otherwise stall). */
size_t sg_tls_pending(const struct sg_tls *t);

/* Why the last call answered SG_TLS_ERROR, e.g. "certificate verify failed:
 * certificate has expired"; "" when it did not.  Never holds secrets. */
const char *sg_tls_error(const struct sg_tls *t);

/* True once the handshake resumed a cached session. */
bool sg_tls_resumed(const struct sg_tls *t);

/* True when SG_TLS_CLOSED came with the peer's close_notify (false: a bare
 * EOF, which may be a truncation when the framing is close-delimited). */
bool sg_tls_close_notified(const struct sg_tls *t);

/* Blocking helpers for synchronous users (the Redis store): poll() the fd
 * until done or timeout_ms (the whole call, not per step) has passed. */
int sg_tls_handshake_blocking(struct sg_tls *t, int timeout_ms);
/* Reads up to len bytes, at least one: >0, SG_TLS_CLOSED, _ERROR or _TIMEOUT. */
ssize_t sg_tls_read_blocking(struct sg_tls *t, void *buf, size_t len, int timeout_ms);
/* Writes all len bytes: 0, SG_TLS_CLOSED, _ERROR or _TIMEOUT. */
int sg_tls_write_all_blocking(struct sg_tls *t, const void *buf, size_t len, int timeout_ms);

#endif
