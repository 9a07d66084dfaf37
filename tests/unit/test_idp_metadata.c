/*
 * test_idp_metadata.c - the IdP side of the trust: expired certificates
 * that degrade instead of failing the load, the swap of URL metadata
 * (refresh, rollover, refusal that keeps the last good document, the cache
 * file), xs:duration, [saml] acs_path reaching the ACS URL, and a metadata
 * file with two valid certificates (Google's rotation).
 *
 * Fixtures from tests/unit/saml_fixtures.py, as test_saml.c uses them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <glib.h>

#include "auth/identity.h"
#include "auth/saml_sp.h"

static char fixture_dir[256];

static char *fixture_path(const char *name) { return g_build_filename(fixture_dir, name, NULL); }

static char *fixture(const char *name, size_t *len) {
  g_autofree char *path = fixture_path(name);
  char *data = NULL;
  gsize n = 0;
  if (!g_file_get_contents(path, &data, &n, NULL))
    fail_msg("cannot read fixture %s", name);
  if (len)
    *len = n;
  return data;
}

static int make_fixtures(void) {
  char tmpl[] = "/tmp/ssogate-idpmd-XXXXXX";
  if (mkdtemp(tmpl) == NULL)
    return -1;
  g_strlcpy(fixture_dir, tmpl, sizeof fixture_dir);
  const char *root = getenv("SSOGATE_SOURCE_ROOT");
  g_autofree char *cmd = g_strdup_printf("/usr/bin/python3 %s/tests/unit/saml_fixtures.py %s",
                                         root && root[0] ? root : ".", fixture_dir);
  return system(cmd) == 0 ? 0 : -1;
}

static void remove_fixtures(void) {
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", fixture_dir);
  if (fixture_dir[0] != '\0' && system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", fixture_dir);
}

static void config_init(struct sg_config *c, const char *metadata) {
  memset(c, 0, sizeof *c);
  c->server.public_url = (char *)"http://sp.test";
  c->saml.idp_metadata = (char *)metadata;
  c->saml.sp_entity_id = (char *)"http://sp.test/ssogate/metadata";
  c->saml.clock_skew_ms = 180000;
  c->saml.metadata_refresh_ms = 3600 * 1000;
  c->saml.acs_path = (char *)"/ssogate/acs";
  c->session.lifetime_ms = 3600 * 1000;
}

static struct sg_saml_sp *sp_from_file(const char *name, bool accept_expired) {
  g_autofree char *path = fixture_path(name);
  struct sg_config c;
  config_init(&c, path);
  c.saml.accept_expired_idp_certificate = accept_expired;
  char *error = NULL;
  struct sg_saml_sp *sp = sg_saml_sp_new(&c, &error);
  if (sp == NULL)
    fail_msg("sg_saml_sp_new: %s", error ? error : "?");
  return sp;
}

/* ---- point 4: expired IdP certificates ------------------------------------- */

static void test_expired_loads_and_degrades(void **state) {
  (void)state;
  struct sg_saml_sp *sp = sp_from_file("idp-metadata-expired.xml", false);
  int64_t now = (int64_t)time(NULL);
  char why[700];
  assert_int_equal(sg_saml_sp_idp_status(sp, now, why, sizeof why), -1);
  assert_non_null(strstr(why, "CN=ssogate test IdP\\, retired")); /* RFC 2253 */
  assert_non_null(strstr(why, "expired at"));
  assert_true(sg_saml_sp_idp_cert_not_after(sp, 0) < now);

  /* The login is refused with its own reason, not "signature". */
  g_autofree char *b64 = fixture("happy_both_signed.b64", NULL);
  struct sg_saml_result r;
  assert_int_equal(sg_saml_acs_validate(sp, b64, "_req123", now, &r), -1);
  assert_int_equal(r.failure, SG_SAML_IDP_CERT_EXPIRED);
  assert_string_equal(sg_saml_failure_name(r.failure), "idp_certificate_expired");
  sg_saml_sp_free(sp);

  /* Accepted by configuration: ready, and the expired key is tried (this
   * response is signed by another key, so it is a plain signature failure). */
  sp = sp_from_file("idp-metadata-expired.xml", true);
  assert_int_equal(sg_saml_sp_idp_status(sp, now, why, sizeof why), 0);
  assert_non_null(strstr(why, "accepted"));
  assert_int_equal(sg_saml_acs_validate(sp, b64, "_req123", now, &r), -1);
  assert_int_equal(r.failure, SG_SAML_SIGNATURE);
  sg_saml_sp_free(sp);
}

static void test_expires_while_running(void **state) {
  (void)state;
  /* Judged at the time asked, not at load: a year and a day later the
   * valid certificate has expired too. */
  struct sg_saml_sp *sp = sp_from_file("idp-metadata.xml", false);
  int64_t now = (int64_t)time(NULL), later = now + 367 * 86400;
  char why[700];
  assert_int_equal(sg_saml_sp_idp_status(sp, now, why, sizeof why), 0);
  assert_string_equal(why, "ok");
  assert_int_equal(sg_saml_sp_idp_status(sp, later, why, sizeof why), -1);
  assert_non_null(strstr(why, "CN=ssogate test IdP"));
  g_autofree char *b64 = fixture("happy_both_signed.b64", NULL);
  struct sg_saml_result r;
  assert_int_equal(sg_saml_acs_validate(sp, b64, "_req123", now, &r), 0);
  sg_identity_clear(&r.identity);
  assert_int_equal(sg_saml_acs_validate(sp, b64, "_req123", later, &r), -1);
  assert_int_equal(r.failure, SG_SAML_IDP_CERT_EXPIRED);
  sg_saml_sp_free(sp);
}

/* ---- point 5: the swap ---------------------------------------------------------- */

static void test_url_metadata_swap(void **state) {
  (void)state;
  g_autofree char *cache = fixture_path("cache.xml");
  struct sg_config c;
  config_init(&c, "http://127.0.0.1:1/metadata");
  c.saml.metadata_cache = cache;
  c.saml.metadata_refresh_ms = 600 * 1000;
  char *error = NULL;
  struct sg_saml_sp *sp = sg_saml_sp_new(&c, &error);
  assert_non_null(sp);
  int64_t now = (int64_t)time(NULL);
  char why[700];

  /* Nothing fetched, no cache: loads, not ready, nobody can sign in. */
  assert_null(sg_saml_sp_idp_ref(sp));
  assert_int_equal(sg_saml_sp_idp_status(sp, now, why, sizeof why), -1);
  assert_non_null(strstr(why, "not loaded"));
  assert_int_equal(sg_saml_sp_next_refresh(sp), 0);

  size_t len = 0, rot_len = 0;
  g_autofree char *one = fixture("idp-metadata.xml", &len);
  g_autofree char *two = fixture("idp-metadata-rotation.xml", &rot_len);
  bool changed = false;
  assert_int_equal(sg_saml_sp_metadata_offer(sp, one, len, now, &changed, &error), 0);
  assert_true(changed);
  assert_int_equal(sg_saml_sp_next_refresh(sp), now + 600);
  struct sg_saml_idp *held = sg_saml_sp_idp_ref(sp);
  assert_int_equal(sg_saml_idp_cert_count(held), 1);

  /* The cache: the same bytes, mode 0600. */
  struct stat st;
  assert_int_equal(stat(cache, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  assert_int_equal((size_t)st.st_size, len);

  /* Unchanged: no new document. */
  assert_int_equal(sg_saml_sp_metadata_offer(sp, one, len, now + 1, &changed, &error), 0);
  assert_false(changed);

  /* Rollover: two certificates; the login in flight keeps its document. */
  assert_int_equal(sg_saml_sp_metadata_offer(sp, two, rot_len, now, &changed, &error), 0);
  assert_true(changed);
  struct sg_saml_idp *current = sg_saml_sp_idp_ref(sp);
  assert_int_equal(sg_saml_idp_cert_count(current), 2);
  assert_int_equal(sg_saml_idp_cert_count(held), 1);
  sg_saml_idp_unref(held);

  /* Garbage and an expired validUntil are refused; the last good stays. */
  assert_int_equal(sg_saml_sp_metadata_offer(sp, "<x/>", 4, now, &changed, &error), -1);
  assert_non_null(strstr(error, "expected one md:EntityDescriptor"));
  free(error);
  g_autofree char *old = g_strdup(one);
  g_autofree char *stale_doc = NULL;
  char *at = strstr(old, "entityID=");
  assert_non_null(at);
  stale_doc =
      g_strdup_printf("%.*svalidUntil=\"2001-01-01T00:00:00Z\" %s", (int)(at - old), old, at);
  assert_int_equal(
      sg_saml_sp_metadata_offer(sp, stale_doc, strlen(stale_doc), now, &changed, &error), -1);
  assert_non_null(strstr(error, "validUntil has passed"));
  free(error);
  sg_saml_sp_metadata_failed(sp, "test failure", now);
  struct sg_saml_idp *after = sg_saml_sp_idp_ref(sp);
  assert_ptr_equal(after, current);
  sg_saml_idp_unref(after);
  sg_saml_idp_unref(current);
  assert_int_equal(sg_saml_sp_next_refresh(sp), now + 60);

  /* Stale after a day without a good fetch. */
  assert_int_equal(sg_saml_sp_idp_status(sp, now + 25 * 3600, why, sizeof why), -1);
  assert_non_null(strstr(why, "stale"));
  assert_non_null(strstr(why, "test failure"));
  sg_saml_sp_free(sp);

  /* cacheDuration shortens the interval. */
  g_autofree char *short_doc =
      g_strdup_printf("%.*scacheDuration=\"PT30S\" %s", (int)(at - old), old, at);
  sp = sg_saml_sp_new(&c, &error); /* starts from this process's last good (rotation) */
  assert_non_null(sp);
  held = sg_saml_sp_idp_ref(sp);
  assert_non_null(held);
  assert_int_equal(sg_saml_idp_cert_count(held), 2);
  sg_saml_idp_unref(held);
  assert_int_equal(
      sg_saml_sp_metadata_offer(sp, short_doc, strlen(short_doc), now, &changed, &error), 0);
  assert_int_equal(sg_saml_sp_next_refresh(sp), now + 30);
  sg_saml_sp_free(sp);
}

static void test_duration(void **state) {
  (void)state;
  assert_int_equal(sg_saml_parse_duration("PT1H"), 3600);
  assert_int_equal(sg_saml_parse_duration("P1D"), 86400);
  assert_int_equal(sg_saml_parse_duration("P1DT2H3M4S"), 86400 + 7200 + 180 + 4);
  assert_int_equal(sg_saml_parse_duration("PT0.5S"), 0);
  assert_int_equal(sg_saml_parse_duration("P1M"), 30 * 86400);
  assert_int_equal(sg_saml_parse_duration("PT1M"), 60);
  assert_int_equal(sg_saml_parse_duration("P"), -1);
  assert_int_equal(sg_saml_parse_duration("PT"), -1);
  assert_int_equal(sg_saml_parse_duration("-PT1H"), -1);
  assert_int_equal(sg_saml_parse_duration("PT1H1H"), -1);
  assert_int_equal(sg_saml_parse_duration("P1H"), -1);
  assert_int_equal(sg_saml_parse_duration("PT1D"), -1);
  assert_int_equal(sg_saml_parse_duration("P1.5D"), -1);
  assert_int_equal(sg_saml_parse_duration("P99999999999999999Y"), -1);
  assert_int_equal(sg_saml_parse_duration(NULL), -1);
}

/* ---- point 6: acs_path ---------------------------------------------------------- */

static void test_acs_path(void **state) {
  (void)state;
  g_autofree char *path = fixture_path("idp-metadata.xml");
  struct sg_config c;
  config_init(&c, path);
  c.saml.acs_path = (char *)"/saml/callback?org_slug=default";
  char *error = NULL;
  struct sg_saml_sp *sp = sg_saml_sp_new(&c, &error);
  assert_non_null(sp);
  assert_string_equal(sg_saml_sp_acs_url(sp), "http://sp.test/saml/callback?org_slug=default");
  /* In the metadata, escaped by libxml2. */
  char *xml = sg_saml_sp_metadata_new(sp);
  assert_non_null(strstr(xml, "Location=\"http://sp.test/saml/callback?org_slug=default\""));
  free(xml);
  /* The fixture's Destination/Recipient is /ssogate/acs: refused here. */
  g_autofree char *b64 = fixture("happy_both_signed.b64", NULL);
  struct sg_saml_result r;
  assert_int_equal(sg_saml_acs_validate(sp, b64, "_req123", (int64_t)time(NULL), &r), -1);
  assert_true(r.failure == SG_SAML_DESTINATION || r.failure == SG_SAML_RECIPIENT);
  sg_saml_sp_free(sp);
}

/* ---- Google's rotation: a metadata file with two valid certificates ------------ */

/* Google's custom SAML app: the admin adds a second certificate in the Admin
 * console and switches the app to it; the SP must trust both in between
 * (docs/idp/google-workspace.md, "Certificate rotation").  The file is shaped
 * like GoogleIDPMetadata.xml after that recipe: validUntil on the entity,
 * the current certificate first, the new one second, both valid. */
static const char rotation_py[] =
    "import base64, sys, datetime\n"
    "sys.path.insert(0, sys.argv[1])\n"
    "import saml_fixtures as fx\n"
    "out = sys.argv[2]\n"
    "cert = open(out + '/idp.crt', 'rb').read()\n"
    "new_key, new_cert = fx.make_keypair('Google, the new certificate')\n"
    "until = (fx.now() + datetime.timedelta(days=300)).strftime('%Y-%m-%dT%H:%M:%S.000Z')\n"
    "def google(*certs):\n"
    "    xml = fx.idp_metadata_xml(*certs)\n"
    "    return xml.replace(b' entityID=', b' validUntil=\"' + until.encode() + b'\" entityID=', 1)\n"
    "open(out + '/google-both.xml', 'wb').write(google(cert, new_cert))\n"
    "open(out + '/google-current-only.xml', 'wb').write(google(cert))\n"
    "rsp = fx.sign_tree(fx.build_tree(), 'assertion', new_key, new_cert)\n"
    "open(out + '/signed_by_new_cert.b64', 'w').write(base64.b64encode(fx.to_bytes(rsp)).decode())\n";

static void test_file_with_two_valid_certificates_trusts_both(void **state) {
  (void)state;
  const char *root = getenv("SSOGATE_SOURCE_ROOT");
  g_autofree char *script = fixture_path("rotation.py");
  assert_true(g_file_set_contents(script, rotation_py, -1, NULL));
  g_autofree char *cmd = g_strdup_printf("/usr/bin/python3 %s %s/tests/unit %s", script,
                                         root && root[0] ? root : ".", fixture_dir);
  assert_int_equal(system(cmd), 0);
  int64_t now = (int64_t)time(NULL);
  g_autofree char *by_current = fixture("happy_assertion_signed.b64", NULL);
  g_autofree char *by_new = fixture("signed_by_new_cert.b64", NULL);
  struct sg_saml_result r;

  /* Before: the new certificate is not trusted (so the test can fail). */
  struct sg_saml_sp *sp = sp_from_file("google-current-only.xml", false);
  assert_int_equal(sg_saml_acs_validate(sp, by_new, "_req123", now, &r), -1);
  assert_int_equal(r.failure, SG_SAML_SIGNATURE);
  sg_saml_sp_free(sp);

  /* During: both listed, both valid, a response signed by either passes. */
  sp = sp_from_file("google-both.xml", false);
  assert_int_equal(sg_saml_sp_idp_cert_count(sp), 2);
  assert_true(sg_saml_sp_idp_cert_not_after(sp, 0) > now);
  assert_true(sg_saml_sp_idp_cert_not_after(sp, 1) > now);
  char why[700];
  assert_int_equal(sg_saml_sp_idp_status(sp, now, why, sizeof why), 0);
  assert_int_equal(sg_saml_acs_validate(sp, by_current, "_req123", now, &r), 0);
  sg_identity_clear(&r.identity);
  assert_int_equal(sg_saml_acs_validate(sp, by_new, "_req123", now, &r), 0);
  sg_identity_clear(&r.identity);
  sg_saml_sp_free(sp);
}

int main(void) {
  if (sg_saml_global_init() != 0 || make_fixtures() != 0) {
    fprintf(stderr, "setup failed\n");
    remove_fixtures();
    return 1;
  }
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_expired_loads_and_degrades),
      cmocka_unit_test(test_expires_while_running),
      cmocka_unit_test(test_url_metadata_swap),
      cmocka_unit_test(test_duration),
      cmocka_unit_test(test_acs_path),
      cmocka_unit_test(test_file_with_two_valid_certificates_trusts_both),
  };
  int failed = cmocka_run_group_tests_name("idp_metadata", tests, NULL, NULL);
  remove_fixtures();
  sg_saml_global_cleanup();
  return failed;
}
