/*
 * credential.h - an app's own credentials, read as the app reads them, so
 * that a request carrying one may pass without an ssogate session
 * ([access] app_credentials).  Today one app: Redash (its API keys and
 * public-dashboard share tokens).
 *
 * For: finding the credential in a request's target and Authorization
 * header, redacting share tokens from logged paths, and the table of client
 * addresses refused for failing too often.  Not for: checking a key (only
 * the app can), HTTP, or the store (proxy/gate/app.c drives those).
 */
#ifndef SSOGATE_CREDENTIAL_H
#define SSOGATE_CREDENTIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sg_credential_kind {
  SG_CREDENTIAL_NONE,
  SG_CREDENTIAL_API_KEY,          /* ?api_key=<k> on /api/ or /embed/ */
  SG_CREDENTIAL_AUTHORIZATION_KEY, /* "Authorization: Key <k>" on /api/ or /embed/ */
  SG_CREDENTIAL_PUBLIC_DASHBOARD, /* /public/dashboards/<t>, /api/dashboards/public/<t> */
  SG_CREDENTIAL_KINDS
};

/* The longest key or token accepted (Redash's are 40 characters). */
#define SG_CREDENTIAL_MAX 256

/*
 * The credential a request carries, in Redash's order (redash/authentication
 * get_api_key_from_request: the api_key query parameter, else the
 * Authorization header, else the route's token).  authorization is the
 * first Authorization header (NULL: none) and n_authorization how many the
 * request has.  Returns the kind; *problem is NULL for a well-formed one (or
 * none), else why the credential is malformed (then the kind says which
 * shape was attempted, and the request is refused with 400).
 */
enum sg_credential_kind sg_credential_find(const char *target, const char *authorization,
                                           unsigned n_authorization, const char **problem);

/* "api_key", "authorization_key", "public_dashboard" ("none" for NONE). */
const char *sg_credential_kind_name(enum sg_credential_kind kind);

/*
 * The path of target (no query) for a log line, with the token of a
 * public-dashboard path replaced by "REDACTED".  Returns the length written
 * (always NUL-terminated; cut to cap - 1).
 */
size_t sg_credential_log_path(const char *target, char *out, size_t cap);

/*
 * Client addresses refused for failing too often.  Process-wide, thread-safe,
 * at most SG_CREDENTIAL_MAX_BLOCKED entries (the oldest sampled out first).
 */
#define SG_CREDENTIAL_MAX_BLOCKED 100000

enum sg_credential_gate {
  SG_CREDENTIAL_GO,        /* not blocked: forward, count a failure afterwards */
  SG_CREDENTIAL_PROBATION, /* was blocked lately: take the failure token before forwarding */
  SG_CREDENTIAL_BLOCKED,   /* 429; *retry_after_s says for how long */
};
enum sg_credential_gate sg_credential_gate(const char *ip, int64_t now_ms, int64_t *retry_after_s);

/* Refuses ip for retry_after_s; it stays on probation for forget_ms after
 * that (the time its bucket needs to fill up again). */
void sg_credential_block(const char *ip, int64_t now_ms, int64_t retry_after_s, int64_t forget_ms);

/* Forgets every entry (tests, and the process's end). */
void sg_credential_blocks_clear(void);

#endif
