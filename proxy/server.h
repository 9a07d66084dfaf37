/*
 * server.h - libmicrohttpd setup and the three callbacks that give a request
 * its life: URI seen (birth), access handler (its phases), completed (death).
 */
#ifndef SSOGATE_SERVER_H
#define SSOGATE_SERVER_H

#include <stdint.h>

#include <microhttpd.h>

struct sg_worker;

struct MHD_Daemon *sg_server_start_daemon(struct sg_worker *w, int listen_fd, unsigned limit,
                                          uint64_t client_timeout_ms);

#endif
