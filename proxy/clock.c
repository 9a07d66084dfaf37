/*
 * clock.c - monotonic time and the drain flag (see clock.h).
 */
#include "proxy/clock.h"

#include <stdatomic.h>
#include <time.h>

static atomic_bool draining;
static _Atomic int64_t drain_deadline_ms;

uint64_t sg_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int64_t sg_now_ms(void) { return (int64_t)(sg_now_ns() / 1000000); }

void sg_drain_begin(uint64_t drain_ms) {
  atomic_store(&drain_deadline_ms, sg_now_ms() + (int64_t)drain_ms);
  atomic_store(&draining, true);
}

bool sg_workers_draining(void) { return atomic_load(&draining); }

int64_t sg_drain_deadline_ms(void) { return atomic_load(&drain_deadline_ms); }
