/*
 * floor.c - the floor of libmicrohttpd's cost per request (issue 23).
 *
 * A bare libmicrohttpd 0.9.x server set up as ssogate sets up its workers
 * (proxy/server.c, proxy/core/worker.c): external epoll loop, MHD_USE_EPOLL |
 * MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO, a 32 KiB connection pool, one
 * SO_REUSEPORT listening socket per worker thread.  It answers every request
 * with the same 18 bytes as bench/run's origin, nothing else: no upstream,
 * no log, no routing.  Two modes:
 *   suspend  the request is suspended in the access handler and resumed at
 *            the next loop turn, as ssogate does while the upstream answers
 *            (the round trip costs libmicrohttpd an EPOLL_CTL_DEL, an
 *            EPOLL_CTL_ADD and a read that finds nothing);
 *   direct   the answer is queued at once (no suspend).
 * bench/floor/run measures both against nginx answering `return 200` itself.
 *
 *   floor PORT WORKERS suspend|direct
 */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <microhttpd.h>

#define POOL (32 * 1024)
#define BODY "hello from origin\n"
#define MAX_PARKED 8192

struct worker {
  struct MHD_Daemon *mhd;
  int epfd, listen_fd;
  struct MHD_Connection *parked[MAX_PARKED];
  unsigned n_parked;
  pthread_t thread;
};

static int suspend_mode;
static uint16_t port;

/* libmicrohttpd 0.9.75 closes the connection when a response is queued at
 * the first call (before the request is complete), so, like ssogate
 * (proxy/core/respond.c), the answer goes out at the second call at the
 * earliest.  Calls per request: 1 head (ssogate sends the request to the
 * upstream here), 2 complete (suspend: park it while the upstream answers),
 * 3 after the resume (queue the answer). */
static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **req) {
  static int head, parked;
  struct worker *w = cls;
  (void)url, (void)method, (void)version, (void)upload;
  if (*req == NULL) {
    *req = &head;
    return MHD_YES;
  }
  *upload_size = 0;
  if (suspend_mode && *req == &head) {
    *req = &parked;
    if (w->n_parked == MAX_PARKED)
      return MHD_NO;
    MHD_suspend_connection(conn);
    w->parked[w->n_parked++] = conn; /* resumed at the next loop turn */
    return MHD_YES;
  }
  struct MHD_Response *rsp =
      MHD_create_response_from_buffer(sizeof BODY - 1, (void *)BODY, MHD_RESPMEM_PERSISTENT);
  MHD_add_response_header(rsp, "Content-Type", "text/plain");
  enum MHD_Result ok = MHD_queue_response(conn, 200, rsp);
  MHD_destroy_response(rsp);
  return ok;
}

static int listen_socket(void) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  int on = 1;
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on) < 0 ||
      setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on) < 0 ||
      bind(fd, (struct sockaddr *)&a, sizeof a) < 0 || listen(fd, 4096) < 0) {
    perror("floor: listen");
    exit(1);
  }
  return fd;
}

static void *loop(void *arg) {
  struct worker *w = arg;
  struct epoll_event ev[64];
  for (;;) {
    /* libmicrohttpd says when it must run again: at once (0) while it has
     * connections with data already read, as ssogate's loop asks it. */
    MHD_UNSIGNED_LONG_LONG mhd_timeout;
    int timeout = 250;
    if (MHD_get_timeout(w->mhd, &mhd_timeout) == MHD_YES && mhd_timeout < 250)
      timeout = (int)mhd_timeout;
    if (w->n_parked > 0) /* their "upstream" has answered: no system call for that */
      timeout = 0;
    int n = epoll_wait(w->epfd, ev, 64, timeout);
    (void)n; /* the only fd is libmicrohttpd's: MHD_run below */
    for (unsigned i = 0; i < w->n_parked; i++) /* the "upstream" answered */
      MHD_resume_connection(w->parked[i]);
    w->n_parked = 0;
    MHD_run(w->mhd);
  }
  return NULL;
}

int main(int argc, char **argv) {
  if (argc != 4 || (strcmp(argv[3], "suspend") != 0 && strcmp(argv[3], "direct") != 0)) {
    fprintf(stderr, "usage: floor PORT WORKERS suspend|direct\n");
    return 2;
  }
  port = (uint16_t)atoi(argv[1]);
  int n = atoi(argv[2]);
  suspend_mode = strcmp(argv[3], "suspend") == 0;
  struct worker *ws = calloc((size_t)n, sizeof *ws);
  for (int i = 0; i < n; i++) {
    struct worker *w = &ws[i];
    w->listen_fd = listen_socket();
    w->mhd = MHD_start_daemon(MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_TURBO, 0, NULL,
                              NULL, on_access, w, MHD_OPTION_LISTEN_SOCKET, w->listen_fd,
                              MHD_OPTION_CONNECTION_LIMIT, 4096u, MHD_OPTION_CONNECTION_TIMEOUT,
                              75u, MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)POOL,
                              MHD_OPTION_END);
    const union MHD_DaemonInfo *info = w->mhd ? MHD_get_daemon_info(w->mhd, MHD_DAEMON_INFO_EPOLL_FD) : NULL;
    if (info == NULL) {
      fprintf(stderr, "floor: cannot start libmicrohttpd\n");
      return 1;
    }
    w->epfd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event e1 = {.events = EPOLLIN, .data.fd = info->epoll_fd};
    epoll_ctl(w->epfd, EPOLL_CTL_ADD, info->epoll_fd, &e1);
  }
  for (int i = 0; i < n; i++)
    pthread_create(&ws[i].thread, NULL, loop, &ws[i]);
  pthread_join(ws[0].thread, NULL);
  return 0;
}
