/* test_log.c - the timestamp of log and access-log lines (base/log.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "base/log.h"

/* What the timestamp must read at time t: RFC 3339, UTC, milliseconds. */
static void expected_at(const struct timespec *t, char *out, size_t cap) {
  struct tm tm;
  gmtime_r(&t->tv_sec, &tm);
  size_t n = strftime(out, cap, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out + n, cap - n, ".%03ldZ", t->tv_nsec / 1000000);
}

/* The cached date must follow the clock: each call is checked against the
 * clock read just before and after it, across several seconds. */
static void timestamp_follows_the_clock(void **state) {
  (void)state;
  struct timespec start;
  clock_gettime(CLOCK_REALTIME, &start);
  for (int i = 0; i < 2600; i++) {
    struct timespec before, after;
    char got[40], lo[40], hi[40];
    clock_gettime(CLOCK_REALTIME, &before);
    sg_log_timestamp(got, sizeof got);
    clock_gettime(CLOCK_REALTIME, &after);
    expected_at(&before, lo, sizeof lo);
    expected_at(&after, hi, sizeof hi);
    assert_int_equal(strlen(got), 24);
    assert_true(strcmp(got, lo) >= 0 && strcmp(got, hi) <= 0);
    struct timespec nap = {0, 1000000}; /* 1 ms: the loop crosses 2 seconds */
    nanosleep(&nap, NULL);
  }
}

static void timestamp_never_overflows(void **state) {
  (void)state;
  char small[10];
  memset(small, 'x', sizeof small);
  sg_log_timestamp(small, sizeof small);
  assert_string_equal(small, "");
  char exact[25];
  sg_log_timestamp(exact, sizeof exact);
  assert_int_equal(strlen(exact), 24);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(timestamp_follows_the_clock),
      cmocka_unit_test(timestamp_never_overflows),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
