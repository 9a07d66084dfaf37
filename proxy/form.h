/*
 * form.h - reading query strings and application/x-www-form-urlencoded
 * bodies, bounded and without allocation surprises.
 */
#ifndef SSOGATE_FORM_H
#define SSOGATE_FORM_H

#include <stdbool.h>
#include <stddef.h>

/* The raw (still encoded) value of name in a query or form string, copied to
 * out; false when absent or longer than cap - 1. */
bool sg_form_raw_value(const char *query, const char *name, char *out, size_t cap);

/* The decoded value ('+' = space, %XX), allocated (free()); NULL when absent
 * or malformed. */
char *sg_form_value_new(const char *form, size_t len, const char *name);

/* HTML-escapes in into out (cap bytes, always terminated). */
void sg_html_escape(const char *in, char *out, size_t cap);

#endif
