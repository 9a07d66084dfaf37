/*
 * clock.h - the monotonic clock, for timeouts, deadlines and durations.
 *
 * The one copy for every room (base/ is below them all).  Not for wall-clock
 * time: a timestamp that leaves the process (a log line, a SAML instant, a
 * Redis score) reads CLOCK_REALTIME where it is made.
 */
#ifndef SSOGATE_BASE_CLOCK_H
#define SSOGATE_BASE_CLOCK_H

#include <stdint.h>
#include <time.h>

uint64_t sg_now_ns(void);
int64_t sg_now_ms(void);

/* The CLOCK_MONOTONIC time ms from now, for pthread_cond_timedwait on a
 * condition variable made with pthread_condattr_setclock(CLOCK_MONOTONIC). */
struct timespec sg_monotonic_in(int64_t ms);

#endif
