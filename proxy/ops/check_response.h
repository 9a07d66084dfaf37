/*
 * check_response.h - `ssogate --check-response FILE`: the staging runbook's
 * first tool (check_response.c).
 */
#ifndef SSOGATE_CHECK_RESPONSE_H
#define SSOGATE_CHECK_RESPONSE_H

/* Runs every ACS rule on the captured SAMLResponse in file with the
 * configuration at config_path; at (RFC 3339) and request_id may be NULL.
 * Prints one line per rule, the identity, the access decision and a
 * verdict to stdout.  Returns the exit code: 0 only when the login would
 * be accepted, 1 when it would not, 2 on a usage or input error. */
int sg_check_response_main(const char *file, const char *config_path, const char *at,
                           const char *request_id);

#endif
