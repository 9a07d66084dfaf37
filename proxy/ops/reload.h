/*
 * reload.h - load a configuration and publish it as the current snapshot.
 */
#ifndef SSOGATE_RELOAD_H
#define SSOGATE_RELOAD_H

extern char **environ;

/* Builds a complete snapshot from path + environment and publishes it.
 * On error nothing changes, -1 is returned and *error says why (free()). */
int sg_reload(const char *path, char **error);

/* Builds and validates without publishing (for --check); 0 or -1. */
struct sg_snapshot;
struct sg_snapshot *sg_snapshot_load_new(const char *path, char **error);

#endif
