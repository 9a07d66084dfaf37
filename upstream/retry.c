/*
 * retry.c - the retry rule (see retry.h).
 */
#include "upstream/retry.h"

#include <string.h>

bool sg_method_is_idempotent(const char *method) {
  static const char *const idempotent[] = {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"};
  for (size_t i = 0; i < sizeof idempotent / sizeof *idempotent; i++)
    if (strcmp(method, idempotent[i]) == 0)
      return true;
  return false;
}

bool sg_retry_allowed(const char *method, bool reused, bool body_byte_sent, bool answer_started,
                      unsigned retries_so_far) {
  return reused && !body_byte_sent && !answer_started && retries_so_far == 0 &&
         sg_method_is_idempotent(method);
}

bool sg_retry_elsewhere_allowed(const char *method, bool connected, bool reused,
                                bool body_byte_sent, bool answer_started) {
  if (!connected)
    return true; /* nothing was sent, nothing came back */
  return !reused && !body_byte_sent && !answer_started && sg_method_is_idempotent(method);
}
