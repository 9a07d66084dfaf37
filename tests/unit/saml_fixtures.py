#!/usr/bin/python3
"""saml_fixtures.py - writes the SAMLResponse fixtures that tests/unit/test_saml.c
checks, one file per case, plus the IdP metadata and keys they are signed with.

For: the unit test of auth/saml_sp.c (happy paths and every attack family of
DESIGN.md "SAML validation").  Not for: the integration IdP (tests/idp/).

Usage: /usr/bin/python3 saml_fixtures.py OUTDIR
Writes OUTDIR/idp-metadata.xml, idp.key, idp.crt, NAME.b64 per case and
OUTDIR/cases.txt with one line per case:
    NAME EXPECTED_FAILURE EXPECTED_REQUEST_ID|- ALLOW_IDP_INITIATED(0|1)
EXPECTED_FAILURE is sg_saml_failure_name() of the expected result ("ok" ...).

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
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
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


def idp_metadata_xml(*cert_pems):
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
    etree.SubElement(idp, q("md", "NameIDFormat")).text = (
        "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
    )
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
):
    """A Google-shaped, unsigned Response as an lxml tree."""
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

    rsp = etree.Element(q("samlp", "Response"), nsmap={"samlp": NS["samlp"]})
    rsp.set("ID", "_" + uuid.uuid4().hex)
    rsp.set("Version", "2.0")
    rsp.set("IssueInstant", ts(t))
    if destination is not None:
        rsp.set("Destination", destination)
    if in_response_to is not None:
        rsp.set("InResponseTo", in_response_to)
    etree.SubElement(rsp, q("saml", "Issuer"), nsmap={"saml": NS["saml"]}).text = issuer
    st = etree.SubElement(rsp, q("samlp", "Status"))
    sc = etree.SubElement(st, q("samlp", "StatusCode"))
    sc.set("Value", status)
    if status != SUCCESS:
        sub = etree.SubElement(sc, q("samlp", "StatusCode"))
        sub.set("Value", "urn:oasis:names:tc:SAML:2.0:status:RequestDenied")
        etree.SubElement(st, q("samlp", "StatusMessage")).text = "ACS Url mismatch"
    if not with_assertion:
        return rsp

    a = etree.SubElement(rsp, q("saml", "Assertion"), nsmap={"saml": NS["saml"]})
    a.set("ID", "_" + uuid.uuid4().hex)
    a.set("IssueInstant", ts(t))
    a.set("Version", "2.0")
    etree.SubElement(a, q("saml", "Issuer")).text = issuer
    subj = etree.SubElement(a, q("saml", "Subject"))
    nid = etree.SubElement(subj, q("saml", "NameID"))
    nid.set("Format", "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress")
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
            av.set(q("xsi", "type"), "xs:anyType")
            av.text = v
    an = etree.SubElement(a, q("saml", "AuthnStatement"))
    an.set("AuthnInstant", ts(t))
    an.set("SessionIndex", a.get("ID"))
    ac = etree.SubElement(an, q("saml", "AuthnContext"))
    etree.SubElement(ac, q("saml", "AuthnContextClassRef")).text = (
        "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"
    )
    return rsp


def sign_element(elem, key_pem, cert_pem, keyinfo_cert_pem=None):
    """Enveloped exc-c14n/rsa-sha256 signature as the element's second child
    (after Issuer), KeyInfo carrying keyinfo_cert_pem (default: cert_pem)."""
    sig = xmlsec.template.create(
        elem, xmlsec.constants.TransformExclC14N, xmlsec.constants.TransformRsaSha256, ns="ds"
    )
    elem.insert(1, sig)
    ref = xmlsec.template.add_reference(
        sig, xmlsec.constants.TransformSha256, uri="#" + elem.get("ID")
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


def sign_tree(rsp, sign, key_pem, cert_pem, keyinfo_cert_pem=None):
    if sign in ("assertion", "both"):
        sign_element(assertion_of(rsp), key_pem, cert_pem, keyinfo_cert_pem)
    if sign in ("response", "both"):
        sign_element(rsp, key_pem, cert_pem, keyinfo_cert_pem)
    return rsp


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
    files = {
        "idp-metadata.xml": idp_metadata_xml(cert),
        # Rotation: a retired certificate next to the current one.
        "idp-metadata-rotation.xml": idp_metadata_xml(old_cert, cert),
        "idp-metadata-expired.xml": idp_metadata_xml(old_cert),
        "idp-metadata-nocert.xml": idp_metadata_xml(),
        "idp-metadata-two.xml": b'<md:EntitiesDescriptor xmlns:md="%s">%s%s</md:EntitiesDescriptor>'
        % (NS["md"].encode(), idp_metadata_xml(cert).split(b"?>", 1)[1],
           idp_metadata_xml(cert).split(b"?>", 1)[1]),
        "idp-metadata-dtd.xml": idp_metadata_xml(cert).replace(
            b"?>", b'?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>', 1),
        "sp.key": sp_key,
        "sp.crt": sp_cert,
    }
    for name, data in files.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(data)
    os.chmod(os.path.join(out, "sp.key"), 0o600)

    t = now()
    past = t - datetime.timedelta(hours=1)
    future = t + datetime.timedelta(hours=1)
    cases = []  # (name, expected, request id, allow idp-initiated, bytes or raw str)

    def add(name, expected, xml, rid=REQUEST_ID, allow=0):
        cases.append((name, expected, rid or "-", allow, xml))

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
    add("missing_destination", "destination", signed(destination=None))
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
    add("encrypted_assertion", "assertions", to_bytes(rsp))

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

    with open(os.path.join(out, "cases.txt"), "w") as manifest:
        for name, expected, rid, allow, xml in cases:
            data = xml if isinstance(xml, str) else base64.b64encode(xml).decode()
            with open(os.path.join(out, name + ".b64"), "w") as f:
                f.write(data)
            manifest.write("%s %s %s %d\n" % (name, expected, rid, allow))


if __name__ == "__main__":
    main()
