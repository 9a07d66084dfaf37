/*
 * form.c - query and form fields (see form.h).
 */
#include "proxy/core/form.h"

#include <stdlib.h>
#include <string.h>

#include "auth/hex.h"

/* Finds "name=" at a field boundary; returns the value's start and length. */
static const char *find_field(const char *s, size_t len, const char *name, size_t *value_len) {
  size_t nlen = strlen(name);
  const char *end = s + len;
  const char *p = s;
  while (p < end) {
    const char *amp = memchr(p, '&', (size_t)(end - p));
    const char *field_end = amp ? amp : end;
    if ((size_t)(field_end - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
      *value_len = (size_t)(field_end - p - (ptrdiff_t)nlen - 1);
      return p + nlen + 1;
    }
    p = field_end + 1;
  }
  return NULL;
}

char *sg_form_value_new(const char *form, size_t len, const char *name) {
  size_t vlen;
  const char *v = find_field(form, len, name, &vlen);
  if (v == NULL)
    return NULL;
  char *out = malloc(vlen + 1);
  size_t o = 0;
  if (out == NULL)
    return NULL;
  for (size_t i = 0; i < vlen; i++) {
    if (v[i] == '+') {
      out[o++] = ' ';
    } else if (v[i] == '%') {
      if (i + 2 >= vlen) { /* a cut escape */
        free(out);
        return NULL;
      }
      int h = sg_hex_value(v[i + 1]), l = sg_hex_value(v[i + 2]);
      if (h < 0 || l < 0 || (h == 0 && l == 0)) {
        free(out);
        return NULL;
      }
      out[o++] = (char)(h * 16 + l);
      i += 2;
    } else {
      out[o++] = v[i];
    }
  }
  out[o] = '\0';
  return out;
}

void sg_html_escape(const char *in, char *out, size_t cap) {
  size_t o = 0;
  for (; *in != '\0'; in++) {
    const char *rep = NULL;
    switch (*in) {
    case '<': rep = "&lt;"; break;
    case '>': rep = "&gt;"; break;
    case '&': rep = "&amp;"; break;
    case '"': rep = "&quot;"; break;
    case '\'': rep = "&#39;"; break;
    default: break;
    }
    size_t n = rep ? strlen(rep) : 1;
    if (o + n + 1 > cap)
      break;
    if (rep)
      memcpy(out + o, rep, n);
    else
      out[o] = *in;
    o += n;
  }
  out[o] = '\0';
}
