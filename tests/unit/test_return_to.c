/*
 * test_return_to.c - return_to / RelayState may only ever be a local path:
 * every open-redirect trick browsers fall for becomes "/".
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth/return_to.h"

static void expect(const char *raw, const char *want) {
  char out[256];
  size_t n = sg_return_to_sanitize(raw, out, sizeof out);
  if (strcmp(out, want) != 0)
    fail_msg("return_to '%s': expected '%s', got '%s'", raw ? raw : "(null)", want, out);
  assert_int_equal(n, strlen(want));
}

static void test_local_paths_are_kept(void **state) {
  (void)state;
  expect("/", "/");
  expect("/ok/path?x=1", "/ok/path?x=1");
  expect("/queries/42#table", "/queries/42#table");
  expect("/a%20b", "/a%20b");                       /* encoded space decodes to a local path */
  expect("/dashboard?q=%2Fx", "/dashboard?q=%2Fx"); /* a slash later on is harmless */
  expect("/caf%C3%A9?q=hello%20world", "/caf%C3%A9?q=hello%20world");
}

static void test_absolute_and_protocol_relative_urls(void **state) {
  (void)state;
  expect("https://evil.com", "/");
  expect("http://evil.com/", "/");
  expect("//evil.com", "/");
  expect("///evil.com", "/");
  expect("/\\evil.com", "/");
  expect("\\\\evil.com", "/");
  expect("javascript:alert(1)", "/");
  expect("http:evil.com", "/");
  expect("evil.com", "/");
}

static void test_encoded_tricks(void **state) {
  (void)state;
  expect("/%2fevil.com", "/");
  expect("/%2Fevil.com", "/");
  expect("/%5cevil.com", "/");
  expect("/%5Cevil.com", "/");
  expect("%2f%2fevil.com", "/");
  expect("/%252fevil.com", "/");        /* double encoding */
  expect("/%25252fevil.com", "/");      /* triple */
  expect("/%09/evil.com", "/");         /* encoded tab */
  expect("/%0d%0aSet-Cookie:x=1", "/"); /* header injection */
  expect("/%00", "/");
  expect("/%zz", "/"); /* malformed escape */
  expect("/%2", "/");
  expect("/%", "/");
  expect("/ok/%5Cpath", "/"); /* backslash anywhere */
}

static void test_control_characters(void **state) {
  (void)state;
  expect("/\t/evil.com", "/");
  expect("/\n/evil.com", "/");
  expect("/\r\nLocation: x", "/");
  expect("/ok path", "/");
  expect("/\x7f", "/");
  expect("/caf\xc3\xa9", "/"); /* raw non-ASCII: browsers send it encoded */
  expect("/\"><script>", "/");
}

static void test_empty_null_and_long(void **state) {
  (void)state;
  expect("", "/");
  expect(NULL, "/");
  char long_path[8192];
  long_path[0] = '/';
  memset(long_path + 1, 'a', sizeof long_path - 2);
  long_path[sizeof long_path - 1] = '\0';
  expect(long_path, "/");

  /* A value that does not fit the caller's buffer is never truncated. */
  char small[8];
  assert_int_equal(sg_return_to_sanitize("/abcdefghij", small, sizeof small), 1);
  assert_string_equal(small, "/");
  assert_int_equal(sg_return_to_sanitize("/abcdef", small, sizeof small), 7);
  assert_string_equal(small, "/abcdef");
  char one[1];
  assert_int_equal(sg_return_to_sanitize("/x", one, sizeof one), 0);
  assert_string_equal(one, "");
  assert_int_equal(sg_return_to_sanitize("/x", NULL, 0), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_local_paths_are_kept),
      cmocka_unit_test(test_absolute_and_protocol_relative_urls),
      cmocka_unit_test(test_encoded_tricks),
      cmocka_unit_test(test_control_characters),
      cmocka_unit_test(test_empty_null_and_long),
  };
  return cmocka_run_group_tests_name("return_to", tests, NULL, NULL);
}
