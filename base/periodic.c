/*
 * periodic.c - the periodic thread (see periodic.h): one mutex and one
 * condition variable on CLOCK_MONOTONIC guard the stop and wake flags; the
 * job runs with neither held.
 */
#include "base/periodic.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "base/clock.h"

struct sg_periodic {
  pthread_mutex_t lock;
  pthread_cond_t changed; /* stop or woken was set */
  pthread_t thread;
  bool stop, woken; /* under lock */
  sg_periodic_job job;
  void *arg;
  int64_t first_delay_ms;
  char name[16]; /* the kernel's limit for a thread's name */
};

static void *periodic_main(void *arg) {
  struct sg_periodic *p = arg;
  pthread_setname_np(pthread_self(), p->name); /* a label only: failing is harmless */
  int64_t delay_ms = p->first_delay_ms;
  pthread_mutex_lock(&p->lock);
  for (;;) {
    if (delay_ms > 0) {
      struct timespec until = sg_monotonic_in(delay_ms);
      /* 0 is a signal or a spurious return: look at the flags again. */
      while (!p->stop && !p->woken && pthread_cond_timedwait(&p->changed, &p->lock, &until) == 0) {
      }
    }
    if (p->stop)
      break;
    p->woken = false; /* this run answers every wake so far */
    pthread_mutex_unlock(&p->lock);
    delay_ms = p->job(p->arg);
    pthread_mutex_lock(&p->lock);
  }
  pthread_mutex_unlock(&p->lock);
  return NULL;
}

struct sg_periodic *sg_periodic_new(const char *name, sg_periodic_job job, void *arg,
                                    int64_t first_delay_ms) {
  struct sg_periodic *p = calloc(1, sizeof *p);
  pthread_condattr_t attr;
  if (p == NULL || pthread_condattr_init(&attr) != 0) {
    free(p);
    return NULL;
  }
  bool made = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 &&
              pthread_cond_init(&p->changed, &attr) == 0;
  pthread_condattr_destroy(&attr);
  if (!made) {
    free(p);
    return NULL;
  }
  pthread_mutex_init(&p->lock, NULL);
  p->job = job;
  p->arg = arg;
  p->first_delay_ms = first_delay_ms;
  snprintf(p->name, sizeof p->name, "%s", name);
  if (pthread_create(&p->thread, NULL, periodic_main, p) != 0) {
    pthread_cond_destroy(&p->changed);
    pthread_mutex_destroy(&p->lock);
    free(p);
    return NULL;
  }
  return p;
}

void sg_periodic_wake(struct sg_periodic *p) {
  pthread_mutex_lock(&p->lock);
  p->woken = true;
  pthread_cond_signal(&p->changed);
  pthread_mutex_unlock(&p->lock);
}

void sg_periodic_free(struct sg_periodic *p) {
  if (p == NULL)
    return;
  pthread_mutex_lock(&p->lock);
  p->stop = true;
  pthread_cond_signal(&p->changed);
  pthread_mutex_unlock(&p->lock);
  pthread_join(p->thread, NULL);
  pthread_cond_destroy(&p->changed);
  pthread_mutex_destroy(&p->lock);
  free(p);
}
