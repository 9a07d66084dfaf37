/*
 * plan.c - from Redash's answers and the wanted state to the calls needed
 * (see plan.h).  Parsing is json-glib's; every shape is checked before use,
 * so any answer (a proxy's error page, a different Redash) gives a reason,
 * never a crash.
 *
 * Rules: rename only when the name differs; add to a mapped group the user
 * is not in, remove from a mapped group they are in but should not be;
 * builtin groups ("default", "admin") and groups absent from group_map are
 * never touched; a mapped group Redash does not have is reported, not made.
 */
#include "redash/plan.h"

#include <string.h>

#include <glib.h>
#include <json-glib/json-glib.h>

static bool get_int(JsonObject *o, const char *member, long long *out) {
  JsonNode *n = o ? json_object_get_member(o, member) : NULL;
  if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_INT64)
    return false;
  *out = (long long)json_node_get_int(n);
  return true;
}

static const char *get_string(JsonObject *o, const char *member) {
  JsonNode *n = o ? json_object_get_member(o, member) : NULL;
  if (n == NULL || !JSON_NODE_HOLDS_VALUE(n) || json_node_get_value_type(n) != G_TYPE_STRING)
    return NULL;
  return json_node_get_string(n);
}

static bool get_bool(JsonObject *o, const char *member) {
  JsonNode *n = o ? json_object_get_member(o, member) : NULL;
  return n != NULL && JSON_NODE_HOLDS_VALUE(n) && json_node_get_value_type(n) == G_TYPE_BOOLEAN &&
         json_node_get_boolean(n);
}

static JsonNode *parse_new(const char *text, size_t len) {
  if (text == NULL || len > G_MAXSSIZE)
    return NULL;
  JsonParser *parser = json_parser_new_immutable();
  JsonNode *root = NULL;
  if (json_parser_load_from_data(parser, text, (gssize)len, NULL))
    root = json_parser_steal_root(parser);
  g_object_unref(parser);
  return root;
}

/* Whether the user (its "groups": [{id, name}] from the list, or [id] from
 * to_dict) is in group id. */
static bool user_in_group(JsonObject *user, long long id) {
  JsonNode *n = json_object_get_member(user, "groups");
  if (n == NULL || !JSON_NODE_HOLDS_ARRAY(n))
    return false;
  JsonArray *a = json_node_get_array(n);
  for (guint i = 0; i < json_array_get_length(a); i++) {
    JsonNode *g = json_array_get_element(a, i);
    long long gid;
    if (JSON_NODE_HOLDS_VALUE(g) && json_node_get_value_type(g) == G_TYPE_INT64) {
      if ((long long)json_node_get_int(g) == id)
        return true;
    } else if (JSON_NODE_HOLDS_OBJECT(g) && get_int(json_node_get_object(g), "id", &gid) &&
               gid == id) {
      return true;
    }
  }
  return false;
}

static bool in_list(const char *const *list, const char *s) {
  for (size_t i = 0; list && list[i]; i++)
    if (strcmp(list[i], s) == 0)
      return true;
  return false;
}

static void add_call(GArray *calls, enum sg_redash_call_kind kind, long long id, const char *name) {
  struct sg_redash_call c = {kind, id, g_strdup(name)};
  g_array_append_val(calls, c);
}

/* Finds the user whose email is desired->email on this page; NULL if none. */
static JsonObject *find_user(JsonObject *page, const char *email, const char **reason) {
  JsonNode *results = json_object_get_member(page, "results");
  if (results == NULL || !JSON_NODE_HOLDS_ARRAY(results)) {
    *reason = "the user search answer has no results list";
    return NULL;
  }
  JsonArray *a = json_node_get_array(results);
  for (guint i = 0; i < json_array_get_length(a); i++) {
    JsonNode *u = json_array_get_element(a, i);
    if (!JSON_NODE_HOLDS_OBJECT(u))
      continue;
    const char *e = get_string(json_node_get_object(u), "email");
    /* The search is a substring match: only the exact address is the user. */
    if (e != NULL && g_ascii_strcasecmp(e, email) == 0)
      return json_node_get_object(u);
  }
  return NULL;
}

/* Plans the group calls; -1 with *reason when groups_json is unusable. */
static int plan_groups(JsonObject *user, const char *groups_json, size_t groups_len,
                       const struct sg_redash_desired *d, GArray *calls, GPtrArray *missing,
                       GPtrArray *builtin, const char **reason) {
  JsonNode *root = parse_new(groups_json, groups_len);
  if (root == NULL || !JSON_NODE_HOLDS_ARRAY(root)) {
    *reason = "the group list answer is not a JSON array";
    if (root)
      json_node_unref(root);
    return -1;
  }
  JsonArray *groups = json_node_get_array(root);
  for (size_t m = 0; d->managed && d->managed[m]; m++) {
    const char *name = d->managed[m];
    JsonObject *found = NULL;
    for (guint i = 0; i < json_array_get_length(groups) && !found; i++) {
      JsonNode *g = json_array_get_element(groups, i);
      const char *gname =
          JSON_NODE_HOLDS_OBJECT(g) ? get_string(json_node_get_object(g), "name") : NULL;
      if (gname != NULL && strcmp(gname, name) == 0)
        found = json_node_get_object(g);
    }
    long long id;
    if (found == NULL || !get_int(found, "id", &id)) {
      g_ptr_array_add(missing, g_strdup(name));
      continue;
    }
    const char *type = get_string(found, "type");
    if (type == NULL || strcmp(type, "regular") != 0) {
      g_ptr_array_add(builtin, g_strdup(name)); /* builtin (or unknown): never changed */
      continue;
    }
    bool member = user_in_group(user, id), want = in_list(d->wanted, name);
    if (want && !member)
      add_call(calls, SG_REDASH_ADD, id, name);
    else if (!want && member)
      add_call(calls, SG_REDASH_REMOVE, id, name);
  }
  json_node_unref(root);
  return 0;
}

int sg_redash_plan_build(const char *users_json, size_t users_len, const char *groups_json,
                         size_t groups_len, const struct sg_redash_desired *d,
                         struct sg_redash_plan *plan, const char **reason) {
  memset(plan, 0, sizeof *plan);
  *reason = NULL;
  JsonNode *root = parse_new(users_json, users_len);
  if (root == NULL || !JSON_NODE_HOLDS_OBJECT(root)) {
    *reason = "the user search answer is not a JSON object";
    if (root)
      json_node_unref(root);
    return -1;
  }
  JsonObject *page = json_node_get_object(root);
  JsonObject *user = find_user(page, d->email, reason);
  int rc = 0;
  if (*reason != NULL) {
    rc = -1;
  } else if (user == NULL) {
    long long count = 0, number = 0, size = 0;
    plan->status = SG_REDASH_PLAN_NO_USER;
    if (get_int(page, "count", &count) && get_int(page, "page", &number) &&
        get_int(page, "page_size", &size) && number > 0 && size > 0)
      plan->more_pages = number < (count + size - 1) / size;
  } else if (!get_int(user, "id", &plan->user_id)) {
    *reason = "the user in the search answer has no numeric id";
    rc = -1;
  } else if (get_bool(user, "is_disabled")) {
    plan->status = SG_REDASH_PLAN_DISABLED;
  } else {
    GArray *calls = g_array_new(FALSE, TRUE, sizeof(struct sg_redash_call));
    GPtrArray *missing = g_ptr_array_new(), *builtin = g_ptr_array_new();
    const char *current = get_string(user, "name");
    plan->status = SG_REDASH_PLAN_READY;
    if (d->name != NULL && d->name[0] != '\0' &&
        (current == NULL || strcmp(current, d->name) != 0)) {
      add_call(calls, SG_REDASH_RENAME, 0, NULL);
      plan->name = g_strdup(d->name);
    }
    if (d->sync_groups &&
        plan_groups(user, groups_json, groups_len, d, calls, missing, builtin, reason) != 0)
      rc = -1;
    g_ptr_array_add(missing, NULL);
    g_ptr_array_add(builtin, NULL);
    plan->missing = (char **)g_ptr_array_free(missing, FALSE);
    plan->builtin = (char **)g_ptr_array_free(builtin, FALSE);
    plan->n_calls = calls->len;
    plan->calls = (struct sg_redash_call *)(void *)g_array_free(calls, FALSE);
  }
  json_node_unref(root);
  if (rc != 0)
    sg_redash_plan_clear(plan);
  return rc;
}

void sg_redash_plan_clear(struct sg_redash_plan *plan) {
  for (size_t i = 0; i < plan->n_calls; i++)
    g_free(plan->calls[i].group_name);
  g_free(plan->calls);
  g_free(plan->name);
  g_strfreev(plan->missing);
  g_strfreev(plan->builtin);
  memset(plan, 0, sizeof *plan);
}

static int compare_strings(gconstpointer a, gconstpointer b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Sorts and drops repeats; list takes over the strings. */
static char **sorted_unique_new(GPtrArray *list) {
  g_ptr_array_sort(list, compare_strings);
  GPtrArray *out = g_ptr_array_new();
  for (guint i = 0; i < list->len; i++) {
    char *s = g_ptr_array_index(list, i);
    if (out->len > 0 && strcmp(g_ptr_array_index(out, out->len - 1), s) == 0)
      g_free(s);
    else
      g_ptr_array_add(out, s);
  }
  g_ptr_array_free(list, TRUE);
  g_ptr_array_add(out, NULL);
  return (char **)g_ptr_array_free(out, FALSE);
}

char **sg_redash_wanted_groups_new(const char *const *map_from, const char *const *map_to,
                                   const char *const *groups, size_t n) {
  GPtrArray *list = g_ptr_array_new();
  for (size_t i = 0; map_from && map_from[i] && map_to[i]; i++)
    for (size_t k = 0; k < n; k++)
      if (groups[k] != NULL && g_ascii_strcasecmp(groups[k], map_from[i]) == 0) {
        g_ptr_array_add(list, g_strdup(map_to[i]));
        break;
      }
  return sorted_unique_new(list);
}

char **sg_redash_managed_groups_new(const char *const *map_to) {
  GPtrArray *list = g_ptr_array_new();
  for (size_t i = 0; map_to && map_to[i]; i++)
    g_ptr_array_add(list, g_strdup(map_to[i]));
  return sorted_unique_new(list);
}
