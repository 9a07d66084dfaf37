/*
 * test_conf_load.c - the configuration snapshot: defaults, units, the
 * environment, and every kind of mistake refused with where it was made.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "conf/config.h"

#define SECRET "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
#define SERVER "[server]\npublic_url = https://redash.example.com/\n"
#define REST                                                                                       \
  "[upstream]\nurl = http://redash:5000\n[session]\nsecret = " SECRET                              \
  "\n[access]\nallowed_domains = Example.COM\n"
#define MINIMAL SERVER REST

static char *write_ini(const char *text, mode_t mode) {
  char *path = strdup("/tmp/ssogate-conf-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  fchmod(fd, mode);
  close(fd);
  return path;
}

static struct sg_config *load(const char *text, char *const *env, char **error) {
  char *path = write_ini(text, 0600);
  struct sg_config *c = sg_config_load_new(path, env, error);
  unlink(path);
  free(path);
  return c;
}

static void expect_error(const char *text, char *const *env, const char *fragment) {
  char *error = NULL;
  struct sg_config *c = load(text, env, &error);
  assert_null(c);
  assert_non_null(error);
  if (strstr(error, fragment) == NULL)
    fail_msg("error '%s' does not mention '%s'", error, fragment);
  assert_null(strstr(error, SECRET));
  free(error);
}

static void defaults_follow_the_design(void **state) {
  (void)state;
  char *error = NULL;
  struct sg_config *c = load(MINIMAL, NULL, &error);
  assert_non_null(c);
  assert_string_equal(c->server.listen_host, "0.0.0.0");
  assert_int_equal(c->server.listen_port, 8080);
  assert_string_equal(c->server.public_url, "https://redash.example.com");
  assert_true(c->server.public_https);
  assert_int_equal(c->server.trusted_proxies, 1);
  assert_int_equal(c->server.max_body, 10 * 1024 * 1024);
  assert_int_equal(c->server.client_timeout_ms, 75000);
  assert_int_equal(c->upstream.timeout_ms, 300000);
  assert_string_equal(c->upstream.health_path, "/ping");
  assert_string_equal(c->saml.sp_entity_id, "https://redash.example.com/ssogate/metadata");
  assert_int_equal(c->saml.clock_skew_ms, 180000);
  assert_int_equal(c->session.n_secrets, 1);
  assert_int_equal(c->session.secrets[0].len, 32);
  assert_string_equal(c->session.cookie_name, "ssogate");
  assert_string_equal(c->access.allowed_domains[0], "example.com");
  assert_string_equal(c->headers.user, "X-Forwarded-Remote-User");
  assert_string_equal(c->headers.jwt, "X-Ssogate-Assertion");
  assert_string_equal(c->headers.jwt_issuer, "https://redash.example.com");
  assert_string_equal(c->headers.jwt_audience, "redash");
  assert_int_equal(c->ratelimit.login_count, 30);
  assert_int_equal(c->ratelimit.login_period_ms, 60000);
  assert_int_equal(c->ratelimit.burst, 10);
  assert_string_equal(c->store.url, "memory");
  assert_string_equal(c->metrics.listen_host, "127.0.0.1");
  assert_int_equal(c->metrics.listen_port, 9090);
  assert_int_equal(sg_config_ref(c)->refs, 2);
  sg_config_unref(c);
  sg_config_unref(c);
}

static void units(void **state) {
  (void)state;
  uint64_t v;
  assert_int_equal(sg_parse_duration_ms("250ms", &v), 0);
  assert_int_equal(v, 250);
  assert_int_equal(sg_parse_duration_ms("3h", &v), 0);
  assert_int_equal(v, 3 * 3600 * 1000);
  assert_int_equal(sg_parse_duration_ms("30", &v), -1);
  assert_int_equal(sg_parse_duration_ms("-5s", &v), -1);
  assert_int_equal(sg_parse_duration_ms("99999999999999999999h", &v), -1);
  assert_int_equal(sg_parse_size("10MiB", &v), 0);
  assert_int_equal(v, 10 * 1024 * 1024);
  assert_int_equal(sg_parse_size("2GiB", &v), 0);
  assert_int_equal(sg_parse_size("1234", &v), 0);
  assert_int_equal(v, 1234);
  assert_int_equal(sg_parse_size("10MB", &v), -1);
  assert_int_equal(sg_parse_size("18446744073709551615GiB", &v), -1);
  char *host;
  uint16_t port;
  assert_int_equal(sg_parse_host_port("[::1]:8443", &host, &port), 0);
  assert_string_equal(host, "::1");
  assert_int_equal(port, 8443);
  free(host);
  assert_int_equal(sg_parse_host_port("::1:80", &host, &port), -1);
  assert_int_equal(sg_parse_host_port("host:70000", &host, &port), -1);
}

static void mistakes_are_refused_with_their_place(void **state) {
  (void)state;
  expect_error(MINIMAL "[server]\nlisten = 1.2.3.4:80\n", NULL, "appears twice");
  expect_error(SERVER "public_url = http://other\n" REST, NULL, "set twice");
  expect_error("[server]\nlisen = 0.0.0.0:80\n", NULL, ":2: unknown key 'lisen' in [server]");
  expect_error("[servr]\nlisten = 0.0.0.0:80\n", NULL, "unknown section [servr]");
  expect_error(MINIMAL "[log]\nlevel = loud\n", NULL, "[log] level");
  expect_error("[server]\npublic_url = https://x.example/app\n[upstream]\nurl = "
               "http://r\n[session]\nsecret = " SECRET "\n[access]\nallowed_domains = x\n",
               NULL, "public_url");
  expect_error(
      "[server]\npublic_url = https://x\n[upstream]\nurl = http://r\n[session]\nsecret = c2hvcnQ=\n"
      "[access]\nallowed_domains = x\n",
      NULL, "at least 32 bytes");
  expect_error(
      "[server]\npublic_url = https://x\n[upstream]\nurl = http://r\n[session]\nsecret = " SECRET
      "\n",
      NULL, "no access rule");
  expect_error(SERVER "client_timeout = 30\n" REST, NULL, "not a duration");
  expect_error(MINIMAL "[headers]\njwt_key =\n", NULL, "jwt_key");
  expect_error(MINIMAL "garbage line\n", NULL, "expected 'key = value'");
}

static void the_environment_wins_and_typos_are_refused(void **state) {
  (void)state;
  char *env[] = {"PATH=/bin", "SSOGATE_SERVER_LISTEN=127.0.0.1:9999",
                 "SSOGATE_HEADERS_JWT=", "SSOGATE_RATELIMIT_LOGIN=5/s", NULL};
  char *error = NULL;
  struct sg_config *c =
      load(SERVER "listen = 0.0.0.0:8080 ; inline comment\n# a comment\n" REST, env, &error);
  assert_non_null(c);
  assert_int_equal(c->server.listen_port, 9999);
  assert_null(c->headers.jwt);
  assert_int_equal(c->ratelimit.login_count, 5);
  assert_int_equal(c->ratelimit.login_period_ms, 1000);
  sg_config_unref(c);
  char *typo[] = {"SSOGATE_SERVER_LISEN=1.2.3.4:1", NULL};
  expect_error(MINIMAL, typo, "SSOGATE_SERVER_LISEN");
  char *bad[] = {"SSOGATE_SERVER_MAX_BODY=lots", NULL};
  expect_error(MINIMAL, bad, "environment SSOGATE_SERVER_MAX_BODY");
}

static void secret_files_must_be_private(void **state) {
  (void)state;
  char *secret = write_ini(SECRET "\n", 0644);
  char text[512];
  snprintf(
      text, sizeof text,
      "[server]\npublic_url = http://x\n[upstream]\nurl = http://r\n[session]\nsecret_file = %s\n"
      "[access]\nallowed_emails = a@b.c\n",
      secret);
  expect_error(text, NULL, "chmod 600");
  chmod(secret, 0600);
  char *error = NULL;
  struct sg_config *c = load(text, NULL, &error);
  assert_non_null(c);
  assert_int_equal(c->session.n_secrets, 1);
  sg_config_unref(c);
  snprintf(text, sizeof text, "%s[session]\nsecret_file = %s\n", MINIMAL, secret);
  expect_error(text, NULL, "appears twice");
  unlink(secret);
  free(secret);
}

static void the_example_file_loads(void **state) {
  (void)state;
  const char *root = getenv("SSOGATE_SOURCE_ROOT");
  char path[1024];
  snprintf(path, sizeof path, "%s/conf/ssogate.example.ini", root ? root : "..");
  char *env[] = {"SSOGATE_SESSION_SECRET=" SECRET, NULL};
  char *error = NULL;
  struct sg_config *c = sg_config_load_new(path, env, &error);
  if (c == NULL)
    fail_msg("example did not load: %s", error);
  assert_string_equal(c->server.public_url, "https://redash.example.com");
  sg_config_unref(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(defaults_follow_the_design),
      cmocka_unit_test(units),
      cmocka_unit_test(mistakes_are_refused_with_their_place),
      cmocka_unit_test(the_environment_wins_and_typos_are_refused),
      cmocka_unit_test(secret_files_must_be_private),
      cmocka_unit_test(the_example_file_loads),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
