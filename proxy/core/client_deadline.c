/*
 * client_deadline.c - total time limits on slow clients (see client_deadline.h).
 */
#include "proxy/core/client_deadline.h"

#include <stdlib.h>
#include <sys/socket.h>

struct sg_client *sg_client_new(int fd) {
  struct sg_client *c = calloc(1, sizeof *c);
  if (c != NULL)
    c->fd = fd;
  return c;
}

static void unlink_client(struct sg_client_list *list, struct sg_client *c) {
  if (c->prev != NULL)
    c->prev->next = c->next;
  else
    list->head = c->next;
  if (c->next != NULL)
    c->next->prev = c->prev;
  else
    list->tail = c->prev;
  c->prev = c->next = NULL;
  c->armed = false;
  list->count--;
}

void sg_client_arm(struct sg_client_list *list, struct sg_client *c, int64_t deadline_ms) {
  if (c->armed)
    unlink_client(list, c);
  c->deadline_ms = deadline_ms;
  c->head_done = false;
  c->armed = true;
  c->prev = list->tail;
  if (list->tail != NULL)
    list->tail->next = c;
  else
    list->head = c;
  list->tail = c;
  list->count++;
}

void sg_client_disarm(struct sg_client_list *list, struct sg_client *c) {
  if (c->armed)
    unlink_client(list, c);
}

unsigned sg_client_expire(struct sg_client_list *list, int64_t now_ms) {
  static const char timeout_reply[] = "HTTP/1.1 408 Request Timeout\r\n"
                                      "Connection: close\r\nContent-Length: 0\r\n\r\n";
  unsigned expired = 0;
  while (list->head != NULL && list->head->deadline_ms <= now_ms) {
    struct sg_client *c = list->head;
    unlink_client(list, c);
    if (!c->head_done) /* best effort: a full socket buffer just loses it */
      (void)send(c->fd, timeout_reply, sizeof timeout_reply - 1, MSG_DONTWAIT | MSG_NOSIGNAL);
    /* Not close(): libmicrohttpd still owns the fd; it sees the end and
     * tidies up, calling our completion callbacks as for any closed peer. */
    shutdown(c->fd, SHUT_RDWR);
    c->timed_out = true;
    expired++;
  }
  return expired;
}
