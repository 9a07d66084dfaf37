/*
 * identity.h - who a signed-in person is, as the IdP vouched for them.
 * Carried inside the sealed session cookie; read by access rules, the
 * identity headers and the JWT.
 */
#ifndef SSOGATE_IDENTITY_H
#define SSOGATE_IDENTITY_H

#include <stdint.h>

#define SG_SESSION_ID_LEN 32 /* hex characters of a 128-bit random id */
#define SG_MAX_GROUPS 64

struct sg_identity {
  char session_id[SG_SESSION_ID_LEN + 1];
  const char *subject; /* NameID (or the email attribute when there is none); never empty */
  const char *email;   /* lower case; "" when the IdP sent none (a username subject) */
  const char *name; /* "" when unknown */
  const char *groups[SG_MAX_GROUPS];
  unsigned n_groups;
  int64_t issued_at;  /* unix seconds */
  int64_t expires_at; /* unix seconds */
  char *storage;      /* owns every string above; NULL when they are borrowed */
};

/* Who this is, for logs and the user header: the email, or the subject
 * when there is no email. */
const char *sg_identity_who(const struct sg_identity *identity);

/* Frees storage and zeroes the struct. */
void sg_identity_clear(struct sg_identity *identity);

#endif
