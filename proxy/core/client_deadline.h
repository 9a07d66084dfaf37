/*
 * client_deadline.h - a total time limit on what we wait for from a client.
 *
 * libmicrohttpd's connection timeout counts idleness, so a client that sends
 * one byte a second (slowloris, slow POST) never trips it.  Every connection
 * that we are waiting on (for a request head, or for the body of a request
 * ssogate answers itself, like the ACS form) sits in its worker's list with a
 * deadline; when the deadline passes, the socket is shut down and
 * libmicrohttpd cleans the connection up as it does for any closed peer.
 * Requests that stream to the upstream are not on the list: a slow upload is
 * legitimate, and the upstream leg has its own timeouts.
 *
 * Single threaded: one list per worker, used only by that worker.
 */
#ifndef SSOGATE_CLIENT_DEADLINE_H
#define SSOGATE_CLIENT_DEADLINE_H

#include <stdbool.h>
#include <stdint.h>

struct sg_client {
  int fd;
  int64_t deadline_ms;
  bool armed;
  bool head_done; /* set by the server once the request head is in */
  bool timed_out; /* shut down by its deadline: logged as a 408 */
  bool reported;  /* ... in an access-log line already */
  struct sg_client *prev, *next;
};

/* Armed clients in deadline order (every deadline is now + the same timeout,
 * so appending keeps the order; a reload that shortens the timeout only
 * delays the newer deadlines by at most the difference). */
struct sg_client_list {
  struct sg_client *head, *tail;
  unsigned count;
};

/* A client for socket fd, not armed (free()). */
struct sg_client *sg_client_new(int fd);

/* Waits for a new request head until deadline_ms (re-arming moves it). */
void sg_client_arm(struct sg_client_list *list, struct sg_client *c, int64_t deadline_ms);
void sg_client_disarm(struct sg_client_list *list, struct sg_client *c);

/* Shuts down every client whose deadline is at or before now_ms; one still
 * without a complete head first gets a "408 Request Timeout" (nothing else
 * can be on the wire then).  Returns how many were shut down. */
unsigned sg_client_expire(struct sg_client_list *list, int64_t now_ms);

#endif
