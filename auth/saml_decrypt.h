/*
 * saml_decrypt.h - internal to auth/: XML Encryption as SAML IdPs use it,
 * for an EncryptedAssertion or an EncryptedID (saml_decrypt.c).
 *
 * For: checking the algorithms an encrypted element names, unwrapping its
 * key with one of the SP's decryption keys, decrypting it and putting the
 * plaintext element in its place in the tree.  Not for: any SAML rule (the
 * caller runs every rule on the result, its signature included), logging,
 * or reading key files (saml_sp.c does, with the file-mode check).
 */
#ifndef SSOGATE_SAML_DECRYPT_H
#define SSOGATE_SAML_DECRYPT_H

#include <stdbool.h>
#include <stddef.h>

#include <libxml/tree.h>
#include <openssl/evp.h>

/* The SP's private keys for key transport; read-only, shared by threads. */
struct sg_saml_decryption_keys {
  EVP_PKEY *const *keys; /* RSA; several = rotation, each is tried */
  size_t n_keys;
  bool allow_rsa15; /* [saml] allow_rsa15_key_transport */
};

/*
 * Decrypts `encrypted` (saml:EncryptedAssertion or saml:EncryptedID: one
 * xenc:EncryptedData, its xenc:EncryptedKey inside its ds:KeyInfo or next
 * to it, found directly or by ds:RetrievalMethod) and replaces it in the
 * tree by the one element it contained, which must be `want_ns`:`want_name`.
 * Refuses any algorithm outside the allowed lists before any crypto runs.
 * Returns the new element, or NULL with the precise reason in why (for the
 * log only: the client must see one error whatever the reason).
 */
xmlNodePtr sg_saml_decrypt_element(xmlDocPtr doc, xmlNodePtr encrypted,
                                   const struct sg_saml_decryption_keys *keys, const char *want_ns,
                                   const char *want_name, char *why, size_t why_size);

#endif
