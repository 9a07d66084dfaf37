/*
 * plan.h - what Redash calls make a person's Redash user match their SAML
 * name and groups.  Pure: JSON in (Redash's own answers), a list of calls
 * out; no network, no threads, no log.  redash/sync.c runs the calls.
 *
 * The JSON shapes are Redash's (getredash/redash, handlers/users.py
 * UserListResource.get, handlers/groups.py GroupListResource.get,
 * models/users.py User.to_dict and Group.to_dict).
 */
#ifndef SSOGATE_REDASH_PLAN_H
#define SSOGATE_REDASH_PLAN_H

#include <stdbool.h>
#include <stddef.h>

/* What the sync wants for one person. */
struct sg_redash_desired {
  const char *email;
  const char *name;           /* NULL or "" = the name is left alone */
  bool sync_groups;           /* false = no group is touched */
  const char *const *managed; /* every Redash group named in group_map, NULL-terminated */
  const char *const *wanted;  /* those the person's SAML groups map to, NULL-terminated */
};

enum sg_redash_call_kind { SG_REDASH_RENAME, SG_REDASH_ADD, SG_REDASH_REMOVE };

struct sg_redash_call {
  enum sg_redash_call_kind kind;
  long long group_id; /* ADD, REMOVE */
  char *group_name;   /* ADD, REMOVE: for the log */
};

enum sg_redash_plan_status {
  SG_REDASH_PLAN_READY,    /* the user exists: calls[] (maybe none) make it right */
  SG_REDASH_PLAN_NO_USER,  /* not on this page of the search (more_pages says if others follow) */
  SG_REDASH_PLAN_DISABLED, /* the user exists but is disabled: left alone */
};

struct sg_redash_plan {
  enum sg_redash_plan_status status;
  bool more_pages;   /* NO_USER: the search has pages after this one */
  long long user_id; /* READY, DISABLED */
  char *name;        /* RENAME's new name (owned) */
  struct sg_redash_call *calls;
  size_t n_calls;
  char **missing; /* mapped groups Redash does not have (NULL-terminated, owned) */
  char **builtin; /* mapped groups that are Redash builtins: never changed (owned) */
};

/*
 * users_json: one page of GET /api/users?q=<email> ({count, page, page_size,
 * results: [user...]}, each user's groups as [{id, name}] or as ids).
 * groups_json: GET /api/groups ([{id, name, type}...]); may be NULL when
 * desired->sync_groups is false.  Fills *plan (clear it with
 * sg_redash_plan_clear) and returns 0, or returns -1 with *reason set
 * (a static string) when the JSON is not what Redash answers.
 */
int sg_redash_plan_build(const char *users_json, size_t users_len, const char *groups_json,
                         size_t groups_len, const struct sg_redash_desired *desired,
                         struct sg_redash_plan *plan, const char **reason);
void sg_redash_plan_clear(struct sg_redash_plan *plan);

/*
 * The Redash groups that SAML groups map to: map_to[i] for every map_from[i]
 * that is one of groups[0..n) (Google group names compared without regard to
 * ASCII case), each once, sorted.  Unmapped SAML groups are ignored.
 * Returns a NULL-terminated list (g_strfreev).
 */
char **sg_redash_wanted_groups_new(const char *const *map_from, const char *const *map_to,
                                   const char *const *groups, size_t n);

/* Every distinct Redash group on the right of group_map, sorted (g_strfreev). */
char **sg_redash_managed_groups_new(const char *const *map_to);

#endif
