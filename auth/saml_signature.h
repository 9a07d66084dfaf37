/*
 * saml_signature.h - internal to auth/: the xmlsec verification context
 * every XML signature we accept is checked with (saml_signature.c); the
 * Response's and Assertion's signatures are checked there too, for the rules.
 */
#ifndef SSOGATE_SAML_SIGNATURE_H
#define SSOGATE_SAML_SIGNATURE_H

#include <stdbool.h>

#include <xmlsec/keys.h>
#include <xmlsec/xmldsig.h>

/* A verification context that trusts only key (KeyInfo in the document is
 * never read) and only the algorithms SAML uses; SHA-1 only when allowed;
 * Reference URI "" (a whole document, as signed metadata) only when allowed.
 * NULL on failure; free with xmlSecDSigCtxDestroy. */
xmlSecDSigCtxPtr sg_saml_verify_context_new(xmlSecKeyPtr key, bool allow_sha1,
                                            bool allow_whole_document);

#endif
