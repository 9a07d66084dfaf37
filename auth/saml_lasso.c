/*
 * saml_lasso.c - lasso, libxml2 and xmlsec set up once per process: no
 * external entity is ever fetched, no DTD loaded, their messages caught into
 * the failing call's reason; and the lock every lasso call holds.
 *
 * Not for: any SAML message or metadata (the other saml_*.c files), nor
 * threads' own state beyond the last message reported on each.
 */
#include "auth/saml_internal.h"

#include <lasso/xml/tools.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <xmlsec/errors.h>

/* ---- process-wide setup ------------------------------------------------- */

/* lasso 2.8.1 is not thread-safe inside: it formats IssueInstant with
 * gmtime() and its log lines with localtime(), which share one static
 * buffer (found by ThreadSanitizer with 50 concurrent logins).  Logins are
 * not the hot path, so every lasso call holds this lock. */
pthread_mutex_t sg_saml_lasso_lock = PTHREAD_MUTEX_INITIALIZER;

/* Last message lasso, xmlsec or libxml2 reported on this thread: it goes
 * into the reason of the failure being built, never to stderr. */
_Thread_local char sg_saml_last_log[256];

static void on_lasso_log(const gchar *domain, GLogLevelFlags level, const gchar *message,
                         gpointer data) {
  (void)domain, (void)level, (void)data;
  g_strlcpy(sg_saml_last_log, message ? message : "", sizeof sg_saml_last_log);
}

static void on_xmlsec_error(const char *file, int line, const char *func, const char *object,
                            const char *subject, int reason, const char *msg) {
  (void)file, (void)line, (void)object, (void)subject, (void)reason;
  snprintf(sg_saml_last_log, sizeof sg_saml_last_log, "xmlsec %s: %s", func ? func : "?",
           msg ? msg : "");
}

static void on_xml_generic_error(void *ctx, const char *msg, ...) {
  (void)ctx, (void)msg; /* libxml2's own messages: errors reach us as return codes */
}

static void on_xml_structured_error(void *ctx, xmlErrorPtr error) { (void)ctx, (void)error; }

/* Nothing is ever fetched while parsing: no file, no http, no catalog. */
static xmlParserInputPtr refuse_external_entity(const char *url, const char *id,
                                                xmlParserCtxtPtr ctxt) {
  (void)url, (void)id, (void)ctxt;
  return NULL;
}

bool sg_saml_global_ready;

int sg_saml_global_init(void) {
  if (sg_saml_global_ready)
    return 0;
  /* lasso_init registers every GType with unlocked statics and initialises
   * libxml2 and xmlsec: it must run before any thread exists. */
  if (lasso_init() != 0)
    return -1;
  xmlSetExternalEntityLoader(refuse_external_entity);
  /* Both the calling thread's values and the defaults new threads copy. */
  xmlSubstituteEntitiesDefault(0);
  xmlThrDefSubstituteEntitiesDefaultValue(0);
  xmlLoadExtDtdDefaultValue = 0;
  xmlThrDefLoadExtDtdDefaultValue(0);
  xmlSetGenericErrorFunc(NULL, on_xml_generic_error);
  xmlThrDefSetGenericErrorFunc(NULL, on_xml_generic_error);
  xmlSetStructuredErrorFunc(NULL, on_xml_structured_error);
  xmlThrDefSetStructuredErrorFunc(NULL, on_xml_structured_error);
  xmlSecErrorsSetCallback(on_xmlsec_error);
  lasso_log_set_handler(G_LOG_LEVEL_MASK | G_LOG_FLAG_FATAL | G_LOG_FLAG_RECURSION, on_lasso_log,
                        NULL);
  sg_saml_global_ready = true;
  return 0;
}

void sg_saml_global_cleanup(void) {
  if (!sg_saml_global_ready)
    return;
  sg_saml_memo_clear();
  lasso_shutdown();
  sg_saml_global_ready = false;
}
