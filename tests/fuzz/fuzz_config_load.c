/* Fuzz target: the INI parser and the checks behind it (file and environment). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char path[] = "/tmp/ssogate-fuzz-conf-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0)
    return 0;
  /* The first line, when it looks like NAME=value, is used as an environment entry. */
  const uint8_t *nl = memchr(data, '\n', size);
  size_t env_len = nl ? (size_t)(nl - data) : 0;
  char *env_entry = strndup((const char *)data, env_len);
  char *envp[] = {env_entry, NULL};
  if (write(fd, data + env_len, size - env_len) < 0) {
    /* nothing: an empty file is an input too */
  }
  close(fd);
  char *error = NULL;
  struct sg_config *c = sg_config_load_new(path, strchr(env_entry, '=') ? envp : NULL, &error);
  if (c != NULL) {
    FILE *null = fopen("/dev/null", "w");
    sg_config_print_summary(c, null);
    fclose(null);
  }
  sg_config_unref(c);
  free(error);
  free(env_entry);
  unlink(path);
  return 0;
}
