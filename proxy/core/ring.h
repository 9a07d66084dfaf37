/*
 * ring.h - a fixed-size byte ring between an upstream connection and libmicrohttpd.
 *
 * Bodies stream through one of these in each direction, so a request never
 * holds more than the ring's size whatever the body's length.  Single
 * threaded: the worker that owns the request is the only user.
 */
#ifndef SSOGATE_RING_H
#define SSOGATE_RING_H

#include <stddef.h>

struct sg_ring {
  char *data; /* NULL until first use */
  size_t cap;
  size_t head; /* read position */
  size_t len;  /* bytes stored */
};

int sg_ring_init(struct sg_ring *ring, size_t cap);
void sg_ring_release(struct sg_ring *ring);

static inline size_t sg_ring_free_space(const struct sg_ring *ring) {
  return ring->cap - ring->len;
}

/* Copies in as much of src as fits; returns the count copied. */
size_t sg_ring_push(struct sg_ring *ring, const void *src, size_t len);
/* Copies out up to len bytes; returns the count copied. */
size_t sg_ring_pop(struct sg_ring *ring, void *dst, size_t len);

#endif
