#!/usr/bin/python3
"""server.py - a small SAML 2.0 identity provider for the demo and the tests.

Independent of lasso: responses are built and signed with lxml + python3-xmlsec
by tests/unit/saml_fixtures.py (the same builder the unit tests' attack cases
use).  Not for production: anyone may sign in as any address.

    /usr/bin/python3 tests/idp/server.py --listen 127.0.0.1:8082 --base-url http://localhost:8082 \
        --entity-id URL --sp-entity-id URL --sp-acs URL --key idp.key --cert idp.crt \
        [--sign assertion|response|both] [--metadata-out FILE] [--groups-attribute groups]

GET  /metadata   the IdP metadata (also written to --metadata-out)
GET  /sso        HTTP-Redirect binding: SAMLRequest (+RelayState) -> a login form
POST /login      email (+groups) -> an auto-submitting form that POSTs the
                 signed SAMLResponse to the SP's ACS, cross-site, as Google does
"""
import argparse
import base64
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
        attributes = {"displayName": [email.split("@")[0].capitalize()]}
        if self.server.groups_attribute:
            attributes[self.server.groups_attribute] = form.get("groups", [""])[0].split()
        rsp = fx.build_tree(
            in_response_to=form.get("request_id", [""])[0] or None,
            audience=self.server.sp_entity_id, destination=self.server.sp_acs,
            recipient=self.server.sp_acs, issuer=self.server.entity_id,
            name_id=email, attributes=attributes)
        fx.sign_tree(rsp, self.server.sign, self.server.key, self.server.cert)
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
    sys.stderr.write("idp: listening on %s\n" % a.listen)
    srv.serve_forever()


if __name__ == "__main__":
    main()
