/*
 * identity.c - releasing an identity's storage.
 */
#include "auth/identity.h"

#include <stdlib.h>
#include <string.h>

void sg_identity_clear(struct sg_identity *identity) {
  if (identity == NULL)
    return;
  free(identity->storage);
  memset(identity, 0, sizeof *identity);
}
