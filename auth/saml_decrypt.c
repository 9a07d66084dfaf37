/*
 * saml_decrypt.c - decrypts one SAML EncryptedAssertion or EncryptedID with
 * the SP's keys, refusing every algorithm outside a short list first.
 *
 * For: reading the XML Encryption structure on our own tree, the key
 * transport (RSA-OAEP, RSA-1.5 only by opt-in) with OpenSSL, the content
 * decryption (AES-CBC, AES-GCM) with xmlsec's xmlSecEncCtx restricted to
 * the one algorithm already checked, and splicing the plaintext element in
 * place.  Not for: any SAML rule, logging, key files.
 *
 * Why the key transport is OpenSSL's and not xmlsec's: xmlsec 1.2.37
 * (bookworm) knows only xmlenc#rsa-oaep-mgf1p with SHA-1, not xmlenc11's
 * rsa-oaep with SHA-256 (Entra ID, Okta "RSA-OAEP-256"); EVP_PKEY_decrypt
 * does all three.  The unwrapped AES key is then handed to xmlsec as the
 * preset key, so KeyInfo in the message never selects a key.
 *
 * No oracle: every failure comes back as NULL plus a reason for the log;
 * the caller shows the client one message.  With RSA-1.5, a padding error
 * is not even a distinct path: a random key takes the unwrapped key's
 * place and the failure shows up as the content decryption's
 * (Bleichenbacher countermeasure, as in TLS).
 */
#include "auth/saml_decrypt.h"
#include "auth/base64.h"
#include "auth/xml_tree.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <glib.h>
#include <libxml/parser.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <xmlsec/crypto.h>
#include <xmlsec/buffer.h>
#include <xmlsec/keys.h>
#include <xmlsec/transforms.h>
#include <xmlsec/xmlenc.h>
#include <xmlsec/xmlsec.h>

#define NS_XENC "http://www.w3.org/2001/04/xmlenc#"
#define NS_XENC11 "http://www.w3.org/2009/xmlenc11#"
#define NS_DS "http://www.w3.org/2000/09/xmldsig#"

#define KT_OAEP_MGF1P NS_XENC "rsa-oaep-mgf1p"
#define KT_OAEP11 NS_XENC11 "rsa-oaep"
#define KT_RSA15 NS_XENC "rsa-1_5"
#define TYPE_ELEMENT NS_XENC "Element"

/* A SAML EncryptedElement carries one key per recipient at most; a few
 * more are tolerated, not hundreds (each costs an RSA decryption). */
#define MAX_ENCRYPTED_KEYS 4
#define MAX_CIPHER_VALUE_B64 4096

struct data_algorithm {
  const char *href;
  size_t key_len;
  xmlSecTransformId (*transform)(void);
};

static xmlSecTransformId aes128cbc(void) { return xmlSecTransformAes128CbcId; }
static xmlSecTransformId aes192cbc(void) { return xmlSecTransformAes192CbcId; }
static xmlSecTransformId aes256cbc(void) { return xmlSecTransformAes256CbcId; }
static xmlSecTransformId aes128gcm(void) { return xmlSecTransformAes128GcmId; }
static xmlSecTransformId aes256gcm(void) { return xmlSecTransformAes256GcmId; }

static const struct data_algorithm data_algorithms[] = {
    {NS_XENC "aes128-cbc", 16, aes128cbc},   {NS_XENC "aes192-cbc", 24, aes192cbc},
    {NS_XENC "aes256-cbc", 32, aes256cbc},   {NS_XENC11 "aes128-gcm", 16, aes128gcm},
    {NS_XENC11 "aes256-gcm", 32, aes256gcm},
};

/* How one EncryptedKey says its key was wrapped. */
struct key_transport {
  bool rsa15;
  const EVP_MD *md, *mgf1;
  unsigned char *label; /* OAEPparams, g_free */
  size_t label_len;
  unsigned char *cipher; /* g_free */
  size_t cipher_len;
};

static void set_why(char *why, size_t size, const char *fmt, ...) G_GNUC_PRINTF(3, 4);

static void set_why(char *why, size_t size, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(why, size, fmt, ap);
  va_end(ap);
}

/* An unqualified attribute's value (g_free), NULL when absent. */
static char *prop(const xmlNode *node, const char *name) {
  xmlChar *v = xmlGetNoNsProp(node, (const xmlChar *)name);
  char *out = v ? g_strdup((const char *)v) : NULL;
  xmlFree(v);
  return out;
}

static const EVP_MD *digest_by_href(const char *href) {
  if (href == NULL || strcmp(href, "http://www.w3.org/2000/09/xmldsig#sha1") == 0)
    return EVP_sha1(); /* the default of both OAEP identifiers */
  if (strcmp(href, NS_XENC "sha256") == 0)
    return EVP_sha256();
  if (strcmp(href, NS_XENC "sha512") == 0)
    return EVP_sha512();
  if (strcmp(href, "http://www.w3.org/2001/04/xmldsig-more#sha384") == 0)
    return EVP_sha384();
  return NULL;
}

static const EVP_MD *mgf_by_href(const char *href) {
  if (href == NULL || strcmp(href, NS_XENC11 "mgf1sha1") == 0)
    return EVP_sha1();
  if (strcmp(href, NS_XENC11 "mgf1sha256") == 0)
    return EVP_sha256();
  if (strcmp(href, NS_XENC11 "mgf1sha384") == 0)
    return EVP_sha384();
  if (strcmp(href, NS_XENC11 "mgf1sha512") == 0)
    return EVP_sha512();
  return NULL;
}

/* Whole text of an element, checked as strict base64 (blanks skipped), decoded. */
static unsigned char *b64_text(const xmlNode *node, size_t max_b64, size_t *len) {
  xmlChar *text = xmlNodeGetContent(node);
  if (text == NULL)
    return NULL;
  unsigned char *out = NULL;
  size_t bad = 0, chars = sg_base64_check((const char *)text, strlen((const char *)text), &bad);
  *len = 0;
  if (chars > 0 && chars <= max_b64) {
    gsize n = 0;
    out = g_base64_decode((const char *)text, &n); /* blanks skipped */
    *len = n;
    if (n == 0) {
      g_free(out);
      out = NULL;
    }
  }
  xmlFree(text);
  return out;
}

static void key_transport_clear(struct key_transport *kt) {
  g_free(kt->label);
  g_free(kt->cipher);
  memset(kt, 0, sizeof *kt);
}

/* Reads one EncryptedKey: its algorithm (checked here, before any crypto)
 * and its wrapped key. */
static int read_encrypted_key(const xmlNode *ek, bool allow_rsa15, struct key_transport *kt,
                              char *why, size_t why_size) {
  memset(kt, 0, sizeof *kt);
  unsigned n = 0;
  xmlNodePtr method = sg_xml_child_element(ek, NS_XENC, "EncryptionMethod", &n);
  g_autofree char *alg = method ? prop(method, "Algorithm") : NULL;
  if (n != 1 || alg == NULL) {
    set_why(why, why_size, "EncryptedKey has no EncryptionMethod Algorithm");
    return -1;
  }
  if (strcmp(alg, KT_RSA15) == 0) {
    if (!allow_rsa15) {
      set_why(why, why_size,
              "key transport rsa-1_5 is refused (Bleichenbacher); set the IdP to RSA-OAEP, "
              "or [saml] allow_rsa15_key_transport = true");
      return -1;
    }
    kt->rsa15 = true;
  } else if (strcmp(alg, KT_OAEP_MGF1P) == 0 || strcmp(alg, KT_OAEP11) == 0) {
    xmlNodePtr dm = sg_xml_child_element(method, NS_DS, "DigestMethod", NULL);
    g_autofree char *dm_alg = dm ? prop(dm, "Algorithm") : NULL;
    kt->md = digest_by_href(dm_alg);
    if (dm != NULL && dm_alg == NULL)
      kt->md = NULL;
    xmlNodePtr mgf = sg_xml_child_element(method, NS_XENC11, "MGF", NULL);
    g_autofree char *mgf_alg = mgf ? prop(mgf, "Algorithm") : NULL;
    /* rsa-oaep-mgf1p fixes MGF1 with SHA-1; only xmlenc11 may name another. */
    kt->mgf1 = strcmp(alg, KT_OAEP11) == 0 ? mgf_by_href(mgf_alg) : (mgf ? NULL : EVP_sha1());
    if (kt->md == NULL || kt->mgf1 == NULL) {
      set_why(why, why_size, "key transport %s with digest '%.100s' / MGF '%.100s' is not accepted",
              alg, dm_alg ? dm_alg : "sha1", mgf_alg ? mgf_alg : "mgf1sha1");
      return -1;
    }
    xmlNodePtr params = sg_xml_child_element(method, NS_XENC, "OAEPparams", NULL);
    if (params != NULL) {
      kt->label = b64_text(params, 1024, &kt->label_len);
      if (kt->label == NULL) {
        set_why(why, why_size, "EncryptedKey OAEPparams is not base64");
        return -1;
      }
    }
  } else {
    set_why(why, why_size,
            "key transport '%.150s' is not accepted (rsa-oaep-mgf1p, xmlenc11 rsa-oaep%s)", alg,
            allow_rsa15 ? ", rsa-1_5" : "");
    return -1;
  }
  xmlNodePtr cd = sg_xml_child_element(ek, NS_XENC, "CipherData", &n);
  unsigned n_value = 0;
  xmlNodePtr cv = sg_xml_child_element(cd, NS_XENC, "CipherValue", &n_value);
  if (n != 1 || n_value != 1 ||
      sg_xml_child_element(cd, NS_XENC, "CipherReference", NULL) != NULL) {
    set_why(why, why_size, "EncryptedKey needs one CipherData with one CipherValue");
    key_transport_clear(kt);
    return -1;
  }
  kt->cipher = b64_text(cv, MAX_CIPHER_VALUE_B64, &kt->cipher_len);
  if (kt->cipher == NULL) {
    set_why(why, why_size, "EncryptedKey CipherValue is empty, too long or not base64");
    key_transport_clear(kt);
    return -1;
  }
  return 0;
}

/* RSA-decrypts the wrapped key with one SP key; 0 and the key in out when
 * it has exactly want bytes. */
static int unwrap_with(EVP_PKEY *pkey, const struct key_transport *kt, unsigned char *out,
                       size_t want) {
  if ((size_t)EVP_PKEY_get_size(pkey) != kt->cipher_len)
    return -1; /* wrapped for a key of another size: not this one */
  EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pkey, NULL);
  unsigned char buf[1024];
  size_t len = sizeof buf;
  int ok = ctx != NULL && EVP_PKEY_decrypt_init(ctx) == 1;
  if (ok && kt->rsa15) {
    ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PADDING) == 1;
  } else if (ok) {
    ok = EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_OAEP_PADDING) == 1 &&
         EVP_PKEY_CTX_set_rsa_oaep_md(ctx, kt->md) == 1 &&
         EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, kt->mgf1) == 1;
    if (ok && kt->label_len > 0) {
      unsigned char *label = OPENSSL_memdup(kt->label, kt->label_len);
      ok = label != NULL && EVP_PKEY_CTX_set0_rsa_oaep_label(ctx, label, (int)kt->label_len) == 1;
      if (!ok)
        OPENSSL_free(label);
    }
  }
  ok = ok && kt->cipher_len <= sizeof buf &&
       EVP_PKEY_decrypt(ctx, buf, &len, kt->cipher, kt->cipher_len) == 1 && len == want;
  if (ok)
    memcpy(out, buf, want);
  OPENSSL_cleanse(buf, sizeof buf);
  EVP_PKEY_CTX_free(ctx);
  return ok ? 0 : -1;
}

/* The candidate EncryptedKeys: inside EncryptedData's KeyInfo (Okta,
 * ADFS), referenced from there by RetrievalMethod (Shibboleth), or, with
 * neither, the EncryptedKey siblings of the EncryptedData. */
static int find_encrypted_keys(const xmlNode *encrypted, const xmlNode *data, const xmlNode **out,
                               size_t *n_out, char *why, size_t why_size) {
  *n_out = 0;
  xmlNodePtr ki = sg_xml_child_element(data, NS_DS, "KeyInfo", NULL);
  for (xmlNodePtr ch = ki ? ki->children : NULL; ch != NULL; ch = ch->next) {
    if (sg_xml_is_element(ch, NS_XENC, "EncryptedKey")) {
      if (*n_out >= MAX_ENCRYPTED_KEYS)
        goto too_many;
      out[(*n_out)++] = ch;
    } else if (sg_xml_is_element(ch, NS_DS, "RetrievalMethod")) {
      g_autofree char *uri = prop(ch, "URI");
      if (uri == NULL || uri[0] != '#' || uri[1] == '\0') {
        set_why(why, why_size, "RetrievalMethod URI '%.100s' is not a same-document '#id'",
                uri ? uri : "(none)");
        return -1;
      }
      const xmlNode *target = NULL;
      for (xmlNodePtr s = encrypted->children; s != NULL && target == NULL; s = s->next) {
        g_autofree char *id = sg_xml_is_element(s, NS_XENC, "EncryptedKey") ? prop(s, "Id") : NULL;
        if (id != NULL && strcmp(id, uri + 1) == 0)
          target = s;
      }
      if (target == NULL) {
        set_why(why, why_size, "RetrievalMethod '%.100s' names no EncryptedKey next to the data",
                uri);
        return -1;
      }
      if (*n_out >= MAX_ENCRYPTED_KEYS)
        goto too_many;
      out[(*n_out)++] = target;
    }
  }
  if (*n_out > 0)
    return 0;
  for (xmlNodePtr s = encrypted->children; s != NULL; s = s->next) {
    if (!sg_xml_is_element(s, NS_XENC, "EncryptedKey"))
      continue;
    if (*n_out >= MAX_ENCRYPTED_KEYS)
      goto too_many;
    out[(*n_out)++] = s;
  }
  if (*n_out == 0) {
    set_why(why, why_size, "no EncryptedKey (in KeyInfo or next to the EncryptedData)");
    return -1;
  }
  return 0;
too_many:
  set_why(why, why_size, "more than %d EncryptedKey elements", MAX_ENCRYPTED_KEYS);
  return -1;
}

/* Content decryption by xmlsec with the preset key and only the one
 * transform already checked: nothing in the message picks a key or an
 * algorithm, and no CipherReference URI is ever dereferenced. */
static xmlChar *decrypt_data(xmlNodePtr data, const struct data_algorithm *alg,
                             const unsigned char *key, size_t *len, char *why, size_t why_size) {
  xmlSecEncCtxPtr ctx = xmlSecEncCtxCreate(NULL);
  xmlChar *out = NULL;
  if (ctx == NULL) {
    set_why(why, why_size, "cannot create an xmlsec context");
    return NULL;
  }
  ctx->mode = xmlEncCtxModeEncryptedData;
  ctx->transformCtx.enabledUris = xmlSecTransformUriTypeNone;
  ctx->encKey = xmlSecKeyReadMemory(xmlSecKeyDataAesId, key, (xmlSecSize)alg->key_len);
  if (ctx->encKey == NULL ||
      xmlSecPtrListAdd(&ctx->transformCtx.enabledTransforms, (void *)alg->transform()) < 0) {
    set_why(why, why_size, "cannot set up the content decryption");
    xmlSecEncCtxDestroy(ctx);
    return NULL;
  }
  xmlSecBufferPtr plain = xmlSecEncCtxDecryptToBuffer(ctx, data);
  if (plain == NULL || xmlSecBufferGetSize(plain) == 0) {
    set_why(why, why_size, "content decryption failed (wrong key, or the data was altered: %s)",
            alg->href);
  } else {
    *len = xmlSecBufferGetSize(plain);
    out = xmlStrndup(xmlSecBufferGetData(plain), (int)*len);
  }
  xmlSecEncCtxDestroy(ctx);
  return out;
}

/* The plaintext as one element in the tree: parsed in the context of the
 * encrypted element (whose namespace declarations it may use), moved into
 * its place, namespaces re-declared where needed, the old element freed. */
static xmlNodePtr splice_plaintext(xmlDocPtr doc, xmlNodePtr encrypted, const xmlChar *plain,
                                   size_t len, const char *want_ns, const char *want_name,
                                   char *why, size_t why_size) {
  const char *p = (const char *)plain;
  if (len > 5 && strncmp(p, "<?xml", 5) == 0) { /* an XML declaration some IdPs keep */
    const char *end = strstr(p, "?>");
    if (end == NULL) {
      set_why(why, why_size, "decrypted data is not XML");
      return NULL;
    }
    len -= (size_t)(end + 2 - p);
    p = end + 2;
  }
  if (memmem(p, len, "<!DOCTYPE", 9) != NULL || memmem(p, len, "<!ENTITY", 8) != NULL) {
    set_why(why, why_size, "decrypted data carries a DOCTYPE");
    return NULL;
  }
  xmlNodePtr list = NULL;
  xmlParserErrors err = xmlParseInNodeContext(
      encrypted, p, (int)len, XML_PARSE_NONET | XML_PARSE_NOERROR | XML_PARSE_NOWARNING, &list);
  xmlNodePtr element = NULL;
  unsigned elements = 0;
  bool other = false;
  for (xmlNodePtr n = list; n != NULL; n = n->next) {
    if (n->type == XML_ELEMENT_NODE) {
      element = n;
      elements++;
    } else if (n->type != XML_TEXT_NODE || !xmlIsBlankNode(n)) {
      other = true;
    }
  }
  if (err != XML_ERR_OK || elements != 1 || other ||
      !sg_xml_is_element(element, want_ns, want_name)) {
    set_why(why, why_size, "decrypted data is not one %s element%s", want_name,
            err != XML_ERR_OK ? " (not well-formed)" : "");
    xmlFreeNodeList(list);
    return NULL;
  }
  /* Detach the one element from the list, free the blank rest. */
  if (element->prev != NULL)
    element->prev->next = element->next;
  if (element->next != NULL)
    element->next->prev = element->prev;
  if (list == element)
    list = element->next;
  element->prev = element->next = NULL;
  xmlFreeNodeList(list);

  xmlAddNextSibling(encrypted, element);
  if (xmlReconciliateNs(doc, element) < 0) {
    xmlUnlinkNode(element);
    xmlFreeNode(element);
    set_why(why, why_size, "decrypted %s: cannot resolve its namespaces", want_name);
    return NULL;
  }
  xmlUnlinkNode(encrypted);
  xmlFreeNode(encrypted);
  return element;
}

xmlNodePtr sg_saml_decrypt_element(xmlDocPtr doc, xmlNodePtr encrypted,
                                   const struct sg_saml_decryption_keys *keys, const char *want_ns,
                                   const char *want_name, char *why, size_t why_size) {
  if (keys == NULL || keys->n_keys == 0) {
    set_why(why, why_size, "no [saml] sp_decryption_key is configured");
    return NULL;
  }
  /* Structure: one EncryptedData, a few EncryptedKeys, nothing else. */
  xmlNodePtr data = NULL;
  unsigned n_data = 0, n_keys = 0;
  for (xmlNodePtr ch = encrypted->children; ch != NULL; ch = ch->next) {
    if (ch->type != XML_ELEMENT_NODE)
      continue;
    if (sg_xml_is_element(ch, NS_XENC, "EncryptedData")) {
      data = ch;
      n_data++;
    } else if (sg_xml_is_element(ch, NS_XENC, "EncryptedKey")) {
      n_keys++;
    } else {
      set_why(why, why_size, "unexpected element '%.64s' in the encrypted element",
              (const char *)ch->name);
      return NULL;
    }
  }
  if (n_data != 1 || n_keys > MAX_ENCRYPTED_KEYS) {
    set_why(why, why_size, "expected one EncryptedData (found %u) and at most %d EncryptedKey",
            n_data, MAX_ENCRYPTED_KEYS);
    return NULL;
  }
  g_autofree char *type = prop(data, "Type");
  if (type != NULL && strcmp(type, TYPE_ELEMENT) != 0) {
    set_why(why, why_size, "EncryptedData Type '%.100s' is not Element", type);
    return NULL;
  }
  unsigned n = 0;
  xmlNodePtr method = sg_xml_child_element(data, NS_XENC, "EncryptionMethod", &n);
  g_autofree char *alg_href = method ? prop(method, "Algorithm") : NULL;
  const struct data_algorithm *alg = NULL;
  for (size_t i = 0; alg_href != NULL && i < G_N_ELEMENTS(data_algorithms); i++)
    if (strcmp(alg_href, data_algorithms[i].href) == 0)
      alg = &data_algorithms[i];
  if (n != 1 || alg == NULL) {
    set_why(why, why_size,
            "data encryption '%.150s' is not accepted (aes128/192/256-cbc, aes128/256-gcm)",
            alg_href ? alg_href : "(no EncryptionMethod)");
    return NULL;
  }
  xmlNodePtr cd = sg_xml_child_element(data, NS_XENC, "CipherData", &n);
  unsigned n_value = 0;
  sg_xml_child_element(cd, NS_XENC, "CipherValue", &n_value);
  if (n != 1 || n_value != 1 ||
      sg_xml_child_element(cd, NS_XENC, "CipherReference", NULL) != NULL) {
    set_why(why, why_size, "EncryptedData needs one CipherData with one CipherValue");
    return NULL;
  }

  const xmlNode *candidates[MAX_ENCRYPTED_KEYS];
  size_t n_candidates = 0;
  if (find_encrypted_keys(encrypted, data, candidates, &n_candidates, why, why_size) < 0)
    return NULL;
  /* Every algorithm is checked before the first RSA operation. */
  struct key_transport kts[MAX_ENCRYPTED_KEYS];
  memset(kts, 0, sizeof kts);
  size_t n_read = 0;
  xmlNodePtr result = NULL;
  for (; n_read < n_candidates; n_read++)
    if (read_encrypted_key(candidates[n_read], keys->allow_rsa15, &kts[n_read], why, why_size) < 0)
      goto out;

  unsigned char key[32];
  bool unwrapped = false, rsa15 = false;
  for (size_t i = 0; i < n_read && !unwrapped; i++) {
    rsa15 = rsa15 || kts[i].rsa15;
    for (size_t k = 0; k < keys->n_keys && !unwrapped; k++)
      unwrapped = unwrap_with(keys->keys[k], &kts[i], key, alg->key_len) == 0;
  }
  if (!unwrapped && rsa15) {
    /* Same path as a wrong key: no padding oracle. */
    if (RAND_bytes(key, (int)alg->key_len) != 1) {
      set_why(why, why_size, "no randomness");
      goto out;
    }
    unwrapped = true;
  }
  if (!unwrapped) {
    set_why(why, why_size,
            "no sp_decryption_key unwraps the EncryptedKey (encrypted for another SP's key, or "
            "altered)");
    goto out;
  }
  size_t plain_len = 0;
  xmlChar *plain = decrypt_data(data, alg, key, &plain_len, why, why_size);
  OPENSSL_cleanse(key, sizeof key);
  if (plain == NULL)
    goto out;
  result = splice_plaintext(doc, encrypted, plain, plain_len, want_ns, want_name, why, why_size);
  xmlFree(plain);
out:
  for (size_t i = 0; i < n_read; i++)
    key_transport_clear(&kts[i]);
  return result;
}
