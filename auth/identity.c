/*
 * identity.c - naming an identity and releasing its storage.
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

const char *sg_identity_who(const struct sg_identity *identity) {
  if (identity->email != NULL && identity->email[0] != '\0')
    return identity->email;
  return identity->subject != NULL ? identity->subject : "";
}
