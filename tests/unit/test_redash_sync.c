/*
 * test_redash_sync.c - the Redash sync's decision (redash/plan.c): from
 * Redash's own JSON answers (shapes from getredash/redash handlers/users.py
 * UserListResource.get and handlers/groups.py GroupListResource.get) and
 * the wanted state to the calls; and the [redash] configuration rows.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <glib.h>

#include "conf/config.h"
#include "redash/plan.h"

/* GET /api/groups of a Redash org: two builtins and three regular groups. */
static const char *groups_json =
    "[{\"id\":1,\"name\":\"admin\",\"permissions\":[\"admin\",\"super_admin\"],"
    "\"type\":\"builtin\",\"created_at\":\"2026-12-01T00:00:00Z\"},"
    "{\"id\":2,\"name\":\"default\",\"permissions\":[\"create_dashboard\"],\"type\":\"builtin\","
    "\"created_at\":\"2026-12-01T00:00:00Z\"},"
    "{\"id\":3,\"name\":\"Engineers\",\"permissions\":[],\"type\":\"regular\",\"created_at\":null},"
    "{\"id\":4,\"name\":\"Operations\",\"permissions\":[],\"type\":\"regular\",\"created_at\":null}"
    ","
    "{\"id\":5,\"name\":\"Finance\",\"permissions\":[],\"type\":\"regular\",\"created_at\":null}]";

/* One page of GET /api/users?q=<email> with one user. */
static char *users_page_new(const char *email, const char *name, const char *groups) {
  return g_strdup_printf(
      "{\"count\":1,\"page\":1,\"page_size\":250,\"results\":[{\"id\":7,\"name\":\"%s\","
      "\"email\":\"%s\",\"profile_image_url\":\"x\",\"groups\":[%s],\"updated_at\":\"t\","
      "\"created_at\":\"t\",\"disabled_at\":null,\"is_disabled\":false,\"active_at\":\"t\","
      "\"is_invitation_pending\":false,\"is_email_verified\":true,\"auth_type\":\"external\"}]}",
      name, email, groups);
}

static const char *managed[] = {"Engineers", "Operations", "default", NULL};

static struct sg_redash_plan plan_for(const char *users, const char *name, const char **wanted) {
  struct sg_redash_desired d = {"alice@example.com", name, true, managed, wanted};
  struct sg_redash_plan plan;
  const char *reason = "unset";
  assert_int_equal(sg_redash_plan_build(users, strlen(users), groups_json, strlen(groups_json), &d,
                                        &plan, &reason),
                   0);
  assert_null(reason);
  return plan;
}

static void created_by_redash_first(void **state) {
  (void)state;
  /* Redash has not made the user yet: nothing to call, wait and retry. */
  const char *empty = "{\"count\":0,\"page\":1,\"page_size\":250,\"results\":[]}";
  const char *wanted[] = {"Engineers", NULL};
  struct sg_redash_plan plan = plan_for(empty, "Alice", wanted);
  assert_int_equal(plan.status, SG_REDASH_PLAN_NO_USER);
  assert_false(plan.more_pages);
  assert_int_equal(plan.n_calls, 0);
  sg_redash_plan_clear(&plan);
  /* Others matched the substring search: the exact address may be on page 2. */
  char *other = users_page_new("xalice@example.com", "X", "");
  char *paged = g_strdup(other);
  memcpy(strstr(paged, "\"count\":1"), "\"count\":3", 9);
  memcpy(strstr(paged, "\"page_size\":250"), "\"page_size\":1  ", 15);
  plan = plan_for(other, "Alice", wanted);
  assert_int_equal(plan.status, SG_REDASH_PLAN_NO_USER);
  assert_false(plan.more_pages);
  sg_redash_plan_clear(&plan);
  plan = plan_for(paged, "Alice", wanted);
  assert_int_equal(plan.status, SG_REDASH_PLAN_NO_USER);
  assert_true(plan.more_pages);
  sg_redash_plan_clear(&plan);
  g_free(other);
  g_free(paged);
}

static void renames_only_when_the_name_differs(void **state) {
  (void)state;
  const char *none[] = {NULL};
  char *users =
      users_page_new("Alice@Example.com", "alice@example.com", "{\"id\":2,\"name\":\"default\"}");
  struct sg_redash_plan plan = plan_for(users, "Alice Liddell", none);
  assert_int_equal(plan.status, SG_REDASH_PLAN_READY);
  assert_int_equal(plan.user_id, 7);
  assert_int_equal(plan.n_calls, 1);
  assert_int_equal(plan.calls[0].kind, SG_REDASH_RENAME);
  assert_string_equal(plan.name, "Alice Liddell");
  sg_redash_plan_clear(&plan);
  /* An unknown SAML name ("") never renames. */
  plan = plan_for(users, "", none);
  assert_int_equal(plan.n_calls, 0);
  sg_redash_plan_clear(&plan);
  g_free(users);
}

static void adds_and_removes_mapped_groups(void **state) {
  (void)state;
  const char *wanted[] = {"Engineers", NULL};
  char *users =
      users_page_new("alice@example.com", "Alice",
                     "{\"id\":2,\"name\":\"default\"},{\"id\":4,\"name\":\"Operations\"}");
  struct sg_redash_plan plan = plan_for(users, "Alice", wanted);
  assert_int_equal(plan.n_calls, 2);
  assert_int_equal(plan.calls[0].kind, SG_REDASH_ADD);
  assert_int_equal(plan.calls[0].group_id, 3);
  assert_string_equal(plan.calls[0].group_name, "Engineers");
  assert_int_equal(plan.calls[1].kind, SG_REDASH_REMOVE);
  assert_int_equal(plan.calls[1].group_id, 4);
  sg_redash_plan_clear(&plan);
  g_free(users);
}

static void unchanged_makes_no_call(void **state) {
  (void)state;
  const char *wanted[] = {"Engineers", NULL};
  char *users = users_page_new("alice@example.com", "Alice",
                               "{\"id\":2,\"name\":\"default\"},{\"id\":3,\"name\":\"Engineers\"}");
  struct sg_redash_plan plan = plan_for(users, "Alice", wanted);
  assert_int_equal(plan.status, SG_REDASH_PLAN_READY);
  assert_int_equal(plan.n_calls, 0);
  sg_redash_plan_clear(&plan);
  /* The same user as User.to_dict() gives it: groups as ids. */
  g_free(users);
  users = users_page_new("alice@example.com", "Alice", "2,3");
  plan = plan_for(users, "Alice", wanted);
  assert_int_equal(plan.n_calls, 0);
  sg_redash_plan_clear(&plan);
  g_free(users);
}

static void builtin_groups_are_never_touched(void **state) {
  (void)state;
  /* group_map names "default" but the person's groups do not map to it. */
  const char *none[] = {NULL};
  char *users = users_page_new("alice@example.com", "Alice", "{\"id\":2,\"name\":\"default\"}");
  struct sg_redash_plan plan = plan_for(users, "Alice", none);
  assert_int_equal(plan.n_calls, 0);
  assert_non_null(plan.builtin);
  assert_string_equal(plan.builtin[0], "default");
  assert_null(plan.builtin[1]);
  sg_redash_plan_clear(&plan);
  /* Nor added to: a mapping to "admin" grants nothing. */
  const char *admin_managed[] = {"admin", NULL}, *admin[] = {"admin", NULL};
  struct sg_redash_desired d = {"alice@example.com", NULL, true, admin_managed, admin};
  const char *reason;
  assert_int_equal(sg_redash_plan_build(users, strlen(users), groups_json, strlen(groups_json), &d,
                                        &plan, &reason),
                   0);
  assert_int_equal(plan.n_calls, 0);
  sg_redash_plan_clear(&plan);
  g_free(users);
}

static void unmapped_redash_groups_are_never_touched(void **state) {
  (void)state;
  const char *none[] = {NULL};
  char *users = users_page_new("alice@example.com", "Alice",
                               "{\"id\":2,\"name\":\"default\"},{\"id\":5,\"name\":\"Finance\"}");
  struct sg_redash_plan plan = plan_for(users, "Alice", none);
  assert_int_equal(plan.n_calls, 0); /* Finance is not in group_map */
  sg_redash_plan_clear(&plan);
  g_free(users);
}

static void a_missing_mapped_group_is_reported_not_made(void **state) {
  (void)state;
  const char *ghost_managed[] = {"Engineers", "Ghosts", NULL},
             *wanted[] = {"Engineers", "Ghosts", NULL};
  char *users = users_page_new("alice@example.com", "Alice", "");
  struct sg_redash_desired d = {"alice@example.com", NULL, true, ghost_managed, wanted};
  struct sg_redash_plan plan;
  const char *reason;
  assert_int_equal(sg_redash_plan_build(users, strlen(users), groups_json, strlen(groups_json), &d,
                                        &plan, &reason),
                   0);
  assert_int_equal(plan.n_calls, 1);
  assert_int_equal(plan.calls[0].kind, SG_REDASH_ADD);
  assert_string_equal(plan.missing[0], "Ghosts");
  sg_redash_plan_clear(&plan);
  g_free(users);
}

static void only_the_exact_address_is_the_user(void **state) {
  (void)state;
  /* Redash's search is email LIKE %q%: "alice@example.com.evil" also matches. */
  const char *none[] = {NULL};
  char *users = users_page_new("alice@example.com.evil", "Mallory", "");
  struct sg_redash_plan plan = plan_for(users, "Alice", none);
  assert_int_equal(plan.status, SG_REDASH_PLAN_NO_USER);
  sg_redash_plan_clear(&plan);
  g_free(users);
}

static void a_disabled_user_is_left_alone(void **state) {
  (void)state;
  const char *none[] = {NULL};
  char *users = users_page_new("alice@example.com", "alice", "");
  char *p = strstr(users, "\"is_disabled\":false");
  memcpy(p, "\"is_disabled\":true ", 19);
  struct sg_redash_plan plan = plan_for(users, "Alice", none);
  assert_int_equal(plan.status, SG_REDASH_PLAN_DISABLED);
  assert_int_equal(plan.n_calls, 0);
  sg_redash_plan_clear(&plan);
  g_free(users);
}

static void answers_that_are_not_redash_give_a_reason(void **state) {
  (void)state;
  const char *none[] = {NULL};
  struct sg_redash_desired d = {"alice@example.com", "Alice", true, managed, none};
  char *good = users_page_new("alice@example.com", "Alice", "");
  const char *bad_users[] = {"",
                             "<html>login</html>",
                             "[]",
                             "{\"results\":{}}",
                             "{\"results\":[{\"email\":\"alice@example.com\",\"id\":\"7\"}]}",
                             "{\"results\":[1,null,\"x\"]",
                             "null"};
  for (size_t i = 0; i < sizeof bad_users / sizeof bad_users[0]; i++) {
    struct sg_redash_plan plan;
    const char *reason = NULL;
    assert_int_equal(sg_redash_plan_build(bad_users[i], strlen(bad_users[i]), groups_json,
                                          strlen(groups_json), &d, &plan, &reason),
                     -1);
    assert_non_null(reason);
  }
  const char *bad_groups[] = {"{}", "not json", "{\"id\":1}"};
  for (size_t i = 0; i < sizeof bad_groups / sizeof bad_groups[0]; i++) {
    struct sg_redash_plan plan;
    const char *reason = NULL;
    assert_int_equal(sg_redash_plan_build(good, strlen(good), bad_groups[i], strlen(bad_groups[i]),
                                          &d, &plan, &reason),
                     -1);
    assert_non_null(reason);
    assert_null(plan.calls);
  }
  /* Groups of the wrong shape inside a good list are skipped, not trusted. */
  const char *odd = "[{\"id\":\"3\",\"name\":\"Engineers\",\"type\":\"regular\"},7,null]";
  struct sg_redash_plan plan;
  const char *reason;
  assert_int_equal(sg_redash_plan_build(good, strlen(good), odd, strlen(odd), &d, &plan, &reason),
                   0);
  assert_int_equal(plan.n_calls, 0);
  sg_redash_plan_clear(&plan);
  g_free(good);
}

static void saml_groups_map_to_redash_groups(void **state) {
  (void)state;
  const char *from[] = {"eng@example.com", "ops@example.com", "eng@example.com", NULL};
  const char *to[] = {"Engineers", "Operations", "Data Team", NULL};
  const char *groups[] = {"ENG@example.com", "marketing@example.com", "eng@example.com"};
  char **wanted = sg_redash_wanted_groups_new(from, to, groups, 3);
  assert_int_equal(g_strv_length(wanted), 2); /* sorted, once each; marketing ignored */
  assert_string_equal(wanted[0], "Data Team");
  assert_string_equal(wanted[1], "Engineers");
  g_strfreev(wanted);
  wanted = sg_redash_wanted_groups_new(from, to, groups, 0);
  assert_null(wanted[0]);
  g_strfreev(wanted);
  char **all = sg_redash_managed_groups_new(to);
  assert_int_equal(g_strv_length(all), 3);
  g_strfreev(all);
}

/* ---- the [redash] rows ---------------------------------------------------------- */

#define BASE_ENV                                                                                   \
  "SSOGATE_SERVER_PUBLIC_URL=http://localhost:8080", "SSOGATE_UPSTREAM_URL=http://127.0.0.1:5000", \
      "SSOGATE_SESSION_SECRET=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",                       \
      "SSOGATE_ACCESS_ALLOWED_DOMAINS=example.com"

static void config_reads_and_checks_the_redash_section(void **state) {
  (void)state;
  char *error = NULL;
  char *off[] = {BASE_ENV, NULL};
  struct sg_config *c = sg_config_load_new(NULL, off, &error);
  assert_non_null(c);
  assert_false(c->redash.sync_names || c->redash.sync_groups); /* opt-in */
  assert_int_equal(c->redash.timeout_ms, 10000);
  sg_config_unref(c);

  char *on[] = {BASE_ENV,
                "SSOGATE_SAML_GROUPS_ATTRIBUTE=groups",
                "SSOGATE_REDASH_API_URL=http://redash-server:5000/",
                "SSOGATE_REDASH_API_KEY=k3y",
                "SSOGATE_REDASH_SYNC_GROUPS=true",
                "SSOGATE_REDASH_GROUP_MAP=eng@example.com=Engineers data=Data%20Team",
                NULL};
  c = sg_config_load_new(NULL, on, &error);
  assert_null(error);
  assert_string_equal(c->redash.api_url, "http://redash-server:5000");
  assert_string_equal(c->redash.api_key, "k3y");
  assert_string_equal(c->redash.map_from[1], "data");
  assert_string_equal(c->redash.map_to[1], "Data Team");
  assert_null(c->redash.map_to[2]);
  sg_config_unref(c);

  char *no_key[] = {BASE_ENV, "SSOGATE_REDASH_SYNC_NAMES=true", NULL};
  assert_null(sg_config_load_new(NULL, no_key, &error));
  assert_non_null(strstr(error, "[redash] api_url"));
  assert_non_null(strstr(error, "api_key or api_key_file: required"));
  assert_non_null(strstr(error, "needs [saml] name_attribute"));
  free(error);

  char *bad_map[] = {BASE_ENV,
                     "SSOGATE_REDASH_API_URL=http://r:5000",
                     "SSOGATE_REDASH_API_KEY=k",
                     "SSOGATE_REDASH_SYNC_GROUPS=true",
                     "SSOGATE_REDASH_GROUP_MAP=ok=Fine a=b=c %zz=x",
                     NULL};
  assert_null(sg_config_load_new(NULL, bad_map, &error));
  assert_non_null(strstr(error, "'a=b=c' is not google-group=redash-group"));
  assert_non_null(strstr(error, "'%zz=x'"));
  assert_null(strstr(error, "ok=Fine"));
  free(error);

  char *no_map[] = {BASE_ENV, "SSOGATE_REDASH_API_URL=http://r:5000", "SSOGATE_REDASH_API_KEY=k",
                    "SSOGATE_REDASH_SYNC_GROUPS=true", NULL};
  assert_null(sg_config_load_new(NULL, no_map, &error));
  assert_non_null(strstr(error, "[redash] group_map"));
  free(error);

  char *bad_key[] = {BASE_ENV, "SSOGATE_REDASH_API_URL=http://r:5000",
                     "SSOGATE_REDASH_API_KEY=secret\r\nX-Evil: 1", "SSOGATE_REDASH_SYNC_NAMES=true",
                     NULL};
  assert_null(sg_config_load_new(NULL, bad_key, &error));
  assert_non_null(strstr(error, "blank or control character"));
  assert_null(strstr(error, "secret"));
  free(error);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(created_by_redash_first),
      cmocka_unit_test(renames_only_when_the_name_differs),
      cmocka_unit_test(adds_and_removes_mapped_groups),
      cmocka_unit_test(unchanged_makes_no_call),
      cmocka_unit_test(builtin_groups_are_never_touched),
      cmocka_unit_test(unmapped_redash_groups_are_never_touched),
      cmocka_unit_test(a_missing_mapped_group_is_reported_not_made),
      cmocka_unit_test(only_the_exact_address_is_the_user),
      cmocka_unit_test(a_disabled_user_is_left_alone),
      cmocka_unit_test(answers_that_are_not_redash_give_a_reason),
      cmocka_unit_test(saml_groups_map_to_redash_groups),
      cmocka_unit_test(config_reads_and_checks_the_redash_section),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
