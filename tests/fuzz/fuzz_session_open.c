/* Fuzz target: opening session and state cookies from hostile bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/session.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct sg_session_keys *keys;
  if (keys == NULL) {
    static unsigned char secret[32] = {1, 2, 3};
    struct sg_secret s = {secret, sizeof secret};
    keys = sg_session_keys_new(&s, 1, "https://sp.test", "https://sp.test/ssogate/metadata");
  }
  char *cookie = malloc(size + 1);
  memcpy(cookie, data, size);
  cookie[size] = '\0';
  struct sg_identity id;
  const char *reason;
  if (sg_session_open(keys, cookie, 1800000000, &id, &reason) == 0)
    sg_identity_clear(&id);
  char *rid, *path;
  if (sg_state_open(keys, cookie, 1800000000, &rid, &path, &reason) == 0) {
    free(rid);
    free(path);
  }
  free(cookie);
  return 0;
}
