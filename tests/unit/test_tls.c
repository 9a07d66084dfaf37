/*
 * test_tls.c - the client TLS layer (tls/tls.c) against an in-process
 * OpenSSL server over a non-blocking socketpair: verification (CA, name,
 * IP, validity, protocol floor), session resumption per host, the
 * WANT_READ/WANT_WRITE paths, closes, and the blocking helpers.
 *
 * The CA and certificates are made here with OpenSSL's APIs at test time.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "tls/tls.h"

/* ---- a test PKI ---------------------------------------------------------------------------- */

struct pki {
  EVP_PKEY *ca_key, *other_ca_key, *server_key;
  X509 *ca, *other_ca, *server, *expired;
  char ca_file[64], other_ca_file[64];
};

static struct pki pki;

static void add_ext(X509 *cert, X509 *issuer, int nid, const char *value) {
  X509V3_CTX v3;
  X509V3_set_ctx(&v3, issuer, cert, NULL, NULL, 0);
  X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value);
  assert_non_null(ext);
  assert_int_equal(X509_add_ext(cert, ext, -1), 1);
  X509_EXTENSION_free(ext);
}

static X509 *make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key,
                       bool is_ca, const char *san, long from_s, long until_s) {
  static long serial = 1;
  X509 *cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial++);
  X509_gmtime_adj(X509_getm_notBefore(cert), from_s);
  X509_gmtime_adj(X509_getm_notAfter(cert), until_s);
  X509_set_pubkey(cert, key);
  X509_NAME *name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
  X509_set_issuer_name(cert, issuer ? X509_get_subject_name(issuer) : name);
  X509 *signer = issuer ? issuer : cert;
  if (is_ca) {
    add_ext(cert, signer, NID_basic_constraints, "critical,CA:TRUE");
    add_ext(cert, signer, NID_key_usage, "critical,keyCertSign,cRLSign");
  } else {
    add_ext(cert, signer, NID_basic_constraints, "CA:FALSE");
    add_ext(cert, signer, NID_ext_key_usage, "serverAuth");
    add_ext(cert, signer, NID_subject_alt_name, san);
  }
  add_ext(cert, signer, NID_subject_key_identifier, "hash");
  assert_true(X509_sign(cert, issuer_key ? issuer_key : key, EVP_sha256()) > 0);
  return cert;
}

static void write_pem(X509 *cert, char *path, size_t cap) {
  snprintf(path, cap, "/tmp/sg-test-ca-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  assert_int_equal(PEM_write_X509(f, cert), 1);
  fclose(f);
}

static int make_pki(void **state) {
  (void)state;
  signal(SIGPIPE, SIG_IGN); /* as ssogate does: a write to a closed peer is an error, not a kill */
  pki.ca_key = EVP_EC_gen("P-256");
  pki.other_ca_key = EVP_EC_gen("P-256");
  pki.server_key = EVP_EC_gen("P-256");
  const long day = 24 * 3600;
  pki.ca = make_cert("ssogate test CA", pki.ca_key, NULL, NULL, true, NULL, -day, 30 * day);
  pki.other_ca = make_cert("another CA", pki.other_ca_key, NULL, NULL, true, NULL, -day, 30 * day);
  const char *san = "DNS:localhost,DNS:other.test,IP:127.0.0.1,IP:::1";
  pki.server =
      make_cert("localhost", pki.server_key, pki.ca, pki.ca_key, false, san, -day, 30 * day);
  pki.expired =
      make_cert("localhost", pki.server_key, pki.ca, pki.ca_key, false, san, -3 * day, -day);
  write_pem(pki.ca, pki.ca_file, sizeof pki.ca_file);
  write_pem(pki.other_ca, pki.other_ca_file, sizeof pki.other_ca_file);
  return 0;
}

static int free_pki(void **state) {
  (void)state;
  unlink(pki.ca_file);
  unlink(pki.other_ca_file);
  X509_free(pki.ca);
  X509_free(pki.other_ca);
  X509_free(pki.server);
  X509_free(pki.expired);
  EVP_PKEY_free(pki.ca_key);
  EVP_PKEY_free(pki.other_ca_key);
  EVP_PKEY_free(pki.server_key);
  return 0;
}

static SSL_CTX *server_ctx(X509 *cert, int max_version) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  assert_int_equal(SSL_CTX_use_certificate(ctx, cert), 1);
  assert_int_equal(SSL_CTX_use_PrivateKey(ctx, pki.server_key), 1);
  SSL_CTX_set_session_id_context(ctx, (const unsigned char *)"t", 1);
  if (max_version)
    SSL_CTX_set_max_proto_version(ctx, max_version);
  return ctx;
}

/* ---- a connection pair --------------------------------------------------------------------- */

struct pair {
  int cfd, sfd;
  SSL *server;
  struct sg_tls *client;
};

static void nonblocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

static struct pair pair_new(struct sg_tls_ctx *ctx, SSL_CTX *sctx, const char *host) {
  struct pair p;
  int fds[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  p.cfd = fds[0];
  p.sfd = fds[1];
  nonblocking(p.cfd);
  nonblocking(p.sfd);
  p.server = SSL_new(sctx);
  SSL_set_fd(p.server, p.sfd);
  SSL_set_accept_state(p.server);
  char *error = NULL;
  p.client = sg_tls_new(ctx, p.cfd, host, &error);
  assert_null(error);
  assert_non_null(p.client);
  return p;
}

static void pair_free(struct pair *p) {
  sg_tls_free(p->client);
  SSL_free(p->server);
  close(p->cfd);
  if (p->sfd >= 0)
    close(p->sfd);
  ERR_clear_error();
}

/* Steps client and server in turn; the client's final handshake result. */
static int drive_handshake(struct pair *p) {
  for (int i = 0; i < 50; i++) {
    int rc = sg_tls_handshake(p->client);
    if (rc != SG_TLS_WANT_READ && rc != SG_TLS_WANT_WRITE) {
      if (rc == 0) /* let the server finish (and send its TLS 1.3 tickets) */
        (void)SSL_do_handshake(p->server);
      return rc;
    }
    (void)SSL_do_handshake(p->server);
  }
  fail_msg("handshake did not finish");
  return SG_TLS_ERROR;
}

/* Reads exactly len bytes on the client while the server has written them. */
static void client_read_exactly(struct pair *p, char *buf, size_t len) {
  size_t got = 0;
  for (int i = 0; i < 1000 && got < len; i++) {
    ssize_t n = sg_tls_read(p->client, buf + got, len - got);
    if (n > 0)
      got += (size_t)n;
    else
      assert_int_equal(n, SG_TLS_WANT_READ);
  }
  assert_int_equal(got, len);
}

static struct sg_tls_ctx *ctx_with(const char *ca_file) {
  char *error = NULL;
  struct sg_tls_ctx *ctx = sg_tls_ctx_new(ca_file, &error);
  assert_null(error);
  assert_non_null(ctx);
  return ctx;
}

/* The handshake result and the client's error for one connection to host. */
static int try_host(const char *ca_file, X509 *cert, const char *host, char *why, size_t cap) {
  struct sg_tls_ctx *ctx = ctx_with(ca_file);
  SSL_CTX *sctx = server_ctx(cert, 0);
  struct pair p = pair_new(ctx, sctx, host);
  int rc = drive_handshake(&p);
  snprintf(why, cap, "%s", sg_tls_error(p.client));
  pair_free(&p);
  SSL_CTX_free(sctx);
  sg_tls_ctx_free(ctx);
  return rc;
}

/* ---- verification -------------------------------------------------------------------------- */

static void test_handshake_and_data_both_ways(void **state) {
  (void)state;
  struct sg_tls_ctx *ctx = ctx_with(pki.ca_file);
  SSL_CTX *sctx = server_ctx(pki.server, 0);
  struct pair p = pair_new(ctx, sctx, "localhost");
  assert_int_equal(drive_handshake(&p), 0);
  assert_string_equal(sg_tls_error(p.client), "");
  assert_false(sg_tls_resumed(p.client));
  assert_int_equal(sg_tls_write(p.client, "ping", 4), 4);
  char buf[16] = "";
  assert_int_equal(SSL_read(p.server, buf, sizeof buf), 4);
  assert_memory_equal(buf, "ping", 4);
  /* SNI reached the server. */
  assert_string_equal(SSL_get_servername(p.server, TLSEXT_NAMETYPE_host_name), "localhost");
  assert_int_equal(SSL_write(p.server, "pong", 4), 4);
  client_read_exactly(&p, buf, 4);
  assert_memory_equal(buf, "pong", 4);
  pair_free(&p);
  SSL_CTX_free(sctx);
  sg_tls_ctx_free(ctx);
}

static void test_wrong_ca_is_refused(void **state) {
  (void)state;
  char why[256];
  assert_int_equal(try_host(pki.other_ca_file, pki.server, "localhost", why, sizeof why),
                   SG_TLS_ERROR);
  assert_string_equal(why, "certificate verify failed: unable to get local issuer certificate");
}

static void test_system_cas_do_not_trust_the_test_ca(void **state) {
  (void)state;
  char why[256];
  assert_int_equal(try_host(NULL, pki.server, "localhost", why, sizeof why), SG_TLS_ERROR);
  assert_string_equal(why, "certificate verify failed: unable to get local issuer certificate");
}

static void test_hostname_mismatch_is_refused(void **state) {
  (void)state;
  char why[256];
  assert_int_equal(try_host(pki.ca_file, pki.server, "evil.test", why, sizeof why), SG_TLS_ERROR);
  assert_string_equal(why, "certificate verify failed: hostname mismatch");
}

static void test_ip_literal_checked_against_ip_sans(void **state) {
  (void)state;
  char why[256];
  assert_int_equal(try_host(pki.ca_file, pki.server, "127.0.0.1", why, sizeof why), 0);
  assert_int_equal(try_host(pki.ca_file, pki.server, "[::1]", why, sizeof why), 0);
  assert_int_equal(try_host(pki.ca_file, pki.server, "127.0.0.2", why, sizeof why), SG_TLS_ERROR);
  assert_string_equal(why, "certificate verify failed: IP address mismatch");
}

static void test_no_sni_for_ip_literals(void **state) {
  (void)state;
  struct sg_tls_ctx *ctx = ctx_with(pki.ca_file);
  SSL_CTX *sctx = server_ctx(pki.server, 0);
  struct pair p = pair_new(ctx, sctx, "127.0.0.1");
  assert_int_equal(drive_handshake(&p), 0);
  assert_null(SSL_get_servername(p.server, TLSEXT_NAMETYPE_host_name));
  pair_free(&p);
  SSL_CTX_free(sctx);
  sg_tls_ctx_free(ctx);
}

static void test_expired_certificate_is_refused(void **state) {
  (void)state;
  char why[256];
  assert_int_equal(try_host(pki.ca_file, pki.expired, "localhost", why, sizeof why), SG_TLS_ERROR);
  assert_string_equal(why, "certificate verify failed: certificate has expired");
}

static void test_tls_below_1_2_is_refused(void **state) {
  (void)state;
  struct sg_tls_ctx *ctx = ctx_with(pki.ca_file);
  SSL_CTX *sctx = server_ctx(pki.server, TLS1_1_VERSION);
  SSL_CTX_set_security_level(sctx, 0);
  SSL_CTX_set_cipher_list(sctx, "DEFAULT@SECLEVEL=0");
  struct pair p = pair_new(ctx, sctx, "localhost");
  assert_int_equal(drive_handshake(&p), SG_TLS_ERROR);
  assert_non_null(strstr(sg_tls_error(p.client), "protocol"));
  pair_free(&p);
  SSL_CTX_free(sctx);
  sg_tls_ctx_free(ctx);
}

static void test_bad_ca_file_and_host(void **state) {
  (void)state;
  char *error = NULL;
  assert_null(sg_tls_ctx_new("/nonexistent/ca.pem", &error));
  assert_non_null(strstr(error, "TLS: CA file /nonexistent/ca.pem"));
  g_free(error);
  struct sg_tls_ctx *ctx = ctx_with("");
  assert_null(sg_tls_new(ctx, 0, "", &error));
  assert_string_equal(error, "TLS: a host name to verify is required");
  g_free(error);
  sg_tls_ctx_free(ctx);
}

/* ---- session resumption -------------------------------------------------------------------- */

/* One connection that completes and reads a byte (TLS 1.3 tickets come
 * after the handshake); whether it resumed. */
static bool connect_once(struct sg_tls_ctx *ctx, SSL_CTX *sctx, const char *host) {
  struct pair p = pair_new(ctx, sctx, host);
  assert_int_equal(drive_handshake(&p), 0);
  assert_int_equal(SSL_write(p.server, "x", 1), 1);
  char c;
  client_read_exactly(&p, &c, 1);
  bool resumed = sg_tls_resumed(p.client);
  assert_int_equal(SSL_session_reused(p.server), resumed);
  pair_free(&p);
  return resumed;
}

static void resumption_at(int max_version) {
  struct sg_tls_ctx *ctx = ctx_with(pki.ca_file);
  SSL_CTX *sctx = server_ctx(pki.server, max_version);
  assert_false(connect_once(ctx, sctx, "localhost"));
  assert_true(connect_once(ctx, sctx, "localhost"));
  assert_true(connect_once(ctx, sctx, "localhost"));
  assert_false(connect_once(ctx, sctx, "other.test")); /* sessions are per host */
  assert_true(connect_once(ctx, sctx, "other.test"));
  SSL_CTX_free(sctx);
  sg_tls_ctx_free(ctx);
}

static void test_session_resumed_tls13(void **state) {
  (void)state;
  resumption_at(0);
}

static void test_session_resumed_tls12(void **state) {
  (void)state;
  resumption_at(TLS1_2_VERSION);
}

static void test_another_context_does_not_resume(void **state) {
  (void)state;
  struct sg_tls_ctx *a = ctx_with(pki.ca_file), *b = ctx_with(pki.ca_file);
  SSL_CTX *sctx = server_ctx(pki.server, 0);
  assert_false(connect_once(a, sctx, "localhost"));
  assert_false(connect_once(b, sctx, "localhost"));
  assert_true(connect_once(a, sctx, "localhost"));
  SSL_CTX_free(sctx);
  sg_tls_ctx_free(a);
  sg_tls_ctx_free(b);
}

/* ---- non-blocking paths -------------------------------------------------------------------- */

static void test_want_read_until_the_server_answers(void **state) {
  (void)state;
  struct sg_tls_ctx *ctx = ctx_with(pki.ca_file);
  SSL_CTX *sctx = server_ctx(pki.server, 0);
  struct pair p = pair_new(ctx, sctx, "localhost");
  assert_int_equal(sg_tls_handshake(p.client), SG_TLS_WANT_READ); /* ClientHello sent */
  assert_int_equal(sg_tls_handshake(p.client), SG_TLS_WANT_READ); /* still nothing back */
  assert_int_equal(drive_handshake(&p), 0);
  char buf[8];
  assert_int_equal(sg_tls_read(p.client, buf, sizeof buf), SG_TLS_WANT_READ);
  assert_int_equal(sg_tls_pending(p.client), 0);
  assert_int_equal(SSL_write(p.server, "abcdef", 6), 6);
  assert_int_equal(sg_tls_read(p.client, buf, 2), 2);
  assert_int_equal(sg_tls_pending(p.client), 4); /* the rest waits in the record buffer */
  client_read_exactly(&p, buf, 4);
  assert_memory_equal(buf, "cdef", 4);
  pair_free(&p);
  SSL_CTX_free(sctx);
  sg_tls_ctx_free(ctx);
}

static void test_want_write_when_the_peer_does_not_read(void **state) {
  (void)state;
  struct sg_tls_ctx *ctx = ctx_with(pki.ca_file);
  SSL_CTX *sctx = server_ctx(pki.server, 0);
  struct pair p = pair_new(ctx, sctx, "localhost");
  assert_int_equal(drive_handshake(&p), 0);
  int small = 4096;
  setsockopt(p.cfd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
  enum { TOTAL = 1 << 20 };
  unsigned char *out = g_malloc(TOTAL), *in = g_malloc(TOTAL);
  for (size_t i = 0; i < TOTAL; i++)
    out[i] = (unsigned char)(i * 7 + i / 251);
  size_t sent = 0, got = 0;
  int want_write = 0;
  for (int i = 0; i < 100000 && got < TOTAL; i++) {
    if (sent < TOTAL) {
      ssize_t n = sg_tls_write(p.client, out + sent, TOTAL - sent);
      if (n > 0) {
        sent += (size_t)n;
        continue; /* the server reads only once the client is blocked */
      }
      assert_int_equal(n, SG_TLS_WANT_WRITE);
      want_write++;
    }
    int r = SSL_read(p.server, in + got, TOTAL - got);
    if (r > 0)
      got += (size_t)r;
  }
  assert_true(want_write > 0);
  assert_int_equal(got, TOTAL);
  assert_memory_equal(in, out, TOTAL);
  g_free(out);
  g_free(in);
  pair_free(&p);
  SSL_CTX_free(sctx);
  sg_tls_ctx_free(ctx);
}

/* ---- closes -------------------------------------------------------------------------------- */

static void test_close_notify_then_bare_eof(void **state) {
  (void)state;
  struct sg_tls_ctx *ctx = ctx_with(pki.ca_file);
  SSL_CTX *sctx = server_ctx(pki.server, 0);
  char buf[8];

  struct pair p = pair_new(ctx, sctx, "localhost");
  assert_int_equal(drive_handshake(&p), 0);
  (void)SSL_shutdown(p.server);
  assert_int_equal(sg_tls_read(p.client, buf, sizeof buf), SG_TLS_CLOSED);
  assert_true(sg_tls_close_notified(p.client));
  assert_int_equal(sg_tls_read(p.client, buf, sizeof buf), SG_TLS_CLOSED);
  pair_free(&p);

  p = pair_new(ctx, sctx, "localhost");
  assert_int_equal(drive_handshake(&p), 0);
  close(p.sfd);
  p.sfd = -1;
  assert_int_equal(sg_tls_read(p.client, buf, sizeof buf), SG_TLS_CLOSED);
  assert_false(sg_tls_close_notified(p.client));
  assert_string_equal(sg_tls_error(p.client), "");
  pair_free(&p);

  SSL_CTX_free(sctx);
  sg_tls_ctx_free(ctx);
}

static void test_eof_during_handshake_is_an_error(void **state) {
  (void)state;
  struct sg_tls_ctx *ctx = ctx_with(pki.ca_file);
  SSL_CTX *sctx = server_ctx(pki.server, 0);
  struct pair p = pair_new(ctx, sctx, "localhost");
  assert_int_equal(sg_tls_handshake(p.client), SG_TLS_WANT_READ);
  char hello[4096];
  assert_true(read(p.sfd, hello, sizeof hello) > 0); /* read the ClientHello: a clean EOF */
  close(p.sfd);
  p.sfd = -1;
  assert_int_equal(sg_tls_handshake(p.client), SG_TLS_ERROR);
  assert_string_equal(sg_tls_error(p.client), "connection closed by the peer during the handshake");
  assert_int_equal(sg_tls_write(p.client, "x", 1), SG_TLS_ERROR); /* stays failed */
  pair_free(&p);

  p = pair_new(ctx, sctx, "localhost");
  assert_int_equal(sg_tls_handshake(p.client), SG_TLS_WANT_READ);
  close(p.sfd); /* the ClientHello unread: the kernel resets */
  p.sfd = -1;
  assert_int_equal(sg_tls_handshake(p.client), SG_TLS_ERROR);
  assert_string_equal(sg_tls_error(p.client), "handshake: Connection reset by peer");
  pair_free(&p);
  SSL_CTX_free(sctx);
  sg_tls_ctx_free(ctx);
}

static void test_plain_text_peer_is_an_error(void **state) {
  (void)state;
  struct sg_tls_ctx *ctx = ctx_with(pki.ca_file);
  SSL_CTX *sctx = server_ctx(pki.server, 0);
  struct pair p = pair_new(ctx, sctx, "localhost");
  assert_int_equal(sg_tls_handshake(p.client), SG_TLS_WANT_READ);
  const char reply[] = "-ERR unknown command\r\n"; /* a plain Redis on a rediss:// URL */
  assert_int_equal(write(p.sfd, reply, sizeof reply - 1), (ssize_t)(sizeof reply - 1));
  assert_int_equal(sg_tls_handshake(p.client), SG_TLS_ERROR);
  assert_string_equal(sg_tls_error(p.client), "handshake failed: wrong version number");
  pair_free(&p);
  SSL_CTX_free(sctx);
  sg_tls_ctx_free(ctx);
}

/* ---- one context, several threads ---------------------------------------------------------- */

struct worker_arg {
  struct sg_tls_ctx *ctx;
  SSL_CTX *sctx;
  const char *host;
  int ok, resumed;
};

/* Like connect_once, without cmocka (its asserts are not for threads). */
static void *worker_main(void *arg) {
  struct worker_arg *w = arg;
  for (int n = 0; n < 20; n++) {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) != 0)
      break;
    nonblocking(fds[0]);
    nonblocking(fds[1]);
    SSL *server = SSL_new(w->sctx);
    SSL_set_fd(server, fds[1]);
    SSL_set_accept_state(server);
    char *error = NULL;
    struct sg_tls *t = sg_tls_new(w->ctx, fds[0], w->host, &error);
    int rc = SG_TLS_WANT_READ;
    for (int i = 0; i < 50 && (rc == SG_TLS_WANT_READ || rc == SG_TLS_WANT_WRITE); i++) {
      rc = sg_tls_handshake(t);
      (void)SSL_do_handshake(server);
    }
    char c = 0;
    ssize_t got = 0;
    if (rc == 0 && SSL_write(server, "x", 1) == 1)
      for (int i = 0; i < 50 && got != 1; i++)
        got = sg_tls_read(t, &c, 1);
    w->ok += got == 1 && c == 'x';
    w->resumed += sg_tls_resumed(t);
    sg_tls_free(t);
    SSL_free(server);
    close(fds[0]);
    close(fds[1]);
    ERR_clear_error();
  }
  return NULL;
}

static void test_one_context_shared_by_threads(void **state) {
  (void)state;
  struct sg_tls_ctx *ctx = ctx_with(pki.ca_file);
  SSL_CTX *sctx = server_ctx(pki.server, 0);
  static const char *const hosts[] = {"localhost", "other.test", "localhost", "127.0.0.1"};
  struct worker_arg w[4];
  pthread_t th[4];
  for (int i = 0; i < 4; i++) {
    w[i] = (struct worker_arg){.ctx = ctx, .sctx = sctx, .host = hosts[i]};
    assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(w[i].ok, 20);
    assert_true(w[i].resumed >= 18); /* all but the first of a host (one race per host) */
  }
  SSL_CTX_free(sctx);
  sg_tls_ctx_free(ctx);
}

/* ---- blocking helpers ---------------------------------------------------------------------- */

struct echo_server {
  SSL_CTX *sctx;
  int fd;
};

/* A blocking server: handshake, echo 5 bytes, close_notify. */
static void *echo_main(void *arg) {
  struct echo_server *e = arg;
  SSL *ssl = SSL_new(e->sctx);
  SSL_set_fd(ssl, e->fd);
  if (SSL_accept(ssl) == 1) {
    char buf[5];
    size_t got = 0;
    while (got < sizeof buf) {
      int n = SSL_read(ssl, buf + got, (int)(sizeof buf - got));
      if (n <= 0)
        break;
      got += (size_t)n;
    }
    SSL_write(ssl, buf, (int)got);
    SSL_shutdown(ssl);
  }
  SSL_free(ssl);
  return NULL;
}

static void test_blocking_helpers(void **state) {
  (void)state;
  struct sg_tls_ctx *ctx = ctx_with(pki.ca_file);
  SSL_CTX *sctx = server_ctx(pki.server, 0);
  int fds[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  nonblocking(fds[0]);
  struct echo_server e = {.sctx = sctx, .fd = fds[1]};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, echo_main, &e), 0);
  char *error = NULL;
  struct sg_tls *t = sg_tls_new(ctx, fds[0], "localhost", &error);
  assert_int_equal(sg_tls_handshake_blocking(t, 5000), 0);
  assert_int_equal(sg_tls_write_all_blocking(t, "hello", 5, 5000), 0);
  char buf[8];
  size_t got = 0;
  while (got < 5) {
    ssize_t n = sg_tls_read_blocking(t, buf + got, 5 - got, 5000);
    assert_true(n > 0);
    got += (size_t)n;
  }
  assert_memory_equal(buf, "hello", 5);
  assert_int_equal(sg_tls_read_blocking(t, buf, sizeof buf, 5000), SG_TLS_CLOSED);
  pthread_join(th, NULL);
  sg_tls_free(t);
  close(fds[0]);
  close(fds[1]);
  SSL_CTX_free(sctx);
  sg_tls_ctx_free(ctx);
}

static int64_t mono_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void test_blocking_handshake_times_out_on_a_silent_peer(void **state) {
  (void)state;
  struct sg_tls_ctx *ctx = ctx_with(pki.ca_file);
  int fds[2];
  assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, fds), 0);
  nonblocking(fds[0]);
  char *error = NULL;
  struct sg_tls *t = sg_tls_new(ctx, fds[0], "localhost", &error);
  int64_t t0 = mono_ms();
  assert_int_equal(sg_tls_handshake_blocking(t, 150), SG_TLS_TIMEOUT);
  int64_t took = mono_ms() - t0;
  assert_true(took >= 140 && took < 2000);
  sg_tls_free(t);
  close(fds[0]);
  close(fds[1]);
  sg_tls_ctx_free(ctx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_handshake_and_data_both_ways),
      cmocka_unit_test(test_wrong_ca_is_refused),
      cmocka_unit_test(test_system_cas_do_not_trust_the_test_ca),
      cmocka_unit_test(test_hostname_mismatch_is_refused),
      cmocka_unit_test(test_ip_literal_checked_against_ip_sans),
      cmocka_unit_test(test_no_sni_for_ip_literals),
      cmocka_unit_test(test_expired_certificate_is_refused),
      cmocka_unit_test(test_tls_below_1_2_is_refused),
      cmocka_unit_test(test_bad_ca_file_and_host),
      cmocka_unit_test(test_session_resumed_tls13),
      cmocka_unit_test(test_session_resumed_tls12),
      cmocka_unit_test(test_another_context_does_not_resume),
      cmocka_unit_test(test_want_read_until_the_server_answers),
      cmocka_unit_test(test_want_write_when_the_peer_does_not_read),
      cmocka_unit_test(test_close_notify_then_bare_eof),
      cmocka_unit_test(test_eof_during_handshake_is_an_error),
      cmocka_unit_test(test_plain_text_peer_is_an_error),
      cmocka_unit_test(test_one_context_shared_by_threads),
      cmocka_unit_test(test_blocking_helpers),
      cmocka_unit_test(test_blocking_handshake_times_out_on_a_silent_peer),
  };
  return cmocka_run_group_tests(tests, make_pki, free_pki);
}
