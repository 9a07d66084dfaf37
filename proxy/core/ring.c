/*
 * ring.c - bounded byte ring (see ring.h).
 */
#include "proxy/core/ring.h"

#include <stdlib.h>
#include <string.h>

int sg_ring_init(struct sg_ring *ring, size_t cap) {
  ring->data = malloc(cap);
  if (ring->data == NULL)
    return -1;
  ring->cap = cap;
  ring->head = 0;
  ring->len = 0;
  return 0;
}

void sg_ring_release(struct sg_ring *ring) {
  free(ring->data);
  memset(ring, 0, sizeof *ring);
}

size_t sg_ring_push(struct sg_ring *ring, const void *src, size_t len) {
  size_t n = len < sg_ring_free_space(ring) ? len : sg_ring_free_space(ring);
  size_t tail = (ring->head + ring->len) % ring->cap;
  size_t first = n < ring->cap - tail ? n : ring->cap - tail;

  memcpy(ring->data + tail, src, first);
  memcpy(ring->data, (const char *)src + first, n - first);
  ring->len += n;
  return n;
}

size_t sg_ring_pop(struct sg_ring *ring, void *dst, size_t len) {
  size_t n = len < ring->len ? len : ring->len;
  size_t first = n < ring->cap - ring->head ? n : ring->cap - ring->head;

  memcpy(dst, ring->data + ring->head, first);
  memcpy((char *)dst + first, ring->data, n - first);
  ring->head = (ring->head + n) % ring->cap;
  ring->len -= n;
  if (ring->len == 0)
    ring->head = 0;
  return n;
}
