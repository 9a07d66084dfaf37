/*
 * saml_authn_request.c - the login's first leg: an AuthnRequest built by
 * lasso for the current IdP, signed when we have a key, sent by
 * HTTP-Redirect with its RelayState.
 *
 * Not for: the state cookie that remembers the request id (proxy/), nor
 * the response (saml_acs.c).
 */
#include "auth/saml_internal.h"

#include <lasso/xml/saml-2.0/samlp2_authn_request.h>
#include <lasso/xml/saml-2.0/samlp2_name_id_policy.h>

/* ---- login ------------------------------------------------------------------ */

static void set_string(char **field, const char *value) {
  g_free(*field);
  *field = g_strdup(value);
}

/* Appends "&RelayState=..." when lasso left it out of the URL. */
static char *with_relay_state(const char *url, const char *relay_state) {
  if (relay_state == NULL || strstr(url, "RelayState=") != NULL)
    return strdup(url);
  g_autofree char *escaped = g_uri_escape_string(relay_state, NULL, FALSE);
  char *out = NULL;
  if (asprintf(&out, "%s%cRelayState=%s", url, strchr(url, '?') ? '&' : '?', escaped) < 0)
    return NULL;
  return out;
}

/* Whether the query the SSO URL came with (Google's ?idpid=) survived:
 * the URL must be the SSO URL itself followed by our parameters. */
static bool keeps_sso_query(const char *sso_url, const char *url) {
  size_t n = strlen(sso_url);
  if (strncmp(url, sso_url, n) != 0)
    return false;
  return url[n] == (strchr(sso_url, '?') ? '&' : '?');
}

int sg_saml_login_start(const struct sg_saml_sp *sp, const char *relay_state, char **redirect_url,
                        char **request_id, const char **reason) {
  *redirect_url = NULL;
  *request_id = NULL;
  *reason = NULL;
  if (relay_state != NULL && strlen(relay_state) > MAX_RELAY_STATE) {
    *reason = "login: relay state longer than 80 bytes";
    return -1;
  }
  struct sg_saml_idp *idp = sg_saml_sp_idp_ref(sp);
  if (idp == NULL) {
    *reason = "login: no IdP metadata is loaded";
    return -1;
  }
  pthread_mutex_lock(&sg_saml_lasso_lock);
  LassoLogin *login = lasso_login_new(idp->server);
  if (login == NULL) {
    pthread_mutex_unlock(&sg_saml_lasso_lock);
    sg_saml_idp_unref(idp);
    *reason = "login: lasso_login_new failed";
    return -1;
  }
  int rc = -1;
  /* Without an SP key, lasso must not even try to sign (it fails trying);
   * with one, every AuthnRequest is signed, as the metadata announces. */
  lasso_profile_set_signature_hint(&login->parent, sp->has_sp_key
                                                       ? LASSO_PROFILE_SIGNATURE_HINT_FORCE
                                                       : LASSO_PROFILE_SIGNATURE_HINT_FORBID);
  if (lasso_login_init_authn_request(login, idp->entity_id, LASSO_HTTP_METHOD_REDIRECT) != 0) {
    *reason = "login: lasso_login_init_authn_request failed";
    goto out;
  }
  LassoProfile *profile = &login->parent;
  if (!lasso_node_is(profile->request, LASSO_TYPE_SAMLP2_AUTHN_REQUEST)) {
    *reason = "login: lasso built no SAML 2.0 AuthnRequest";
    goto out;
  }
  LassoSamlp2AuthnRequest *request = (LassoSamlp2AuthnRequest *)profile->request;
  if (request->NameIDPolicy == NULL)
    request->NameIDPolicy = (LassoSamlp2NameIDPolicy *)lasso_samlp2_name_id_policy_new();
  /* Google honours the requested format: ask for the email, never transient.
   * An IdP whose metadata lists only other formats (Shibboleth, Oracle Access
   * Manager: persistent usernames) answers a request for one it cannot make
   * with InvalidNameIDPolicy, so it gets "unspecified": any format it has. */
  set_string(&request->NameIDPolicy->Format,
             idp->name_id_email == 0 ? NAMEID_UNSPECIFIED : NAMEID_EMAIL);
  request->NameIDPolicy->AllowCreate = TRUE;
  request->ForceAuthn = FALSE;
  request->IsPassive = FALSE;
  set_string(&request->AssertionConsumerServiceURL, sp->acs_url);
  set_string(&request->ProtocolBinding, BINDING_POST);
  if (request->parent.Destination == NULL)
    set_string(&request->parent.Destination, idp->sso_url);
  if (relay_state != NULL)
    set_string(&profile->msg_relayState, relay_state);

  if (lasso_login_build_authn_request_msg(login) != 0 || profile->msg_url == NULL) {
    *reason = "login: lasso_login_build_authn_request_msg failed";
    goto out;
  }
  const char *id = request->parent.ID;
  if (id == NULL || id[0] == '\0') {
    *reason = "login: the AuthnRequest has no ID";
    goto out;
  }
  if (!keeps_sso_query(idp->sso_url, profile->msg_url)) {
    *reason = "login: lasso dropped the query of the IdP SSO URL";
    goto out;
  }
  *redirect_url = with_relay_state(profile->msg_url, relay_state);
  *request_id = strdup(id);
  if (*redirect_url == NULL || *request_id == NULL) {
    free(*redirect_url);
    free(*request_id);
    *redirect_url = *request_id = NULL;
    *reason = "login: out of memory";
    goto out;
  }
  rc = 0;
out:
  lasso_login_destroy(login);
  pthread_mutex_unlock(&sg_saml_lasso_lock);
  sg_saml_idp_unref(idp);
  return rc;
}
