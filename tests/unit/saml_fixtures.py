#!/usr/bin/python3
"""saml_fixtures.py - writes the SAMLResponse fixtures that tests/unit/test_saml.c
checks, one file per case, plus the IdP metadata and keys they are signed with.

For: the unit test of auth/saml_sp.c (happy paths and every attack family of
DESIGN.md "SAML validation").  Not for: the integration IdP (tests/idp/).

Usage: /usr/bin/python3 saml_fixtures.py OUTDIR
Writes OUTDIR/idp-metadata.xml, idp.key, idp.crt, NAME.b64 per case and
OUTDIR/cases.txt with one line per case:
    NAME EXPECTED_FAILURE EXPECTED_REQUEST_ID|- ALLOW_IDP_INITIATED(0|1) OPTIONS|-
EXPECTED_FAILURE is sg_saml_failure_name() of the expected result ("ok" ...).
OPTIONS is the [saml] configuration the case expects, comma-separated:
dec (sp_decryption_key = sp-enc.key), dec2 (sp-enc-old.key then sp-enc.key:
rotation), rsa15 (allow_rsa15_key_transport), sha1 (allow_sha1), email=,
name=, groups= (the attribute names; default name=displayName,groups=groups).
tests/integration/test_check_response.py reads the same manifest.

Product shapes (prefixes, signature placement, claim names, encryption)
follow each product's documentation; each case says which.  Encryption is
done here with python3-cryptography (not xmlsec), so that the fixtures do
not share a library with the code they test.

Responses have Google Workspace's shape (research/anchors.md section 2):
AttributeStatement before AuthnStatement, exc-c14n, rsa-sha256, KeyInfo with
the certificate.  Built with lxml + python3-xmlsec, independently of lasso.
Self-contained on purpose (it does not import tests/idp/samlidp.py): the unit
test's attack cases must not change when the demo IdP does.
"""
import base64
import copy
import datetime
import os
import sys
import uuid

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding as sym_padding, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.x509.oid import NameOID
from lxml import etree

SP_PUBLIC_URL = "http://sp.test"
SP_ENTITY_ID = "http://sp.test/ssogate/metadata"
ACS_URL = "http://sp.test/ssogate/acs"
REQUEST_ID = "_req123"
IDP_ENTITY_ID = "https://accounts.google.com/o/saml2?idpid=abc"
IDP_SSO_URL = "https://accounts.google.com/o/saml2/idp?idpid=abc"

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
    "xs": "http://www.w3.org/2001/XMLSchema",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
    "xenc11": "http://www.w3.org/2009/xmlenc11#",
}
SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"


def q(prefix, name):
    return "{%s}%s" % (NS[prefix], name)


def ts(dt):
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def now():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def make_keypair(cn, expired=False):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    start = now() - datetime.timedelta(days=1000 if expired else 1)
    end = now() - datetime.timedelta(days=1) if expired else now() + datetime.timedelta(days=365)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def cert_b64(cert_pem):
    body = b"".join(l for l in cert_pem.splitlines() if not l.startswith(b"-----"))
    return body.decode()


PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"


def idp_metadata_xml(*cert_pems, name_id_formats=("urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",)):
    md = etree.Element(q("md", "EntityDescriptor"), nsmap={"md": NS["md"]})
    md.set("entityID", IDP_ENTITY_ID)
    idp = etree.SubElement(md, q("md", "IDPSSODescriptor"))
    idp.set("WantAuthnRequestsSigned", "false")
    idp.set("protocolSupportEnumeration", NS["samlp"])
    for cert_pem in cert_pems:
        kd = etree.SubElement(idp, q("md", "KeyDescriptor"))
        kd.set("use", "signing")
        ki = etree.SubElement(kd, q("ds", "KeyInfo"), nsmap={"ds": NS["ds"]})
        xd = etree.SubElement(ki, q("ds", "X509Data"))
        etree.SubElement(xd, q("ds", "X509Certificate")).text = cert_b64(cert_pem)
    for name_id_format in name_id_formats:
        etree.SubElement(idp, q("md", "NameIDFormat")).text = name_id_format
    for binding in ("HTTP-Redirect", "HTTP-POST"):
        sso = etree.SubElement(idp, q("md", "SingleSignOnService"))
        sso.set("Binding", "urn:oasis:names:tc:SAML:2.0:bindings:" + binding)
        sso.set("Location", IDP_SSO_URL)
    return etree.tostring(md, xml_declaration=True, encoding="UTF-8")


def build_tree(
    in_response_to=REQUEST_ID,
    audience=SP_ENTITY_ID,
    destination=ACS_URL,
    recipient=ACS_URL,
    issuer=IDP_ENTITY_ID,
    not_before=None,
    not_on_or_after=None,
    scd_not_on_or_after=None,
    status=SUCCESS,
    name_id="Alice@Example.COM",
    attributes=None,
    audience_restriction=True,
    with_assertion=True,
    samlp_prefix="samlp",
    saml_prefix="saml",
    with_name_id=True,
    name_id_format="urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
    xsi_type="xs:anyType",
):
    """A Google-shaped, unsigned Response as an lxml tree.  The prefixes
    (None = default namespace) and the NameID are what other products vary."""
    t = now()
    not_before = not_before or t - datetime.timedelta(minutes=5)
    not_on_or_after = not_on_or_after or t + datetime.timedelta(minutes=5)
    scd_not_on_or_after = scd_not_on_or_after or t + datetime.timedelta(minutes=5)
    if attributes is None:
        attributes = {
            "displayName": ["Alice Example"],
            "groups": ["eng", "admins"],
            "mail": ["Alice.Mail@Example.COM"],
        }

    rsp = etree.Element(q("samlp", "Response"), nsmap={samlp_prefix: NS["samlp"]})
    rsp.set("ID", "_" + uuid.uuid4().hex)
    rsp.set("Version", "2.0")
    rsp.set("IssueInstant", ts(t))
    if destination is not None:
        rsp.set("Destination", destination)
    if in_response_to is not None:
        rsp.set("InResponseTo", in_response_to)
    etree.SubElement(rsp, q("saml", "Issuer"), nsmap={saml_prefix: NS["saml"]}).text = issuer
    st = etree.SubElement(rsp, q("samlp", "Status"))
    sc = etree.SubElement(st, q("samlp", "StatusCode"))
    sc.set("Value", status)
    if status != SUCCESS:
        sub = etree.SubElement(sc, q("samlp", "StatusCode"))
        sub.set("Value", "urn:oasis:names:tc:SAML:2.0:status:RequestDenied")
        etree.SubElement(st, q("samlp", "StatusMessage")).text = "ACS Url mismatch"
    if not with_assertion:
        return rsp

    a = etree.SubElement(rsp, q("saml", "Assertion"), nsmap={saml_prefix: NS["saml"]})
    a.set("ID", "_" + uuid.uuid4().hex)
    a.set("IssueInstant", ts(t))
    a.set("Version", "2.0")
    etree.SubElement(a, q("saml", "Issuer")).text = issuer
    subj = etree.SubElement(a, q("saml", "Subject"))
    if with_name_id:
        nid = etree.SubElement(subj, q("saml", "NameID"))
        nid.set("Format", name_id_format)
        nid.text = name_id
    scf = etree.SubElement(subj, q("saml", "SubjectConfirmation"))
    scf.set("Method", "urn:oasis:names:tc:SAML:2.0:cm:bearer")
    scd = etree.SubElement(scf, q("saml", "SubjectConfirmationData"))
    if in_response_to is not None:
        scd.set("InResponseTo", in_response_to)
    scd.set("NotOnOrAfter", ts(scd_not_on_or_after))
    if recipient is not None:
        scd.set("Recipient", recipient)
    cond = etree.SubElement(a, q("saml", "Conditions"))
    cond.set("NotBefore", ts(not_before))
    cond.set("NotOnOrAfter", ts(not_on_or_after))
    if audience_restriction:
        ar = etree.SubElement(cond, q("saml", "AudienceRestriction"))
        etree.SubElement(ar, q("saml", "Audience")).text = audience
    ast = etree.SubElement(a, q("saml", "AttributeStatement"))
    for name, values in attributes.items():
        at = etree.SubElement(ast, q("saml", "Attribute"))
        at.set("Name", name)
        for v in values:
            av = etree.SubElement(
                at, q("saml", "AttributeValue"), nsmap={"xs": NS["xs"], "xsi": NS["xsi"]}
            )
            if xsi_type:
                av.set(q("xsi", "type"), xsi_type)
            av.text = v
    an = etree.SubElement(a, q("saml", "AuthnStatement"))
    an.set("AuthnInstant", ts(t))
    an.set("SessionIndex", a.get("ID"))
    ac = etree.SubElement(an, q("saml", "AuthnContext"))
    etree.SubElement(ac, q("saml", "AuthnContextClassRef")).text = (
        "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"
    )
    return rsp


def sign_element(elem, key_pem, cert_pem, keyinfo_cert_pem=None, sha1=False, ds_prefix="ds",
                 position="after_issuer"):
    """Enveloped exc-c14n/rsa-sha256 signature as the element's second child
    (after Issuer), KeyInfo carrying keyinfo_cert_pem (default: cert_pem).
    sha1: rsa-sha1 with sha1 digests (OneLogin, Auth0, older ADFS).
    ds_prefix None: the Signature in the default namespace (Auth0).
    position "last": appended after everything else, as xml-crypto places
    it by default (Auth0's signed Response); "first": before the Issuer."""
    sig = xmlsec.template.create(
        elem, xmlsec.constants.TransformExclC14N,
        xmlsec.constants.TransformRsaSha1 if sha1 else xmlsec.constants.TransformRsaSha256,
        ns=ds_prefix,
    )
    if position == "last":
        elem.append(sig)
    else:
        elem.insert(0 if position == "first" else 1, sig)
    ref = xmlsec.template.add_reference(
        sig, xmlsec.constants.TransformSha1 if sha1 else xmlsec.constants.TransformSha256,
        uri="#" + elem.get("ID")
    )
    xmlsec.template.add_transform(ref, xmlsec.constants.TransformEnveloped)
    xmlsec.template.add_transform(ref, xmlsec.constants.TransformExclC14N)
    ki = xmlsec.template.ensure_key_info(sig)
    xd = xmlsec.template.add_x509_data(ki)
    xmlsec.template.x509_data_add_certificate(xd)
    ctx = xmlsec.SignatureContext()
    key = xmlsec.Key.from_memory(key_pem, xmlsec.constants.KeyDataFormatPem)
    key.load_cert_from_memory(keyinfo_cert_pem or cert_pem, xmlsec.constants.KeyDataFormatPem)
    ctx.key = key
    ctx.register_id(elem, "ID")
    ctx.sign(sig)
    return sig


def assertion_of(rsp):
    return rsp.find(q("saml", "Assertion"))


def sign_tree(rsp, sign, key_pem, cert_pem, keyinfo_cert_pem=None, **kw):
    if sign in ("assertion", "both"):
        sign_element(assertion_of(rsp), key_pem, cert_pem, keyinfo_cert_pem, **kw)
    if sign in ("response", "both"):
        sign_element(rsp, key_pem, cert_pem, keyinfo_cert_pem, **kw)
    return rsp


# ---- XML Encryption, as IdPs send it (SAML core 2.2.4 / 6; xmlenc 1.0, 1.1) ----

DATA_ALGS = {
    "aes128-cbc": (NS["xenc"] + "aes128-cbc", 16),
    "aes192-cbc": (NS["xenc"] + "aes192-cbc", 24),
    "aes256-cbc": (NS["xenc"] + "aes256-cbc", 32),
    "aes128-gcm": (NS["xenc11"] + "aes128-gcm", 16),
    "aes256-gcm": (NS["xenc11"] + "aes256-gcm", 32),
    "tripledes-cbc": (NS["xenc"] + "tripledes-cbc", 24),
}
HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256}
DIGEST_HREF = {"sha1": NS["ds"] + "sha1", "sha256": NS["xenc"] + "sha256"}


def encrypt_bytes(plain, data_alg, key):
    if data_alg.endswith("-gcm"):
        iv = os.urandom(12)
        return iv + AESGCM(key).encrypt(iv, plain, None)  # ciphertext || 16-byte tag
    iv = os.urandom(16)
    padder = sym_padding.PKCS7(128).padder()  # xmlenc padding: last byte = length
    padded = padder.update(plain) + padder.finalize()
    enc = Cipher(algorithms.AES(key), modes.CBC(iv)).encryptor()
    return iv + enc.update(padded) + enc.finalize()


def encrypted_key_element(cert_pem, key, key_alg, oaep_digest, mgf, ek_id=None):
    """xenc:EncryptedKey with key wrapped for cert_pem's public key.
    key_alg: 'oaep-mgf1p' (xmlenc#rsa-oaep-mgf1p), 'oaep11' (xmlenc11#rsa-oaep)
    or 'rsa15' (xmlenc#rsa-1_5)."""
    pub = x509.load_pem_x509_certificate(cert_pem).public_key()
    ek = etree.Element(q("xenc", "EncryptedKey"), nsmap={"xenc": NS["xenc"]})
    if ek_id:
        ek.set("Id", ek_id)
        ek.set("Recipient", SP_ENTITY_ID)
    em = etree.SubElement(ek, q("xenc", "EncryptionMethod"))
    if key_alg == "rsa15":
        em.set("Algorithm", NS["xenc"] + "rsa-1_5")
        wrapped = pub.encrypt(key, padding.PKCS1v15())
    else:
        em.set("Algorithm", NS["xenc"] + "rsa-oaep-mgf1p" if key_alg == "oaep-mgf1p"
               else NS["xenc11"] + "rsa-oaep")
        dm = etree.SubElement(em, q("ds", "DigestMethod"), nsmap={"ds": NS["ds"]})
        dm.set("Algorithm", DIGEST_HREF[oaep_digest])
        if key_alg == "oaep11" and mgf != "sha1":
            mg = etree.SubElement(em, q("xenc11", "MGF"), nsmap={"xenc11": NS["xenc11"]})
            mg.set("Algorithm", NS["xenc11"] + "mgf1" + mgf)
        wrapped = pub.encrypt(key, padding.OAEP(mgf=padding.MGF1(HASHES[mgf]()),
                                                algorithm=HASHES[oaep_digest](), label=None))
    ki = etree.SubElement(ek, q("ds", "KeyInfo"), nsmap={"ds": NS["ds"]})
    xd = etree.SubElement(ki, q("ds", "X509Data"))
    etree.SubElement(xd, q("ds", "X509Certificate")).text = cert_b64(cert_pem)
    cd = etree.SubElement(ek, q("xenc", "CipherData"))
    etree.SubElement(cd, q("xenc", "CipherValue")).text = base64.b64encode(wrapped).decode()
    return ek


def encrypt_element(elem, cert_pem, data_alg="aes256-cbc", key_alg="oaep-mgf1p",
                    oaep_digest="sha1", mgf="sha1", placement="inline",
                    wrapper="EncryptedAssertion", plaintext=None):
    """Replaces elem by saml:<wrapper> holding it encrypted for cert_pem.
    placement 'inline': EncryptedKey inside EncryptedData's KeyInfo (Okta,
    ADFS, Entra ID, Keycloak); 'peer': EncryptedKey next to EncryptedData,
    found through ds:RetrievalMethod (Shibboleth IdP's keyPlacement=PEER,
    SAML core's EncryptedElementType example); 'sibling': next to it with no
    KeyInfo reference at all."""
    href, key_len = DATA_ALGS[data_alg]
    key = os.urandom(key_len)
    plain = plaintext if plaintext is not None else etree.tostring(elem)
    cipher = encrypt_bytes(plain, data_alg if data_alg != "tripledes-cbc" else "aes192-cbc", key)
    parent = elem.getparent()
    prefix = elem.prefix
    wrap = etree.Element(q("saml", wrapper), nsmap={prefix: NS["saml"]})
    ed = etree.SubElement(wrap, q("xenc", "EncryptedData"), nsmap={"xenc": NS["xenc"]})
    ed.set("Id", "_ed" + uuid.uuid4().hex[:8])
    ed.set("Type", NS["xenc"] + "Element")
    etree.SubElement(ed, q("xenc", "EncryptionMethod")).set("Algorithm", href)
    ek_id = "_ek" + uuid.uuid4().hex[:8]
    ek = encrypted_key_element(cert_pem, key, key_alg, oaep_digest, mgf,
                               ek_id if placement != "inline" else None)
    if placement != "sibling":
        ki = etree.SubElement(ed, q("ds", "KeyInfo"), nsmap={"ds": NS["ds"]})
        if placement == "inline":
            ki.append(ek)
        else:
            rm = etree.SubElement(ki, q("ds", "RetrievalMethod"))
            rm.set("Type", NS["xenc"] + "EncryptedKey")
            rm.set("URI", "#" + ek_id)
    cd = etree.SubElement(ed, q("xenc", "CipherData"))
    etree.SubElement(cd, q("xenc", "CipherValue")).text = base64.b64encode(cipher).decode()
    if placement != "inline":
        wrap.append(ek)
    if parent is not None:
        parent.replace(elem, wrap)
    return wrap


def to_bytes(rsp):
    return etree.tostring(rsp, xml_declaration=True, encoding="UTF-8")


def set_name_id(assertion, value):
    assertion.find(".//" + q("saml", "NameID")).text = value


def remove_signature(elem):
    for s in elem.findall(q("ds", "Signature")):
        elem.remove(s)


# ---- XML signature wrapping, as in "On Breaking SAML" (2012) / SAML Raider ----


def xsw1(key, cert):
    """Response signed; evil Response at the root, the signed original
    appended inside the root's Signature."""
    rsp = sign_tree(build_tree(), "response", key, cert)
    original = copy.deepcopy(rsp)
    remove_signature(original)
    rsp.set("ID", "_evil_response")
    set_name_id(assertion_of(rsp), "admin@example.com")
    rsp.find(q("ds", "Signature")).append(original)
    return rsp


def xsw2(key, cert):
    """Like XSW1, but the original sits before the Signature (detached)."""
    rsp = sign_tree(build_tree(), "response", key, cert)
    original = copy.deepcopy(rsp)
    remove_signature(original)
    rsp.set("ID", "_evil_response")
    set_name_id(assertion_of(rsp), "admin@example.com")
    rsp.find(q("ds", "Signature")).addprevious(original)
    return rsp


def _evil_copy(assertion, keep_signature=False):
    evil = copy.deepcopy(assertion)
    if not keep_signature:
        remove_signature(evil)
    evil.set("ID", "_evil_assertion")
    set_name_id(evil, "admin@example.com")
    return evil


def xsw3(key, cert):
    """Assertion signed; an unsigned evil assertion inserted before it."""
    rsp = sign_tree(build_tree(), "assertion", key, cert)
    a = assertion_of(rsp)
    a.addprevious(_evil_copy(a))
    return rsp


def xsw4(key, cert):
    """The signed original moved inside the evil assertion."""
    rsp = sign_tree(build_tree(), "assertion", key, cert)
    a = assertion_of(rsp)
    evil = _evil_copy(a)
    a.addprevious(evil)
    rsp.remove(a)
    evil.append(a)
    return rsp


def xsw5(key, cert):
    """The evil assertion carries the original's Signature; the original
    (unsigned copy) appended at the end of the Response."""
    rsp = sign_tree(build_tree(), "assertion", key, cert)
    a = assertion_of(rsp)
    evil = _evil_copy(a, keep_signature=True)
    original = copy.deepcopy(a)
    remove_signature(original)
    rsp.replace(a, evil)
    rsp.append(original)
    return rsp


def xsw6(key, cert):
    """Like XSW5, the original copy inside the evil assertion's Signature."""
    rsp = sign_tree(build_tree(), "assertion", key, cert)
    a = assertion_of(rsp)
    evil = _evil_copy(a, keep_signature=True)
    original = copy.deepcopy(a)
    remove_signature(original)
    rsp.replace(a, evil)
    evil.find(q("ds", "Signature")).append(original)
    return rsp


def xsw7(key, cert):
    """The signed original hidden in samlp:Extensions, the evil assertion
    (same ID) in its place."""
    rsp = sign_tree(build_tree(), "assertion", key, cert)
    a = assertion_of(rsp)
    evil = copy.deepcopy(a)
    remove_signature(evil)
    set_name_id(evil, "admin@example.com")
    ext = etree.Element(q("samlp", "Extensions"))
    rsp.find(q("saml", "Issuer")).addnext(ext)
    rsp.replace(a, evil)
    ext.append(a)
    return rsp


def xsw8(key, cert):
    """The evil assertion carries the Signature, the original inside a
    ds:Object of that Signature."""
    rsp = sign_tree(build_tree(), "assertion", key, cert)
    a = assertion_of(rsp)
    evil = copy.deepcopy(a)
    set_name_id(evil, "admin@example.com")
    original = copy.deepcopy(a)
    remove_signature(original)
    obj = etree.SubElement(evil.find(q("ds", "Signature")), q("ds", "Object"))
    obj.append(original)
    rsp.replace(a, evil)
    return rsp


# ---- everything else ---------------------------------------------------------

XXE_FILE = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x" Version="2.0">&x;</samlp:Response>
"""
XXE_HTTP = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY x SYSTEM "http://127.0.0.1:9/xxe">]>
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x" Version="2.0">&x;</samlp:Response>
"""
XXE_PARAMETER = b"""<?xml version="1.0"?>
<!DOCTYPE r [<!ENTITY % p SYSTEM "http://127.0.0.1:9/evil.dtd"> %p;]>
<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x" Version="2.0"/>
"""
BILLION_LAUGHS = (
    b'<?xml version="1.0"?>\n<!DOCTYPE lolz [\n<!ENTITY lol "lol">\n'
    + b"".join(
        b'<!ENTITY lol%d "%s">\n' % (i, (b"&lol%d;" % (i - 1) if i > 1 else b"&lol;") * 10)
        for i in range(1, 10)
    )
    + b']>\n<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol">&lol9;</samlp:Response>\n'
)


# ---- what other products send -------------------------------------------------

ENTRA = "email=http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress," \
        "name=http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name," \
        "groups=http://schemas.microsoft.com/ws/2008/06/identity/claims/groups"
ADFS = "email=http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress," \
       "name=http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name," \
       "groups=http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
ENTRA_ATTRS = {
    # learn.microsoft.com/entra/identity-platform/reference-saml-tokens
    "http://schemas.microsoft.com/identity/claims/tenantid": ["aaaabbbb-0000-cccc-1111-dddd2222eeee"],
    "http://schemas.microsoft.com/identity/claims/objectidentifier": ["00aa00aa-bb11-cc22-dd33-44ee44ee44ee"],
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": ["Alice@Example.COM"],
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name": ["alice@example.com"],
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname": ["Alice"],
    "http://schemas.microsoft.com/ws/2008/06/identity/claims/groups":
        ["07dd8a60-bf6d-4e17-8844-230b77145381", "11111111-2222-3333-4444-555555555555"],
}
ADFS_ATTRS = {
    # ADFS claim types (AD FS "Send LDAP Attributes as Claims" rule template)
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": ["alice@corp.example.com"],
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": ["Alice@Example.COM"],
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name": ["Alice Example"],
    "http://schemas.microsoft.com/ws/2008/06/identity/claims/role": ["Domain Users", "eng"],
}
OKTA_ATTRS = {"email": ["Alice@Example.COM"], "displayName": ["Alice Example"],
              "groups": ["Everyone", "eng"]}


AUTH0_EMAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
AUTH0 = "email=" + AUTH0_EMAIL + ",name=http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name"
AUTH0_USER_ID = "auth0|5f7c8ec7c33c6c004bbafe82"


def auth0_attributes(email, name, user_id=AUTH0_USER_ID):
    """The claims of Auth0's SAML2 Web App addon with its default mappings
    (auth0.com/docs "SAML configuration"; node-samlp's PassportProfileMapper)."""
    return {
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/nameidentifier": [user_id],
        AUTH0_EMAIL: [email],
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name": [name],
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": [email],
        "http://schemas.auth0.com/identities/default/provider": ["auth0"],
        "http://schemas.auth0.com/identities/default/connection": ["Username-Password-Authentication"],
    }


def auth0_tree(email="Alice@Example.COM", name="Alice Example", name_id=AUTH0_USER_ID,
               attributes=None, **kw):
    """A Response shaped as Auth0's SAML2 Web App addon sends it (node-saml
    builds the Assertion, node-samlp the Response around it): NameID the
    Auth0 user id with Format unspecified, the email as the emailaddress
    claim, xs/xsi declared once on the AttributeStatement, every value
    xsi:type="xs:anyType", Attribute NameFormat uri, no whitespace.  Sign it
    with auth0_sign."""
    rsp = build_tree(name_id=name_id,
                     name_id_format="urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified",
                     attributes={}, **kw)
    a = assertion_of(rsp)
    if a is None:
        return rsp
    old = a.find(q("saml", "AttributeStatement"))
    ast = etree.Element(q("saml", "AttributeStatement"), nsmap={"xs": NS["xs"], "xsi": NS["xsi"]})
    old.addnext(ast)
    a.remove(old)
    for attr_name, values in (attributes or auth0_attributes(email, name)).items():
        at = etree.SubElement(ast, q("saml", "Attribute"))
        at.set("Name", attr_name)
        at.set("NameFormat", "urn:oasis:names:tc:SAML:2.0:attrname-format:uri")
        for v in values:
            av = etree.SubElement(at, q("saml", "AttributeValue"))
            av.set(q("xsi", "type"), "xs:anyType")
            av.text = v
    return rsp


def auth0_sign(rsp, key_pem, cert_pem, sign_response=True, sha1=False):
    """Auth0 signs the Assertion (Signature after its Issuer, default
    namespace) and, with signResponse, the Response with xml-crypto's default
    placement: the Signature is the Response's LAST child, after the
    Assertion."""
    sign_element(assertion_of(rsp), key_pem, cert_pem, ds_prefix=None, sha1=sha1)
    if sign_response:
        sign_element(rsp, key_pem, cert_pem, ds_prefix=None, position="last", sha1=sha1)
    return rsp


def tree_without_name_id(**kw):
    return build_tree(saml_prefix=None, with_name_id=False, **kw)


def add_product_cases(add, key, cert, enc_cert, old_enc_cert, other_cert):
    """One case per product shape and per attack on what the shape relaxes."""

    def tree(**kw):
        return build_tree(**kw)

    def enc(rsp, **kw):
        encrypt_element(assertion_of(rsp), enc_cert, **kw)
        return to_bytes(rsp)

    # Okta (developer.okta.com "SAML assertion" reference): saml2p:/saml2:
    # prefixes, xs:string attribute values, Response and Assertion signed.
    add("okta_plain", "ok", to_bytes(sign_tree(
        tree(samlp_prefix="saml2p", saml_prefix="saml2", xsi_type="xs:string"), "both", key, cert)))
    # Okta with "Assertion Encryption": AES256-CBC, RSA-OAEP, key inline.
    rsp = sign_tree(tree(samlp_prefix="saml2p", saml_prefix="saml2", xsi_type="xs:string"),
                    "assertion", key, cert)
    add("okta_encrypted_aes256cbc_oaep", "ok", enc(rsp), opts="dec")
    # Okta's other choices: AES256-GCM, and RSA1_5 (needs the opt-in).
    rsp = sign_tree(tree(samlp_prefix="saml2p", saml_prefix="saml2"), "assertion", key, cert)
    add("okta_encrypted_aes256gcm", "ok", enc(rsp, data_alg="aes256-gcm"), opts="dec")
    rsp = sign_tree(tree(samlp_prefix="saml2p", saml_prefix="saml2"), "assertion", key, cert)
    x = enc(rsp, key_alg="rsa15")
    add("okta_encrypted_rsa15_refused", "decryption", x, opts="dec")
    add("okta_encrypted_rsa15_allowed", "ok", x, opts="dec,rsa15")

    # Microsoft Entra ID (reference-saml-tokens): samlp: Response, Assertion
    # and Issuer in the default namespace, only the Assertion signed, claim
    # URIs for email / name / groups (object ids).
    entra = dict(saml_prefix=None, attributes=ENTRA_ATTRS, xsi_type=None)
    add("entra_plain", "ok", to_bytes(sign_tree(tree(**entra), "assertion", key, cert)), opts=ENTRA)
    # Entra ID token encryption: AES-256 with RSA-OAEP (xmlenc11, SHA-256).
    rsp = sign_tree(tree(**entra), "assertion", key, cert)
    add("entra_encrypted_oaep256", "ok",
        enc(rsp, data_alg="aes256-cbc", key_alg="oaep11", oaep_digest="sha256", mgf="sha256"),
        opts="dec," + ENTRA)

    # ADFS: no NameID when no NameID claim rule exists; the email comes from
    # the emailaddress claim; Assertion signed only (SamlResponseSignature
    # AssertionOnly); encrypted as soon as the SP metadata has an encryption
    # certificate: aes256-cbc + rsa-oaep-mgf1p, EncryptedKey in KeyInfo.
    adfs = dict(saml_prefix=None, attributes=ADFS_ATTRS, with_name_id=False)
    add("adfs_no_name_id", "ok", to_bytes(sign_tree(tree(**adfs), "assertion", key, cert)),
        opts=ADFS)
    rsp = sign_tree(tree(**adfs), "assertion", key, cert)
    add("adfs_encrypted", "ok", enc(rsp), opts="dec," + ADFS)
    # Older ADFS relying parties: SHA-1.
    x = to_bytes(sign_tree(tree(**adfs), "assertion", key, cert, sha1=True))
    add("adfs_sha1_refused", "weak_algorithm", x, opts=ADFS)
    add("adfs_sha1_allowed", "ok", x, opts="sha1," + ADFS)
    # Attacks on the no-NameID relaxation.
    add("no_name_id_without_email_attribute", "subject",
        to_bytes(sign_tree(tree(**adfs), "assertion", key, cert)))
    add("no_name_id_email_attribute_missing", "subject",
        to_bytes(sign_tree(tree(saml_prefix=None, with_name_id=False,
                                attributes={"other": ["x"]}), "assertion", key, cert)), opts=ADFS)
    rsp = sign_tree(tree(saml_prefix=None, with_name_id=False,
                         attributes={"other": ["x"]}), "assertion", key, cert)
    ast = assertion_of(rsp).find(q("saml", "AttributeStatement"))
    at = etree.SubElement(ast, q("saml", "Attribute"))
    at.set("Name", "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress")
    etree.SubElement(at, q("saml", "AttributeValue")).text = "admin@example.com"
    add("no_name_id_email_added_after_signing", "signature", to_bytes(rsp), opts=ADFS)

    # Keycloak (keycloak.org SAML client "Encryption algorithm" settings):
    # saml:/samlp: prefixes, dsig: signature prefix, AES-256-GCM with
    # xmlenc11 RSA-OAEP, SHA-256 digest and MGF1-SHA-256.
    rsp = tree()
    sign_element(assertion_of(rsp), key, cert, ds_prefix="dsig")
    add("keycloak_encrypted_gcm_oaep256", "ok",
        enc(rsp, data_alg="aes256-gcm", key_alg="oaep11", oaep_digest="sha256", mgf="sha256"),
        opts="dec")
    rsp = sign_tree(tree(), "response", key, cert)
    # Keycloak with "Sign documents" (Response) on, assertion unsigned,
    # encrypted: the Response signature covers the EncryptedAssertion.
    rsp = tree()
    encrypt_element(assertion_of(rsp), enc_cert, data_alg="aes128-cbc")
    sign_element(rsp, key, cert)
    add("keycloak_response_signed_encrypted_aes128cbc", "ok", to_bytes(rsp), opts="dec")

    # Shibboleth IdP with keyPlacement PEER: EncryptedKey next to the
    # EncryptedData, referenced by ds:RetrievalMethod; AES-128-GCM.
    rsp = sign_tree(tree(samlp_prefix="saml2p", saml_prefix="saml2"), "assertion", key, cert)
    add("shibboleth_peer_key_aes128gcm", "ok",
        enc(rsp, data_alg="aes128-gcm", placement="peer"), opts="dec")
    rsp = sign_tree(tree(samlp_prefix="saml2p", saml_prefix="saml2"), "assertion", key, cert)
    add("encrypted_sibling_key_aes192cbc", "ok",
        enc(rsp, data_alg="aes192-cbc", placement="sibling"), opts="dec")
    # Key rotation: the first configured key is not the one used.
    rsp = sign_tree(tree(), "assertion", key, cert)
    add("encrypted_rotation_second_key", "ok", enc(rsp), opts="dec2")
    # An EncryptedID (SAML core 2.2.4) in a signed, unencrypted assertion.
    rsp = tree()
    nid = assertion_of(rsp).find(".//" + q("saml", "NameID"))
    encrypt_element(nid, enc_cert, wrapper="EncryptedID")
    sign_element(assertion_of(rsp), key, cert)
    add("encrypted_name_id", "ok", to_bytes(rsp), opts="dec")
    rsp = tree()
    nid = assertion_of(rsp).find(".//" + q("saml", "NameID"))
    encrypt_element(nid, other_cert, wrapper="EncryptedID")
    sign_element(assertion_of(rsp), key, cert)
    add("encrypted_name_id_other_sp", "decryption", to_bytes(rsp), opts="dec")

    # OneLogin's long-time default and Auth0's SAML addon set to rsa-sha1 +
    # sha1 (its signatureAlgorithm / digestAlgorithm settings).
    x = to_bytes(sign_tree(tree(), "assertion", key, cert, sha1=True))
    add("onelogin_sha1_refused", "weak_algorithm", x)
    add("onelogin_sha1_allowed", "ok", x, opts="sha1")
    x = to_bytes(auth0_sign(auth0_tree(), key, cert, sha1=True))
    add("auth0_sha1_response_refused", "weak_algorithm", x, opts=AUTH0)
    add("auth0_sha1_response_allowed", "ok", x, opts="sha1," + AUTH0)

    # Auth0 (SAML2 Web App addon, issue 18): the Response's Signature is its
    # last child, after the Assertion; xs:anyType values; the NameID is the
    # Auth0 user id, the email the emailaddress claim.
    add("auth0_signed_response_last", "ok",
        to_bytes(auth0_sign(auth0_tree(), key, cert)), opts=AUTH0)
    add("auth0_assertion_only", "ok",
        to_bytes(auth0_sign(auth0_tree(), key, cert, sign_response=False)), opts=AUTH0)

    # PingFederate: no Destination on an unsigned Response (the assertion
    # is signed); Recipient always checked.
    add("pingfederate_no_destination", "ok",
        to_bytes(sign_tree(tree(destination=None), "assertion", key, cert)))
    add("no_destination_wrong_recipient", "recipient",
        to_bytes(sign_tree(tree(destination=None, recipient="http://evil.test/ssogate/acs"),
                           "assertion", key, cert)))
    add("no_destination_no_recipient", "recipient",
        to_bytes(sign_tree(tree(destination=None, recipient=None), "assertion", key, cert)))
    # No prefixes at all: protocol and assertion both default namespaces.
    add("default_namespaces", "ok", to_bytes(sign_tree(
        tree(samlp_prefix=None, saml_prefix=None), "assertion", key, cert)))

    # ---- attacks around encryption ----
    rsp = sign_tree(tree(), "assertion", key, cert)
    add("encrypted_for_other_sp", "decryption",
        to_bytes((encrypt_element(assertion_of(rsp), other_cert), rsp)[1]), opts="dec")
    rsp = sign_tree(tree(), "assertion", key, cert)
    add("encrypted_no_key_configured", "decryption", enc(rsp))
    # Anyone can encrypt to our certificate: an unsigned assertion stays unsigned.
    add("encrypted_inner_signature_removed", "signature", enc(tree()), opts="dec")
    rsp = sign_tree(tree(name_id="admin@example.com"), "assertion", key, cert)
    set_name_id(assertion_of(rsp), "Alice@Example.COM")
    add("encrypted_inner_signature_broken", "signature", enc(rsp), opts="dec")
    # XSW: a signed plaintext assertion next to an EncryptedAssertion.
    rsp = sign_tree(tree(), "assertion", key, cert)
    evil = tree(name_id="admin@example.com")
    encrypt_element(assertion_of(evil), enc_cert)
    rsp.append(evil.find(q("saml", "EncryptedAssertion")))
    add("xsw_plain_next_to_encrypted", "assertions", to_bytes(rsp), opts="dec")
    # XSW: a signed Response (with its EncryptedAssertion) moved into the
    # Extensions of an evil Response carrying the attacker's own encryption.
    legit = tree()
    encrypt_element(assertion_of(legit), enc_cert)
    sign_element(legit, key, cert)
    evil = tree(name_id="admin@example.com")
    evil.set("ID", "_evil_response")
    encrypt_element(assertion_of(evil), enc_cert)
    ext = etree.Element(q("samlp", "Extensions"))
    evil.find(q("saml", "Issuer")).addnext(ext)
    ext.append(legit)
    add("xsw_signed_response_wrapping_encrypted", "assertions", to_bytes(evil), opts="dec")
    # The signed Response's EncryptedAssertion swapped for the attacker's.
    legit = tree()
    encrypt_element(assertion_of(legit), enc_cert)
    sign_element(legit, key, cert)
    evil = tree(name_id="admin@example.com")
    mine = encrypt_element(assertion_of(evil), enc_cert)
    legit.replace(legit.find(q("saml", "EncryptedAssertion")), mine)
    add("encrypted_assertion_swapped_in_signed_response", "signature", to_bytes(legit),
        opts="dec")
    rsp = sign_tree(tree(), "assertion", key, cert)
    add("encrypted_tripledes_refused", "decryption", enc(rsp, data_alg="tripledes-cbc"),
        opts="dec")
    # The plaintext is not an Assertion (a NameID where an Assertion belongs).
    rsp = sign_tree(tree(), "assertion", key, cert)
    nid = copy.deepcopy(assertion_of(rsp).find(".//" + q("saml", "NameID")))
    encrypt_element(assertion_of(rsp), enc_cert, plaintext=etree.tostring(nid))
    add("encrypted_wrong_content", "decryption", to_bytes(rsp), opts="dec")
    # Ciphertext altered (GCM tag fails, CBC padding or XML fails).
    for alg in ("aes256-gcm", "aes128-cbc"):
        rsp = sign_tree(tree(), "assertion", key, cert)
        wrap = encrypt_element(assertion_of(rsp), enc_cert, data_alg=alg)
        cv = wrap.find(".//" + q("xenc", "EncryptedData") + "/" + q("xenc", "CipherData") + "/" +
                       q("xenc", "CipherValue"))
        raw = bytearray(base64.b64decode(cv.text))
        raw[-20] ^= 0x55
        cv.text = base64.b64encode(bytes(raw)).decode()
        add("encrypted_ciphertext_altered_" + alg.replace("-", ""), "decryption", to_bytes(rsp),
            opts="dec")
    rsp = sign_tree(tree(), "assertion", key, cert)
    wrap = encrypt_element(assertion_of(rsp), enc_cert)
    encrypt_element(assertion_of(tree()), enc_cert)  # unused: keeps the RNG honest
    wrap.append(copy.deepcopy(wrap.find(q("xenc", "EncryptedData"))))
    add("encrypted_two_encrypted_data", "decryption", to_bytes(rsp), opts="dec")


def add_signature_placement_cases(add, key, cert):
    """Issue 18: the Signature may sit anywhere among the signed element's
    children (Auth0 puts the Response's last).  None of these moves may let
    unsigned content in; each is refused, and says why."""
    def auth0(sign_response=True):
        return auth0_sign(auth0_tree(), key, cert, sign_response=sign_response)

    # A legitimate Response signature before the Issuer: what it covers is
    # the same, so it is accepted like Auth0's last-child one.
    rsp = auth0_tree()
    sign_element(assertion_of(rsp), key, cert, ds_prefix=None)
    sign_element(rsp, key, cert, ds_prefix=None, position="first")
    add("auth0_signature_first_child", "ok", to_bytes(rsp), opts=AUTH0)
    # Last child, then the content changed: the digest no longer matches.
    rsp = auth0()
    set_name_id(assertion_of(rsp), "admin@example.com")
    add("signature_last_name_id_altered", "signature", to_bytes(rsp), opts=AUTH0)
    # First child, then an unsigned Assertion's content changed (assertion
    # unsigned, only the Response signed).
    rsp = auth0_tree()
    sign_element(rsp, key, cert, ds_prefix=None, position="first")
    set_name_id(assertion_of(rsp), "admin@example.com")
    add("signature_first_name_id_altered", "signature", to_bytes(rsp), opts=AUTH0)
    # An unsigned Assertion after the last-child Signature of a signed Response.
    rsp = auth0()
    rsp.append(_evil_copy(assertion_of(rsp)))
    add("signature_last_unsigned_assertion_after", "signature", to_bytes(rsp), opts=AUTH0)
    # Assertion-only Auth0 shape (signResponse off) with an unsigned
    # Assertion next to the signed one.
    rsp = auth0(sign_response=False)
    rsp.append(_evil_copy(assertion_of(rsp)))
    add("auth0_unsigned_assertion_next_to_signed", "signature", to_bytes(rsp), opts=AUTH0)
    # The Response's Signature moved into a wrapper (samlp:Extensions): it no
    # longer signs the Response, and the Assertion (unsigned here) is refused.
    rsp = auth0_tree()
    sign_element(rsp, key, cert, ds_prefix=None, position="last")
    set_name_id(assertion_of(rsp), "admin@example.com")
    sig = rsp.find(q("ds", "Signature"))
    ext = etree.Element(q("samlp", "Extensions"))
    rsp.find(q("saml", "Issuer")).addnext(ext)
    ext.append(sig)
    add("signature_in_extensions_wrapper", "signature", to_bytes(rsp), opts=AUTH0)
    # The Assertion's Signature moved into a wrapper inside the Assertion.
    rsp = auth0(sign_response=False)
    a = assertion_of(rsp)
    sig = a.find(q("ds", "Signature"))
    wrapper = etree.SubElement(a.find(q("saml", "Subject")), q("saml", "SubjectConfirmation"))
    wrapper.set("Method", "urn:oasis:names:tc:SAML:2.0:cm:bearer")
    wrapper.append(sig)
    set_name_id(a, "admin@example.com")
    add("assertion_signature_in_wrapper", "signature", to_bytes(rsp), opts=AUTH0)
    # The Assertion's own Signature moved up to be the Response's last child:
    # it references the Assertion, not the Response.
    rsp = auth0(sign_response=False)
    rsp.append(assertion_of(rsp).find(q("ds", "Signature")))
    set_name_id(assertion_of(rsp), "admin@example.com")
    add("assertion_signature_moved_to_response", "signature", to_bytes(rsp), opts=AUTH0)
    # A second Signature on the Response: a copy of the valid one after the
    # Issuer, next to the original last child.
    rsp = auth0()
    rsp.find(q("saml", "Issuer")).addnext(copy.deepcopy(rsp.find(q("ds", "Signature"))))
    add("response_two_signatures", "signature", to_bytes(rsp), opts=AUTH0)
    # And on the Assertion: its valid Signature duplicated as its last child.
    rsp = auth0(sign_response=False)
    a = assertion_of(rsp)
    a.append(copy.deepcopy(a.find(q("ds", "Signature"))))
    add("assertion_two_signatures", "signature", to_bytes(rsp), opts=AUTH0)
    # XSW on the Auth0 shape: an evil Response (new ID, evil NameID) keeps
    # the original last-child Signature; the signed original in Extensions.
    rsp = auth0()
    original = copy.deepcopy(rsp)
    original.remove(original.find(q("ds", "Signature")))
    rsp.set("ID", "_evil_response")
    a = assertion_of(rsp)
    a.remove(a.find(q("ds", "Signature")))
    a.set("ID", "_evil_assertion")
    set_name_id(a, "admin@example.com")
    ext = etree.Element(q("samlp", "Extensions"))
    rsp.find(q("saml", "Issuer")).addnext(ext)
    ext.append(original)
    add("xsw_signature_last_original_in_extensions", "signature", to_bytes(rsp), opts=AUTH0)


def main():
    out = sys.argv[1]
    os.makedirs(out, exist_ok=True)
    key, cert = make_keypair("ssogate test IdP")
    evil_key, evil_cert = make_keypair("not the IdP")
    with open(os.path.join(out, "idp.key"), "wb") as f:
        f.write(key)
    with open(os.path.join(out, "idp.crt"), "wb") as f:
        f.write(cert)
    _, old_cert = make_keypair("ssogate test IdP, retired", expired=True)
    sp_key, sp_cert = make_keypair("ssogate test SP")
    enc_key, enc_cert = make_keypair("ssogate test SP encryption")
    old_enc_key, old_enc_cert = make_keypair("ssogate test SP encryption, previous")
    other_key, other_cert = make_keypair("another SP of the same IdP")
    files = {
        "idp-metadata.xml": idp_metadata_xml(cert),
        # Rotation: a retired certificate next to the current one.
        "idp-metadata-rotation.xml": idp_metadata_xml(old_cert, cert),
        "idp-metadata-expired.xml": idp_metadata_xml(old_cert),
        # Oracle Access Manager / Shibboleth / an Okta username org: no email NameID.
        "idp-metadata-username.xml": idp_metadata_xml(cert, name_id_formats=(PERSISTENT, UNSPECIFIED)),
        "idp-metadata-nocert.xml": idp_metadata_xml(),
        "idp-metadata-two.xml": b'<md:EntitiesDescriptor xmlns:md="%s">%s%s</md:EntitiesDescriptor>'
        % (NS["md"].encode(), idp_metadata_xml(cert).split(b"?>", 1)[1],
           idp_metadata_xml(cert).split(b"?>", 1)[1]),
        "idp-metadata-dtd.xml": idp_metadata_xml(cert).replace(
            b"?>", b'?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>', 1),
        "sp.key": sp_key,
        "sp.crt": sp_cert,
        "sp-enc.key": enc_key,
        "sp-enc.crt": enc_cert,
        "sp-enc-old.key": old_enc_key,
        "sp-enc-old.crt": old_enc_cert,
    }
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    for name in ("sp.key", "sp-enc.key", "sp-enc-old.key"):
        os.chmod(os.path.join(out, name), 0o600)

    t = now()
    past = t - datetime.timedelta(hours=1)
    future = t + datetime.timedelta(hours=1)
    cases = []  # (name, expected, request id, allow idp-initiated, options, bytes or raw str)

    def add(name, expected, xml, rid=REQUEST_ID, allow=0, opts="-"):
        cases.append((name, expected, rid or "-", allow, opts, xml))

    def signed(sign="assertion", **kw):
        return to_bytes(sign_tree(build_tree(**kw), sign, key, cert))

    add("happy_assertion_signed", "ok", signed("assertion"))
    add("happy_response_signed", "ok", signed("response"))
    add("happy_both_signed", "ok", signed("both"))
    add("unsolicited_allowed", "ok", signed(in_response_to=None), rid=None, allow=1)

    add("unsigned", "signature", signed("none"))
    add("signed_by_untrusted_key",
        "signature", to_bytes(sign_tree(build_tree(), "assertion", evil_key, evil_cert)))
    add("untrusted_key_with_real_cert_in_keyinfo", "signature",
        to_bytes(sign_tree(build_tree(), "assertion", evil_key, evil_cert, keyinfo_cert_pem=cert)))
    add("untrusted_key_response_signed", "signature",
        to_bytes(sign_tree(build_tree(), "response", evil_key, evil_cert, keyinfo_cert_pem=cert)))
    rsp = sign_tree(build_tree(), "assertion", key, cert)
    set_name_id(assertion_of(rsp), "admin@example.com")
    add("altered_after_signing", "signature", to_bytes(rsp))
    rsp = sign_tree(build_tree(), "response", key, cert)
    rsp.set("Destination", ACS_URL + "?x")
    add("altered_after_signing_response", "signature", to_bytes(rsp))
    for n, fn in enumerate((xsw1, xsw2, xsw3, xsw4, xsw5, xsw6, xsw7, xsw8), start=1):
        # XSW7 keeps the original ID on the evil copy: duplicate IDs.
        add("xsw%d" % n, "signature", to_bytes(fn(key, cert)))
    rsp = sign_tree(build_tree(), "assertion", key, cert)
    rsp.append(_evil_copy(assertion_of(rsp)))
    add("two_assertions_one_signed", "signature", to_bytes(rsp))
    rsp = build_tree()
    second = copy.deepcopy(assertion_of(rsp))
    second.set("ID", "_second")
    rsp.append(second)
    sign_element(assertion_of(rsp), key, cert)
    sign_element(second, key, cert)
    add("two_assertions_both_signed", "assertions", to_bytes(rsp))
    rsp = sign_tree(build_tree(), "response", key, cert)
    obj = etree.SubElement(rsp.find(q("ds", "Signature")), q("ds", "Object"))
    obj.append(_evil_copy(assertion_of(rsp)))
    add("assertion_in_signature_object", "assertions", to_bytes(rsp))

    # Comment injection: signed as "admin@example.com.evil.example" (c14n
    # drops the comment), must never be read as "admin@example.com".
    rsp = build_tree(name_id="admin@example.com")
    nid = assertion_of(rsp).find(".//" + q("saml", "NameID"))
    comment = etree.Comment("")
    nid.append(comment)
    comment.tail = ".evil.example"
    sign_tree(rsp, "assertion", key, cert)
    add("comment_injection", "subject", to_bytes(rsp))
    rsp = build_tree()
    av = assertion_of(rsp).find(".//" + q("saml", "AttributeValue"))
    av.text = "Alice"
    c2 = etree.Comment("")
    av.append(c2)
    c2.tail = " Example"
    sign_tree(rsp, "assertion", key, cert)
    add("comment_injection_attribute", "subject", to_bytes(rsp))

    add("expired", "expired", signed(not_before=past - datetime.timedelta(minutes=10),
                                     not_on_or_after=past, scd_not_on_or_after=past))
    add("not_yet_valid", "not_yet_valid", signed(not_before=future,
                                                 not_on_or_after=future + datetime.timedelta(minutes=5),
                                                 scd_not_on_or_after=future))
    add("subject_confirmation_expired", "expired", signed(scd_not_on_or_after=past))
    add("wrong_audience", "audience", signed(audience="http://other-sp.test/metadata"))
    add("missing_audience_restriction", "audience", signed(audience_restriction=False))
    add("wrong_destination", "destination", signed(destination="http://evil.test/ssogate/acs"))
    # SAML bindings 3.5.5.2: Destination is required on a signed Response only.
    add("missing_destination", "destination", signed("response", destination=None))
    add("missing_destination_both_signed", "destination", signed("both", destination=None))
    add("wrong_recipient", "recipient", signed(recipient="http://evil.test/ssogate/acs"))
    add("missing_recipient", "recipient", signed(recipient=None))
    add("wrong_issuer", "issuer", signed(issuer="https://evil.test/idp"))
    add("status_not_success", "status",
        to_bytes(build_tree(status="urn:oasis:names:tc:SAML:2.0:status:Requester",
                            with_assertion=False)))
    add("unknown_in_response_to", "in_response_to", signed(in_response_to="_other"))
    add("in_response_to_without_state", "in_response_to", signed(), rid=None)
    add("unsolicited_not_allowed", "in_response_to", signed(in_response_to=None), rid=None)
    rsp = build_tree()
    ed = etree.SubElement(rsp, q("saml", "EncryptedAssertion"))
    rsp.remove(assertion_of(rsp))
    etree.SubElement(ed, q("ds", "Dummy"))
    add("encrypted_assertion_garbage", "decryption", to_bytes(rsp), opts="dec")
    add_product_cases(add, key, cert, enc_cert, old_enc_cert, other_cert)
    add_signature_placement_cases(add, key, cert)

    add("xxe_file", "malformed", XXE_FILE)
    add("xxe_http", "malformed", XXE_HTTP)
    add("xxe_parameter_entity", "malformed", XXE_PARAMETER)
    add("billion_laughs", "malformed", BILLION_LAUGHS)
    # UTF-16 hides "<!DOCTYPE" from a byte scan: the parsed tree must be checked too.
    add("xxe_utf16", "malformed",
        XXE_FILE.replace(b'version="1.0"', b'version="1.0" encoding="UTF-16"').decode().encode("utf-16"))
    add("not_xml", "malformed", b"this is not XML at all")
    add("bad_base64", "malformed", "PHNhbWxwOlJlc3BvbnNl!!!*not base64*")
    big = build_tree()
    big.insert(0, etree.Comment("x" * (1024 * 1024 + 10)))
    add("too_large", "malformed", to_bytes(big))

    # A username where the email should be (issue 18.4): no NameID, and the
    # email attribute that was to be the subject is not an email.
    add("no_name_id_email_attribute_not_an_email", "subject",
        to_bytes(sign_tree(tree_without_name_id(attributes={
            "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": ["jdoe"]}),
            "assertion", key, cert)), opts=ADFS)
    # Accepted identities without an email, outside the manifest (every "ok"
    # there is alice@example.com): test_saml.c reads them by name.
    extra = {
        "username_persistent": signed(name_id="jdoe", name_id_format=PERSISTENT),
        "username_unspecified_no_groups": signed(name_id="JDoe", name_id_format=UNSPECIFIED,
                                                 attributes={"displayName": ["John Doe"]}),
    }
    for name, xml in extra.items():
        with open(os.path.join(out, name + ".b64"), "w") as f:
            f.write(base64.b64encode(xml).decode())

    with open(os.path.join(out, "cases.txt"), "w") as manifest:
        for name, expected, rid, allow, opts, xml in cases:
            data = xml if isinstance(xml, str) else base64.b64encode(xml).decode()
            with open(os.path.join(out, name + ".b64"), "w") as f:
                f.write(data)
            manifest.write("%s %s %s %d %s\n" % (name, expected, rid, allow, opts))


if __name__ == "__main__":
    main()
