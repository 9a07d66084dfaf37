/* Fuzz target: any answer from "Redash" (users page, then groups list, split
 * at the first NUL) gives a plan or a reason, never a crash; a plan only adds
 * to wanted groups and only removes from managed, unwanted ones. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "redash/plan.h"

static int in(const char *const *list, const char *s) {
  for (; *list; list++)
    if (strcmp(*list, s) == 0)
      return 1;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *text = (const char *)data;
  const char *nul = memchr(text, '\0', size);
  size_t users_len = nul ? (size_t)(nul - text) : size;
  const char *groups = nul ? nul + 1 : "[]";
  size_t groups_len = nul ? size - users_len - 1 : 2;
  static const char *const managed[] = {"Engineers", "default", "admin", NULL};
  static const char *const wanted[] = {"Engineers", "admin", NULL};
  struct sg_redash_desired d = {"alice@example.com", "Alice", true, managed, wanted};
  struct sg_redash_plan plan;
  const char *reason;
  if (sg_redash_plan_build(text, users_len, groups, groups_len, &d, &plan, &reason) == 0) {
    for (size_t i = 0; i < plan.n_calls; i++) {
      const struct sg_redash_call *c = &plan.calls[i];
      if (c->kind == SG_REDASH_RENAME)
        continue;
      if (!in(managed, c->group_name) ||
          (c->kind == SG_REDASH_ADD) != (in(wanted, c->group_name) == 1))
        abort();
    }
    sg_redash_plan_clear(&plan);
  } else if (reason == NULL) {
    abort();
  }
  return 0;
}
