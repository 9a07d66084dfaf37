/*
 * xff.c - X-Forwarded-For, trusting only the hops we were told to trust.
 *
 * Entries are read from the right: each trusted proxy appended the address
 * it received the request from, so the entry `trusted` places from the right
 * is the one the outermost trusted proxy saw.  Anything left of it came from
 * the client and is dropped.
 */
#include "proxy/core/xff.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#define MAX_ENTRIES 32

struct span {
  const char *p;
  size_t len;
};

static size_t split_entries(const char *s, struct span *out, size_t max) {
  size_t n = 0;
  while (s != NULL && *s != '\0') {
    while (*s == ' ' || *s == '\t' || *s == ',')
      s++;
    const char *start = s;
    while (*s != '\0' && *s != ',')
      s++;
    const char *end = s;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
      end--;
    if (end > start) {
      if (n == max) { /* keep the rightmost entries: they are the trusted ones */
        memmove(out, out + 1, (max - 1) * sizeof *out);
        n--;
      }
      out[n].p = start;
      out[n].len = (size_t)(end - start);
      n++;
    }
  }
  return n;
}

static bool span_is_ip(struct span s, char out[SG_IP_MAX]) {
  unsigned char buf[16];
  if (s.len == 0 || s.len >= SG_IP_MAX)
    return false;
  memcpy(out, s.p, s.len);
  out[s.len] = '\0';
  return inet_pton(AF_INET, out, buf) == 1 || inet_pton(AF_INET6, out, buf) == 1;
}

int sg_xff_resolve(const char *incoming, const char *peer, unsigned trusted,
                   char client_ip[SG_IP_MAX], char *forward, size_t cap) {
  struct span entries[MAX_ENTRIES];
  size_t n = trusted > 0 ? split_entries(incoming, entries, MAX_ENTRIES) : 0;
  size_t first = 0; /* index of the vouched entry */
  bool vouched = false;

  snprintf(client_ip, SG_IP_MAX, "%s", peer);
  if (n > 0) {
    first = n > trusted ? n - trusted : 0;
    vouched = span_is_ip(entries[first], client_ip);
    if (!vouched)
      snprintf(client_ip, SG_IP_MAX, "%s", peer);
  }

  size_t used = 0;
  forward[0] = '\0';
  if (vouched) {
    for (size_t i = first; i < n; i++) {
      int w = snprintf(forward + used, cap - used, "%.*s, ", (int)entries[i].len, entries[i].p);
      if (w < 0 || (size_t)w >= cap - used)
        goto too_long;
      used += (size_t)w;
    }
  }
  int w = snprintf(forward + used, cap - used, "%s", peer);
  if (w < 0 || (size_t)w >= cap - used)
    goto too_long;
  return 0;

too_long:
  snprintf(forward, cap, "%s", client_ip);
  return -1;
}
