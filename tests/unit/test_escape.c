/*
 * test_escape.c - JSON string escaping of hostile names, emails and groups;
 * the strict base64 check run before g_base64_decode (auth/base64.h).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "auth/base64.h"
#include "base/json.h"

static void check(const char *in, size_t len, const char *want) {
  char out[256];
  size_t need = sg_json_escape(out, sizeof out, in, len);
  assert_string_equal(out, want);
  assert_int_equal(need, strlen(want));
}

static void quotes_backslashes_and_controls(void **state) {
  (void)state;
  check("a\"b\\c\n</script>", 15, "a\\\"b\\\\c\\n</script>");
  check("\t\r", 2, "\\t\\r");
  check("\x01\x1f\x7f", 3, "\\u0001\\u001f\\u007f");
  for (int c = 0; c < 0x20; c++) {
    char in[1] = {(char)c}, out[16];
    sg_json_escape(out, sizeof out, in, 1);
    assert_true(out[0] == '\\');
  }
  check("a\0b", 3, "a\\u0000b");
}

static void utf8_passes_and_invalid_bytes_do_not(void **state) {
  (void)state;
  check("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14,
        "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
  check("\xff", 1, "\\ufffd");
  check("\xc0\xaf", 2, "\\ufffd\\ufffd");                       /* overlong '/' */
  check("\xed\xa0\x80", 3, "\\ufffd\\ufffd\\ufffd");            /* a surrogate */
  check("\xf4\x90\x80\x80", 4, "\\ufffd\\ufffd\\ufffd\\ufffd"); /* past U+10FFFF */
  check("\xe2\x82", 2, "\\ufffd\\ufffd");                       /* cut short */
}

static void truncation_never_splits_an_escape_or_a_character(void **state) {
  (void)state;
  char out[6];
  size_t need = sg_json_escape(out, sizeof out, "ab\"cd", 5);
  assert_int_equal(need, 6);
  assert_string_equal(out, "ab\\\"c");
  need = sg_json_escape(out, 4, "a\xc3\xa9z", 4);
  assert_string_equal(out, "a\xc3\xa9");
  need = sg_json_escape(out, 3, "a\x01", 2);
  assert_string_equal(out, "a");
  assert_int_equal(need, 7);
}

static size_t b64(const char *in, size_t *bad) {
  *bad = 12345;
  return sg_base64_check(in, strlen(in), bad);
}

static void base64_is_checked_strictly(void **state) {
  (void)state;
  size_t bad;
  assert_int_equal(b64("PHNh", &bad), 4);
  assert_int_equal(b64("PHNhbQ==", &bad), 8);
  assert_int_equal(b64("PHNh\r\nbWw=\n", &bad), 8); /* wrapped lines */
  assert_int_equal(b64("", &bad), 0);
  assert_int_equal(bad, 0);
  assert_int_equal(b64("PHNh!!!bWw=", &bad), 0); /* g_base64_decode would skip the garbage */
  assert_int_equal(bad, 4);
  assert_int_equal(b64("PH=hbWw=", &bad), 0); /* '=' inside */
  assert_int_equal(bad, 3);
  assert_int_equal(b64("PHNhb", &bad), 0); /* not a multiple of 4 */
  assert_int_equal(bad, 5);
  assert_int_equal(b64("PH==", &bad), 4);
  assert_int_equal(b64("P===", &bad), 0); /* three pads */
  assert_int_equal(bad, 4);
  assert_int_equal(b64("PHNh-_Nh", &bad), 0); /* the URL-safe alphabet is not this one */
  assert_int_equal(bad, 4);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(quotes_backslashes_and_controls),
      cmocka_unit_test(utf8_passes_and_invalid_bytes_do_not),
      cmocka_unit_test(truncation_never_splits_an_escape_or_a_character),
      cmocka_unit_test(base64_is_checked_strictly),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
