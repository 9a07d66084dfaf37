/*
 * test_access.c - the [access] rules: domains (and "*"), emails, groups;
 * any one is enough, nothing else is.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth/access.h"

static char *none[] = {NULL};

static struct sg_config config_with(char **domains, char **emails, char **groups) {
  struct sg_config c;
  memset(&c, 0, sizeof c);
  c.access.allowed_domains = domains ? domains : none;
  c.access.allowed_emails = emails ? emails : none;
  c.access.allowed_groups = groups ? groups : none;
  c.access.public_paths = none;
  return c;
}

static struct sg_identity person(const char *email, const char **groups, unsigned n_groups) {
  struct sg_identity id;
  memset(&id, 0, sizeof id);
  id.subject = email;
  id.email = email;
  id.name = "";
  for (unsigned i = 0; i < n_groups; i++)
    id.groups[i] = groups[i];
  id.n_groups = n_groups;
  return id;
}

static void test_domains(void **state) {
  (void)state;
  char *domains[] = {"example.com", "@Corp.Example", NULL};
  struct sg_config c = config_with(domains, NULL, NULL);
  struct sg_identity a = person("alice@example.com", NULL, 0);
  struct sg_identity b = person("Bob@EXAMPLE.COM", NULL, 0);
  struct sg_identity d = person("dan@corp.example", NULL, 0);
  struct sg_identity e = person("eve@evil.com", NULL, 0);
  struct sg_identity sub = person("eve@sub.example.com", NULL, 0);
  struct sg_identity suffix = person("eve@notexample.com", NULL, 0);
  struct sg_identity two_at = person("eve@evil.com@example.com", NULL, 0);
  struct sg_identity no_local = person("@example.com", NULL, 0);
  struct sg_identity no_at = person("example.com", NULL, 0);
  assert_true(sg_access_allows(&c, &a));
  assert_true(sg_access_allows(&c, &b));
  assert_true(sg_access_allows(&c, &d));
  assert_false(sg_access_allows(&c, &e));
  assert_false(sg_access_allows(&c, &sub));
  assert_false(sg_access_allows(&c, &suffix));
  assert_false(sg_access_allows(&c, &two_at));
  assert_false(sg_access_allows(&c, &no_local));
  assert_false(sg_access_allows(&c, &no_at));
}

static void test_star(void **state) {
  (void)state;
  char *domains[] = {"*", NULL};
  struct sg_config c = config_with(domains, NULL, NULL);
  struct sg_identity a = person("anyone@anywhere.test", NULL, 0);
  struct sg_identity empty = person("", NULL, 0);
  struct sg_identity null_email = person(NULL, NULL, 0);
  assert_true(sg_access_allows(&c, &a));
  assert_false(sg_access_allows(&c, &empty));
  assert_false(sg_access_allows(&c, &null_email));
  assert_false(sg_access_allows(&c, NULL));
  assert_false(sg_access_allows(NULL, &a));
}

static void test_emails(void **state) {
  (void)state;
  char *emails[] = {"Alice@Example.com", NULL};
  struct sg_config c = config_with(NULL, emails, NULL);
  struct sg_identity a = person("alice@example.com", NULL, 0);
  struct sg_identity b = person("bob@example.com", NULL, 0);
  struct sg_identity prefix = person("alice@example.com.evil", NULL, 0);
  assert_true(sg_access_allows(&c, &a));
  assert_false(sg_access_allows(&c, &b));
  assert_false(sg_access_allows(&c, &prefix));
}

static void test_groups(void **state) {
  (void)state;
  char *groups[] = {"redash-users", NULL};
  struct sg_config c = config_with(NULL, NULL, groups);
  const char *in[] = {"eng", "redash-users"};
  const char *case_differs[] = {"Redash-Users"};
  const char *other[] = {"redash-users-old"};
  struct sg_identity a = person("a@x.test", in, 2);
  struct sg_identity b = person("b@x.test", case_differs, 1);
  struct sg_identity d = person("d@x.test", other, 1);
  struct sg_identity none_at_all = person("n@x.test", NULL, 0);
  assert_true(sg_access_allows(&c, &a));
  assert_false(sg_access_allows(&c, &b)); /* groups are exact */
  assert_false(sg_access_allows(&c, &d));
  assert_false(sg_access_allows(&c, &none_at_all));
}

static void test_any_rule_is_enough(void **state) {
  (void)state;
  char *domains[] = {"example.com", NULL};
  char *emails[] = {"contractor@partner.test", NULL};
  char *groups[] = {"guests", NULL};
  struct sg_config c = config_with(domains, emails, groups);
  const char *guest[] = {"guests"};
  struct sg_identity a = person("a@example.com", NULL, 0);
  struct sg_identity b = person("contractor@partner.test", NULL, 0);
  struct sg_identity g = person("visitor@elsewhere.test", guest, 1);
  struct sg_identity x = person("x@elsewhere.test", NULL, 0);
  assert_true(sg_access_allows(&c, &a));
  assert_true(sg_access_allows(&c, &b));
  assert_true(sg_access_allows(&c, &g));
  assert_false(sg_access_allows(&c, &x));
}

static void test_no_rules_allow_nobody(void **state) {
  (void)state;
  /* config.c refuses a config without rules; if one slipped through, it
   * must deny, not allow. */
  struct sg_config c = config_with(NULL, NULL, NULL);
  struct sg_identity a = person("a@example.com", NULL, 0);
  assert_false(sg_access_allows(&c, &a));
  char *empty[] = {"", NULL};
  c = config_with(empty, empty, empty);
  const char *g[] = {""};
  struct sg_identity e = person("a@example.com", g, 1);
  assert_false(sg_access_allows(&c, &e));
}

static struct sg_identity username(const char *subject, const char **groups, unsigned n_groups) {
  struct sg_identity id = person("", groups, n_groups);
  id.subject = subject;
  return id;
}

/* Issue 18.4: a subject that is not an email passes where nothing needs an
 * email ("*", groups); where something does, the refusal names it. */
static void test_username_subject(void **state) {
  (void)state;
  char why[700];
  const char *eng[] = {"eng"};
  struct sg_identity jdoe = username("jdoe", eng, 1);
  struct sg_identity loner = username("jdoe", NULL, 0);

  char *star[] = {"*", NULL};
  struct sg_config c = config_with(star, NULL, NULL);
  assert_true(sg_access_decide(&c, &loner, why, sizeof why));
  struct sg_identity nobody = username("", NULL, 0);
  assert_false(sg_access_decide(&c, &nobody, why, sizeof why));

  char *groups[] = {"eng", NULL};
  c = config_with(NULL, NULL, groups);
  assert_true(sg_access_decide(&c, &jdoe, why, sizeof why));
  assert_false(sg_access_decide(&c, &loner, why, sizeof why));
  assert_string_equal(why, "no [access] rule matches"); /* nothing needed an email */

  char *domains[] = {"example.com", NULL};
  c = config_with(domains, NULL, NULL);
  assert_false(sg_access_decide(&c, &loner, why, sizeof why));
  assert_string_equal(why, "[access] allowed_domains needs an email address, and the IdP sent "
                           "subject 'jdoe' with no email attribute ([saml] email_attribute is "
                           "not set)");
  /* A username that looks like a domain is no way in. */
  struct sg_identity tricky = username("example.com", NULL, 0);
  assert_false(sg_access_decide(&c, &tricky, why, sizeof why));

  char *emails[] = {"jdoe@example.com", NULL};
  c = config_with(domains, emails, groups);
  c.saml.email_attribute = "mail";
  assert_true(sg_access_decide(&c, &jdoe, why, sizeof why)); /* the groups rule */
  assert_false(sg_access_decide(&c, &loner, why, sizeof why));
  assert_string_equal(why, "[access] allowed_domains (and allowed_emails) needs an email address, "
                           "and the IdP sent subject 'jdoe' with no email in its 'mail' "
                           "attribute; and no allowed_groups entry matches");
  /* A subject shaped like an allowed email, with no email, is not that email. */
  struct sg_identity lookalike = username("jdoe@example.com", NULL, 0);
  assert_false(sg_access_decide(&c, &lookalike, why, sizeof why));

  /* Redash knows users by email only: no email, no entry, whatever the rules. */
  c = config_with(star, NULL, groups);
  c.upstream.app = "redash";
  assert_false(sg_access_decide(&c, &jdoe, why, sizeof why));
  assert_non_null(strstr(why, "[upstream] app = redash"));
  assert_non_null(strstr(why, "needs an email address, and the IdP sent subject 'jdoe'"));
  struct sg_identity a = person("a@example.com", NULL, 0);
  assert_true(sg_access_decide(&c, &a, why, sizeof why));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_domains),
      cmocka_unit_test(test_star),
      cmocka_unit_test(test_emails),
      cmocka_unit_test(test_groups),
      cmocka_unit_test(test_any_rule_is_enough),
      cmocka_unit_test(test_no_rules_allow_nobody),
      cmocka_unit_test(test_username_subject),
  };
  return cmocka_run_group_tests_name("access", tests, NULL, NULL);
}
