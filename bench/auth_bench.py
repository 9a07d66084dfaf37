#!/usr/bin/python3
"""auth_bench.py - the authenticated path, the ACS and a login storm, measured.

Run by hand (not a CI test), loopback only:
    /usr/bin/python3 bench/auth_bench.py [--duration 8] [--rounds 3]

1. Authenticated requests (a real session from a real SAML login, JWT on)
   through ssogate vs nginx proxy_pass to the same origin: CPU microseconds
   per request (utime + stime of every process and thread of each proxy,
   read from /proc before and after each wrk run, over the requests wrk
   served) and its ratio to nginx (issue 23's target: <= 1.25), req/s, p99,
   ratio, and the JWT signatures counted during the run (should stay near
   zero).  The runs are interleaved; the order alternates every round.
   Both proxies write an access log to a file, as in production (ssogate's
   is its stdout; nginx's the default combined format).  --compare-bin
   B: a second ssogate binary with the same settings, interleaved, as
   ssogate-b (an A/B of one change).  --only-auth: part 1 only.
2. ACS: ssogate's own time per login (signed Google-shaped response: base64,
   XML, signature, every rule, replay record, sealing), from its access log.
3. Login storm: 200 client addresses (X-Forwarded-For, trusted_proxies = 1)
   hammer /ssogate/login while 64 authenticated clients browse; authenticated
   throughput with and without the storm, and the storm's admitted rate.
"""
import argparse
import base64
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "unit"))
import saml_fixtures as fx  # noqa: E402

ORIGIN, REF, GATE, METRICS = 18081, 18082, 18083, 18084
GATE_B, METRICS_B = 18089, 18090   # --compare-bin
BIN = os.environ.get("BENCH_SSOGATE_BIN") or next(
    p for p in (os.path.join(ROOT, "build-release/ssogate"), os.path.join(ROOT, "build/ssogate"))
    if os.path.exists(p))

NGINX_ORIGIN = """worker_processes 1; pid %(tmp)s/o.pid; error_log %(tmp)s/o.err;
events { worker_connections 4096; }
http { access_log off; keepalive_requests 1000000;
  server { listen 127.0.0.1:%(port)d; location / { return 200 "hello from origin\\n"; } } }
"""
NGINX_REF = """worker_processes 2; pid %(tmp)s/r.pid; error_log %(tmp)s/r.err;
events { worker_connections 4096; }
http { access_log %(tmp)s/r.access.log; keepalive_requests 1000000;
  upstream origin { server 127.0.0.1:%(origin)d; keepalive 64; }
  server { listen 127.0.0.1:%(port)d; location / { proxy_pass http://origin;
    proxy_http_version 1.1; proxy_set_header Connection ""; } } }
"""
STORM_LUA = """
counter = 0
request = function()
  counter = counter + 1
  local ip = "10.1.0." .. (counter % 200)
  return wrk.format("GET", "/ssogate/login?return_to=/", {["X-Forwarded-For"] = ip})
end
"""


CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks(pid):
    """utime + stime of pid (all its threads: fields 14 and 15 of
    /proc/PID/stat) and of its child processes (nginx's workers), in ticks."""
    try:
        stat = open("/proc/%d/stat" % pid).read()
    except OSError:
        return 0
    f = stat[stat.rindex(")") + 2:].split()   # f[0] is field 3
    total = int(f[11]) + int(f[12])
    for task in os.listdir("/proc/%d/task" % pid):
        try:
            kids = open("/proc/%d/task/%s/children" % (pid, task)).read().split()
        except OSError:
            continue
        total += sum(cpu_ticks(int(k)) for k in kids)
    return total


def wrk(url, conns, duration, headers=(), script=None, pid=None):
    args = ["wrk", "-t2", "-c%d" % conns, "-d%ds" % duration, "--latency"]
    for h in headers:
        args += ["-H", h]
    if script:
        args += ["-s", script]
    cpu0 = cpu_ticks(pid) if pid else 0
    out = subprocess.run(args + [url], capture_output=True, text=True).stdout
    cpu = cpu_ticks(pid) - cpu0 if pid else 0
    served = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p99 = re.search(r"99%\s+([\d.]+)(us|ms|s)", out)
    scale = {"us": 0.001, "ms": 1, "s": 1000}[p99.group(2)]
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    return {"rps": rps, "p99": float(p99.group(1)) * scale, "non2xx": int(non2xx.group(1)) if non2xx else 0,
            "cpu_us": cpu * 1e6 / CLK_TCK / served if pid and served else float("nan")}


def metrics():
    text = urllib.request.urlopen("http://127.0.0.1:%d/metrics" % METRICS, timeout=5).read().decode()
    return {l.rpartition(" ")[0]: float(l.rpartition(" ")[2]) for l in text.splitlines() if l and l[0] != "#"}


def post_acs(saml):
    data = ("SAMLResponse=" + urllib.request.quote(saml, safe="") + "&RelayState=").encode()
    req = urllib.request.Request("http://127.0.0.1:%d/ssogate/acs" % GATE, data=data,
                                 headers={"Content-Type": "application/x-www-form-urlencoded",
                                          "X-Forwarded-For": "10.9.9.%d" % (hash(saml) % 250)})

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *a, **k):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(req, timeout=10)
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get_all("Set-Cookie") or []
    return 200, []


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--compare-bin", help="a second ssogate binary, measured interleaved as ssogate-b")
    ap.add_argument("--only-auth", action="store_true", help="part 1 only (no ACS, no login storm)")
    a = ap.parse_args()
    tmp = tempfile.mkdtemp(prefix="ssogate-authbench-")
    procs = []

    def start(args, name):
        p = subprocess.Popen(args, stdout=open(os.path.join(tmp, name + ".out"), "w"),
                             stderr=open(os.path.join(tmp, name + ".err"), "w"))
        procs.append(p)
        return p

    try:
        for name, conf in (("o", NGINX_ORIGIN % {"tmp": tmp, "port": ORIGIN}),
                           ("r", NGINX_REF % {"tmp": tmp, "port": REF, "origin": ORIGIN})):
            path = os.path.join(tmp, name + ".conf")
            open(path, "w").write(conf)
            p = start(["/usr/sbin/nginx", "-p", tmp, "-c", path, "-g", "daemon off;"], "nginx-" + name)
            if name == "r":
                ref = p

        public = "http://127.0.0.1:%d" % GATE
        fx.ACS_URL, fx.SP_ENTITY_ID = public + "/ssogate/acs", public + "/ssogate/metadata"
        key, cert = fx.make_keypair("bench idp")
        open(os.path.join(tmp, "idp.xml"), "wb").write(fx.idp_metadata_xml(cert))
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                        "-out", os.path.join(tmp, "jwt.key")], check=True, capture_output=True)
        os.chmod(os.path.join(tmp, "jwt.key"), 0o600)
        ini = os.path.join(tmp, "ssogate.ini")
        open(ini, "w").write("""[server]
listen = 127.0.0.1:%d
public_url = %s
trusted_proxies = 1
[upstream]
url = http://127.0.0.1:%d
[saml]
idp_metadata = %s/idp.xml
allow_idp_initiated = true
[session]
secret = %s
[access]
allowed_domains = example.com
[headers]
jwt_key = %s/jwt.key
[metrics]
listen = 127.0.0.1:%d
[log]
level = warn
""" % (GATE, public, ORIGIN, tmp, base64.b64encode(os.urandom(32)).decode(), tmp, METRICS))
        gate = start([BIN, "-c", ini], "ssogate")
        gate_b = None
        if a.compare_bin:
            # Same settings and public_url (the session cookie is bound to
            # it), another port: the same cookie opens on both.
            ini_b = os.path.join(tmp, "ssogate-b.ini")
            open(ini_b, "w").write(open(ini).read()
                                   .replace("listen = 127.0.0.1:%d" % GATE, "listen = 127.0.0.1:%d" % GATE_B)
                                   .replace("listen = 127.0.0.1:%d" % METRICS, "listen = 127.0.0.1:%d" % METRICS_B))
            gate_b = start([a.compare_bin, "-c", ini_b], "ssogate-b")
        time.sleep(1.5)

        def signed(i):
            rsp = fx.build_tree(in_response_to=None, name_id="user%d@example.com" % i,
                                audience=fx.SP_ENTITY_ID, destination=fx.ACS_URL, recipient=fx.ACS_URL,
                                issuer=fx.IDP_ENTITY_ID)
            fx.sign_tree(rsp, "assertion", key, cert)
            return base64.b64encode(fx.to_bytes(rsp)).decode()

        status, cookies = post_acs(signed(0))
        session = next(c.split(";")[0] for c in cookies if c.startswith("ssogate="))
        print("signed in: HTTP %d, cookie %d bytes" % (status, len(session)))

        # 1. authenticated requests, JWT on, vs nginx; interleaved, the order
        # rotating every round so that none always runs first.
        targets = [("ssogate", GATE, gate.pid, ["Cookie: " + session]),
                   ("nginx", REF, ref.pid, [])]
        if gate_b:
            targets.append(("ssogate-b", GATE_B, gate_b.pid, ["Cookie: " + session]))
        res = {t[0]: [] for t in targets}
        print("load average %s before part 1" % " ".join(open("/proc/loadavg").read().split()[:3]))
        for rnd in range(a.rounds):
            order = targets[rnd % len(targets):] + targets[:rnd % len(targets)]
            for name, port, pid, headers in order:
                before = metrics()["ssogate_jwt_signatures_total"] if name == "ssogate" else 0
                r = wrk("http://127.0.0.1:%d/app" % port, 128, a.duration, headers, pid=pid)
                r["sigs"] = metrics()["ssogate_jwt_signatures_total"] - before if name == "ssogate" else 0
                res[name].append(r)
            print("  round %d: " % (rnd + 1) + " | ".join(
                "%s %.1f us/req %.0f req/s p99 %.2f ms%s" % (
                    name, res[name][-1]["cpu_us"], res[name][-1]["rps"], res[name][-1]["p99"],
                    " (non-2xx %d, JWT signatures %d)" % (res[name][-1]["non2xx"], res[name][-1]["sigs"])
                    if name == "ssogate" else "") for name, *_ in targets))

        def m(name, k):
            return statistics.median(r[k] for r in res[name])
        total_sigs = sum(r["sigs"] for r in res["ssogate"])
        print("load average %s after part 1" % " ".join(open("/proc/loadavg").read().split()[:3]))
        print("nginx @128: cpu %.1f us/request, %.0f req/s, p99 %.2f ms"
              % (m("nginx", "cpu_us"), m("nginx", "rps"), m("nginx", "p99")))
        for name in [t[0] for t in targets if t[0] != "nginx"]:
            cpu_x = m(name, "cpu_us") / m("nginx", "cpu_us")
            print("%s authenticated+JWT @128: cpu %.1f us/request = %.2f x nginx (target <= 1.25) %s; "
                  "ratio %.2f (target >= 0.8)  p99 ratio %.2f  (cpu x per round: %s)"
                  % (name, m(name, "cpu_us"), cpu_x, "PASS" if cpu_x <= 1.25 else "MISS",
                     m(name, "rps") / m("nginx", "rps"), m(name, "p99") / m("nginx", "p99"),
                     " ".join("%.2f" % (g["cpu_us"] / n["cpu_us"]) for g, n in zip(res[name], res["nginx"]))))
        print("JWT signatures over %d s of load: %d" % (a.rounds * a.duration, total_sigs))
        if a.only_auth:
            return

        # 2. ACS processing time, from ssogate's own access log
        responses = [signed(i) for i in range(1, 201)]
        log = os.path.join(tmp, "ssogate.out")
        start_line = sum(1 for _ in open(log))
        t0 = time.monotonic()
        threads = []
        chunks = [responses[i::4] for i in range(4)]
        for ch in chunks:
            t = threading.Thread(target=lambda ch=ch: [post_acs(s) for s in ch])
            t.start()
            threads.append(t)
        for t in threads:
            t.join()
        wall = time.monotonic() - t0
        lines = [json.loads(l) for l in list(open(log))[start_line:] if '"/ssogate/acs"' in l]
        durations = sorted(l["duration_ms"] for l in lines if l["status"] == 303)
        med = statistics.median(durations)
        print("ACS: %d logins, median %.2f ms, p90 %.2f ms in ssogate -> %.0f logins/s per core; wall %.1f logins/s "
              "with a Python client" % (len(durations), med, durations[int(len(durations) * 0.9)], 1000 / med,
                                        len(responses) / wall))

        # 3. login storm
        lua = os.path.join(tmp, "storm.lua")
        open(lua, "w").write(STORM_LUA)
        base = wrk("http://127.0.0.1:%d/app" % GATE, 64, a.duration, ["Cookie: " + session])["rps"]
        m0 = metrics()
        storm = threading.Thread(target=lambda: wrk("http://127.0.0.1:%d" % GATE, 200, a.duration + 2, script=lua))
        storm.start()
        time.sleep(1)
        under = wrk("http://127.0.0.1:%d/app" % GATE, 64, a.duration, ["Cookie: " + session])["rps"]
        storm.join()
        m1 = metrics()
        admitted = m1["ssogate_logins_started_total"] - m0["ssogate_logins_started_total"]
        limited = m1["ssogate_rate_limited_total"] - m0["ssogate_rate_limited_total"]
        print("login storm: authenticated %.0f req/s alone, %.0f under the storm (%.0f%%, target >= 90%%); "
              "storm admitted %d, refused %d with 429 (limit 30/m + burst 10 per address, 200 addresses: "
              "at most %d in %d s)" % (base, under, 100 * under / base, admitted, limited,
                                       200 * 10 + 200 * 0.5 * (a.duration + 2), a.duration + 2))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


if __name__ == "__main__":
    main()
