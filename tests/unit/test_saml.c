/*
 * test_saml.c - the SAML service provider against real signed responses:
 * the happy paths in all three signing modes and one case per attack family
 * (tests/unit/saml_fixtures.py writes them; cases.txt says what each must
 * yield).  Also AuthnRequest building, SP metadata, IdP metadata loading,
 * and 50 threads validating at once with one shared sp.
 *
 * Needs /usr/bin/python3 with lxml, xmlsec and cryptography (Debian:
 * python3-lxml python3-xmlsec python3-cryptography).
 */
#include <errno.h>
#include <pthread.h>
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
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "auth/identity.h"
#include "auth/saml_sp.h"

#define SP_PUBLIC_URL "http://sp.test"
#define SP_ENTITY_ID "http://sp.test/ssogate/metadata"
#define ACS_URL "http://sp.test/ssogate/acs"
#define IDP_ENTITY_ID "https://accounts.google.com/o/saml2?idpid=abc"
#define IDP_SSO_URL "https://accounts.google.com/o/saml2/idp?idpid=abc"
#define THREADS 50

struct fixture_case {
  char name[128];
  char expected[64];
  char request_id[64]; /* "" = none */
  bool allow_idp_initiated;
  char options[512]; /* "-" = the default configuration; see saml_fixtures.py */
};

static char fixture_dir[256];
static struct fixture_case cases[128];
static size_t n_cases;

/* ---- fixtures -------------------------------------------------------------- */

static char *path_in_fixtures(const char *name) {
  return g_build_filename(fixture_dir, name, NULL);
}

static char *read_fixture(const char *name) {
  g_autofree char *path = path_in_fixtures(name);
  char *data = NULL;
  if (!g_file_get_contents(path, &data, NULL, NULL))
    return NULL;
  return data;
}

static char *read_case(const char *name) {
  g_autofree char *file = g_strconcat(name, ".b64", NULL);
  return read_fixture(file);
}

static int make_fixtures(void) {
  char tmpl[] = "/tmp/ssogate-saml-XXXXXX";
  if (mkdtemp(tmpl) == NULL)
    return -1;
  g_strlcpy(fixture_dir, tmpl, sizeof fixture_dir);
  const char *root = getenv("SSOGATE_SOURCE_ROOT");
  g_autofree char *cmd = g_strdup_printf("/usr/bin/python3 %s/tests/unit/saml_fixtures.py %s",
                                         root && root[0] ? root : ".", fixture_dir);
  FILE *p = popen(cmd, "r");
  if (p == NULL || pclose(p) != 0) {
    fprintf(stderr, "fixture generator failed: %s\n", cmd);
    return -1;
  }
  g_autofree char *manifest = read_fixture("cases.txt");
  if (manifest == NULL)
    return -1;
  g_auto(GStrv) lines = g_strsplit(manifest, "\n", -1);
  for (size_t i = 0; lines[i] != NULL && n_cases < G_N_ELEMENTS(cases); i++) {
    struct fixture_case *c = &cases[n_cases];
    int allow = 0;
    if (sscanf(lines[i], "%127s %63s %63s %d %511s", c->name, c->expected, c->request_id, &allow,
               c->options) != 5)
      continue;
    if (strcmp(c->request_id, "-") == 0)
      c->request_id[0] = '\0';
    c->allow_idp_initiated = allow != 0;
    n_cases++;
  }
  return n_cases > 0 ? 0 : -1;
}

static void remove_fixtures(void) {
  if (fixture_dir[0] == '\0')
    return;
  g_autofree char *cmd = g_strdup_printf("rm -rf '%s'", fixture_dir);
  if (system(cmd) != 0)
    fprintf(stderr, "could not remove %s\n", fixture_dir);
}

/* The [saml] part of a config snapshot, filled by hand: these tests are
 * about the SP, not about INI parsing. */
struct test_config {
  struct sg_config config;
  char *paths[4];
  char *decryption_keys[3];
  GStrv options; /* the strings config points into */
};

static void config_init(struct test_config *t, const char *metadata, bool allow_idp_initiated) {
  memset(t, 0, sizeof *t);
  t->paths[0] = metadata ? path_in_fixtures(metadata) : NULL;
  t->config.server.public_url = (char *)SP_PUBLIC_URL;
  t->config.saml.idp_metadata = t->paths[0];
  t->config.saml.sp_entity_id = (char *)SP_ENTITY_ID;
  t->config.saml.clock_skew_ms = 180000;
  t->config.saml.allow_idp_initiated = allow_idp_initiated;
  t->config.saml.name_attribute = (char *)"displayName";
  t->config.saml.groups_attribute = (char *)"groups";
  t->config.session.lifetime_ms = 12 * 3600 * 1000;
}

static void config_with_sp_key(struct test_config *t) {
  t->paths[1] = path_in_fixtures("sp.key");
  t->paths[2] = path_in_fixtures("sp.crt");
  t->config.saml.sp_key = t->paths[1];
  t->config.saml.sp_cert = t->paths[2];
}

static void config_clear(struct test_config *t) {
  for (size_t i = 0; i < G_N_ELEMENTS(t->paths); i++)
    g_free(t->paths[i]);
  for (size_t i = 0; i < G_N_ELEMENTS(t->decryption_keys); i++)
    g_free(t->decryption_keys[i]);
  g_strfreev(t->options);
}

/* A case's OPTIONS column (saml_fixtures.py) applied to the config. */
static void config_apply_options(struct test_config *t, const char *options) {
  if (options == NULL || strcmp(options, "-") == 0)
    return;
  t->options = g_strsplit(options, ",", -1);
  for (char **o = t->options; *o != NULL; o++) {
    if (strcmp(*o, "dec") == 0) {
      t->decryption_keys[0] = path_in_fixtures("sp-enc.key");
    } else if (strcmp(*o, "dec2") == 0) {
      t->decryption_keys[0] = path_in_fixtures("sp-enc-old.key");
      t->decryption_keys[1] = path_in_fixtures("sp-enc.key");
    } else if (strcmp(*o, "rsa15") == 0) {
      t->config.saml.allow_rsa15_key_transport = true;
    } else if (strcmp(*o, "sha1") == 0) {
      t->config.saml.allow_sha1 = true;
    } else if (g_str_has_prefix(*o, "email=")) {
      t->config.saml.email_attribute = *o + 6;
    } else if (g_str_has_prefix(*o, "name=")) {
      t->config.saml.name_attribute = *o + 5;
    } else if (g_str_has_prefix(*o, "groups=")) {
      t->config.saml.groups_attribute = *o + 7;
    } else {
      fail_msg("unknown fixture option '%s'", *o);
    }
  }
  if (t->decryption_keys[0] != NULL)
    t->config.saml.sp_decryption_keys = t->decryption_keys;
}

static struct sg_saml_sp *sp_new_or_fail(const char *metadata, bool allow) {
  struct test_config t;
  config_init(&t, metadata, allow);
  char *error = NULL;
  struct sg_saml_sp *sp = sg_saml_sp_new(&t.config, &error);
  if (sp == NULL)
    fail_msg("sg_saml_sp_new: %s", error ? error : "(no message)");
  free(error);
  config_clear(&t);
  return sp;
}

/* ---- one test per fixture case ------------------------------------------------ */

static void test_case(void **state) {
  const struct fixture_case *c = *state;
  struct test_config t;
  config_init(&t, "idp-metadata.xml", c->allow_idp_initiated);
  config_apply_options(&t, c->options);
  char *error = NULL;
  struct sg_saml_sp *sp = sg_saml_sp_new(&t.config, &error);
  if (sp == NULL)
    fail_msg("sg_saml_sp_new: %s", error ? error : "(no message)");
  g_autofree char *b64 = read_case(c->name);
  assert_non_null(b64);
  struct sg_saml_result result;
  int rc = sg_saml_acs_validate(sp, b64, c->request_id[0] ? c->request_id : NULL,
                                (int64_t)time(NULL), &result);
  const char *got = sg_saml_failure_name(result.failure);
  if (strcmp(got, c->expected) != 0)
    fail_msg("%s: expected %s, got %s: %s", c->name, c->expected, got, result.reason);
  assert_int_equal(rc, result.failure == SG_SAML_OK ? 0 : -1);
  /* Only a response refused for having no InResponseTo starts a new sign-in. */
  assert_int_equal(result.unsolicited, strcmp(c->name, "unsolicited_not_allowed") == 0);
  if (result.failure == SG_SAML_OK) {
    assert_string_equal(result.identity.email, "alice@example.com");
    /* Without a NameID (ADFS) the subject is the email attribute; Auth0's
     * NameID is its user id (saml_fixtures.py AUTH0_USER_ID). */
    assert_string_equal(result.identity.subject, result.subject_is_email ? "alice@example.com"
                                                 : g_str_has_prefix(c->name, "auth0_")
                                                     ? "auth0|5f7c8ec7c33c6c004bbafe82"
                                                     : "Alice@Example.COM");
  } else {
    /* A refusal says which rule and leaves no identity behind. */
    assert_true(strlen(result.reason) > 0);
    assert_null(result.identity.storage);
    assert_null(result.identity.email);
  }
  sg_identity_clear(&result.identity);
  sg_saml_sp_free(sp);
  config_clear(&t);
}

/* ---- identity details ------------------------------------------------------- */

static void test_happy_identity(void **state) {
  (void)state;
  struct sg_saml_sp *sp = sp_new_or_fail("idp-metadata.xml", false);
  g_autofree char *b64 = read_case("happy_assertion_signed");
  struct sg_saml_result r;
  int64_t now = (int64_t)time(NULL);
  assert_int_equal(sg_saml_acs_validate(sp, b64, "_req123", now, &r), 0);
  assert_string_equal(r.identity.subject, "Alice@Example.COM");
  assert_string_equal(r.identity.email, "alice@example.com");
  assert_string_equal(r.identity.name, "Alice Example");
  assert_int_equal(r.identity.n_groups, 2);
  assert_string_equal(r.identity.groups[0], "eng");
  assert_string_equal(r.identity.groups[1], "admins");
  assert_string_equal(r.identity.session_id, "");
  assert_non_null(r.identity.storage);
  assert_true(r.assertion_id[0] == '_');
  assert_string_equal(r.in_response_to, "_req123");
  /* Kept in the replay cache at least until the assertion expires (+skew). */
  assert_true(r.assertion_expires_at >= now + 300);
  assert_true(r.assertion_expires_at <= now + 300 + 180 + 2);
  sg_identity_clear(&r.identity);

  /* The same response for another pending request id is refused. */
  assert_int_equal(sg_saml_acs_validate(sp, b64, "_req999", now, &r), -1);
  assert_int_equal(r.failure, SG_SAML_IN_RESPONSE_TO);
  /* Five minutes later plus skew it has expired; before skew it has not. */
  assert_int_equal(sg_saml_acs_validate(sp, b64, "_req123", now + 300 + 170, &r), 0);
  sg_identity_clear(&r.identity);
  assert_int_equal(sg_saml_acs_validate(sp, b64, "_req123", now + 300 + 181, &r), -1);
  assert_int_equal(r.failure, SG_SAML_EXPIRED);
  sg_saml_sp_free(sp);
}

static void test_email_attribute(void **state) {
  (void)state;
  struct test_config t;
  config_init(&t, "idp-metadata.xml", false);
  t.config.saml.email_attribute = (char *)"mail";
  char *error = NULL;
  struct sg_saml_sp *sp = sg_saml_sp_new(&t.config, &error);
  assert_non_null(sp);
  g_autofree char *b64 = read_case("happy_response_signed");
  struct sg_saml_result r;
  assert_int_equal(sg_saml_acs_validate(sp, b64, "_req123", (int64_t)time(NULL), &r), 0);
  assert_string_equal(r.identity.email, "alice.mail@example.com");
  assert_string_equal(r.identity.subject, "Alice@Example.COM");
  sg_identity_clear(&r.identity);
  sg_saml_sp_free(sp);

  /* An email attribute the IdP does not send means no email, not a fallback
   * to the NameID: what needs an email refuses it (auth/access.c). */
  t.config.saml.email_attribute = (char *)"no-such-attribute";
  sp = sg_saml_sp_new(&t.config, &error);
  assert_non_null(sp);
  assert_int_equal(sg_saml_acs_validate(sp, b64, "_req123", (int64_t)time(NULL), &r), 0);
  assert_string_equal(r.identity.email, "");
  assert_string_equal(r.identity.subject, "Alice@Example.COM");
  sg_identity_clear(&r.identity);
  /* Nor does an attribute value that is not an email become one. */
  t.config.saml.email_attribute = (char *)"displayName";
  sg_saml_sp_free(sp);
  sp = sg_saml_sp_new(&t.config, &error);
  assert_non_null(sp);
  assert_int_equal(sg_saml_acs_validate(sp, b64, "_req123", (int64_t)time(NULL), &r), 0);
  assert_string_equal(r.identity.email, "");
  sg_identity_clear(&r.identity);
  sg_saml_sp_free(sp);
  config_clear(&t);
}

/* Issue 18.4: a username NameID (Okta, Oracle Access Manager, Shibboleth's
 * uid) is an identity with no email, kept as sent; it used to be refused
 * with "is not an email address". */
static void test_username_subject(void **state) {
  (void)state;
  struct sg_saml_sp *sp = sp_new_or_fail("idp-metadata.xml", false);
  struct sg_saml_result r;
  int64_t now = (int64_t)time(NULL);
  g_autofree char *persistent = read_case("username_persistent");
  assert_non_null(persistent);
  if (sg_saml_acs_validate(sp, persistent, "_req123", now, &r) != 0)
    fail_msg("refused: %s", r.reason);
  assert_string_equal(r.identity.subject, "jdoe");
  assert_string_equal(r.identity.email, "");
  assert_string_equal(sg_identity_who(&r.identity), "jdoe");
  assert_int_equal(r.identity.n_groups, 2);
  assert_false(r.subject_is_email);
  sg_identity_clear(&r.identity);
  g_autofree char *unspecified = read_case("username_unspecified_no_groups");
  assert_int_equal(sg_saml_acs_validate(sp, unspecified, "_req123", now, &r), 0);
  assert_string_equal(r.identity.subject, "JDoe"); /* the subject keeps its case */
  assert_string_equal(r.identity.email, "");
  assert_string_equal(r.identity.name, "John Doe");
  assert_int_equal(r.identity.n_groups, 0);
  sg_identity_clear(&r.identity);
  sg_saml_sp_free(sp);
}

static void test_garbage_inputs(void **state) {
  (void)state;
  struct sg_saml_sp *sp = sp_new_or_fail("idp-metadata.xml", true);
  struct sg_saml_result r;
  const char *inputs[] = {"", "====", "PD94", "PHNhbWxwOlJlc3BvbnNlLz4=" /* <samlp:Response/> */,
                          "PGEvPg==" /* <a/> */};
  for (size_t i = 0; i < G_N_ELEMENTS(inputs); i++) {
    assert_int_equal(sg_saml_acs_validate(sp, inputs[i], NULL, (int64_t)time(NULL), &r), -1);
    assert_int_equal(r.failure, SG_SAML_MALFORMED);
  }
  assert_int_equal(sg_saml_acs_validate(sp, NULL, NULL, (int64_t)time(NULL), &r), -1);
  assert_int_equal(r.failure, SG_SAML_MALFORMED);
  /* A huge field is refused before decoding. */
  size_t n = 3 * 1024 * 1024;
  char *big = malloc(n + 1);
  memset(big, 'A', n);
  big[n] = '\0';
  assert_int_equal(sg_saml_acs_validate(sp, big, NULL, (int64_t)time(NULL), &r), -1);
  assert_int_equal(r.failure, SG_SAML_MALFORMED);
  free(big);
  sg_saml_sp_free(sp);
}

/* ---- AuthnRequest -------------------------------------------------------------- */

/* The value of a query parameter of url, percent-decoded (g_free). */
static char *query_param(const char *url, const char *name) {
  const char *q = strchr(url, '?');
  if (q == NULL)
    return NULL;
  g_auto(GStrv) pairs = g_strsplit(q + 1, "&", -1);
  size_t nl = strlen(name);
  for (size_t i = 0; pairs[i] != NULL; i++)
    if (strncmp(pairs[i], name, nl) == 0 && pairs[i][nl] == '=')
      return g_uri_unescape_string(pairs[i] + nl + 1, NULL);
  return NULL;
}

/* SAMLRequest of the Redirect binding is base64 of raw DEFLATE; python
 * (already needed for the fixtures) inflates it, so the test needs no zlib. */
static char *inflate_request(const char *b64) {
  for (const char *p = b64; *p != '\0'; p++)
    if (!g_ascii_isalnum(*p) && *p != '+' && *p != '/' && *p != '=')
      return NULL; /* only base64 goes on the command line */
  g_autofree char *cmd = g_strdup_printf(
      "/usr/bin/python3 -c 'import base64,sys,zlib; "
      "sys.stdout.write(zlib.decompress(base64.b64decode(sys.argv[1]), -15).decode())' '%s'",
      b64);
  FILE *p = popen(cmd, "r");
  if (p == NULL)
    return NULL;
  GString *out = g_string_new(NULL);
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0)
    g_string_append_len(out, buf, (gssize)n);
  if (pclose(p) != 0) {
    g_string_free(out, TRUE);
    return NULL;
  }
  return g_string_free(out, FALSE);
}

static void test_login_start(void **state) {
  (void)state;
  struct sg_saml_sp *sp = sp_new_or_fail("idp-metadata.xml", false);
  assert_string_equal(sg_saml_sp_idp_sso_url(sp), IDP_SSO_URL);
  assert_string_equal(sg_saml_sp_idp_entity_id(sp), IDP_ENTITY_ID);
  assert_string_equal(sg_saml_sp_acs_url(sp), ACS_URL);

  char *url = NULL, *id = NULL;
  const char *reason = NULL;
  assert_int_equal(sg_saml_login_start(sp, "st4te", &url, &id, &reason), 0);
  /* Google's ?idpid= survives, our parameters follow it. */
  assert_true(g_str_has_prefix(url, IDP_SSO_URL "&"));
  assert_non_null(strstr(url, "SAMLRequest="));
  g_autofree char *relay = query_param(url, "RelayState");
  assert_non_null(relay);
  assert_string_equal(relay, "st4te");
  g_autofree char *idpid = query_param(url, "idpid");
  assert_string_equal(idpid, "abc");
  assert_non_null(id);
  assert_true(strlen(id) > 0);

  g_autofree char *b64 = query_param(url, "SAMLRequest");
  assert_non_null(b64);
  g_autofree char *xml = inflate_request(b64);
  assert_non_null(xml);
  g_autofree char *id_attr = g_strdup_printf("ID=\"%s\"", id);
  assert_non_null(strstr(xml, id_attr));
  assert_non_null(strstr(xml, "AssertionConsumerServiceURL=\"" ACS_URL "\""));
  assert_non_null(strstr(xml, "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"));
  assert_non_null(strstr(xml, "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"));
  assert_non_null(strstr(xml, "AllowCreate=\"true\""));
  assert_non_null(strstr(xml, SP_ENTITY_ID));
  assert_null(strstr(xml, "IsPassive=\"true\""));
  assert_null(strstr(xml, "ForceAuthn=\"true\""));
  /* No sp_key: nothing is signed. */
  assert_null(strstr(url, "Signature="));

  /* Two logins get two request ids. */
  char *url2 = NULL, *id2 = NULL;
  assert_int_equal(sg_saml_login_start(sp, NULL, &url2, &id2, &reason), 0);
  assert_string_not_equal(id, id2);
  assert_null(strstr(url2, "RelayState="));
  free(url);
  free(id);
  free(url2);
  free(id2);

  /* SAML limits RelayState to 80 bytes. */
  char long_state[100];
  memset(long_state, 'a', sizeof long_state - 1);
  long_state[sizeof long_state - 1] = '\0';
  assert_int_equal(sg_saml_login_start(sp, long_state, &url, &id, &reason), -1);
  assert_non_null(reason);
  assert_null(url);
  assert_null(id);
  sg_saml_sp_free(sp);
}

/* An IdP that publishes only persistent/unspecified NameIDs (Shibboleth,
 * Oracle Access Manager) refuses a request for emailAddress with
 * InvalidNameIDPolicy: it is asked for "unspecified" instead. */
static void test_login_start_asks_username_idp_for_any_format(void **state) {
  (void)state;
  struct sg_saml_sp *sp = sp_new_or_fail("idp-metadata-username.xml", false);
  char *url = NULL, *id = NULL;
  const char *reason = NULL;
  assert_int_equal(sg_saml_login_start(sp, NULL, &url, &id, &reason), 0);
  g_autofree char *b64 = query_param(url, "SAMLRequest");
  g_autofree char *xml = inflate_request(b64);
  assert_non_null(xml);
  assert_non_null(strstr(xml, "Format=\"urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified\""));
  assert_null(strstr(xml, "nameid-format:emailAddress"));
  free(url);
  free(id);
  sg_saml_sp_free(sp);
}

/* ---- metadata and loading ------------------------------------------------------ */

static xmlNodePtr child(xmlNodePtr parent, const char *name) {
  for (xmlNodePtr n = parent ? parent->children : NULL; n != NULL; n = n->next)
    if (n->type == XML_ELEMENT_NODE && strcmp((const char *)n->name, name) == 0)
      return n;
  return NULL;
}

static void check_sp_metadata(const char *xml, bool with_cert) {
  xmlDocPtr doc = xmlReadMemory(xml, (int)strlen(xml), "sp.xml", NULL, XML_PARSE_NONET);
  assert_non_null(doc);
  xmlNodePtr root = xmlDocGetRootElement(doc);
  assert_string_equal((const char *)root->name, "EntityDescriptor");
  assert_string_equal((const char *)root->ns->href, "urn:oasis:names:tc:SAML:2.0:metadata");
  xmlChar *entity = xmlGetProp(root, (const xmlChar *)"entityID");
  assert_string_equal((const char *)entity, SP_ENTITY_ID);
  xmlFree(entity);
  xmlNodePtr sso = child(root, "SPSSODescriptor");
  assert_non_null(sso);
  xmlNodePtr acs = child(sso, "AssertionConsumerService");
  assert_non_null(acs);
  xmlChar *loc = xmlGetProp(acs, (const xmlChar *)"Location");
  xmlChar *binding = xmlGetProp(acs, (const xmlChar *)"Binding");
  assert_string_equal((const char *)loc, ACS_URL);
  assert_string_equal((const char *)binding, "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST");
  xmlFree(loc);
  xmlFree(binding);
  xmlChar *format = xmlNodeGetContent(child(sso, "NameIDFormat"));
  assert_string_equal((const char *)format,
                      "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress");
  xmlFree(format);
  xmlChar *signed_requests = xmlGetProp(sso, (const xmlChar *)"AuthnRequestsSigned");
  assert_string_equal((const char *)signed_requests, with_cert ? "true" : "false");
  xmlFree(signed_requests);
  assert_true((child(sso, "KeyDescriptor") != NULL) == with_cert);
  xmlFreeDoc(doc);
}

static void test_sp_metadata(void **state) {
  (void)state;
  struct sg_saml_sp *sp = sp_new_or_fail("idp-metadata.xml", false);
  char *xml = sg_saml_sp_metadata_new(sp);
  check_sp_metadata(xml, false);
  free(xml);
  assert_int_equal(sg_saml_sp_sp_cert_not_after(sp), 0);
  sg_saml_sp_free(sp);
}

static void test_sp_key_signs_requests(void **state) {
  (void)state;
  struct test_config t;
  config_init(&t, "idp-metadata.xml", false);
  config_with_sp_key(&t);
  char *error = NULL;
  struct sg_saml_sp *sp = sg_saml_sp_new(&t.config, &error);
  if (sp == NULL)
    fail_msg("%s", error);
  char *xml = sg_saml_sp_metadata_new(sp);
  check_sp_metadata(xml, true);
  free(xml);
  assert_true(sg_saml_sp_sp_cert_not_after(sp) > (int64_t)time(NULL));
  char *url = NULL, *id = NULL;
  const char *reason = NULL;
  assert_int_equal(sg_saml_login_start(sp, "x", &url, &id, &reason), 0);
  assert_true(g_str_has_prefix(url, IDP_SSO_URL "&"));
  assert_non_null(strstr(url, "&Signature="));
  g_autofree char *sigalg = query_param(url, "SigAlg");
  assert_string_equal(sigalg, "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256");
  free(url);
  free(id);
  sg_saml_sp_free(sp);

  /* A key that every local user can read is refused, naming the file. */
  assert_int_equal(chmod(t.paths[1], 0644), 0);
  assert_null(sg_saml_sp_new(&t.config, &error));
  assert_non_null(strstr(error, t.paths[1]));
  assert_non_null(strstr(error, "readable or writable by other users"));
  free(error);
  error = NULL;
  assert_int_equal(chmod(t.paths[1], 0600), 0);

  /* Key without certificate. */
  t.config.saml.sp_cert = NULL;
  assert_null(sg_saml_sp_new(&t.config, &error));
  assert_non_null(strstr(error, "sp_cert"));
  free(error);
  config_clear(&t);
}

static void expect_load_error(const char *metadata, const char *message) {
  struct test_config t;
  config_init(&t, metadata, false);
  char *error = NULL;
  struct sg_saml_sp *sp = sg_saml_sp_new(&t.config, &error);
  assert_null(sp);
  assert_non_null(error);
  if (strstr(error, message) == NULL)
    fail_msg("expected '%s' in '%s'", message, error);
  free(error);
  config_clear(&t);
}

static void test_idp_metadata_errors(void **state) {
  (void)state;
  expect_load_error(NULL, "[saml] idp_metadata is not set");
  expect_load_error("idp-metadata-nocert.xml", "no signing certificate");
  expect_load_error("idp-metadata-two.xml", "expected one md:EntityDescriptor");
  expect_load_error("idp-metadata-dtd.xml", "DOCTYPE is not allowed");
  expect_load_error("no-such-file.xml", "No such file");
  expect_load_error("cases.txt", "not well-formed");
  expect_load_error("sp.crt", "not well-formed");
}

static void test_idp_rotation(void **state) {
  (void)state;
  /* An expired certificate next to a valid one loads (--check warns), and
   * responses signed with the valid one pass. */
  struct sg_saml_sp *sp = sp_new_or_fail("idp-metadata-rotation.xml", false);
  int64_t now = (int64_t)time(NULL);
  assert_int_equal(sg_saml_sp_idp_cert_count(sp), 2);
  assert_true(sg_saml_sp_idp_cert_not_after(sp, 0) < now);
  assert_true(sg_saml_sp_idp_cert_not_after(sp, 1) > now);
  assert_int_equal(sg_saml_sp_idp_cert_not_after(sp, 2), 0);
  g_autofree char *b64 = read_case("happy_both_signed");
  struct sg_saml_result r;
  assert_int_equal(sg_saml_acs_validate(sp, b64, "_req123", now, &r), 0);
  sg_identity_clear(&r.identity);
  sg_saml_sp_free(sp);
}

static void test_failure_names(void **state) {
  (void)state;
  assert_string_equal(sg_saml_failure_name(SG_SAML_OK), "ok");
  assert_string_equal(sg_saml_failure_name(SG_SAML_IN_RESPONSE_TO), "in_response_to");
  assert_string_equal(sg_saml_failure_name(SG_SAML_WEAK_ALGORITHM), "weak_algorithm");
  assert_string_equal(sg_saml_failure_name(SG_SAML_DECRYPTION), "decryption");
  for (int i = 0; i < SG_SAML_FAILURE_COUNT; i++)
    assert_non_null(sg_saml_failure_name((enum sg_saml_failure)i));
  assert_string_equal(sg_saml_failure_name(SG_SAML_FAILURE_COUNT), "unknown");
}

/* ---- decryption keys, metadata, trace ------------------------------------------ */

static struct sg_saml_sp *sp_with_decryption(const char *key, const char *cert, bool rsa15,
                                             char **error) {
  struct test_config t;
  config_init(&t, "idp-metadata.xml", false);
  t.decryption_keys[0] = path_in_fixtures(key);
  t.config.saml.sp_decryption_keys = t.decryption_keys;
  t.paths[3] = cert ? path_in_fixtures(cert) : NULL;
  t.config.saml.sp_decryption_cert = t.paths[3];
  t.config.saml.allow_rsa15_key_transport = rsa15;
  *error = NULL;
  struct sg_saml_sp *sp = sg_saml_sp_new(&t.config, error);
  config_clear(&t);
  return sp;
}

static void test_decryption_keys_and_metadata(void **state) {
  (void)state;
  char *error = NULL;
  struct sg_saml_sp *sp = sp_with_decryption("sp-enc.key", "sp-enc.crt", false, &error);
  assert_non_null(sp);
  assert_int_equal(sg_saml_sp_decryption_key_count(sp), 1);
  char *md = sg_saml_sp_metadata_new(sp);
  assert_non_null(strstr(md, "use=\"encryption\""));
  assert_non_null(strstr(md, "http://www.w3.org/2009/xmlenc11#rsa-oaep"));
  assert_non_null(strstr(md, "http://www.w3.org/2009/xmlenc11#aes256-gcm"));
  assert_null(strstr(md, "rsa-1_5"));
  free(md);
  sg_saml_sp_free(sp);

  sp = sp_with_decryption("sp-enc.key", "sp-enc.crt", true, &error);
  md = sg_saml_sp_metadata_new(sp);
  assert_non_null(strstr(md, "http://www.w3.org/2001/04/xmlenc#rsa-1_5"));
  assert_true(sg_saml_sp_allows_rsa15(sp));
  free(md);
  sg_saml_sp_free(sp);

  /* Without a certificate: decryption works, nothing is published. */
  sp = sp_with_decryption("sp-enc.key", NULL, false, &error);
  md = sg_saml_sp_metadata_new(sp);
  assert_null(strstr(md, "encryption"));
  free(md);
  sg_saml_sp_free(sp);

  /* A certificate of another key: every login would fail. */
  assert_null(sp_with_decryption("sp-enc.key", "sp-enc-old.crt", false, &error));
  assert_non_null(strstr(error, "belongs to none of the sp_decryption_key"));
  free(error);
  /* A certificate is not a key. */
  g_autofree char *not_key = path_in_fixtures("not-a-key.key");
  g_autofree char *cert_text = read_fixture("sp-enc.crt");
  assert_true(g_file_set_contents(not_key, cert_text, -1, NULL));
  chmod(not_key, 0600);
  assert_null(sp_with_decryption("not-a-key.key", NULL, false, &error));
  assert_non_null(strstr(error, "not a PEM RSA private key"));
  free(error);
  /* Readable by others: refused like sp_key. */
  g_autofree char *copy = path_in_fixtures("sp-enc-0644.key");
  g_autofree char *orig = read_fixture("sp-enc.key");
  assert_true(g_file_set_contents(copy, orig, -1, NULL));
  chmod(copy, 0644);
  assert_null(sp_with_decryption("sp-enc-0644.key", NULL, false, &error));
  assert_non_null(strstr(error, "readable or writable by other users"));
  free(error);
}

struct trace_log {
  GString *text;
  unsigned failed, passed;
};

static void record(void *ctx, const char *rule, int verdict, const char *detail) {
  struct trace_log *t = ctx;
  g_string_append_printf(t->text, "%s=%d:%s\n", rule, verdict, detail ? detail : "");
  t->failed += verdict == 0;
  t->passed += verdict == 1;
}

static void test_rule_trace(void **state) {
  (void)state;
  struct test_config t;
  config_init(&t, "idp-metadata.xml", false);
  config_apply_options(&t, "dec");
  char *error = NULL;
  struct sg_saml_sp *sp = sg_saml_sp_new(&t.config, &error);
  assert_non_null(sp);
  struct trace_log log = {.text = g_string_new(NULL)};
  struct sg_saml_acs_options opt = {.trace = record, .trace_ctx = &log};
  g_autofree char *ok = read_case("okta_encrypted_aes256cbc_oaep");
  struct sg_saml_result r;
  assert_int_equal(sg_saml_acs_validate_with(sp, ok, "_req123", (int64_t)time(NULL), &opt, &r), 0);
  sg_identity_clear(&r.identity);
  assert_int_equal(log.failed, 0);
  assert_true(g_str_has_prefix(log.text->str, "xml=1:"));
  assert_non_null(strstr(log.text->str, "decryption=1:EncryptedAssertion decrypted"));
  assert_non_null(strstr(log.text->str, "destination=1:'http://sp.test/ssogate/acs' as expected"));
  assert_non_null(strstr(log.text->str, "\nlasso=1:"));

  /* A refusal: exactly one failed rule, later ones "not run" (-2). */
  g_string_truncate(log.text, 0);
  log.passed = 0;
  g_autofree char *bad = read_case("no_destination_wrong_recipient");
  assert_int_equal(sg_saml_acs_validate_with(sp, bad, "_req123", (int64_t)time(NULL), &opt, &r),
                   -1);
  assert_int_equal(log.failed, 1);
  assert_non_null(strstr(log.text->str, "destination=1:absent, allowed"));
  assert_non_null(strstr(log.text->str, "recipient=0:recipient: expected"));
  assert_non_null(strstr(log.text->str, "audience=-2:not run"));

  /* Not checking InResponseTo (--check-response without --request-id). */
  g_string_truncate(log.text, 0);
  opt.in_response_to_unchecked = true;
  assert_int_equal(sg_saml_acs_validate_with(sp, ok, NULL, (int64_t)time(NULL), &opt, &r), 0);
  assert_non_null(strstr(log.text->str, "in_response_to=-1:'_req123' found, not checked"));
  sg_identity_clear(&r.identity);
  g_string_free(log.text, TRUE);
  sg_saml_sp_free(sp);
  config_clear(&t);
}

/* ---- threads ------------------------------------------------------------------- */

struct thread_arg {
  const struct sg_saml_sp *sp;
  const char *b64;
  int failures;
  char reason[512];
};

static void *validate_in_thread(void *p) {
  struct thread_arg *a = p;
  for (int i = 0; i < 4; i++) {
    struct sg_saml_result r;
    if (sg_saml_acs_validate(a->sp, a->b64, "_req123", (int64_t)time(NULL), &r) != 0) {
      a->failures++;
      g_strlcpy(a->reason, r.reason, sizeof a->reason);
    } else if (strcmp(r.identity.email, "alice@example.com") != 0) {
      a->failures++;
    }
    sg_identity_clear(&r.identity);
    char *url = NULL, *id = NULL;
    const char *reason = NULL;
    if (sg_saml_login_start(a->sp, "t", &url, &id, &reason) != 0)
      a->failures++;
    free(url);
    free(id);
  }
  return NULL;
}

static void test_concurrent_validation(void **state) {
  (void)state;
  /* With a decryption key: one shared EVP_PKEY, a context per call. */
  struct test_config t;
  config_init(&t, "idp-metadata.xml", false);
  config_apply_options(&t, "dec");
  char *error = NULL;
  struct sg_saml_sp *sp = sg_saml_sp_new(&t.config, &error);
  assert_non_null(sp);
  config_clear(&t);
  const char *names[] = {"happy_assertion_signed", "happy_response_signed",
                         "okta_encrypted_aes256gcm", "keycloak_encrypted_gcm_oaep256"};
  char *b64[4];
  for (int i = 0; i < 4; i++)
    b64[i] = read_case(names[i]);
  pthread_t threads[THREADS];
  struct thread_arg args[THREADS];
  for (int i = 0; i < THREADS; i++) {
    args[i] = (struct thread_arg){.sp = sp, .b64 = b64[i % 4]};
    assert_int_equal(pthread_create(&threads[i], NULL, validate_in_thread, &args[i]), 0);
  }
  int failures = 0;
  for (int i = 0; i < THREADS; i++) {
    pthread_join(threads[i], NULL);
    if (args[i].failures)
      fprintf(stderr, "thread %d: %d failures, last: %s\n", i, args[i].failures, args[i].reason);
    failures += args[i].failures;
  }
  assert_int_equal(failures, 0);
  for (int i = 0; i < 4; i++)
    g_free(b64[i]);
  sg_saml_sp_free(sp);
}

/* ---- main ------------------------------------------------------------------------ */

int main(void) {
  if (sg_saml_global_init() != 0) {
    fprintf(stderr, "sg_saml_global_init failed\n");
    return 1;
  }
  if (make_fixtures() != 0) {
    remove_fixtures();
    return 1;
  }
  const struct CMUnitTest fixed[] = {
      cmocka_unit_test(test_happy_identity),
      cmocka_unit_test(test_email_attribute),
      cmocka_unit_test(test_username_subject),
      cmocka_unit_test(test_garbage_inputs),
      cmocka_unit_test(test_login_start),
      cmocka_unit_test(test_login_start_asks_username_idp_for_any_format),
      cmocka_unit_test(test_sp_metadata),
      cmocka_unit_test(test_sp_key_signs_requests),
      cmocka_unit_test(test_idp_metadata_errors),
      cmocka_unit_test(test_idp_rotation),
      cmocka_unit_test(test_failure_names),
      cmocka_unit_test(test_concurrent_validation),
      cmocka_unit_test(test_decryption_keys_and_metadata),
      cmocka_unit_test(test_rule_trace),
  };
  size_t n = G_N_ELEMENTS(fixed) + n_cases;
  struct CMUnitTest *tests = calloc(n, sizeof *tests);
  memcpy(tests, fixed, sizeof fixed);
  for (size_t i = 0; i < n_cases; i++) {
    struct CMUnitTest *t = &tests[G_N_ELEMENTS(fixed) + i];
    t->name = cases[i].name;
    t->test_func = test_case;
    t->initial_state = &cases[i];
  }
  int failed = _cmocka_run_group_tests("saml", tests, n, NULL, NULL);
  free(tests);
  remove_fixtures();
  sg_saml_global_cleanup();
  return failed;
}
