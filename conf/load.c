/*
 * load.c - read, override, validate and freeze one configuration snapshot
 * (conf/config.h): sg_config_load_new runs the steps in turn,
 * sg_config_unref frees what they built.
 *
 * Three steps: every known key starts from its default (keys.c); the INI
 * file (ini.c) and then SSOGATE_<SECTION>_<KEY> environment variables
 * (env.c) replace raw values, remembering where each came from for the
 * messages (loader.c), and an [upstream] app preset adds what the app needs
 * (preset.c); then each raw value is converted (convert.c, values.c) and
 * checked, and the keys are checked against each other (validate_*.c).
 * An unknown key anywhere is an error: a typo must not silently weaken
 * security.  Every problem found is reported, one per line.
 *
 * Not for: opening key, certificate or metadata files (auth/ does, and
 * --check), resolving names, or anything HTTP.  The files conf/ opens
 * besides the INI file are [session] secret_file and [redash] api_key_file,
 * because the secrets are part of the snapshot.
 */
#include "conf/config.h"

#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <openssl/crypto.h>

#include "conf/keys.h"
#include "conf/loader.h"

/* A domain rule other than "*", which compares no domain. */
static bool compares_domains(sg_strv domains) {
  for (size_t i = 0; domains != NULL && domains[i] != NULL; i++)
    if (domains[i][0] != '\0' && strcmp(domains[i], "*") != 0)
      return true;
  return false;
}

static bool any_text(sg_strv list) {
  for (size_t i = 0; list != NULL && list[i] != NULL; i++)
    if (list[i][0] != '\0')
      return true;
  return false;
}

const char *sg_config_email_needed_by(const struct sg_config *c) {
  if (c->upstream.app != NULL && strcmp(c->upstream.app, "redash") == 0)
    return "[upstream] app = redash (Redash knows users by their email)";
  bool domains = compares_domains(c->access.allowed_domains);
  bool emails = any_text(c->access.allowed_emails);
  if (domains && emails)
    return "[access] allowed_domains (and allowed_emails)";
  if (domains)
    return "[access] allowed_domains";
  if (emails)
    return "[access] allowed_emails";
  return NULL;
}

struct sg_config *sg_config_load_new(const char *path, char *const *envp, char **error) {
  struct loader l = {.path = path, .errors = g_string_new(NULL), .preset = g_string_new(NULL)};
  struct sg_config *c = g_new0(struct sg_config, 1);
  atomic_init(&c->refs, 1);
  c->source_path = g_strdup(path);

  for (size_t i = 0; i < N_KEYS; i++)
    l.raw[i].value = g_strdup(conf_keys[i].fallback);
  if (path != NULL)
    conf_parse_file(&l);
  conf_apply_environment(&l, envp);
  conf_apply_preset(&l);
  /* Convert every key even after an error, so that lists are never NULL and
   * unref stays simple; check across keys only when each value made sense. */
  for (size_t i = 0; i < N_KEYS; i++)
    conf_convert(&l, c, i);
  if (l.errors->len == 0) {
    conf_check_server(&l, c);
    conf_check_upstream(&l, c);
    conf_check_saml(&l, c);
    conf_check_session(&l, c);
    conf_check_access(&l, c);
    conf_check_headers(&l, c);
    conf_check_rest(&l, c);
    conf_check_pages(&l, c);
    conf_check_redash(&l, c);
  }
  c->upstream.preset_note = l.preset->len ? g_strdup(l.preset->str) : NULL;
  g_string_free(l.preset, TRUE);
  for (size_t i = 0; i < N_KEYS; i++) {
    conf_free_wiped(l.raw[i].value);
    g_free(l.raw[i].origin);
  }
  if (l.errors->len > 0) {
    if (error != NULL)
      *error = strdup(l.errors->str);
    g_string_free(l.errors, TRUE);
    sg_config_unref(c);
    return NULL;
  }
  g_string_free(l.errors, TRUE);
  return c;
}

struct sg_config *sg_config_ref(struct sg_config *c) {
  atomic_fetch_add_explicit(&c->refs, 1, memory_order_relaxed);
  return c;
}

void sg_config_unref(struct sg_config *c) {
  /* acq_rel: the last owner must see every other owner's writes before freeing. */
  if (c == NULL || atomic_fetch_sub_explicit(&c->refs, 1, memory_order_acq_rel) != 1)
    return;
  conf_free_wiped(c->redash.api_key); /* a secret: wiped, then not freed twice below */
  c->redash.api_key = NULL;
  g_strfreev(c->redash.map_from);
  g_strfreev(c->redash.map_to);
  for (size_t i = 0; i < N_KEYS; i++) {
    if (conf_keys[i].type == T_STRING)
      g_free(*(char **)conf_field(c, i));
    else if (conf_keys[i].type == T_LIST)
      g_strfreev(*(sg_strv *)conf_field(c, i));
    else if (conf_keys[i].type == T_LISTEN) {
      g_free(*(char **)conf_field(c, i));
      g_free(*((char **)conf_field(c, i) + 1));
    }
  }
  for (size_t i = 0; i < c->session.n_secrets; i++) {
    OPENSSL_cleanse(c->session.secrets[i].bytes, c->session.secrets[i].len);
    g_free(c->session.secrets[i].bytes);
  }
  g_free(c->session.secrets);
  g_free(c->server.public_host);
  g_free(c->upstream.preset_note);
  g_free(c->source_path);
  g_free(c);
}
