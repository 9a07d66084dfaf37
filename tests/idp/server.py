#!/usr/bin/python3
"""server.py - a small SAML 2.0 identity provider for the demo and the tests.

Independent of lasso: responses are built and signed with lxml + python3-xmlsec
by tests/unit/saml_fixtures.py (the same builder the unit tests' attack cases
use).  Not for production: anyone may sign in as any address.

    /usr/bin/python3 tests/idp/server.py --listen 127.0.0.1:8082 --base-url http://localhost:8082 \
        --entity-id URL --sp-entity-id URL --sp-acs URL --key idp.key --cert idp.crt \
        [--sign assertion|response|both] [--metadata-out FILE] [--groups-attribute groups]
        [--product NAME] [--encrypt-to SP_ENCRYPTION_CERT]

--product sends the shape a real product sends (PRODUCTS below, each from
that product's documentation): prefixes, signature placement and algorithm,
claim names, NameID or not, Destination or not, and with --encrypt-to the
product's assertion encryption.  Default: Google Workspace's shape.

GET  /metadata   the IdP metadata (also written to --metadata-out)
GET  /sso        HTTP-Redirect binding: SAMLRequest (+RelayState) -> a login form
POST /login      email (+groups) -> an auto-submitting form that POSTs the
                 signed SAMLResponse to the SP's ACS, cross-site, as Google does
"""
import argparse
import base64
import hashlib
import html
import os
import sys
import urllib.parse
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from lxml import etree

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "unit"))
import saml_fixtures as fx  # noqa: E402

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"

# What each product sends.  tree: build_tree arguments; email/name/groups:
# the attribute names it uses (None = the NameID carries the email); sign:
# placement; sha1: rsa-sha1 + sha1 digests; encrypt: encrypt_element
# arguments when the SP publishes an encryption certificate.
PRODUCTS = {
    # Google Workspace (research/anchors.md section 2): samlp:/saml:, Assertion signed.
    "google": dict(tree={}, email=None, name="displayName", groups="groups", sign="assertion",
                   encrypt=None),
    # Okta (developer.okta.com SAML reference): saml2p:/saml2:, xs:string
    # values, Response and Assertion signed; "Assertion Encryption" AES256-CBC
    # with RSA-OAEP, EncryptedKey inside EncryptedData's KeyInfo.
    "okta": dict(tree=dict(samlp_prefix="saml2p", saml_prefix="saml2", xsi_type="xs:string"),
                 email="email", name="displayName", groups="groups", sign="both",
                 encrypt=dict(data_alg="aes256-cbc", key_alg="oaep-mgf1p")),
    # Microsoft Entra ID (learn.microsoft.com reference-saml-tokens): samlp:
    # Response, Assertion in the default namespace, Assertion signed, claim
    # URIs; token encryption AES-256 with RSA-OAEP-256 (xmlenc11, SHA-256).
    "entra": dict(tree=dict(saml_prefix=None, xsi_type=None),
                  email="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
                  name="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
                  groups="http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
                  sign="assertion",
                  encrypt=dict(data_alg="aes256-cbc", key_alg="oaep11", oaep_digest="sha256",
                               mgf="sha256")),
    # ADFS without a NameID claim rule: no NameID, emailaddress / role
    # claims, Assertion signed (AssertionOnly); encrypts as soon as the SP
    # metadata has an encryption certificate: aes256-cbc + rsa-oaep-mgf1p.
    "adfs": dict(tree=dict(saml_prefix=None, with_name_id=False),
                 email="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
                 name="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
                 groups="http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
                 sign="assertion", encrypt=dict(data_alg="aes256-cbc", key_alg="oaep-mgf1p")),
    # Keycloak (SAML client "Encryption algorithm" settings): AES-256-GCM,
    # xmlenc11 RSA-OAEP with SHA-256 / MGF1-SHA-256, Response signed.
    "keycloak": dict(tree={}, email="email", name="displayName", groups="groups", sign="both",
                     encrypt=dict(data_alg="aes256-gcm", key_alg="oaep11", oaep_digest="sha256",
                                  mgf="sha256")),
    # Shibboleth IdP, keyPlacement PEER: EncryptedKey next to the data,
    # ds:RetrievalMethod to it; AES-128-GCM, rsa-oaep-mgf1p.
    "shibboleth": dict(tree=dict(samlp_prefix="saml2p", saml_prefix="saml2"), email="mail",
                       name="displayName", groups="groups", sign="assertion",
                       encrypt=dict(data_alg="aes128-gcm", key_alg="oaep-mgf1p", placement="peer")),
    # OneLogin (long-time default): rsa-sha1 / sha1.
    "onelogin": dict(tree={}, email=None, name="displayName", groups="groups", sign="assertion",
                     sha1=True, encrypt=None),
    # Auth0's SAML2 Web App addon (node-saml / node-samlp, see
    # saml_fixtures.auth0_tree): the NameID is the Auth0 user id, the email
    # the emailaddress claim, xs:anyType values; with signResponse the
    # Response's Signature is its last child.  "auth0-sha1": the addon set
    # to rsa-sha1 / sha1.
    "auth0": dict(tree={}, builder="auth0", email=fx.AUTH0_EMAIL,
                  name="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
                  groups="http://schemas.xmlsoap.org/claims/Group", sign="response",
                  encrypt=None),
    "auth0-sha1": dict(tree={}, builder="auth0", email=fx.AUTH0_EMAIL,
                       name="http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
                       groups="http://schemas.xmlsoap.org/claims/Group", sign="response",
                       sha1=True, encrypt=None),
    # PingFederate: no Destination on an unsigned Response, Assertion signed.
    "pingfederate": dict(tree=dict(destination=None), email=None, name="displayName",
                         groups="groups", sign="assertion", encrypt=None),
}


def parse_authn_request(b64, deflated=True):
    """The ID and ACS URL of an AuthnRequest from the HTTP-Redirect binding."""
    raw = base64.b64decode(b64)
    xml = zlib.decompress(raw, -15) if deflated else raw
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    req = etree.fromstring(xml, parser)
    if req.tag != "{%s}AuthnRequest" % SAMLP:
        raise ValueError("not an AuthnRequest")
    return {"id": req.get("ID"), "acs": req.get("AssertionConsumerServiceURL"),
            "destination": req.get("Destination")}


def page(title, body):
    return ("<!doctype html><meta charset=utf-8><title>%s</title>"
            "<style>body{font:16px system-ui,sans-serif;max-width:30em;margin:4em auto}"
            "input{font:inherit;padding:.3em;width:100%%;margin:.3em 0 1em}"
            "small{color:#a00}</style><h1>%s</h1>%s"
            "<p><small>ssogate test IdP &mdash; not for production</small></p>") % (title, title, body)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        sys.stderr.write("idp: " + fmt % args + "\n")

    def reply(self, status, body, ctype="text/html; charset=utf-8"):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query)
        if url.path == "/metadata":
            return self.reply(200, self.server.metadata, "application/samlmetadata+xml")
        if url.path != "/sso":
            return self.reply(404, page("Not found", ""))
        try:
            req = parse_authn_request(q["SAMLRequest"][0])
        except (KeyError, ValueError, zlib.error, etree.XMLSyntaxError) as e:
            return self.reply(400, page("Bad request", "<p>%s</p>" % html.escape(str(e))))
        if req["acs"] and req["acs"] != self.server.sp_acs:
            return self.reply(400, page("Bad request", "<p>unknown ACS URL %s</p>" % html.escape(req["acs"])))
        relay = q.get("RelayState", [""])[0]
        form = ("<form method=post action=/login>"
                "<label>Email<input name=email type=email autofocus required placeholder=alice@example.com></label>"
                "<label>Groups (space separated, optional)<input name=groups></label>"
                "<input type=hidden name=request_id value=\"%s\">"
                "<input type=hidden name=relay_state value=\"%s\">"
                "<button>Sign in</button></form>") % (html.escape(req["id"] or ""), html.escape(relay))
        return self.reply(200, page("Sign in", form))

    def do_POST(self):
        if self.path != "/login":
            return self.reply(404, page("Not found", ""))
        length = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(length).decode(), keep_blank_values=True)
        email = form.get("email", [""])[0].strip()
        if not email:
            return self.reply(400, page("Bad request", "<p>email is required</p>"))
        product = PRODUCTS[self.server.product]
        groups_attr = (self.server.groups_attribute if self.server.product == "google"
                       else product["groups"])
        attributes = {product["name"]: [email.split("@")[0].capitalize()]}
        if product["email"]:
            attributes[product["email"]] = [email]
        if groups_attr:
            attributes[groups_attr] = form.get("groups", [""])[0].split()
        tree = dict(in_response_to=form.get("request_id", [""])[0] or None,
                    audience=self.server.sp_entity_id, destination=self.server.sp_acs,
                    recipient=self.server.sp_acs, issuer=self.server.entity_id,
                    name_id=email, attributes=attributes)
        tree.update(product["tree"])
        sign = self.server.sign if self.server.product == "google" else product["sign"]
        sha1 = product.get("sha1", False)
        if product.get("builder") == "auth0":
            user_id = "auth0|" + hashlib.sha256(email.lower().encode()).hexdigest()[:24]
            attributes = fx.auth0_attributes(email, attributes[product["name"]][0], user_id)
            attributes[product["groups"]] = form.get("groups", [""])[0].split()
            del tree["name_id"], tree["attributes"]
            rsp = fx.auth0_tree(name_id=user_id, attributes=attributes, **tree)
            fx.auth0_sign(rsp, self.server.key, self.server.cert,
                          sign_response=sign == "response", sha1=sha1)
            return self.post_response(rsp, form)
        rsp = fx.build_tree(**tree)
        if sign in ("assertion", "both"):
            fx.sign_element(fx.assertion_of(rsp), self.server.key, self.server.cert, sha1=sha1)
        if self.server.encrypt_to and product["encrypt"]:
            fx.encrypt_element(fx.assertion_of(rsp), self.server.encrypt_to, **product["encrypt"])
        if sign in ("response", "both"):  # after encryption: it covers the ciphertext
            fx.sign_element(rsp, self.server.key, self.server.cert, sha1=sha1)
        return self.post_response(rsp, form)

    def post_response(self, rsp, form):
        saml_response = base64.b64encode(fx.to_bytes(rsp)).decode()
        relay = form.get("relay_state", [""])[0]
        body = ("<form method=post action=\"%s\" id=f>"
                "<input type=hidden name=SAMLResponse value=\"%s\">"
                "<input type=hidden name=RelayState value=\"%s\">"
                "<noscript><button>Continue</button></noscript></form>"
                "<script>document.getElementById('f').submit()</script>") % (
            html.escape(self.server.sp_acs), saml_response, html.escape(relay))
        return self.reply(200, page("Signing you in", body))


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", required=True)
    p.add_argument("--base-url", required=True)
    p.add_argument("--entity-id", required=True)
    p.add_argument("--sp-entity-id", required=True)
    p.add_argument("--sp-acs", required=True)
    p.add_argument("--key", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--sign", choices=["assertion", "response", "both"], default="assertion")
    p.add_argument("--metadata-out")
    p.add_argument("--groups-attribute")
    p.add_argument("--product", choices=sorted(PRODUCTS), default="google")
    p.add_argument("--encrypt-to", help="the SP's encryption certificate (PEM)")
    a = p.parse_args()

    fx.IDP_ENTITY_ID = a.entity_id
    fx.IDP_SSO_URL = a.base_url.rstrip("/") + "/sso"
    with open(a.key, "rb") as f:
        key = f.read()
    with open(a.cert, "rb") as f:
        cert = f.read()
    metadata = fx.idp_metadata_xml(cert)
    if a.metadata_out:
        tmp = a.metadata_out + ".tmp"
        with open(tmp, "wb") as f:
            f.write(metadata)
        os.replace(tmp, a.metadata_out)

    host, port = a.listen.rsplit(":", 1)
    srv = ThreadingHTTPServer((host, int(port)), Handler)
    srv.daemon_threads = True
    srv.metadata, srv.key, srv.cert, srv.sign = metadata, key, cert, a.sign
    srv.entity_id, srv.sp_entity_id, srv.sp_acs = a.entity_id, a.sp_entity_id, a.sp_acs
    srv.groups_attribute = a.groups_attribute
    srv.product = a.product
    srv.encrypt_to = None
    if a.encrypt_to:
        with open(a.encrypt_to, "rb") as f:
            srv.encrypt_to = f.read()
    sys.stderr.write("idp: listening on %s\n" % a.listen)
    srv.serve_forever()


if __name__ == "__main__":
    main()
