/*
 * config.h - one immutable, reference-counted configuration snapshot.
 *
 * A snapshot is built from the INI file plus SSOGATE_<SECTION>_<KEY>
 * environment overrides, validated whole, and never changed afterwards.
 * Every request holds a reference to the snapshot it started with; SIGHUP
 * builds a new one and swaps it in.  Nothing here speaks HTTP or SAML.
 */
#ifndef SSOGATE_CONFIG_H
#define SSOGATE_CONFIG_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "base/log.h" /* enum sg_log_level, sg_log_format */

/* A NULL-terminated list of strings (g_strsplit style); never NULL itself. */
typedef char **sg_strv;

struct sg_secret {
  unsigned char *bytes; /* decoded from base64, >= 32 bytes */
  size_t len;
};

/* An address's login bucket holds at most this many bursts of credit
 * ([ratelimit] login_credit). */
#define SG_LOGIN_CREDIT_CEILING 10

struct sg_config {
  atomic_uint refs;
  unsigned generation; /* set by the caller that publishes the snapshot */
  char *source_path;   /* the INI file it was read from */

  struct {
    char *listen;         /* "host:port" as configured */
    char *listen_host;    /* "0.0.0.0", "127.0.0.1", "::" ... */
    uint16_t listen_port; /* 0 = pick a free port (tests) */
    char *public_url;     /* no trailing slash */
    char *public_host;    /* host[:port] of public_url */
    bool public_https;
    unsigned trusted_proxies;
    uint64_t max_body; /* bytes */
    uint64_t client_timeout_ms;
    uint64_t drain_timeout_ms;
    unsigned max_connections; /* total over all workers */
    unsigned workers;         /* 0 = one per CPU */
  } server;

  struct {
    sg_strv urls; /* "http://host:port" each, no trailing slash */
    uint64_t connect_timeout_ms;
    uint64_t timeout_ms; /* time allowed until the response head */
    char *health_path;   /* probed by /readyz; default "/ping" */
    uint64_t resolve_interval_ms; /* names re-resolved this often; at least 1 s */
    char *app;           /* "generic" or "redash": a preset of defaults */
    char *preset_note;   /* what the preset set, for --check; NULL = nothing */
    unsigned keepalive;  /* idle connections kept per worker (0 = none) */
    uint64_t keepalive_timeout_ms; /* an idle connection is closed after it */
    char *tls_ca_file;   /* https:// upstreams: PEM CAs to trust; NULL = the system's */
  } upstream;

  struct {
    char *idp_metadata; /* path or https:// URL; NULL/empty = not configured yet */
    char *sp_entity_id; /* default <public_url>/ssogate/metadata */
    char *sp_key;       /* path or NULL */
    char *sp_cert;      /* path or NULL */
    uint64_t clock_skew_ms;
    bool allow_idp_initiated;
    char *email_attribute;  /* NULL = NameID */
    char *name_attribute;   /* NULL = none */
    char *groups_attribute; /* NULL = none */

    sg_strv sp_decryption_keys; /* PEM paths; several = rotation; NULL = no decryption */
    char *sp_decryption_cert;   /* published as use="encryption"; NULL = none */
    bool allow_sha1;            /* rsa-sha1 signatures and sha1 digests */
    bool allow_rsa15_key_transport;
    uint64_t metadata_refresh_ms;        /* URL metadata: at least 5 s */
    char *metadata_cache;                /* URL metadata: last good copy, or NULL */
    char *metadata_signing_cert;         /* URL metadata: PEM the document must be signed by */
    bool accept_expired_idp_certificate; /* expired IdP keys still verify */
    char *acs_path;                      /* default /ssogate/acs; may carry a query */
  } saml;

  struct {
    struct sg_secret *secrets; /* first seals, all open */
    size_t n_secrets;
    uint64_t lifetime_ms;
    char *cookie_name;
    bool session_page;
    sg_strv logout_paths; /* app paths that end the session (Redash: /logout) */
    sg_strv app_cookies;  /* app cookies expired at logout (Redash: session remember_token) */
  } session;

  struct {
    sg_strv allowed_domains; /* "*" = anyone the IdP vouches for */
    sg_strv allowed_emails;
    sg_strv allowed_groups;
    sg_strv public_paths; /* path prefixes that need no session */
    char *app_credentials; /* NULL = off; "redash": its API keys and share tokens pass */
  } access;

  struct {
    char *user; /* NULL = header disabled */
    char *email;
    char *groups;
    char *jwt;        /* NULL = no JWT */
    sg_strv jwt_keys; /* PEM file paths; first signs */
    char *jwt_issuer; /* default public_url */
    char *jwt_audience;
    uint64_t jwt_ttl_ms;
  } headers;

  struct {
    unsigned login_count;     /* tokens per period */
    uint64_t login_period_ms; /* "30/m" = 30 per 60000 ms */
    unsigned burst;
    unsigned login_credit; /* tokens a completed sign-in gives back to its address */
    unsigned credential_failures_count; /* upstream 401/403/404 to credential requests */
    uint64_t credential_failures_period_ms;
  } ratelimit;

  struct {
    char *url;         /* "memory", "redis://..." or "rediss://..." */
    char *tls_ca_file; /* rediss:// only; NULL = the system CAs */
  } store;

  struct {
    char *listen; /* NULL = off */
    char *listen_host;
    uint16_t listen_port;
  } metrics;

  struct {
    enum sg_log_level level;
    enum sg_log_format format;
  } log;

  /* What ssogate's own pages (errors, 429, sign-in failed) show a person. */
  struct {
    char *support_contact; /* an e-mail address or an http(s) URL; NULL = none */
  } pages;

  /* Names and groups inside Redash (redash/sync.c); off unless sync_* is set. */
  struct {
    char *api_url;      /* "http://redash-server:5000", no trailing slash */
    char *api_key;      /* an admin's API key: a secret (from api_key or api_key_file) */
    char *api_key_file; /* path or NULL */
    bool sync_names;
    bool sync_groups;
    sg_strv group_map;  /* "google-group=redash-group" entries as written */
    sg_strv map_from;   /* group_map decoded: map_from[i] -> map_to[i] */
    sg_strv map_to;
    uint64_t timeout_ms; /* per Redash API call */
  } redash;
};

/*
 * Reads path (may be NULL: environment and defaults only), applies the
 * environment envp (NULL-terminated "NAME=value" list, usually environ),
 * and validates everything.  On failure returns NULL and sets *error to an
 * allocated message naming the file, line or key and the reason (free with
 * free()).  The new snapshot has one reference.
 */
struct sg_config *sg_config_load_new(const char *path, char *const *envp, char **error);

struct sg_config *sg_config_ref(struct sg_config *config);
void sg_config_unref(struct sg_config *config);

/* Parsers shared with other rooms and the tests; 0 on success, -1 on error. */
int sg_parse_duration_ms(const char *text, uint64_t *out);
int sg_parse_size(const char *text, uint64_t *out);
int sg_parse_host_port(const char *text, char **host, uint16_t *port);

/* Reads a whole file of at most max bytes with no NUL in it into an
 * allocated, NUL-terminated buffer (g_free; *len_out bytes); NULL and the
 * reason in why otherwise ("is larger than 64 KiB", "is a directory", ...).
 * The read is bounded whatever the file is (a pipe, /dev/zero), and a FIFO
 * that nobody writes to reads as empty instead of blocking the start.
 * private_only refuses files that other users may touch (secrets, keys). */
char *sg_read_small_file_new(const char *path, size_t max, bool private_only, size_t *len_out,
                             char *why, size_t why_size);

/* What in the configuration needs an email to let someone in ("[access]
 * allowed_domains", "[upstream] app = redash (...)"), or NULL when nothing
 * does: a subject that is not an email (a username) passes "*" and
 * allowed_groups.  auth/access.c names it when it refuses such a subject. */
const char *sg_config_email_needed_by(const struct sg_config *config);

/* Writes a human summary of the snapshot (no secrets) for --check. */
void sg_config_print_summary(const struct sg_config *config, FILE *out);

#endif
