/*
 * redis_conn.h - one synchronous connection to Redis, plain (redis://) or
 * TLS (rediss://), for the store's pool (store_redis.c).
 *
 * hiredis only formats commands and parses replies here (its reader works
 * over any byte stream); the socket and TLS are ours, so both schemes share
 * one code path and every step has a deadline.  Not thread-safe: one thread
 * uses a connection at a time (the pool hands it out).
 */
#ifndef SSOGATE_REDIS_CONN_H
#define SSOGATE_REDIS_CONN_H

#include <stdarg.h>
#include <stdbool.h>

#include <hiredis/hiredis.h>

#include "tls/tls.h"

struct redis_conn;

/* Connects to host:port (connect and TLS handshake each within timeout_ms);
 * tls NULL: plain TCP.  NULL with the reason in err. */
struct redis_conn *sg_redis_conn_new(const char *host, int port, struct sg_tls_ctx *tls,
                                     int timeout_ms, char *err, size_t cap);
void sg_redis_conn_free(struct redis_conn *c);

/* Sends one command (redisCommand's format) and waits for its reply, all
 * within timeout_ms.  The reply (freeReplyObject), or NULL: the connection
 * is then unusable and sg_redis_conn_error() says why. */
redisReply *sg_redis_conn_command(struct redis_conn *c, int timeout_ms, const char *fmt, ...);
redisReply *sg_redis_conn_vcommand(struct redis_conn *c, int timeout_ms, const char *fmt,
                                   va_list ap);

/* False once a command failed (timeout, close, protocol or TLS error). */
bool sg_redis_conn_usable(const struct redis_conn *c);
/* Why it is unusable; never holds a command's arguments. */
const char *sg_redis_conn_error(const struct redis_conn *c);

#endif
