/*
 * form.h - reading query strings and application/x-www-form-urlencoded
 * bodies, bounded and without allocation surprises.
 */
#ifndef SSOGATE_FORM_H
#define SSOGATE_FORM_H

#include <stdbool.h>
#include <stddef.h>

/* The decoded value ('+' = space, %XX), allocated (free()); NULL when absent
 * or malformed. */
char *sg_form_value_new(const char *form, size_t len, const char *name);

/* HTML-escapes in into out (cap bytes, always terminated). */
void sg_html_escape(const char *in, char *out, size_t cap);

#endif
