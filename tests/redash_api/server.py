#!/usr/bin/python3
"""server.py - a stand-in for Redash's admin API, for the [redash] sync tests (stdlib only).

    /usr/bin/python3 tests/redash_api/server.py --listen 127.0.0.1:PORT --api-key KEY
        [--group NAME]... [--user EMAIL[:NAME[:GROUP,GROUP]]]... [--record FILE]

Follows getredash/redash at ca79fe9 (master, 2026; same handlers since v10.1.0):
  redash/handlers/api.py     the routes
  redash/handlers/users.py   UserListResource.get (q = name ILIKE or email LIKE
                             substring, disabled users only with ?disabled=true,
                             paginate() {count, page, page_size, results}, page_size
                             1..250 else 400, each user's "groups" as [{id, name}]),
                             UserResource.post ({"name": ...} -> User.to_dict())
  redash/handlers/groups.py  GroupListResource.get ([Group.to_dict()]),
                             GroupMemberListResource.get/post ({"user_id": id};
                             appends even when already a member, as Redash does),
                             GroupMemberResource.delete (list.remove: a non-member
                             is a ValueError, i.e. HTTP 500)
  redash/models/users.py     User.to_dict (groups = group ids), Group.to_dict
  redash/authentication      get_api_key_from_request: ?api_key= or
                             "Authorization: Key <k>"; a request without a valid
                             key on /api/ gets Flask-Login's unauthorized answer,
                             404 {"message": "Couldn't find resource. Please login and try again."};
                             a non-admin key gets require_admin's 403.
Groups 1 "admin" and 2 "default" are builtin, as in a new Redash org.

Test knobs (not Redash), under /__test/:
  POST /__test/user   {"email", "name"?, "groups"?: [names], "after": seconds, "disabled"?: bool}
                      the user appears after that many seconds (as Redash's JWT
                      login creates it on the person's first request)
  POST /__test/delay  {"seconds": S}  every /api/ answer waits S seconds first
  POST /__test/fail   {"status": N}   every /api/ answer is N with an HTML body (a load
                      balancer's page while Redash restarts); 0 = back to normal
  GET  /__test/log    every /api/ request so far: [{method, path, query, authorization, body}]
  GET  /__test/state  {"users": [...to_dict], "groups": [...]}
"""
import argparse
import json
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

NOW = "2026-12-01T00:00:00.000Z"


class State:
    def __init__(self, api_key, admin_key_ok=True):
        self.lock = threading.Lock()
        self.api_key = api_key
        self.groups = [{"id": 1, "name": "admin", "permissions": ["admin", "super_admin"],
                        "type": "builtin", "created_at": NOW},
                       {"id": 2, "name": "default", "permissions": ["create_dashboard", "list_users"],
                        "type": "builtin", "created_at": NOW}]
        self.users = []
        self.pending = []  # (appears_at, user)
        self.delay = 0.0
        self.fail_status = 0
        self.log = []

    def add_group(self, name):
        self.groups.append({"id": len(self.groups) + 1, "name": name,
                            "permissions": ["create_dashboard"], "type": "regular", "created_at": NOW})

    def group_id(self, name):
        for g in self.groups:
            if g["name"] == name:
                return g["id"]
        raise KeyError(name)

    def new_user(self, email, name=None, groups=()):
        # Redash's JWT login: create_and_login_user(org, email, email): name = email, the default group.
        return {"id": 0, "name": name or email, "email": email, "group_ids": [2] + [self.group_id(g) for g in groups],
                "disabled_at": None}

    def settle(self):
        now = time.monotonic()
        for item in list(self.pending):
            if item[0] <= now:
                self.pending.remove(item)
                item[1]["id"] = len(self.users) + 1
                self.users.append(item[1])

    @staticmethod
    def to_dict(u):
        return {"id": u["id"], "name": u["name"], "email": u["email"],
                "profile_image_url": "https://www.gravatar.com/avatar/x?s=40&d=identicon",
                "groups": list(u["group_ids"]), "updated_at": NOW, "created_at": NOW,
                "disabled_at": u["disabled_at"], "is_disabled": u["disabled_at"] is not None,
                "active_at": NOW, "is_invitation_pending": False, "is_email_verified": True,
                "auth_type": "external"}


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "redash-admin-api-stand-in"

    def log_message(self, fmt, *args):
        pass

    def answer(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        try:
            return raw, json.loads(raw or b"null")
        except ValueError:
            return raw, None

    def handle_any(self):
        st = self.server.state
        url = urllib.parse.urlsplit(self.path)
        args = urllib.parse.parse_qs(url.query)
        raw, req = self.body_json()
        parts = [p for p in url.path.split("/") if p]
        if parts[:1] == ["__test"]:
            return self.control(st, parts[1:], req)
        with st.lock:
            entry = {"method": self.command, "path": url.path, "query": url.query,
                     "authorization": self.headers.get("Authorization"), "body": raw.decode("utf-8", "replace")}
            st.log.append(entry)
            if self.server.record:
                with open(self.server.record, "a") as f:
                    f.write(json.dumps(entry) + "\n")
            delay, fail_status = st.delay, st.fail_status
        if delay:
            time.sleep(delay)
        if fail_status:
            body = b"<html><body><h1>503 Service Temporarily Unavailable</h1></body></html>"
            self.send_response(fail_status)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            return self.wfile.write(body)
        key = args.get("api_key", [None])[0]
        if key is None and self.headers.get("Authorization"):
            key = self.headers["Authorization"].replace("Key ", "", 1)
        if key != st.api_key:
            if key == self.server.non_admin_key:
                return self.answer(403, {"message": "You don't have permission to access this resource."})
            return self.answer(404, {"message": "Couldn't find resource. Please login and try again."})
        with st.lock:
            st.settle()
            return self.route(st, self.command, parts, args, req)

    def route(self, st, method, parts, args, req):
        if parts == ["api", "users"] and method == "GET":
            page = int(args.get("page", ["1"])[0])
            page_size = int(args.get("page_size", ["25"])[0])
            q = args.get("q", [""])[0]
            disabled = args.get("disabled", ["false"])[0].lower() in ("true", "1", "yes")
            users = [u for u in st.users if (u["disabled_at"] is not None) == disabled]
            if q:
                users = [u for u in users if q.lower() in u["name"].lower() or q in u["email"]]
            count = len(users)
            if page < 1:
                return self.answer(400, {"message": "Page must be positive integer."})
            if (page - 1) * page_size + 1 > count > 0:
                return self.answer(400, {"message": "Page is out of range."})
            if page_size > 250 or page_size < 1:
                return self.answer(400, {"message": "Page size is out of range (1-250)."})
            groups = {g["id"]: g for g in st.groups}
            results = []
            for u in users[(page - 1) * page_size:page * page_size]:
                d = State.to_dict(u)
                d["groups"] = [{"id": gid, "name": groups[gid]["name"]} for gid in set(d["groups"]) if gid in groups]
                results.append(d)
            return self.answer(200, {"count": count, "page": page, "page_size": page_size, "results": results})
        if len(parts) == 3 and parts[:2] == ["api", "users"]:
            user = next((u for u in st.users if str(u["id"]) == parts[2]), None)
            if user is None:
                return self.answer(404, {"message": "Not found"})
            if method == "GET":
                return self.answer(200, State.to_dict(user))
            if method == "POST" and isinstance(req, dict):
                for k in ("name", "email"):
                    if k in req:
                        user[k] = req[k]
                return self.answer(200, State.to_dict(user))
        if parts == ["api", "groups"] and method == "GET":
            return self.answer(200, st.groups)
        if len(parts) >= 4 and parts[:2] == ["api", "groups"] and parts[3] == "members":
            group = next((g for g in st.groups if str(g["id"]) == parts[2]), None)
            if group is None:
                return self.answer(404, {"message": "Not found"})
            if len(parts) == 4 and method == "GET":
                return self.answer(200, [State.to_dict(u) for u in st.users if group["id"] in u["group_ids"]])
            if len(parts) == 4 and method == "POST" and isinstance(req, dict):
                user = next((u for u in st.users if u["id"] == req.get("user_id")), None)
                if user is None:
                    return self.answer(404, {"message": "Not found"})
                user["group_ids"].append(group["id"])
                return self.answer(200, State.to_dict(user))
            if len(parts) == 5 and method == "DELETE":
                user = next((u for u in st.users if str(u["id"]) == parts[4]), None)
                if user is None:
                    return self.answer(404, {"message": "Not found"})
                if group["id"] not in user["group_ids"]:
                    return self.answer(500, {"message": "Internal Server Error"})
                user["group_ids"].remove(group["id"])
                return self.answer(200, None)
        return self.answer(404, {"message": "Not found"})

    def control(self, st, parts, req):
        with st.lock:
            if parts == ["user"]:
                user = st.new_user(req["email"], req.get("name"), req.get("groups", ()))
                if req.get("disabled"):
                    user["disabled_at"] = NOW
                st.pending.append((time.monotonic() + float(req.get("after", 0)), user))
                st.settle()
                return self.answer(200, {"ok": True})
            if parts == ["fail"]:
                st.fail_status = int(req["status"])
                return self.answer(200, {"ok": True})
            if parts == ["delay"]:
                st.delay = float(req["seconds"])
                return self.answer(200, {"ok": True})
            if parts == ["log"]:
                return self.answer(200, st.log)
            if parts == ["state"]:
                st.settle()
                return self.answer(200, {"users": [State.to_dict(u) for u in st.users], "groups": st.groups})
        return self.answer(404, {"message": "no such knob"})

    do_GET = do_POST = do_DELETE = do_PUT = handle_any


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--listen", required=True)
    p.add_argument("--api-key", required=True)
    p.add_argument("--non-admin-key")
    p.add_argument("--group", action="append", default=[])
    p.add_argument("--user", action="append", default=[])
    p.add_argument("--record")
    a = p.parse_args()
    host, port = a.listen.rsplit(":", 1)
    srv = ThreadingHTTPServer((host, int(port)), Handler)
    srv.daemon_threads = True
    srv.state = State(a.api_key)
    srv.record = a.record
    srv.non_admin_key = a.non_admin_key
    for g in a.group:
        srv.state.add_group(g)
    for spec in a.user:
        email, _, rest = spec.partition(":")
        name, _, groups = rest.partition(":")
        srv.state.pending.append((0, srv.state.new_user(email, name or None, [g for g in groups.split(",") if g])))
    srv.state.settle()
    srv.serve_forever()


if __name__ == "__main__":
    main()
