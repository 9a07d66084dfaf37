/*
 * drain.c - the drain flag and deadline (see drain.h).
 */
#include "proxy/core/drain.h"

#include <stdatomic.h>

#include "base/clock.h"

static atomic_bool draining;
static _Atomic int64_t drain_deadline_ms;

void sg_drain_begin(uint64_t drain_ms) {
  atomic_store(&drain_deadline_ms, sg_now_ms() + (int64_t)drain_ms);
  atomic_store(&draining, true);
}

bool sg_workers_draining(void) { return atomic_load(&draining); }

int64_t sg_drain_deadline_ms(void) { return atomic_load(&drain_deadline_ms); }
