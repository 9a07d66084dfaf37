/*
 * test_config.c - conf/, rule by rule: the INI syntax, the
 * environment overrides, every unit, every validation and its message, the
 * secrets (never echoed), the reference count, and the example file.
 */
#include <pthread.h>
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
#include <glib.h>

#include "conf/config.h"

/* base64 of "0123456789abcdef0123456789abcdef": exactly 32 bytes. */
#define SECRET "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="
/* 33 bytes 0xfb 0xff ...: its URL-safe form uses '-' and '_' and has no padding. */
#define SECRET_URLSAFE "-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_-_"
#define SHORT_SECRET "c2hvcnQ=" /* "short" */

#define SERVER "[server]\npublic_url = https://redash.example.com/\n"
#define UPSTREAM "[upstream]\nurl = http://redash:5000\n"
#define SESSION "[session]\nsecret = " SECRET "\n"
#define ACCESS "[access]\nallowed_domains = Example.COM\n"
#define MINIMAL SERVER UPSTREAM SESSION ACCESS

/* ---- helpers ------------------------------------------------------------------------ */

static char *write_temp(const char *text, size_t len, mode_t mode) {
  char *path = strdup("/tmp/ssogate-test-config-XXXXXX");
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  assert_int_equal(write(fd, text, len), (ssize_t)len);
  assert_int_equal(fchmod(fd, mode), 0);
  close(fd);
  return path;
}

/* Loads text as a file; *path_out (optional) gets the file's name, already unlinked. */
static struct sg_config *load_with_path(const char *text, char *const *env, char **error,
                                        char **path_out) {
  char *path = write_temp(text, strlen(text), 0600);
  struct sg_config *c = sg_config_load_new(path, env, error);
  unlink(path);
  if (path_out)
    *path_out = path;
  else
    free(path);
  return c;
}

static struct sg_config *load_ok(const char *text, char *const *env) {
  char *error = NULL;
  struct sg_config *c = load_with_path(text, env, &error, NULL);
  if (c == NULL) {
    fprintf(stderr, "unexpected error: %s\n", error);
    free(error);
    fail_msg("the configuration should have loaded");
  }
  assert_null(error);
  return c;
}

/* The load must fail with a message that contains every fragment (NULL-terminated). */
static void expect_error_env(const char *text, char *const *env, ...) {
  char *error = NULL;
  char *path = NULL;
  struct sg_config *c = load_with_path(text, env, &error, &path);
  assert_null(c);
  assert_non_null(error);
  va_list ap;
  va_start(ap, env);
  for (const char *fragment; (fragment = va_arg(ap, const char *)) != NULL;) {
    /* "@:" stands for "<the temp file's path>:" */
    char expected[512];
    const char *at = strstr(fragment, "@:");
    if (at != NULL)
      snprintf(expected, sizeof expected, "%.*s%s%s", (int)(at - fragment), fragment, path, at + 1);
    else
      snprintf(expected, sizeof expected, "%s", fragment);
    if (strstr(error, expected) == NULL) {
      va_end(ap);
      fprintf(stderr, "error '%s'\ndoes not mention '%s'\n", error, expected);
      free(error);
      free(path);
      fail();
    }
  }
  va_end(ap);
  /* Secrets never reach a message. */
  assert_null(strstr(error, SECRET));
  assert_null(strstr(error, SECRET_URLSAFE));
  assert_null(strstr(error, SHORT_SECRET));
  assert_null(strstr(error, "hunter2"));
  free(error);
  free(path);
}

#define expect_error(text, ...) expect_error_env(text, NULL, __VA_ARGS__, NULL)

static char *strcat_new(const char *a, const char *b) {
  char *s = malloc(strlen(a) + strlen(b) + 1);
  assert_non_null(s);
  strcpy(s, a);
  strcat(s, b);
  return s;
}

/* MINIMAL with extra lines appended (a new section starts in them). */
static struct sg_config *load_minimal_plus(const char *extra) {
  char *text = strcat_new(MINIMAL, extra);
  struct sg_config *c = load_ok(text, NULL);
  free(text);
  return c;
}

static void expect_minimal_plus_error(const char *extra, const char *fragment) {
  char text[4096];
  snprintf(text, sizeof text, "%s%s", MINIMAL, extra);
  expect_error(text, fragment);
}

/* MINIMAL, with one environment entry. */
static struct sg_config *load_minimal_env(const char *entry) {
  char *env[] = {(char *)entry, NULL};
  return load_ok(MINIMAL, env);
}

static void expect_minimal_env_error(const char *entry, const char *fragment) {
  char *env[] = {(char *)entry, NULL};
  expect_error_env(MINIMAL, env, fragment, NULL);
}

static size_t strv_len(char **v) {
  size_t n = 0;
  while (v[n] != NULL)
    n++;
  return n;
}

/* ---- defaults ---------------------------------------------------------------------- */

static void minimal_config_loads_with_design_defaults(void **state) {
  (void)state;
  struct sg_config *c = load_ok(MINIMAL, NULL);
  assert_int_equal(c->refs, 1);
  assert_non_null(c->source_path);
  assert_string_equal(c->server.listen, "0.0.0.0:8080");
  assert_string_equal(c->server.listen_host, "0.0.0.0");
  assert_int_equal(c->server.listen_port, 8080);
  assert_string_equal(c->server.public_url, "https://redash.example.com");
  assert_string_equal(c->server.public_host, "redash.example.com");
  assert_true(c->server.public_https);
  assert_int_equal(c->server.trusted_proxies, 1);
  assert_int_equal(c->server.max_body, 10 * 1024 * 1024);
  assert_int_equal(c->server.client_timeout_ms, 75000);
  assert_int_equal(c->server.drain_timeout_ms, 20000);
  assert_int_equal(c->server.max_connections, 4096);
  assert_int_equal(c->server.workers, 0);

  assert_int_equal(strv_len(c->upstream.urls), 1);
  assert_string_equal(c->upstream.urls[0], "http://redash:5000");
  assert_int_equal(c->upstream.connect_timeout_ms, 5000);
  assert_int_equal(c->upstream.timeout_ms, 300000);
  assert_string_equal(c->upstream.health_path, "/ping");
  assert_int_equal(c->upstream.resolve_interval_ms, 10000);

  assert_null(c->saml.idp_metadata);
  assert_string_equal(c->saml.sp_entity_id, "https://redash.example.com/ssogate/metadata");
  assert_null(c->saml.sp_key);
  assert_null(c->saml.sp_cert);
  assert_int_equal(c->saml.clock_skew_ms, 180000);
  assert_false(c->saml.allow_idp_initiated);
  assert_null(c->saml.email_attribute);
  assert_null(c->saml.name_attribute);
  assert_null(c->saml.groups_attribute);

  assert_int_equal(c->session.n_secrets, 1);
  assert_int_equal(c->session.secrets[0].len, 32);
  assert_memory_equal(c->session.secrets[0].bytes, "0123456789abcdef0123456789abcdef", 32);
  assert_int_equal(c->session.lifetime_ms, 12 * 3600 * 1000);
  assert_string_equal(c->session.cookie_name, "ssogate");
  assert_false(c->session.session_page);
  assert_non_null(c->session.logout_paths);
  assert_null(c->session.logout_paths[0]);
  assert_non_null(c->session.app_cookies);
  assert_null(c->session.app_cookies[0]);

  assert_string_equal(c->access.allowed_domains[0], "example.com"); /* lower-cased */
  assert_null(c->access.allowed_domains[1]);
  assert_non_null(c->access.allowed_emails);
  assert_null(c->access.allowed_emails[0]);
  assert_non_null(c->access.allowed_groups);
  assert_null(c->access.allowed_groups[0]);
  assert_non_null(c->access.public_paths);
  assert_null(c->access.public_paths[0]);

  assert_string_equal(c->headers.user, "X-Forwarded-Remote-User");
  assert_string_equal(c->headers.email, "X-Forwarded-Email");
  assert_string_equal(c->headers.groups, "X-Forwarded-Groups");
  assert_string_equal(c->headers.jwt, "X-Ssogate-Assertion");
  assert_int_equal(strv_len(c->headers.jwt_keys), 1);
  assert_string_equal(c->headers.jwt_keys[0], "/etc/ssogate/jwt.key");
  assert_string_equal(c->headers.jwt_issuer, "https://redash.example.com");
  assert_string_equal(c->headers.jwt_audience, "redash");
  assert_int_equal(c->headers.jwt_ttl_ms, 300000);

  assert_int_equal(c->ratelimit.login_count, 30);
  assert_int_equal(c->ratelimit.login_period_ms, 60000);
  assert_int_equal(c->ratelimit.burst, 10);
  assert_int_equal(c->ratelimit.login_credit, 2);
  assert_null(c->pages.support_contact);
  assert_string_equal(c->store.url, "memory");
  assert_string_equal(c->metrics.listen, "127.0.0.1:9090");
  assert_string_equal(c->metrics.listen_host, "127.0.0.1");
  assert_int_equal(c->metrics.listen_port, 9090);
  assert_int_equal(c->log.level, SG_LOG_INFO);
  assert_int_equal(c->log.format, SG_LOG_JSON);
  sg_config_unref(c);
}

static void environment_alone_is_enough(void **state) {
  (void)state;
  char *env[] = {"HOME=/root",
                 "SSOGATE_SERVER_PUBLIC_URL=http://localhost:8080",
                 "SSOGATE_UPSTREAM_URL=http://127.0.0.1:5000 http://127.0.0.2:5000",
                 "SSOGATE_SESSION_SECRET=" SECRET,
                 "SSOGATE_ACCESS_ALLOWED_EMAILS=Alice@Example.com bob@example.com",
                 NULL};
  char *error = NULL;
  struct sg_config *c = sg_config_load_new(NULL, env, &error);
  assert_null(error);
  assert_non_null(c);
  assert_null(c->source_path);
  assert_false(c->server.public_https);
  assert_string_equal(c->server.public_host, "localhost:8080");
  assert_int_equal(strv_len(c->upstream.urls), 2);
  assert_string_equal(c->access.allowed_emails[0], "alice@example.com");
  assert_string_equal(c->access.allowed_emails[1], "bob@example.com");
  sg_config_unref(c);

  /* No file and no environment: the first things missing are named. */
  c = sg_config_load_new(NULL, NULL, &error);
  assert_null(c);
  assert_non_null(strstr(error, "[server] public_url: required"));
  free(error);
}

/* ---- units -------------------------------------------------------------------------- */

static void durations_take_ms_s_m_h(void **state) {
  (void)state;
  uint64_t v = 0;
  assert_int_equal(sg_parse_duration_ms("250ms", &v), 0);
  assert_int_equal(v, 250);
  assert_int_equal(sg_parse_duration_ms("30s", &v), 0);
  assert_int_equal(v, 30000);
  assert_int_equal(sg_parse_duration_ms("5m", &v), 0);
  assert_int_equal(v, 300000);
  assert_int_equal(sg_parse_duration_ms("12h", &v), 0);
  assert_int_equal(v, 12ull * 3600 * 1000);
  assert_int_equal(sg_parse_duration_ms("3h", &v), 0);
  assert_int_equal(v, 3ull * 3600 * 1000);
  assert_int_equal(sg_parse_duration_ms("0s", &v), 0);
  assert_int_equal(v, 0);
  assert_int_equal(sg_parse_duration_ms("18446744073709551615ms", &v), 0);
  assert_true(v == UINT64_MAX);
}

static void bad_durations_are_refused(void **state) {
  (void)state;
  uint64_t v = 42;
  const char *bad[] = {"30",
                       "",
                       "s",
                       "-5s",
                       "+5s",
                       " 5s",
                       "5 s",
                       "5S",
                       "1.5h",
                       "1d",
                       "5sec",
                       "5ms ",
                       "0x10s",
                       "5hm",
                       "18446744073709551615h",
                       "18446744073709551616ms",
                       "99999999999999999999h",
                       "99999999999999999999999s"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (sg_parse_duration_ms(bad[i], &v) != -1)
      fail_msg("'%s' was accepted as a duration", bad[i]);
  assert_int_equal(v, 42); /* untouched on error */
  assert_int_equal(sg_parse_duration_ms(NULL, &v), -1);
}

static void bare_duration_in_the_file_needs_a_unit(void **state) {
  (void)state;
  expect_error(SERVER "client_timeout = 30\n" UPSTREAM SESSION ACCESS,
               "[server] client_timeout (@:3)", "is not a duration", "needs a unit like 30s");
  char *env[] = {"SSOGATE_UPSTREAM_TIMEOUT=300", NULL};
  expect_error_env(MINIMAL, env, "[upstream] timeout (environment SSOGATE_UPSTREAM_TIMEOUT)",
                   "needs a unit like 30s", NULL);
  expect_minimal_plus_error("[saml]\nclock_skew = 3 minutes\n", "[saml] clock_skew");
}

static void sizes_take_b_kib_mib_gib(void **state) {
  (void)state;
  uint64_t v = 0;
  assert_int_equal(sg_parse_size("1234", &v), 0);
  assert_int_equal(v, 1234);
  assert_int_equal(sg_parse_size("1234B", &v), 0);
  assert_int_equal(v, 1234);
  assert_int_equal(sg_parse_size("64KiB", &v), 0);
  assert_int_equal(v, 64 * 1024);
  assert_int_equal(sg_parse_size("10MiB", &v), 0);
  assert_int_equal(v, 10 * 1024 * 1024);
  assert_int_equal(sg_parse_size("3GiB", &v), 0);
  assert_true(v == 3ull * 1024 * 1024 * 1024);
  assert_int_equal(sg_parse_size("2GiB", &v), 0);
  assert_true(v == 2ull * 1024 * 1024 * 1024);
  assert_int_equal(sg_parse_size("18446744073709551615", &v), 0);
  assert_true(v == UINT64_MAX);
}

static void bad_sizes_are_refused(void **state) {
  (void)state;
  uint64_t v = 42;
  const char *bad[] = {"",
                       "KiB",
                       "10MB",
                       "10kib",
                       "10 MiB",
                       "-1",
                       "1.5MiB",
                       "1TiB",
                       "0x10",
                       "10MiBs",
                       "17179869184GiB",
                       "18446744073709551616",
                       "18446744073709551615KiB",
                       "18446744073709551615GiB"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    if (sg_parse_size(bad[i], &v) != -1)
      fail_msg("'%s' was accepted as a size", bad[i]);
  assert_int_equal(v, 42);
  expect_error(SERVER "max_body = 10MB\n" UPSTREAM SESSION ACCESS, "[server] max_body (@:3)",
               "'10MB' is not a size");
}

static void booleans_take_the_usual_words(void **state) {
  (void)state;
  const char *yes[] = {"true", "yes", "on", "1", "TRUE", "Yes"};
  const char *no[] = {"false", "no", "off", "0"};
  char entry[128];
  for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++) {
    snprintf(entry, sizeof entry, "SSOGATE_SAML_ALLOW_IDP_INITIATED=%s", yes[i]);
    struct sg_config *c = load_minimal_env(entry);
    assert_true(c->saml.allow_idp_initiated);
    sg_config_unref(c);
  }
  for (size_t i = 0; i < sizeof no / sizeof no[0]; i++) {
    snprintf(entry, sizeof entry, "SSOGATE_SESSION_SESSION_PAGE=%s", no[i]);
    struct sg_config *c = load_minimal_env(entry);
    assert_false(c->session.session_page);
    sg_config_unref(c);
  }
}

static void booleans_refuse_other_words(void **state) {
  (void)state;
  expect_minimal_env_error("SSOGATE_SESSION_SESSION_PAGE=maybe",
                           "[session] session_page (environment SSOGATE_SESSION_SESSION_PAGE)");
  expect_minimal_env_error("SSOGATE_SESSION_SESSION_PAGE=", "is not true or false");
  expect_minimal_env_error("SSOGATE_SESSION_SESSION_PAGE=2", "is not true or false");
}

static void lists_are_space_separated(void **state) {
  (void)state;
  struct sg_config *c =
      load_minimal_plus("[headers]\njwt_key =   /k/one.pem \t  /k/two.pem   /k/three.pem\n"
                        "[saml]\nidp_metadata = /etc/idp.xml\n");
  assert_int_equal(strv_len(c->headers.jwt_keys), 3);
  assert_string_equal(c->headers.jwt_keys[0], "/k/one.pem");
  assert_string_equal(c->headers.jwt_keys[1], "/k/two.pem");
  assert_string_equal(c->headers.jwt_keys[2], "/k/three.pem");
  assert_string_equal(c->saml.idp_metadata, "/etc/idp.xml");
  sg_config_unref(c);

  /* An empty list is a list with only the terminator, never NULL. */
  c = load_minimal_env("SSOGATE_ACCESS_PUBLIC_PATHS=   ");
  assert_non_null(c->access.public_paths);
  assert_null(c->access.public_paths[0]);
  sg_config_unref(c);

  /* A comma would silently make one entry that matches nobody. */
  expect_minimal_env_error("SSOGATE_ACCESS_ALLOWED_DOMAINS=a.com,b.com",
                           "lists are space separated");
}

static void rates_are_count_per_period(void **state) {
  (void)state;
  struct {
    const char *text;
    unsigned count;
    uint64_t period;
  } good[] = {{"5/s", 5, 1000}, {"30/m", 30, 60000}, {"100/h", 100, 3600000}, {"1/s", 1, 1000}};
  char entry[64];
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    snprintf(entry, sizeof entry, "SSOGATE_RATELIMIT_LOGIN=%s", good[i].text);
    struct sg_config *c = load_minimal_env(entry);
    assert_int_equal(c->ratelimit.login_count, good[i].count);
    assert_int_equal(c->ratelimit.login_period_ms, good[i].period);
    sg_config_unref(c);
  }
  const char *bad[] = {"0/m",  "30",    "30/d",   "/m",  "30/",
                       "-1/s", "30 /m", "30/min", "x/s", "99999999999999999999/s"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(entry, sizeof entry, "SSOGATE_RATELIMIT_LOGIN=%s", bad[i]);
    expect_minimal_env_error(entry, "[ratelimit] login");
  }
  expect_minimal_plus_error("[ratelimit]\nburst = 0\n", "[ratelimit] burst (@:10): at least 1");
}

static void login_credit_is_bounded(void **state) {
  (void)state;
  struct sg_config *c = load_minimal_env("SSOGATE_RATELIMIT_LOGIN_CREDIT=0");
  assert_int_equal(c->ratelimit.login_credit, 0);
  sg_config_unref(c);
  c = load_minimal_plus("[ratelimit]\nlogin_credit = 100\n");
  assert_int_equal(c->ratelimit.login_credit, 100);
  sg_config_unref(c);
  expect_minimal_plus_error("[ratelimit]\nlogin_credit = 101\n",
                            "[ratelimit] login_credit (@:10): between 0 (off) and 100");
  expect_minimal_env_error("SSOGATE_RATELIMIT_LOGIN_CREDIT=-1", "[ratelimit] login_credit");
}

static void support_contact_is_a_mailbox_or_a_web_page(void **state) {
  (void)state;
  const char *good[] = {"it-help@example.com", "https://help.example.com/sso?q=1",
                        "http://intranet/helpdesk"};
  char entry[128];
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    snprintf(entry, sizeof entry, "SSOGATE_PAGES_SUPPORT_CONTACT=%s", good[i]);
    struct sg_config *c = load_minimal_env(entry);
    assert_string_equal(c->pages.support_contact, good[i]);
    sg_config_unref(c);
  }
  const char *bad[] = {"call Bob",
                       "javascript:alert(1)",
                       "bob@",
                       "@example.com",
                       "a@b@example.com",
                       "x\"@example.com",
                       "https://a.b/<script>",
                       "ftp://example.com"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(entry, sizeof entry, "SSOGATE_PAGES_SUPPORT_CONTACT=%s", bad[i]);
    expect_minimal_env_error(entry, "[pages] support_contact");
  }
}

/* ---- INI syntax ---------------------------------------------------------------------- */

static void unknown_key_names_file_and_line(void **state) {
  (void)state;
  expect_error("; comment\n[server]\n\nlisen = 0.0.0.0:8080\n",
               "@:4: unknown key 'lisen' in [server]");
  expect_error(SERVER UPSTREAM "[session]\nsecret = " SECRET "\nlifetim = 1h\n" ACCESS,
               "@:7: unknown key 'lifetim' in [session]");
}

static void unknown_section_names_file_and_line(void **state) {
  (void)state;
  expect_error(MINIMAL "\n[sesion]\nlifetime = 1h\n", "@:10: unknown section [sesion]");
  /* Its keys are not reported a second time. */
  char *error = NULL;
  struct sg_config *c = load_with_path(MINIMAL "[sesion]\nlifetime = 1h\n", NULL, &error, NULL);
  assert_null(c);
  assert_null(strstr(error, "lifetime"));
  free(error);
}

static void syntax_errors_name_the_line(void **state) {
  (void)state;
  expect_error("listen = 0.0.0.0:8080\n", "@:1: 'listen' is outside any [section]");
  expect_error(MINIMAL "just some words\n", "@:9: expected 'key = value'");
  expect_error(MINIMAL "[log\n", "@:9: malformed section header");
  expect_error(MINIMAL "[log]]\n", "@:9: malformed section header");
  expect_error(MINIMAL "[log]\n= info\n", "@:10: missing key name");
}

static void repeated_key_or_section_is_an_error(void **state) {
  (void)state;
  expect_error(SERVER "public_url = https://other.example.com\n" UPSTREAM SESSION ACCESS,
               "@:3: 'public_url' in [server] is set twice (first at line 2)");
  expect_error(MINIMAL "\n[upstream]\ntimeout = 10s\n", "@:10: section [upstream] appears twice",
               "first at line 3");
}

static void comments_full_line_and_inline(void **state) {
  (void)state;
  struct sg_config *c = load_ok("; a comment\n# another\n   ; indented\n"
                                "[server]   ; the section\n"
                                "listen = 0.0.0.0:8081            ; where the ALB sends traffic\n"
                                "public_url = https://redash.example.com\t# tab before\n" UPSTREAM
                                "[session]\nsecret = " SECRET "   ; the key\n" ACCESS
                                "[headers]\njwt_audience = a#b;c   # no space: part of the value\n"
                                "jwt_issuer =                   ; empty: default\n",
                                NULL);
  assert_int_equal(c->server.listen_port, 8081);
  assert_string_equal(c->server.public_url, "https://redash.example.com");
  assert_int_equal(c->session.n_secrets, 1);
  assert_string_equal(c->headers.jwt_audience, "a#b;c");
  assert_string_equal(c->headers.jwt_issuer, "https://redash.example.com");
  sg_config_unref(c);
}

static void whitespace_crlf_and_bom_are_tolerated(void **state) {
  (void)state;
  struct sg_config *c = load_ok("\xEF\xBB\xBF[server]\r\n  public_url   =   https://x.example  \r\n"
                                "[upstream]\r\nurl=http://r:1\r\n"
                                "[session]\r\nsecret=" SECRET "\r\n"
                                "[access]\r\nallowed_domains = x.example\r\n",
                                NULL);
  assert_string_equal(c->server.public_url, "https://x.example");
  assert_string_equal(c->upstream.urls[0], "http://r:1");
  sg_config_unref(c);
}

static void empty_value_means_unset(void **state) {
  (void)state;
  struct sg_config *c = load_minimal_plus("[saml]\nsp_entity_id =\nemail_attribute =\n");
  assert_string_equal(c->saml.sp_entity_id, "https://redash.example.com/ssogate/metadata");
  assert_null(c->saml.email_attribute);
  sg_config_unref(c);
  c = load_minimal_plus("[saml]\nsp_entity_id = urn:example:sp\nemail_attribute = mail\n"
                        "name_attribute = displayName\ngroups_attribute = groups\n");
  assert_string_equal(c->saml.sp_entity_id, "urn:example:sp");
  assert_string_equal(c->saml.email_attribute, "mail");
  assert_string_equal(c->saml.name_attribute, "displayName");
  assert_string_equal(c->saml.groups_attribute, "groups");
  sg_config_unref(c);
}

static void file_problems_are_reported(void **state) {
  (void)state;
  char *error = NULL;
  assert_null(sg_config_load_new("/nonexistent/ssogate.ini", NULL, &error));
  assert_non_null(strstr(error, "/nonexistent/ssogate.ini"));
  free(error);

  /* 1 MiB + 1 byte of comments: refused before parsing. */
  size_t size = 1024 * 1024 + 1;
  char *big = malloc(size);
  memset(big, '\n', size);
  big[0] = ';';
  char *path = write_temp(big, size, 0600);
  assert_null(sg_config_load_new(path, NULL, &error));
  assert_non_null(strstr(error, "larger than 1 MiB"));
  free(error);
  unlink(path);
  free(path);
  /* Exactly 1 MiB is fine (and, being only comments, fails later for another reason). */
  path = write_temp(big, size - 1, 0600);
  assert_null(sg_config_load_new(path, NULL, &error));
  assert_null(strstr(error, "larger than"));
  assert_non_null(strstr(error, "public_url"));
  free(error);
  unlink(path);
  free(path);
  free(big);

  path = write_temp("[server]\0listen = x\n", 20, 0600);
  assert_null(sg_config_load_new(path, NULL, &error));
  assert_non_null(strstr(error, "NUL"));
  free(error);
  unlink(path);
  free(path);
}

/* A FIFO nobody writes to (a secret "mounted" wrong) once blocked the start
 * in open() for ever: it now reads as empty, at once. */
static void a_fifo_without_a_writer_does_not_block(void **state) {
  (void)state;
  char dir[] = "/tmp/ssogate-fifo-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char path[64];
  snprintf(path, sizeof path, "%s/key.pem", dir);
  assert_int_equal(mkfifo(path, 0600), 0);
  char why[128];
  size_t len = 0;
  char *text = sg_read_small_file_new(path, 65536, true, &len, why, sizeof why);
  assert_non_null(text);
  assert_int_equal(len, 0); /* empty: each caller refuses it in its own words */
  g_free(text);
  char *error = NULL;
  assert_null(sg_config_load_new(path, NULL, &error));
  assert_non_null(error);
  free(error);
  unlink(path);
  rmdir(dir);
}

static void all_errors_are_reported_one_per_line(void **state) {
  (void)state;
  char *error = NULL;
  struct sg_config *c =
      load_with_path("[server]\nlisen = 1\n[log]\nformat = xml\n[bogus]\n", NULL, &error, NULL);
  assert_null(c);
  assert_non_null(strstr(error, "unknown key 'lisen'"));
  assert_non_null(strstr(error, "unknown section [bogus]"));
  assert_non_null(strchr(error, '\n'));
  free(error);
}

/* ---- the environment ---------------------------------------------------------------- */

static void environment_beats_the_file(void **state) {
  (void)state;
  char *env[] = {"PATH=/usr/bin",
                 "SSOGATE_SERVER_LISTEN=127.0.0.1:9999",
                 "SSOGATE_SERVER_PUBLIC_URL=https://env.example.com",
                 "SSOGATE_LOG_LEVEL=debug",
                 "SSOGATE_LOG_FORMAT=text",
                 "SSOGATE_SERVER_MAX_BODY=  2MiB  ",
                 NULL};
  struct sg_config *c = load_ok(MINIMAL "[log]\nlevel = warn\n", env);
  assert_string_equal(c->server.listen_host, "127.0.0.1");
  assert_int_equal(c->server.listen_port, 9999);
  assert_string_equal(c->server.public_url, "https://env.example.com");
  assert_string_equal(c->saml.sp_entity_id, "https://env.example.com/ssogate/metadata");
  assert_int_equal(c->log.level, SG_LOG_DEBUG);
  assert_int_equal(c->log.format, SG_LOG_TEXT);
  assert_int_equal(c->server.max_body, 2 * 1024 * 1024);
  sg_config_unref(c);
}

static void unknown_ssogate_variable_is_an_error(void **state) {
  (void)state;
  expect_minimal_env_error("SSOGATE_SERVER_LISEN=0.0.0.0:80", "SSOGATE_SERVER_LISEN");
  expect_minimal_env_error("SSOGATE_SESION_SECRET=" SECRET, "SSOGATE_SESION_SECRET");
  expect_minimal_env_error("SSOGATE_=1", "SSOGATE_ is not a setting");
  expect_minimal_env_error("SSOGATE_server_listen=0.0.0.0:80", "SSOGATE_server_listen");
  /* Other variables are none of ssogate's business. */
  char *env[] = {"SSOGATEWAY=1", "MY_SSOGATE_X=1", "ssogate_log_level=loud", NULL};
  struct sg_config *c = load_ok(MINIMAL, env);
  sg_config_unref(c);
}

static void bad_environment_value_names_the_variable(void **state) {
  (void)state;
  expect_minimal_env_error("SSOGATE_SERVER_MAX_BODY=lots",
                           "[server] max_body (environment SSOGATE_SERVER_MAX_BODY): 'lots'");
  expect_minimal_env_error("SSOGATE_SERVER_PUBLIC_URL=ftp://x",
                           "[server] public_url (environment SSOGATE_SERVER_PUBLIC_URL): must "
                           "start with http:// or https://");
}

/* ---- [server] ----------------------------------------------------------------------- */

static void public_url_variants(void **state) {
  (void)state;
  struct {
    const char *url, *stored, *host;
    bool https;
  } good[] = {
      {"https://redash.example.com", "https://redash.example.com", "redash.example.com", true},
      {"https://redash.example.com/", "https://redash.example.com", "redash.example.com", true},
      {"http://localhost:8080/", "http://localhost:8080", "localhost:8080", false},
      {"https://[::1]:8443", "https://[::1]:8443", "[::1]:8443", true},
      {"http://10.0.0.1", "http://10.0.0.1", "10.0.0.1", false},
  };
  char entry[256];
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    snprintf(entry, sizeof entry, "SSOGATE_SERVER_PUBLIC_URL=%s", good[i].url);
    struct sg_config *c = load_minimal_env(entry);
    assert_string_equal(c->server.public_url, good[i].stored);
    assert_string_equal(c->server.public_host, good[i].host);
    assert_int_equal(c->server.public_https, good[i].https);
    sg_config_unref(c);
  }
  struct {
    const char *url, *why;
  } bad[] = {
      {"redash.example.com", "must start with http:// or https://"},
      {"ftp://redash.example.com", "must start with http:// or https://"},
      {"HTTPS://redash.example.com", "must start with http:// or https://"},
      {"https://redash.example.com/app", "must not have a path"},
      {"https://redash.example.com//", "must not have a path"},
      {"https://redash.example.com/?a=1", "query or fragment"},
      {"https://redash.example.com?a=1", "query or fragment"},
      {"https://redash.example.com#top", "query or fragment"},
      {"https://user:hunter2@redash.example.com", "user name or password"},
      {"https://", "invalid or empty host"},
      {"https://:443", "invalid or empty host"},
      {"https://red ash.example.com", "invalid or empty host"},
      {"https://redash.example.com:0", "invalid port"},
      {"https://redash.example.com:65536", "invalid port"},
      {"https://redash.example.com:", "invalid port"},
      {"https://redash.example.com:44x", "invalid port"},
      {"https://[zz::1]:443", "IPv6"},
  };
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(entry, sizeof entry, "SSOGATE_SERVER_PUBLIC_URL=%s", bad[i].url);
    char *env[] = {entry, NULL};
    expect_error_env(MINIMAL, env, "[server] public_url", bad[i].why, NULL);
  }
  expect_error(UPSTREAM SESSION ACCESS, "[server] public_url: required");
  expect_error("[server]\npublic_url =\n" UPSTREAM SESSION ACCESS, "[server] public_url (@:2)",
               "required");
}

static void listen_addresses_and_ipv6(void **state) {
  (void)state;
  struct {
    const char *text, *host;
    uint16_t port;
  } good[] = {{"0.0.0.0:8080", "0.0.0.0", 8080}, {"127.0.0.1:0", "127.0.0.1", 0},
              {"[::]:8080", "::", 8080},         {"[::1]:65535", "::1", 65535},
              {"localhost:80", "localhost", 80}, {"[::ffff:10.0.0.1]:1", "::ffff:10.0.0.1", 1}};
  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
    char *host = NULL;
    uint16_t port = 1234;
    if (sg_parse_host_port(good[i].text, &host, &port) != 0)
      fail_msg("'%s' was refused", good[i].text);
    assert_string_equal(host, good[i].host);
    assert_int_equal(port, good[i].port);
    free(host);
  }
  const char *bad[] = {"8080",        ":8080",     "0.0.0.0",     "0.0.0.0:", "0.0.0.0:65536",
                       "::1:80",      "[::1]8080", "[::1]",       "[]:80",    "[::1:80",
                       "a b:80",      "host:+80",  "host: 80",    "host:80 ", "host:0x50",
                       "host:080800", "[x]:80",    "[1.2.3.4]:80", "host:70000"};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char *host = NULL;
    uint16_t port = 0;
    if (sg_parse_host_port(bad[i], &host, &port) != -1)
      fail_msg("'%s' was accepted as host:port", bad[i]);
    assert_null(host);
  }
}

static void listen_in_the_file(void **state) {
  (void)state;
  struct sg_config *c =
      load_ok(SERVER "listen = [::]:0\n" UPSTREAM SESSION ACCESS "[metrics]\nlisten =\n", NULL);
  assert_string_equal(c->server.listen_host, "::");
  assert_int_equal(c->server.listen_port, 0);
  assert_null(c->metrics.listen); /* metrics off */
  assert_null(c->metrics.listen_host);
  sg_config_unref(c);
  c = load_minimal_env("SSOGATE_METRICS_LISTEN=[::1]:9100");
  assert_string_equal(c->metrics.listen, "[::1]:9100");
  assert_string_equal(c->metrics.listen_host, "::1");
  assert_int_equal(c->metrics.listen_port, 9100);
  sg_config_unref(c);
  expect_error(SERVER "listen =\n" UPSTREAM SESSION ACCESS, "[server] listen (@:3)");
  expect_minimal_env_error("SSOGATE_METRICS_LISTEN=9090", "[metrics] listen");
}

static void server_limits(void **state) {
  (void)state;
  expect_minimal_env_error("SSOGATE_SERVER_TRUSTED_PROXIES=17", "[server] trusted_proxies");
  expect_minimal_env_error("SSOGATE_SERVER_TRUSTED_PROXIES=-1", "[server] trusted_proxies");
  expect_minimal_env_error(
      "SSOGATE_SERVER_MAX_BODY=1023",
      "[server] max_body (environment SSOGATE_SERVER_MAX_BODY): at least 1KiB");
  expect_minimal_env_error("SSOGATE_SERVER_CLIENT_TIMEOUT=0s", "[server] client_timeout");
  expect_minimal_env_error("SSOGATE_SERVER_DRAIN_TIMEOUT=0ms", "[server] drain_timeout");
  expect_minimal_env_error("SSOGATE_SERVER_WORKERS=65",
                           "[server] workers (environment SSOGATE_SERVER_WORKERS): at most 64");
  expect_minimal_env_error("SSOGATE_SERVER_MAX_CONNECTIONS=0", "[server] max_connections");
  struct sg_config *c = load_minimal_env("SSOGATE_SERVER_TRUSTED_PROXIES=0");
  assert_int_equal(c->server.trusted_proxies, 0);
  sg_config_unref(c);
  c = load_minimal_env("SSOGATE_SERVER_MAX_BODY=1KiB");
  assert_int_equal(c->server.max_body, 1024);
  sg_config_unref(c);
  c = load_minimal_env("SSOGATE_SERVER_WORKERS=64");
  assert_int_equal(c->server.workers, 64);
  sg_config_unref(c);
  c = load_minimal_env("SSOGATE_SERVER_MAX_CONNECTIONS=100");
  assert_int_equal(c->server.max_connections, 100);
  sg_config_unref(c);
}

/* ---- [upstream] --------------------------------------------------------------------- */

static void upstream_urls(void **state) {
  (void)state;
  struct sg_config *c = load_minimal_env(
      "SSOGATE_UPSTREAM_URL=  http://redash-a:5000/   https://redash-b  http://[fd00::1]:5000");
  assert_int_equal(strv_len(c->upstream.urls), 3);
  assert_string_equal(c->upstream.urls[0], "http://redash-a:5000");
  assert_string_equal(c->upstream.urls[1], "https://redash-b");
  assert_string_equal(c->upstream.urls[2], "http://[fd00::1]:5000");
  sg_config_unref(c);
  expect_minimal_env_error("SSOGATE_UPSTREAM_URL=", "[upstream] url");
  expect_minimal_env_error("SSOGATE_UPSTREAM_URL=http://a:5000 http://b:5000/api",
                           "'http://b:5000/api' must not have a path");
  expect_minimal_env_error("SSOGATE_UPSTREAM_URL=redash:5000", "must start with http://");
  expect_minimal_env_error("SSOGATE_UPSTREAM_URL=http://r:5000?x=1", "query");
  expect_minimal_env_error("SSOGATE_UPSTREAM_URL=http://u:hunter2@r:5000", "user name");
  expect_minimal_env_error("SSOGATE_UPSTREAM_CONNECT_TIMEOUT=0s", "[upstream] connect_timeout");
  expect_minimal_env_error("SSOGATE_UPSTREAM_TIMEOUT=0s", "[upstream] timeout");
  expect_minimal_env_error("SSOGATE_UPSTREAM_HEALTH_PATH=ping", "[upstream] health_path");
  expect_minimal_env_error("SSOGATE_UPSTREAM_HEALTH_PATH=", "[upstream] health_path");
  c = load_minimal_env("SSOGATE_UPSTREAM_HEALTH_PATH=/status");
  assert_string_equal(c->upstream.health_path, "/status");
  sg_config_unref(c);
  expect_minimal_env_error("SSOGATE_UPSTREAM_RESOLVE_INTERVAL=999ms",
                           "[upstream] resolve_interval (environment "
                           "SSOGATE_UPSTREAM_RESOLVE_INTERVAL): must be at least 1s");
  c = load_minimal_env("SSOGATE_UPSTREAM_RESOLVE_INTERVAL=1s");
  assert_int_equal(c->upstream.resolve_interval_ms, 1000);
  sg_config_unref(c);
}

/* ---- [saml] ------------------------------------------------------------------------- */

static void saml_rules(void **state) {
  (void)state;
  expect_error(MINIMAL "[saml]\nsp_key = /etc/sp.key\n",
               "[saml] sp_key (@:10) and [saml] sp_cert: set both or neither");
  expect_error(MINIMAL "[saml]\nsp_cert = /etc/sp.crt\n",
               "[saml] sp_key and [saml] sp_cert (@:10): set both or neither");
  expect_error(MINIMAL "[saml]\nclock_skew = 61m\n", "[saml] clock_skew (@:10): at most 1h");
  struct sg_config *c =
      load_minimal_plus("[saml]\nsp_key = /etc/sp.key\nsp_cert = /etc/sp.crt\nclock_skew = 1h\n"
                        "allow_idp_initiated = yes\n");
  assert_string_equal(c->saml.sp_key, "/etc/sp.key");
  assert_string_equal(c->saml.sp_cert, "/etc/sp.crt");
  assert_int_equal(c->saml.clock_skew_ms, 3600000);
  assert_true(c->saml.allow_idp_initiated);
  sg_config_unref(c);
}

/* ---- [session] ---------------------------------------------------------------------- */

static void secrets_decode_and_rotate(void **state) {
  (void)state;
  struct sg_config *c =
      load_minimal_env("SSOGATE_SESSION_SECRET=" SECRET_URLSAFE "   " SECRET " " SECRET);
  assert_int_equal(c->session.n_secrets, 3);
  assert_int_equal(c->session.secrets[0].len, 33);
  assert_int_equal(c->session.secrets[0].bytes[0], 0xfb);
  assert_int_equal(c->session.secrets[0].bytes[1], 0xff);
  assert_int_equal(c->session.secrets[1].len, 32);
  assert_memory_equal(c->session.secrets[1].bytes, "0123456789abcdef", 16);
  sg_config_unref(c);
  /* Standard alphabet without its padding is the same secret. */
  c = load_minimal_env("SSOGATE_SESSION_SECRET=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY");
  assert_int_equal(c->session.n_secrets, 1);
  assert_int_equal(c->session.secrets[0].len, 32);
  sg_config_unref(c);
}

static void secret_too_short_or_not_base64(void **state) {
  (void)state;
  expect_minimal_env_error("SSOGATE_SESSION_SECRET=" SHORT_SECRET,
                           "[session] secret (environment SSOGATE_SESSION_SECRET): secret 1 of 1 "
                           "decodes to 5 bytes");
  expect_minimal_env_error("SSOGATE_SESSION_SECRET=" SECRET " " SHORT_SECRET, "secret 2 of 2");
  /* 31 bytes */
  expect_minimal_env_error("SSOGATE_SESSION_SECRET=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZQ==",
                           "at least 32 bytes");
  const char *not_base64[] = {"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlh!!!2RlZjAx",
                              "MDEyMzQ1Njc4OWFiY2R=lZjAxMjM0NTY3ODlhYmNkZWYA",
                              "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY===",
                              "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWYxM"};
  char entry[128];
  for (size_t i = 0; i < sizeof not_base64 / sizeof not_base64[0]; i++) {
    snprintf(entry, sizeof entry, "SSOGATE_SESSION_SECRET=%s", not_base64[i]);
    char *env[] = {entry, NULL};
    char *error = NULL;
    assert_null(load_with_path(MINIMAL, env, &error, NULL));
    if (strstr(error, "not valid base64") == NULL)
      fail_msg("'%s': %s", not_base64[i], error);
    assert_null(strstr(error, not_base64[i]));
    free(error);
  }
}

static void exactly_one_of_secret_and_secret_file(void **state) {
  (void)state;
  expect_error(SERVER UPSTREAM ACCESS,
               "set [session] secret or secret_file (base64, >= 32 bytes; generate with: "
               "openssl rand -base64 32)");
  expect_error(SERVER UPSTREAM "[session]\nsecret =\n" ACCESS, "set [session] secret or");
  expect_minimal_env_error("SSOGATE_SESSION_SECRET_FILE=/etc/ssogate/secret", "not both");
}

static void secret_file_must_be_private(void **state) {
  (void)state;
  const char *contents = SECRET "\n\n  " SECRET_URLSAFE "\n";
  char *secret = write_temp(contents, strlen(contents), 0644);
  char entry[256];
  snprintf(entry, sizeof entry, "SSOGATE_SESSION_SECRET_FILE=%s", secret);
  char *env[] = {entry, NULL};
  const char *text = SERVER UPSTREAM ACCESS;

  expect_error_env(text, env, "[session] secret_file (environment SSOGATE_SESSION_SECRET_FILE)",
                   secret, "readable or writable by other users", "chmod 600", NULL);
  assert_int_equal(chmod(secret, 0602), 0);
  expect_error_env(text, env, "readable or writable by other users", NULL);
  assert_int_equal(chmod(secret, 0600), 0);
  struct sg_config *c = load_ok(text, env);
  assert_int_equal(c->session.n_secrets, 2);
  assert_int_equal(c->session.secrets[0].len, 32);
  assert_int_equal(c->session.secrets[1].len, 33);
  sg_config_unref(c);
  assert_int_equal(chmod(secret, 0640), 0); /* a group (the container's) may read it */
  c = load_ok(text, env);
  sg_config_unref(c);
  unlink(secret);
  expect_error_env(text, env, "[session] secret_file", secret, NULL); /* gone */
  free(secret);

  secret = write_temp(SHORT_SECRET "\n", strlen(SHORT_SECRET) + 1, 0600);
  snprintf(entry, sizeof entry, "SSOGATE_SESSION_SECRET_FILE=%s", secret);
  expect_error_env(text, env, "at least 32 bytes", NULL);
  unlink(secret);
  free(secret);

  secret = write_temp("\n \n", 3, 0600);
  snprintf(entry, sizeof entry, "SSOGATE_SESSION_SECRET_FILE=%s", secret);
  expect_error_env(text, env, "holds no secret", NULL);
  unlink(secret);
  free(secret);
}

static void session_rules(void **state) {
  (void)state;
  expect_minimal_env_error("SSOGATE_SESSION_LIFETIME=59s", "[session] lifetime");
  expect_minimal_env_error("SSOGATE_SESSION_LIFETIME=721h", "[session] lifetime");
  expect_minimal_env_error("SSOGATE_SESSION_COOKIE_NAME=bad name", "[session] cookie_name");
  expect_minimal_env_error("SSOGATE_SESSION_COOKIE_NAME=a;b", "[session] cookie_name");
  expect_minimal_env_error("SSOGATE_SESSION_COOKIE_NAME=", "[session] cookie_name");
  expect_minimal_env_error("SSOGATE_SESSION_COOKIE_NAME="
                           "a1234567890123456789012345678901234567890123456789012345678901234",
                           "[session] cookie_name");
  struct sg_config *c = load_minimal_env("SSOGATE_SESSION_LIFETIME=720h");
  assert_true(c->session.lifetime_ms == 720ull * 3600 * 1000);
  sg_config_unref(c);
  c = load_minimal_env("SSOGATE_SESSION_COOKIE_NAME=__sso-gate_1");
  assert_string_equal(c->session.cookie_name, "__sso-gate_1");
  sg_config_unref(c);
  c = load_minimal_env("SSOGATE_SESSION_SESSION_PAGE=on");
  assert_true(c->session.session_page);
  sg_config_unref(c);
  /* Each app cookie is bound to the session: the binding covers 16 names. */
  c = load_minimal_env("SSOGATE_SESSION_APP_COOKIES=a b c d e f g h i j k l m n o p");
  assert_string_equal(c->session.app_cookies[15], "p");
  sg_config_unref(c);
  expect_minimal_env_error("SSOGATE_SESSION_APP_COOKIES=a b c d e f g h i j k l m n o p q",
                           "[session] app_cookies");
  expect_minimal_env_error("SSOGATE_SESSION_APP_COOKIES=a;b", "[session] app_cookies");
}

/* ---- [access] ----------------------------------------------------------------------- */

static void no_access_rule_is_an_error(void **state) {
  (void)state;
  expect_error(SERVER UPSTREAM SESSION,
               "no access rule: set [access] allowed_domains (e.g. example.com, or * for anyone "
               "the IdP vouches for), allowed_emails or allowed_groups");
  expect_error(SERVER UPSTREAM SESSION "[access]\nallowed_domains =\npublic_paths = /static/\n",
               "no access rule");
  /* Any one rule is enough. */
  const char *rules[] = {"[access]\nallowed_domains = *\n",
                         "[access]\nallowed_emails = Alice@Example.COM\n",
                         "[saml]\ngroups_attribute = groups\n[access]\nallowed_groups = Analysts\n"};
  for (size_t i = 0; i < 3; i++) {
    char *text = strcat_new(SERVER UPSTREAM SESSION, rules[i]);
    struct sg_config *c = load_ok(text, NULL);
    if (i == 1)
      assert_string_equal(c->access.allowed_emails[0], "alice@example.com");
    if (i == 2)
      assert_string_equal(c->access.allowed_groups[0], "Analysts"); /* groups keep their case */
    sg_config_unref(c);
    free(text);
  }
}

/* Google sends group names, spaces and all: an entry %-encodes a space. */
static void allowed_groups_unescape_names(void **state) {
  (void)state;
  struct sg_config *c = load_ok(SERVER UPSTREAM SESSION "[saml]\ngroups_attribute = groups\n"
                                                        "[access]\nallowed_groups = Data%20Ops "
                                                        "Engineering 100%25\n",
                                NULL);
  assert_string_equal(c->access.allowed_groups[0], "Data Ops");
  assert_string_equal(c->access.allowed_groups[1], "Engineering");
  assert_string_equal(c->access.allowed_groups[2], "100%");
  assert_null(c->access.allowed_groups[3]);
  sg_config_unref(c);
  expect_error(SERVER UPSTREAM SESSION "[saml]\ngroups_attribute = groups\n[access]\n"
                                       "allowed_groups = Data%2Ops\n",
               "[access] allowed_groups (", "'Data%2Ops' is not a group name");
  expect_error(SERVER UPSTREAM SESSION "[saml]\ngroups_attribute = groups\n[access]\n"
                                       "allowed_groups = %00\n",
               "'%00' is not a group name");
}

/* Issue 24: without [saml] groups_attribute nobody is in any group, so
 * allowed_groups alone used to load and then deny everyone. */
static void allowed_groups_needs_groups_attribute(void **state) {
  (void)state;
  expect_error(SERVER UPSTREAM SESSION "[access]\nallowed_groups = Analysts\n",
               "[access] allowed_groups (", "needs [saml] groups_attribute");
  /* With another rule beside it, still an error: the groups rule would be dead. */
  expect_error(MINIMAL "allowed_groups = Analysts\n", "needs [saml] groups_attribute");
  static char *const env[] = {"SSOGATE_ACCESS_ALLOWED_GROUPS=Analysts", NULL};
  expect_error_env(SERVER UPSTREAM SESSION, env,
                   "[access] allowed_groups (environment SSOGATE_ACCESS_ALLOWED_GROUPS): needs "
                   "[saml] groups_attribute",
                   NULL);
  struct sg_config *c =
      load_ok(SERVER UPSTREAM SESSION "[saml]\ngroups_attribute = memberOf\n[access]\n"
                                      "allowed_groups = Analysts\n",
              NULL);
  sg_config_unref(c);
}

/* What needs an email (issue 18 point 4): a username subject passes "*" and
 * allowed_groups, not a domain or email rule, and never Redash. */
static void email_needed_by(void **state) {
  (void)state;
  struct sg_config *c = load_ok(MINIMAL, NULL);
  assert_string_equal(sg_config_email_needed_by(c), "[access] allowed_domains");
  sg_config_unref(c);
  c = load_ok(SERVER UPSTREAM SESSION "[access]\nallowed_domains = *\n", NULL);
  assert_null(sg_config_email_needed_by(c));
  sg_config_unref(c);
  c = load_ok(SERVER UPSTREAM SESSION "[saml]\ngroups_attribute = g\n[access]\n"
                                      "allowed_groups = eng\nallowed_emails = a@b.test\n",
              NULL);
  assert_string_equal(sg_config_email_needed_by(c), "[access] allowed_emails");
  sg_config_unref(c);
  c = load_ok(SERVER UPSTREAM SESSION "[saml]\ngroups_attribute = g\n[access]\n"
                                      "allowed_groups = eng\n",
              NULL);
  assert_null(sg_config_email_needed_by(c));
  sg_config_unref(c);
  c = load_ok(SERVER "[upstream]\nurl = http://redash:5000\napp = redash\n" SESSION
                     "[access]\nallowed_domains = *\n",
              NULL);
  assert_non_null(strstr(sg_config_email_needed_by(c), "[upstream] app = redash"));
  sg_config_unref(c);
}

static void public_paths_start_with_a_slash(void **state) {
  (void)state;
  expect_minimal_env_error("SSOGATE_ACCESS_PUBLIC_PATHS=/static/ api/",
                           "[access] public_paths (environment SSOGATE_ACCESS_PUBLIC_PATHS): "
                           "'api/' must start with '/'");
  struct sg_config *c = load_minimal_env("SSOGATE_ACCESS_PUBLIC_PATHS=/static/  /api/health");
  assert_int_equal(strv_len(c->access.public_paths), 2);
  assert_string_equal(c->access.public_paths[1], "/api/health");
  sg_config_unref(c);
}

/* ---- [headers] ---------------------------------------------------------------------- */

static void empty_header_value_disables_it(void **state) {
  (void)state;
  struct sg_config *c = load_minimal_plus("[headers]\nuser =\nemail =   ; off\ngroups =\n"
                                          "jwt =\njwt_key =\n");
  assert_null(c->headers.user);
  assert_null(c->headers.email);
  assert_null(c->headers.groups);
  assert_null(c->headers.jwt);
  assert_null(c->headers.jwt_keys[0]); /* fine without a JWT */
  sg_config_unref(c);
  c = load_minimal_env("SSOGATE_HEADERS_JWT=");
  assert_null(c->headers.jwt);
  assert_string_equal(c->headers.user, "X-Forwarded-Remote-User");
  sg_config_unref(c);
}

static void header_rules(void **state) {
  (void)state;
  expect_minimal_env_error("SSOGATE_HEADERS_USER=X Remote User", "[headers] user");
  expect_minimal_env_error("SSOGATE_HEADERS_EMAIL=X-Email:", "[headers] email");
  expect_minimal_env_error("SSOGATE_HEADERS_GROUPS=X_Groups", "[headers] groups");
  expect_minimal_env_error("SSOGATE_HEADERS_JWT_KEY=",
                           "[headers] jwt_key (environment SSOGATE_HEADERS_JWT_KEY): required");
  expect_minimal_plus_error("[headers]\njwt_key =\n", "[headers] jwt_key (@:10): required");
  expect_minimal_env_error("SSOGATE_HEADERS_JWT_TTL=29s", "[headers] jwt_ttl");
  expect_minimal_env_error("SSOGATE_HEADERS_JWT_TTL=25h", "[headers] jwt_ttl");
  expect_minimal_env_error("SSOGATE_HEADERS_JWT_AUDIENCE=", "[headers] jwt_audience");
  struct sg_config *c = load_minimal_plus(
      "[headers]\nuser = X-Remote-User\njwt = Authorization\njwt_key = /a.pem /b.pem\n"
      "jwt_issuer = https://sso.example.com\njwt_audience = redash-prod\njwt_ttl = 24h\n");
  assert_string_equal(c->headers.user, "X-Remote-User");
  assert_string_equal(c->headers.jwt, "Authorization");
  assert_int_equal(strv_len(c->headers.jwt_keys), 2);
  assert_string_equal(c->headers.jwt_issuer, "https://sso.example.com");
  assert_string_equal(c->headers.jwt_audience, "redash-prod");
  assert_int_equal(c->headers.jwt_ttl_ms, 24 * 3600 * 1000);
  sg_config_unref(c);
}

/* ---- [store] and [log] -------------------------------------------------------------- */

static void store_urls(void **state) {
  (void)state;
  const char *good[] = {"memory", "redis://redis:6379/0", "rediss://redis.example.com:6380"};
  char entry[128];
  for (size_t i = 0; i < 3; i++) {
    snprintf(entry, sizeof entry, "SSOGATE_STORE_URL=%s", good[i]);
    struct sg_config *c = load_minimal_env(entry);
    assert_string_equal(c->store.url, good[i]);
    sg_config_unref(c);
  }
  expect_minimal_env_error("SSOGATE_STORE_URL=memcached://x", "[store] url");
  expect_minimal_env_error("SSOGATE_STORE_URL=", "[store] url");
  /* The password is not repeated in the message. */
  expect_minimal_env_error("SSOGATE_STORE_URL=redis:/:hunter2@r", "[store] url");
}

static void log_settings(void **state) {
  (void)state;
  const char *levels[] = {"debug", "info", "warn", "error"};
  char entry[64];
  for (int i = 0; i < 4; i++) {
    snprintf(entry, sizeof entry, "SSOGATE_LOG_LEVEL=%s", levels[i]);
    struct sg_config *c = load_minimal_env(entry);
    assert_int_equal(c->log.level, i);
    sg_config_unref(c);
  }
  expect_minimal_env_error("SSOGATE_LOG_LEVEL=verbose", "[log] level");
  expect_minimal_env_error("SSOGATE_LOG_LEVEL=warning", "[log] level");
  expect_minimal_env_error("SSOGATE_LOG_FORMAT=xml", "[log] format");
}

/* ---- the snapshot ------------------------------------------------------------------- */

static void refcount_keeps_the_snapshot_alive(void **state) {
  (void)state;
  struct sg_config *c = load_ok(MINIMAL, NULL);
  assert_ptr_equal(sg_config_ref(c), c);
  assert_int_equal(c->refs, 2);
  sg_config_unref(c);
  assert_int_equal(c->refs, 1);
  assert_string_equal(c->server.public_url, "https://redash.example.com"); /* still alive */
  sg_config_unref(c); /* freed: ASan reports a leak or a double free otherwise */
  sg_config_unref(NULL);
}

static void *ref_unref_many(void *arg) {
  struct sg_config *c = arg;
  for (int i = 0; i < 100000; i++)
    sg_config_unref(sg_config_ref(c));
  return NULL;
}

static void refcount_is_atomic(void **state) {
  (void)state;
  struct sg_config *c = load_ok(MINIMAL, NULL);
  pthread_t threads[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&threads[i], NULL, ref_unref_many, c), 0);
  for (int i = 0; i < 4; i++)
    pthread_join(threads[i], NULL);
  assert_int_equal(c->refs, 1);
  sg_config_unref(c);
}

static char *summary_new(struct sg_config *c) {
  char *text = NULL;
  size_t size = 0;
  FILE *out = open_memstream(&text, &size);
  assert_non_null(out);
  sg_config_print_summary(c, out);
  fclose(out);
  return text;
}

static void summary_shows_settings_but_no_secret(void **state) {
  (void)state;
  char *env[] = {"SSOGATE_STORE_URL=redis://ssogate:hunter2@redis:6379/0",
                 "SSOGATE_SESSION_SECRET=" SECRET " " SECRET_URLSAFE, NULL};
  struct sg_config *c = load_ok(MINIMAL, env);
  char *text = summary_new(c);
  const char *expected[] = {"https://redash.example.com",
                            "0.0.0.0:8080",
                            "http://redash:5000",
                            "/ssogate/metadata",
                            "2 (the first seals)",
                            "example.com",
                            "X-Forwarded-Remote-User",
                            "/etc/ssogate/jwt.key",
                            "30 per 1m",
                            "redis://ssogate:***@redis:6379/0",
                            "127.0.0.1:9090",
                            "info, json",
                            "75s"};
  for (size_t i = 0; i < sizeof expected / sizeof expected[0]; i++)
    if (strstr(text, expected[i]) == NULL)
      fail_msg("summary lacks '%s':\n%s", expected[i], text);
  assert_null(strstr(text, "hunter2"));
  assert_null(strstr(text, SECRET));
  assert_null(strstr(text, SECRET_URLSAFE));
  free(text);
  sg_config_unref(c);

  char *env2[] = {"SSOGATE_STORE_URL=rediss://:hunter2@redis", "SSOGATE_METRICS_LISTEN=", NULL};
  c = load_ok(MINIMAL, env2);
  text = summary_new(c);
  assert_non_null(strstr(text, "rediss://:***@redis"));
  assert_null(strstr(text, "hunter2"));
  assert_non_null(strstr(text, "(off)"));
  free(text);
  sg_config_unref(c);

  /* Generated passwords hold '/' and '@' (base64, pasted as is): the store
   * connects with all after the last '@' as host, so the mask covers up to it. */
  const char *urls[] = {"SSOGATE_STORE_URL=redis://:hun/ter2@redis:6379/0",
                        "SSOGATE_STORE_URL=redis://u:hun@ter2@redis:6379/0",
                        "SSOGATE_STORE_URL=redis://hun/t@er2@redis"};
  const char *shown[] = {"redis://:***@redis:6379/0", "redis://u:***@redis:6379/0",
                         "redis://***@redis"};
  for (size_t i = 0; i < sizeof urls / sizeof *urls; i++) {
    char *env3[] = {(char *)urls[i], NULL};
    c = load_ok(MINIMAL, env3);
    text = summary_new(c);
    if (strstr(text, shown[i]) == NULL || strstr(text, "ter2") != NULL ||
        strstr(text, "hun") != NULL)
      fail_msg("%s shown as:\n%s", urls[i], text);
    free(text);
    sg_config_unref(c);
  }
}

/* ---- the example file --------------------------------------------------------------- */

static char *example_path_new(void) {
  const char *root = getenv("SSOGATE_SOURCE_ROOT");
  const char *candidates[] = {root, ".", ".."};
  for (size_t i = 0; i < 3; i++) {
    if (candidates[i] == NULL)
      continue;
    char *path = malloc(strlen(candidates[i]) + 64);
    sprintf(path, "%s/conf/ssogate.example.ini", candidates[i]);
    if (access(path, R_OK) == 0)
      return path;
    free(path);
  }
  fail_msg("conf/ssogate.example.ini not found (set SSOGATE_SOURCE_ROOT)");
  return NULL;
}

/* [upstream] app = redash fills only what is not set; generic changes nothing. */
static void redash_preset_fills_defaults_and_yields_to_keys(void **state) {
  (void)state;
  struct sg_config *c = load_ok(MINIMAL, NULL);
  assert_string_equal(c->upstream.app, "generic");
  assert_null(c->upstream.preset_note);
  assert_null(c->access.app_credentials);
  assert_null(c->session.logout_paths[0]);
  assert_int_equal(c->ratelimit.credential_failures_count, 20);
  assert_int_equal(c->ratelimit.credential_failures_period_ms, 60000);
  sg_config_unref(c);

  char *env[] = {"SSOGATE_UPSTREAM_APP=redash", NULL};
  c = load_ok(SERVER UPSTREAM SESSION "app_cookies = sid\n[access]\nallowed_domains = x\n"
                                      "public_paths = /healthcheck\n",
              env);
  assert_string_equal(c->upstream.health_path, "/ping");
  assert_string_equal(c->session.logout_paths[0], "/logout");
  assert_string_equal(c->session.app_cookies[0], "sid"); /* set: kept */
  assert_null(c->session.app_cookies[1]);
  assert_string_equal(c->access.app_credentials, "redash");
  assert_string_equal(c->access.public_paths[0], "/static/");
  assert_string_equal(c->access.public_paths[1], "/api/config");
  assert_string_equal(c->access.public_paths[2], "/healthcheck"); /* added to, not replaced */
  assert_non_null(strstr(c->upstream.preset_note, "[session] logout_paths = /logout"));
  assert_null(strstr(c->upstream.preset_note, "app_cookies"));
  sg_config_unref(c);

  char *off[] = {"SSOGATE_UPSTREAM_APP=redash", "SSOGATE_ACCESS_APP_CREDENTIALS=", NULL};
  c = load_ok(MINIMAL, off);
  assert_null(c->access.app_credentials); /* set to empty: off, whatever the preset */
  sg_config_unref(c);

  expect_minimal_env_error("SSOGATE_UPSTREAM_APP=Redash", "generic or redash");
  expect_minimal_env_error("SSOGATE_ACCESS_APP_CREDENTIALS=metabase", "empty (off) or redash");
  expect_minimal_env_error("SSOGATE_RATELIMIT_CREDENTIAL_FAILURES=0/m",
                           "[ratelimit] credential_failures");
}

static void example_file_loads_with_a_secret_from_the_environment(void **state) {
  (void)state;
  char *path = example_path_new();
  char *env[] = {"SSOGATE_SESSION_SECRET=" SECRET, NULL};
  char *error = NULL;
  struct sg_config *c = sg_config_load_new(path, env, &error);
  if (c == NULL)
    fail_msg("the example did not load: %s", error);
  assert_string_equal(c->server.public_url, "https://redash.example.com");
  assert_string_equal(c->access.allowed_domains[0], "example.com");
  assert_int_equal(c->session.n_secrets, 1);
  assert_int_equal(c->server.max_connections, 4096);
  assert_string_equal(c->upstream.health_path, "/ping");
  sg_config_unref(c);

  /* Without the secret it says what to do. */
  assert_null(sg_config_load_new(path, NULL, &error));
  assert_non_null(strstr(error, "openssl rand -base64 32"));
  free(error);
  free(path);
}

static void example_file_documents_every_key(void **state) {
  (void)state;
  static const char *const keys[] = {"[server]",
                                     "listen",
                                     "public_url",
                                     "trusted_proxies",
                                     "max_body",
                                     "client_timeout",
                                     "drain_timeout",
                                     "max_connections",
                                     "workers",
                                     "[upstream]",
                                     "url",
                                     "connect_timeout",
                                     "timeout",
                                     "health_path",
                                     "[saml]",
                                     "idp_metadata",
                                     "sp_entity_id",
                                     "sp_key",
                                     "sp_cert",
                                     "clock_skew",
                                     "allow_idp_initiated",
                                     "email_attribute",
                                     "name_attribute",
                                     "groups_attribute",
                                     "[session]",
                                     "secret",
                                     "secret_file",
                                     "lifetime",
                                     "cookie_name",
                                     "session_page",
                                     "logout_paths",
                                     "app_cookies",
                                     "[access]",
                                     "allowed_domains",
                                     "allowed_emails",
                                     "allowed_groups",
                                     "public_paths",
                                     "[headers]",
                                     "user",
                                     "email",
                                     "groups",
                                     "jwt",
                                     "jwt_key",
                                     "jwt_issuer",
                                     "jwt_audience",
                                     "jwt_ttl",
                                     "[ratelimit]",
                                     "login",
                                     "burst",
                                     "[store]",
                                     "[metrics]",
                                     "[log]",
                                     "level",
                                     "format"};
  char *path = example_path_new();
  FILE *f = fopen(path, "r");
  assert_non_null(f);
  static char text[65536];
  size_t n = fread(text, 1, sizeof text - 1, f);
  text[n] = '\0';
  fclose(f);
  for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
    char needle[64];
    if (keys[i][0] == '[')
      snprintf(needle, sizeof needle, "\n%s", keys[i]);
    else
      snprintf(needle, sizeof needle, "\n%s =", keys[i]);
    if (strstr(text, needle) == NULL)
      fail_msg("the example does not document '%s'", keys[i]);
  }
  free(path);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(minimal_config_loads_with_design_defaults),
      cmocka_unit_test(environment_alone_is_enough),
      cmocka_unit_test(durations_take_ms_s_m_h),
      cmocka_unit_test(bad_durations_are_refused),
      cmocka_unit_test(bare_duration_in_the_file_needs_a_unit),
      cmocka_unit_test(sizes_take_b_kib_mib_gib),
      cmocka_unit_test(bad_sizes_are_refused),
      cmocka_unit_test(booleans_take_the_usual_words),
      cmocka_unit_test(booleans_refuse_other_words),
      cmocka_unit_test(lists_are_space_separated),
      cmocka_unit_test(rates_are_count_per_period),
      cmocka_unit_test(unknown_key_names_file_and_line),
      cmocka_unit_test(unknown_section_names_file_and_line),
      cmocka_unit_test(syntax_errors_name_the_line),
      cmocka_unit_test(repeated_key_or_section_is_an_error),
      cmocka_unit_test(comments_full_line_and_inline),
      cmocka_unit_test(whitespace_crlf_and_bom_are_tolerated),
      cmocka_unit_test(empty_value_means_unset),
      cmocka_unit_test(file_problems_are_reported),
      cmocka_unit_test(a_fifo_without_a_writer_does_not_block),
      cmocka_unit_test(all_errors_are_reported_one_per_line),
      cmocka_unit_test(environment_beats_the_file),
      cmocka_unit_test(unknown_ssogate_variable_is_an_error),
      cmocka_unit_test(bad_environment_value_names_the_variable),
      cmocka_unit_test(public_url_variants),
      cmocka_unit_test(listen_addresses_and_ipv6),
      cmocka_unit_test(listen_in_the_file),
      cmocka_unit_test(server_limits),
      cmocka_unit_test(upstream_urls),
      cmocka_unit_test(saml_rules),
      cmocka_unit_test(secrets_decode_and_rotate),
      cmocka_unit_test(secret_too_short_or_not_base64),
      cmocka_unit_test(exactly_one_of_secret_and_secret_file),
      cmocka_unit_test(secret_file_must_be_private),
      cmocka_unit_test(session_rules),
      cmocka_unit_test(no_access_rule_is_an_error),
      cmocka_unit_test(allowed_groups_needs_groups_attribute),
      cmocka_unit_test(allowed_groups_unescape_names),
      cmocka_unit_test(email_needed_by),
      cmocka_unit_test(public_paths_start_with_a_slash),
      cmocka_unit_test(empty_header_value_disables_it),
      cmocka_unit_test(header_rules),
      cmocka_unit_test(store_urls),
      cmocka_unit_test(log_settings),
      cmocka_unit_test(refcount_keeps_the_snapshot_alive),
      cmocka_unit_test(refcount_is_atomic),
      cmocka_unit_test(summary_shows_settings_but_no_secret),
      cmocka_unit_test(example_file_loads_with_a_secret_from_the_environment),
      cmocka_unit_test(example_file_documents_every_key),
      cmocka_unit_test(login_credit_is_bounded),
      cmocka_unit_test(support_contact_is_a_mailbox_or_a_web_page),
      cmocka_unit_test(redash_preset_fills_defaults_and_yields_to_keys),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
