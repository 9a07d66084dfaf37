#!/usr/bin/python3
"""app.py - the demo app and the test upstream behind ssogate (stdlib only).

    /usr/bin/python3 tests/upstream/app.py --listen 127.0.0.1:PORT [--record FILE]

/ping            200 "PONG."  (Redash's unauthenticated health path)
/echo..., /private/echo... any method: JSON {method, target, headers, body_len, body_sha256, peer_port,
                 server}  (server: the address:port this upstream listens on)
/bytes?n=N       N bytes of bytes(i % 251), streamed; &chunked=1 for chunked framing
/slow?s=S        sleeps S seconds, then 200
/status/NNN      that status (204/304 without a body)
/cookies         three Set-Cookie headers plus hop-by-hop headers a proxy must drop
/die?after=N     announces 1000000 bytes, sends N, closes
/setcookie?name=N  Set-Cookie: N=evil (ssogate must drop it for its own cookie names)
/api/..., /embed/..., /public/dashboards/T   Redash's reading of who asks (see redash_like)
/login, /redash-client   a page that behaves like Redash's web client (see REDASH_CLIENT)
anything else    an HTML greeting naming X-Forwarded-Email: the demo app
"""
import argparse
import hashlib
import html
import json
import socketserver
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# The one API key / share token this "Redash" knows (40 letters and digits, like its own).
REDASH_KEY = "TestKey0123456789abcdefghijklmnopqrstuvw"

# Redash's web client reduced to its session-restore flow (client/app/services/axios.js,
# restoreSession.jsx, auth.js in getredash/redash): an XHR answered 401 (or 404 whose
# message holds "Please login") shows "Your session has expired", the Login button opens a
# popup on "login"; the SPA loaded in that popup calls api/session and, when signed in,
# posts {type: "redash_session_restored"} to its opener; the opener then retries the call.
REDASH_CLIENT = """<!doctype html><meta charset=utf-8><title>redash-like client</title>
<p id=who>%(who)s</p><button id=load onclick="load()">load</button>
<div id=prompt hidden>Your session has expired. Please login to continue.
<button id=login onclick="restore()">Login</button></div><pre id=result></pre>
<script>
var popup = null, waiting = null;
function notifySessionRestored() {
  if (window.opener) window.opener.postMessage({type: "redash_session_restored"}, window.location.origin);
}
function get(url) {
  return fetch(url, {headers: {"Accept": "application/json, text/plain, */*"}}).then(function (r) {
    return r.text().then(function (t) {
      if (r.status === 401 || (r.status === 404 && t.indexOf("Please login") >= 0)) {
        document.getElementById("result").textContent = "status " + r.status;
        return new Promise(function (resolve) { waiting = resolve; document.getElementById("prompt").hidden = false; })
          .then(function () { return get(url); });
      }
      return t;
    });
  });
}
function restore() {
  popup = window.open("login", "Restore Session", "width=640,height=640");
  window.addEventListener("message", function handle(e) {
    if (e.data.type === "redash_session_restored") {
      popup.close(); popup = null;
      window.removeEventListener("message", handle);
      document.getElementById("prompt").hidden = true;
      waiting();
    }
  });
}
function load() { get("api/data").then(function (t) { document.getElementById("result").textContent = t; }); }
fetch("api/session").then(function (r) { if (r.ok) notifySessionRestored(); });
</script>"""

PATTERN = bytes(i % 251 for i in range(251 * 261))  # 65511 bytes, a whole number of periods


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "test-upstream"
    record = None

    def log_message(self, fmt, *args):  # quiet unless --verbose
        if self.server.verbose:
            sys.stderr.write("upstream: " + fmt % args + "\n")

    def read_body(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip(), 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return bytes(body)
                body += self.rfile.read(size)
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send(self, status, body=b"", ctype="text/plain", headers=()):
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if status not in (204, 304):
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD" and status not in (204, 304):
            self.wfile.write(body)

    def handle_any(self):
        body = self.read_body()
        url = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(url.query)
        if self.server.record:
            with open(self.server.record, "a") as f:
                f.write(json.dumps({"method": self.command, "target": self.path,
                                    "headers": list(self.headers.items()),
                                    "peer_port": self.client_address[1]}) + "\n")
        if url.path == "/ping":
            return self.send(200, b"PONG.")
        if url.path.startswith(("/echo", "/private/echo")):
            doc = {"method": self.command, "target": self.path,
                   "headers": [[k, v] for k, v in self.headers.items()],
                   "body_len": len(body), "body_sha256": hashlib.sha256(body).hexdigest(),
                   "peer_port": self.client_address[1],
                   "server": "%s:%d" % self.server.server_address[:2]}
            return self.send(200, json.dumps(doc).encode(), "application/json")
        if url.path == "/bytes":
            return self.stream_bytes(int(query.get("n", ["0"])[0]), query.get("chunked") == ["1"])
        if url.path == "/slow":
            time.sleep(float(query.get("s", ["1"])[0]))
            return self.send(200, b"slow done")
        if url.path.startswith("/status/"):
            return self.send(int(url.path.rsplit("/", 1)[1]), b"status body")
        if url.path == "/cookies":
            return self.send(200, b"cookies", headers=[
                ("Set-Cookie", "a=1"), ("Set-Cookie", "b=2; Path=/"), ("Set-Cookie", "c=3; HttpOnly"),
                ("Connection", "X-Hop"), ("X-Hop", "secret"), ("Keep-Alive", "timeout=5")])
        if url.path == "/setcookie":
            name = query.get("name", ["ssogate"])[0]
            return self.send(200, b"set", headers=[("Set-Cookie", name + "=evil; Path=/"),
                                                    ("Set-Cookie", "app=ok; Path=/")])
        if url.path == "/die":
            self.send_response(200)
            self.send_header("Content-Length", "1000000")
            self.end_headers()
            self.wfile.write(PATTERN[: int(query.get("after", ["0"])[0])])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(2)
            return None
        if url.path.startswith(("/api/", "/embed/", "/public/dashboards/")):
            return self.redash_like(url, query, body)
        if url.path == "/login":  # Redash's login: signed in (remote-user / JWT), it sends you on
            if self.headers.get("X-Forwarded-Remote-User"):
                return self.send(302, b"", headers=[("Location", "/redash-client")])
            return self.send(200, b"<form>Redash's own password form</form>", "text/html")
        if url.path == "/redash-client":
            who = html.escape(self.headers.get("X-Forwarded-Remote-User", "anonymous"))
            return self.send(200, (REDASH_CLIENT % {"who": who}).encode(), "text/html; charset=utf-8")
        email = self.headers.get("X-Forwarded-Email")
        page = ("<!doctype html><meta charset=utf-8><title>demo app</title>"
                "<h1>Hello, %s</h1><p>user: %s<br>groups: %s<br>JWT present: %s</p>"
                "<p><a href=/ssogate/session>your session</a> &middot; "
                "<a href=/ssogate/logout>sign out</a></p>") % (
            html.escape(email or "anonymous"),
            html.escape(self.headers.get("X-Forwarded-Remote-User", "-")),
            html.escape(self.headers.get("X-Forwarded-Groups", "-")),
            "yes" if self.headers.get("X-Ssogate-Assertion") else "no")
        return self.send(200, page.encode(), "text/html; charset=utf-8")

    def redash_like(self, url, query, body):
        """Who Redash serves, in its order (redash/authentication/__init__.py): the api_key
        query parameter (first value), else the Authorization header with "Key " cut once,
        else the route's <token>; then Flask-Login's session cookie ("session"), which its
        user_loader falls back to when the key is wrong; then the remote-user header.
        Nobody: 404 "Please login", as Redash's API answers (the wrong-key case included)."""
        key = query.get("api_key", [None])[0]
        if key is None and self.headers.get("Authorization"):
            key = self.headers["Authorization"].replace("Key ", "", 1)
        elif key is None:
            for prefix in ("/public/dashboards/", "/api/dashboards/public/"):
                if url.path.startswith(prefix):
                    key = url.path[len(prefix):]
        cookies = {}
        for part in (self.headers.get("Cookie") or "").split(";"):
            name, _, value = part.strip().partition("=")
            cookies[name] = value
        if key == REDASH_KEY:
            user = "api-key"
        elif cookies.get("session"):
            user = "cookie:" + cookies["session"]
        elif self.headers.get("X-Forwarded-Remote-User"):
            user = self.headers["X-Forwarded-Remote-User"]
        else:
            return self.send(404, json.dumps({"message": "Couldn't find resource. Please login and try again."}).encode(),
                             "application/json")
        doc = {"user": user, "method": self.command, "target": self.path, "rows": "secret rows",
               "headers": [[k, v] for k, v in self.headers.items()], "body_len": len(body)}
        return self.send(200, json.dumps(doc).encode(), "application/json")

    def stream_bytes(self, n, chunked):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        if chunked:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Content-Length", str(n))
        self.end_headers()
        if self.command == "HEAD":
            return
        sent = 0
        while sent < n:
            piece = PATTERN[: min(len(PATTERN), n - sent)]
            if chunked:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
            else:
                self.wfile.write(piece)
            sent += len(piece)
        if chunked:
            self.wfile.write(b"0\r\n\r\n")

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = handle_any


class Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 1024


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", default="127.0.0.1:8081")
    p.add_argument("--record")
    p.add_argument("--verbose", action="store_true")
    a = p.parse_args()
    host, port = a.listen.rsplit(":", 1)
    srv = Server((host, int(port)), Handler)
    srv.record, srv.verbose = a.record, a.verbose
    srv.serve_forever()


if __name__ == "__main__":
    main()
