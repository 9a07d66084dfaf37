/* Fuzz target: upstream response framing (upstream/response.c over http_parser):
 * status line, headers, Content-Length, chunked de-chunking, trailers, 1xx,
 * close-delimited bodies, each input cut at split points chosen by its first
 * bytes.  Invariants: never more body bytes out than bytes in, a failure
 * always names its reason, HEAD and DONE reported at most once. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "upstream/response.h"

static int count_body(void *cls, const char *data, size_t len) {
  (void)data;
  *(size_t *)cls += len;
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2)
    return 0;
  bool head_request = data[0] & 1;
  size_t step = (size_t)data[1] + 1; /* 1..256 bytes per feed */
  data += 2;
  size -= 2;
  size_t body = 0;
  unsigned heads = 0, dones = 0;
  struct sg_response resp = {0};
  sg_response_init(&resp, head_request, count_body, &body);
  enum sg_response_state st = SG_RESPONSE_NEED_MORE;
  size_t off = 0;
  while (off < size && st != SG_RESPONSE_FAILED && st != SG_RESPONSE_DONE) {
    size_t end = off + step < size ? off + step : size;
    for (;;) {
      size_t used;
      st = sg_response_feed(&resp, (const char *)data + off, end - off, &used);
      off += used;
      if (off > end)
        abort();
      if (st == SG_RESPONSE_HEAD) {
        heads++;
        continue;
      }
      break;
    }
    if (st == SG_RESPONSE_NEED_MORE && off != end)
      abort(); /* NEED_MORE means everything given was used */
    if (st == SG_RESPONSE_DONE)
      dones++;
  }
  if (st == SG_RESPONSE_NEED_MORE) {
    st = sg_response_eof(&resp);
    if (st == SG_RESPONSE_HEAD) {
      heads++;
      st = sg_response_eof(&resp);
    }
    if (st == SG_RESPONSE_DONE)
      dones++;
  }
  if (body > size || heads > 1 || dones > 1)
    abort();
  if (st == SG_RESPONSE_FAILED && resp.error == NULL)
    abort();
  if (st == SG_RESPONSE_DONE && heads != 1)
    abort();
  if (heads == 1 && (resp.status < 200 || resp.status > 999))
    abort();
  const char *name, *value;
  size_t hoff = 0;
  while (sg_response_next_header(&resp, &hoff, &name, &value))
    if (strpbrk(value, "\r\n") != NULL || hoff > resp.headers_len)
      abort();
  sg_response_release(&resp);
  return 0;
}
