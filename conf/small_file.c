/*
 * small_file.c - sg_read_small_file_new (config.h): one bounded read of a
 * small file (the INI file, secrets, keys), refusing what cannot be one.
 *
 * Not for: parsing what was read.
 */
#include "conf/config.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <glib.h>
#include <openssl/crypto.h>

/* See config.h.  One descriptor for the checks and the contents, so that
 * both are about the same file. */
char *sg_read_small_file_new(const char *path, size_t max, bool private_only, size_t *len_out,
                             char *why, size_t why_size) {
  struct stat st;
  /* O_NONBLOCK for the open only: a FIFO nobody writes to would block it
   * for ever; reads are blocking again, and such a FIFO reads as empty. */
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
  if (fd < 0 || fstat(fd, &st) != 0 || fcntl(fd, F_SETFL, 0) != 0) {
    snprintf(why, why_size, "%s", g_strerror(errno));
    if (fd >= 0)
      close(fd);
    return NULL;
  }
  why[0] = '\0';
  if (private_only && (st.st_mode & 007) != 0)
    snprintf(why, why_size,
             "is readable or writable by other users (mode %03o); chmod 600 it (or 640 for a "
             "group)",
             (unsigned)(st.st_mode & 0777));
  else if (S_ISDIR(st.st_mode))
    snprintf(why, why_size, "is a directory");
  if (why[0] != '\0') {
    close(fd);
    return NULL;
  }
  /* st_size is only a hint (pipes, /proc): the read itself is bounded. */
  char *text = g_malloc(max + 2);
  size_t len = 0;
  for (;;) {
    ssize_t n = read(fd, text + len, max + 1 - len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      snprintf(why, why_size, "%s", g_strerror(errno));
      break;
    }
    if (n == 0)
      break;
    len += (size_t)n;
    if (len > max) {
      if (max % (1024 * 1024) == 0)
        snprintf(why, why_size, "is larger than %zu MiB", max / (1024 * 1024));
      else
        snprintf(why, why_size, "is larger than %zu KiB", max / 1024);
      break;
    }
  }
  close(fd);
  text[len] = '\0';
  if (why[0] == '\0' && memchr(text, '\0', len) != NULL)
    snprintf(why, why_size, "contains a NUL byte");
  if (why[0] != '\0') {
    OPENSSL_cleanse(text, len);
    g_free(text);
    return NULL;
  }
  *len_out = len;
  return text;
}
