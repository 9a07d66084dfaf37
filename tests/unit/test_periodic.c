/*
 * test_periodic.c - the periodic thread (base/periodic.c): the job runs at
 * once or after the first delay, then again after the delay it asks for; a
 * wake runs it early, also when it comes during a run; free joins promptly
 * in a long wait (an hour, or INT64_MAX ms) and waits for a run in
 * progress, never cutting it short.  Every wait here is bounded: a broken helper fails
 * a test, it never hangs the suite.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "base/clock.h"
#include "base/periodic.h"

#define BOUND_MS 5000 /* how long anything that should happen soon may take */
#define HOUR_MS (3600 * 1000)
#define MAX_RUNS 16

/* What the job saw, and the gate a test may hold it at; under lock. */
struct probe {
  pthread_mutex_t lock;
  pthread_cond_t changed; /* on CLOCK_MONOTONIC */
  int runs;
  uint64_t started_ns[MAX_RUNS];
  int64_t delay_ms; /* what the job asks for */
  bool hold;        /* the job waits while this is set */
  bool in_run;
  bool freed; /* the stopper's sg_periodic_free returned */
};

static struct probe probe;

static void probe_reset(int64_t delay_ms) {
  pthread_condattr_t attr;
  pthread_condattr_init(&attr);
  pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
  memset(&probe, 0, sizeof probe);
  pthread_mutex_init(&probe.lock, NULL);
  pthread_cond_init(&probe.changed, &attr);
  pthread_condattr_destroy(&attr);
  probe.delay_ms = delay_ms;
}

static void probe_destroy(void) {
  pthread_cond_destroy(&probe.changed);
  pthread_mutex_destroy(&probe.lock);
}

static int64_t job(void *arg) {
  (void)arg; /* &probe; no cmocka assert off the test's own thread */
  pthread_mutex_lock(&probe.lock);
  if (probe.runs < MAX_RUNS)
    probe.started_ns[probe.runs] = sg_now_ns();
  probe.runs++;
  probe.in_run = true;
  pthread_cond_broadcast(&probe.changed);
  while (probe.hold)
    pthread_cond_wait(&probe.changed, &probe.lock);
  probe.in_run = false;
  int64_t delay_ms = probe.delay_ms;
  pthread_mutex_unlock(&probe.lock);
  return delay_ms;
}

/* Under lock: waits up to ms for *flag or for runs >= n; false on timeout. */
static bool wait_locked(int64_t ms, const bool *flag, int n) {
  struct timespec until = sg_monotonic_in(ms);
  for (;;) {
    if (flag != NULL ? *flag : probe.runs >= n)
      return true;
    if (pthread_cond_timedwait(&probe.changed, &probe.lock, &until) != 0)
      return flag != NULL ? *flag : probe.runs >= n;
  }
}

static bool wait_for_runs(int n, int64_t ms) {
  pthread_mutex_lock(&probe.lock);
  bool ok = wait_locked(ms, NULL, n);
  pthread_mutex_unlock(&probe.lock);
  return ok;
}

static int runs(void) {
  pthread_mutex_lock(&probe.lock);
  int n = probe.runs;
  pthread_mutex_unlock(&probe.lock);
  return n;
}

/* sg_periodic_free on a thread of its own, so that a free that hangs fails
 * the test instead of the suite. */
static void *stopper_main(void *arg) {
  sg_periodic_free(arg);
  pthread_mutex_lock(&probe.lock);
  probe.freed = true;
  pthread_cond_broadcast(&probe.changed);
  pthread_mutex_unlock(&probe.lock);
  return NULL;
}

static pthread_t stopper_start(struct sg_periodic *p) {
  pthread_t t;
  assert_int_equal(pthread_create(&t, NULL, stopper_main, p), 0);
  return t;
}

/* Frees p and fails unless that returned within ms. */
static void free_within(struct sg_periodic *p, int64_t ms) {
  pthread_t t = stopper_start(p);
  pthread_mutex_lock(&probe.lock);
  bool freed = wait_locked(ms, &probe.freed, 0);
  pthread_mutex_unlock(&probe.lock);
  assert_true(freed); /* on failure the stopper is left behind: the process ends anyway */
  pthread_join(t, NULL);
}

/* A periodic thread whose job asks for an hour, held in its first run. */
static struct sg_periodic *start_held_in_its_first_run(void) {
  probe_reset(HOUR_MS);
  probe.hold = true;
  struct sg_periodic *p = sg_periodic_new("test-periodic", job, &probe, 0);
  assert_non_null(p);
  pthread_mutex_lock(&probe.lock);
  assert_true(wait_locked(BOUND_MS, &probe.in_run, 0));
  pthread_mutex_unlock(&probe.lock);
  return p;
}

/* Under lock: lets the held run end. */
static void release_locked(void) {
  probe.hold = false;
  pthread_cond_broadcast(&probe.changed);
}

/* Frees p (promptly), checks how many runs there were, and resets the probe. */
static void free_and_count(struct sg_periodic *p, int expected_runs) {
  free_within(p, BOUND_MS);
  assert_int_equal(runs(), expected_runs);
  probe_destroy();
}

static void the_job_runs_at_once_then_after_the_delay_it_asks(void **state) {
  (void)state;
  probe_reset(100);
  uint64_t created = sg_now_ns();
  struct sg_periodic *p = sg_periodic_new("test-periodic", job, &probe, 0);
  assert_non_null(p);
  assert_true(wait_for_runs(3, BOUND_MS));
  free_within(p, BOUND_MS);
  assert_true(probe.started_ns[0] - created < (uint64_t)BOUND_MS * 1000000u);
  for (int i = 1; i < 3; i++) /* never earlier than asked: the wait is a full 100 ms */
    assert_true(probe.started_ns[i] - probe.started_ns[i - 1] >= 100u * 1000000u);
  probe_destroy();
}

static void the_first_run_waits_for_the_first_delay(void **state) {
  (void)state;
  probe_reset(HOUR_MS);
  uint64_t created = sg_now_ns();
  struct sg_periodic *p = sg_periodic_new("test-periodic", job, &probe, 150);
  assert_non_null(p);
  assert_true(wait_for_runs(1, BOUND_MS));
  assert_true(probe.started_ns[0] - created >= 150u * 1000000u);
  free_and_count(p, 1);
}

static void a_wake_runs_the_job_early(void **state) {
  (void)state;
  probe_reset(HOUR_MS);
  struct sg_periodic *p = sg_periodic_new("test-periodic", job, &probe, 0);
  assert_non_null(p);
  assert_true(wait_for_runs(1, BOUND_MS));
  for (int n = 2; n <= 4; n++) { /* each wake cuts an hour's wait short */
    sg_periodic_wake(p);
    assert_true(wait_for_runs(n, BOUND_MS));
  }
  free_and_count(p, 4);
}

static void a_wake_during_a_run_runs_it_again_right_after(void **state) {
  (void)state;
  struct sg_periodic *p = start_held_in_its_first_run();
  sg_periodic_wake(p); /* while the first run is held */
  sg_periodic_wake(p); /* two wakes during one run ask for one more run, not two */
  pthread_mutex_lock(&probe.lock);
  release_locked();
  pthread_mutex_unlock(&probe.lock);
  assert_true(wait_for_runs(2, BOUND_MS));
  free_and_count(p, 2);
}

static void free_joins_promptly_in_a_long_wait(void **state) {
  (void)state;
  int64_t long_delays[] = {HOUR_MS, INT64_MAX};
  for (size_t i = 0; i < sizeof long_delays / sizeof long_delays[0]; i++) {
    probe_reset(long_delays[i]);
    struct sg_periodic *p = sg_periodic_new("test-periodic", job, &probe, 0);
    assert_non_null(p);
    assert_true(wait_for_runs(1, BOUND_MS));
    /* The thread is in its wait (or about to be); a wait that returned at
     * once (a delay it could not express) would have run the job again. */
    assert_false(wait_for_runs(2, 200));
    free_and_count(p, 1);
  }
}

static void free_before_a_long_first_delay_never_runs_the_job(void **state) {
  (void)state;
  probe_reset(0);
  struct sg_periodic *p = sg_periodic_new("test-periodic", job, &probe, HOUR_MS);
  assert_non_null(p);
  free_and_count(p, 0);
}

static void free_waits_for_the_run_in_progress_and_starts_no_other(void **state) {
  (void)state;
  struct sg_periodic *p = start_held_in_its_first_run();
  pthread_t t = stopper_start(p);
  pthread_mutex_lock(&probe.lock);
  assert_false(wait_locked(200, &probe.freed, 0)); /* a run is never cut short */
  release_locked();
  assert_true(wait_locked(BOUND_MS, &probe.freed, 0));
  pthread_mutex_unlock(&probe.lock);
  pthread_join(t, NULL);
  assert_int_equal(runs(), 1);
  probe_destroy();
}

static void free_of_null_is_a_no_op(void **state) {
  (void)state;
  sg_periodic_free(NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(the_job_runs_at_once_then_after_the_delay_it_asks),
      cmocka_unit_test(the_first_run_waits_for_the_first_delay),
      cmocka_unit_test(a_wake_runs_the_job_early),
      cmocka_unit_test(a_wake_during_a_run_runs_it_again_right_after),
      cmocka_unit_test(free_joins_promptly_in_a_long_wait),
      cmocka_unit_test(free_before_a_long_first_delay_never_runs_the_job),
      cmocka_unit_test(free_waits_for_the_run_in_progress_and_starts_no_other),
      cmocka_unit_test(free_of_null_is_a_no_op),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
