/*
 * values.h - the written forms of values (values.c) that conf/ shares:
 * durations' units, booleans, counts, rates, lists, base URLs, HTTP tokens.
 * The parsers other rooms use too are in conf/config.h.
 *
 * Not for: anything outside conf/.
 */
#ifndef SSOGATE_CONF_VALUES_H
#define SSOGATE_CONF_VALUES_H

#include <stdbool.h>
#include <stdint.h>

#include "conf/config.h"

#define SECOND_MS UINT64_C(1000)
#define MINUTE_MS (60 * SECOND_MS)
#define HOUR_MS (60 * MINUTE_MS)
#define DAY_MS (24 * HOUR_MS)

bool conf_all_digits(const char *s);
int conf_parse_bool(const char *text, bool *out);
int conf_parse_uint(const char *text, unsigned *out);
int conf_parse_rate(const char *text, unsigned *count, uint64_t *period_ms);
sg_strv conf_split_list_new(const char *text);
const char *conf_check_base_url(const char *url, char **authority_out, bool *https);
char *conf_strip_trailing_slash_new(const char *url);
bool conf_is_token(const char *s);

#endif
