/*
 * reload.c - configuration load and SIGHUP reload (see reload.h).
 *
 * Everything that can fail is done before the swap, so a broken file or key
 * never replaces a working snapshot.
 */
#include "proxy/ops/reload.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "conf/config.h"
#include "proxy/core/counters.h"
#include "proxy/core/snapshot.h"

struct sg_snapshot *sg_snapshot_load_new(const char *path, char **error) {
  struct sg_config *config = sg_config_load_new(path, environ, error);
  if (config == NULL)
    return NULL;
  return sg_snapshot_build_new(config, error);
}

int sg_reload(const char *path, char **error) {
  struct sg_snapshot *s = sg_snapshot_load_new(path, error);
  if (s == NULL)
    return -1;
  sg_snapshot_publish(s);
  sg_upstreams_follow(s->upstreams); /* its names are re-resolved from now on */
  sg_log_configure(s->config->log.level, s->config->log.format);
  /* Loaded, but said loudly: an expired IdP certificate, or URL metadata
   * not fetched yet, degrade logins without taking the gate down. */
  char why[700];
  if (s->saml != NULL && sg_saml_sp_idp_status(s->saml, (int64_t)time(NULL), why, sizeof why) != 0)
    sg_warn("IdP not ready: %s", why);
  else if (s->saml != NULL && strncmp(why, "ok (", 4) == 0)
    sg_warn("IdP: %s", why + 4);
  sg_metrics_set_generation(s->generation);
  return 0;
}
