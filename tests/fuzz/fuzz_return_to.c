/* Fuzz target: return_to / RelayState must always come out as a local path. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/return_to.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *s = malloc(size + 1);
  memcpy(s, data, size);
  s[size] = '\0';
  char out[4200];
  size_t n = sg_return_to_sanitize(s, out, sizeof out);
  /* The property: a single leading '/', never "//" or "/\", no control bytes. */
  if (n == 0 || out[0] != '/' || (n > 1 && (out[1] == '/' || out[1] == '\\')))
    abort();
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)out[i] < 0x20 || out[i] == '\\')
      abort();
  free(s);
  return 0;
}
