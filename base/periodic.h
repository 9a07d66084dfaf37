/*
 * periodic.h - a thread of its own that runs one job again and again: the
 * job says how long to wait before its next run, a wake cuts that wait
 * short, and free stops and joins the thread.
 *
 * For the process's timed background loops (the readiness prober, the
 * resolver, the IdP metadata refresh, the Redis revocation poller).  Not for
 * a queue of work (redash/sync.c's pool) or anything on a worker's loop.
 *
 * Waits are on CLOCK_MONOTONIC: a wall-clock jump changes no period.  A run
 * is never interrupted, so a job bounds its own blocking calls; a wake that
 * comes during a run makes the next run start right after it.
 */
#ifndef SSOGATE_BASE_PERIODIC_H
#define SSOGATE_BASE_PERIODIC_H

#include <stdint.h>

/* One run, on the thread; returns the milliseconds to wait before the next
 * one (0 or less: at once). */
typedef int64_t (*sg_periodic_job)(void *arg);

struct sg_periodic;

/* Starts the thread (name: up to 15 characters, for ps and debuggers); the
 * first run comes after first_delay_ms, 0 to run at once.  NULL when no
 * thread could be made. */
struct sg_periodic *sg_periodic_new(const char *name, sg_periodic_job job, void *arg,
                                    int64_t first_delay_ms);

/* Runs the job now, or right after the run in progress.  Any thread, until
 * sg_periodic_free. */
void sg_periodic_wake(struct sg_periodic *p);

/* Stops the thread (at once when it waits, after the run in progress
 * otherwise), joins it and frees p.  NULL is a no-op. */
void sg_periodic_free(struct sg_periodic *p);

#endif
