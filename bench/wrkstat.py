#!/usr/bin/python3
"""wrkstat.py - helper of bench/run: parse wrk output, print the report.

    wrkstat.py parse WRK_OUTPUT ROUND CONNS TARGET RSS_MAX_KIB RSS_AFTER_KIB [CPU_TICKS CLK_TCK]
        prints one tab-separated result row (appended to results.tsv)
    wrkstat.py report RESULTS_TSV [LARGE_RESULTS_TSV]
        prints the tables and the summary line

Row: round conns target rps p50_ms p99_ms rss_max_kib rss_after_kib
     non2xx socket_errors bytes_per_sec cpu_us_per_request

cpu_us_per_request: the proxy's CPU time (utime + stime of all its processes
and threads, read from /proc before and after the wrk run, CPU_TICKS clock
ticks of 1/CLK_TCK s) divided by the requests wrk reports served.
"""
import re
import statistics as st
import sys
from collections import defaultdict

TARGET_RATIO = 0.85          # ssogate req/s / nginx req/s at 128 connections (issue 13)
TARGET_RATIO_HAPROXY = 0.75  # ssogate req/s / haproxy req/s at 128 connections
TARGET_P99 = 1.5             # ssogate p99 / nginx p99 at 128 connections
TARGET_RSS = 32.0            # MiB, ssogate VmRSS under load
TARGET_LARGE = 0.9           # 1 MiB body: ssogate MiB/s / nginx MiB/s
TARGET_CPU = 1.1             # ssogate CPU us per request / nginx's, public path (issue 23)
TARGET_CPU_AUTH = 1.25       # the same, authenticated (session + JWT), bench/auth_bench.py
ANCHORS = ("nginx", "haproxy")  # the reference proxies; every other target is a gate

UNITS_TIME = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 6e4}
UNITS_SIZE = {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}
NAN = float("nan")


def ms(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    return float(m.group(1)) * UNITS_TIME[m.group(2)] if m else NAN


def size(v):
    m = re.fullmatch(r"([\d.]+)(B|KB|MB|GB|TB)", v)
    return float(m.group(1)) * UNITS_SIZE[m.group(2)] if m else NAN


def cpu_per_request(text, ticks, clk_tck):
    """CPU microseconds per request served, from wrk's "N requests in" line."""
    n = re.search(r"(\d+) requests in", text)
    if not n or not int(n.group(1)) or ticks in (None, "") or not clk_tck:
        return NAN
    return int(ticks) * 1e6 / int(clk_tck) / int(n.group(1))


def parse(path, rnd, c, target, rss_max, rss_after, cpu_ticks=None, clk_tck=None):
    text = open(path, errors="replace").read()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"^\s*50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s*99%\s+(\S+)", text, re.M)
    tps = re.search(r"Transfer/sec:\s+(\S+)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    err = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    print("\t".join(str(x) for x in (
        rnd, c, target,
        rps.group(1) if rps else "nan",
        ms(p50.group(1)) if p50 else "nan",
        ms(p99.group(1)) if p99 else "nan",
        rss_max, rss_after,
        non2xx.group(1) if non2xx else 0,
        sum(int(x) for x in err.groups()) if err else 0,
        size(tps.group(1)) if tps else "nan",
        cpu_per_request(text, cpu_ticks, clk_tck))))


def load(path):
    rows = []
    for line in open(path):
        if not line.strip():
            continue
        f = line.rstrip("\n").split("\t")
        rows.append(dict(round=int(f[0]), c=int(f[1]), t=f[2], rps=float(f[3]),
                         p50=float(f[4]), p99=float(f[5]), rss=int(f[6]),
                         rss_after=int(f[7]), bad=int(f[8]) + int(f[9]), bps=float(f[10]),
                         cpu=float(f[11]) if len(f) > 11 else NAN))
    return rows


def med(xs):
    xs = [x for x in xs if x == x]
    return st.median(xs) if xs else NAN


def div(a, b):
    return a / b if b and a == a and b == b else NAN


def targets_of(rows):
    seen = []
    for r in rows:
        if r["t"] not in seen:
            seen.append(r["t"])
    return sorted(seen, key=lambda t: (t not in ANCHORS, ANCHORS.index(t) if t in ANCHORS else 0, t))


def table(rows, title, show_bw=False):
    by = defaultdict(list)
    for r in rows:
        by[(r["c"], r["t"])].append(r)
    conns = sorted({r["c"] for r in rows})
    targets = targets_of(rows)
    gates = [t for t in targets if t not in ANCHORS]
    has_haproxy = any(t == "haproxy" for t in targets)
    nrounds = max(len(v) for v in by.values())
    print(f"{title} (medians of {nrounds} rounds)")
    hdr = f"  {'C':>4}  {'target':<12}{'cpu us':>8}{'cpu x':>7}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}"
    if show_bw:
        hdr += f"{'MiB/s':>9}"
    hdr += f"{'ratio':>8}{'p99 ratio':>11}"
    if has_haproxy:
        hdr += f"{'vs hapx':>9}"
    hdr += f"{'RSS max':>10}{'RSS after':>11}   ratio per round  (cpu x per round)"
    print(hdr.rstrip())
    summary = {}
    warnings = []
    for c in conns:
        n = by[(c, "nginx")]
        n_rps, n50, n99, n_cpu = (med([r[k] for r in n]) for k in ("rps", "p50", "p99", "cpu"))
        ncr = {r["round"]: r["cpu"] for r in n}
        for t in targets:
            rs = by[(c, t)]
            rps, p50, p99, bps, cpu = (med([r[k] for r in rs]) for k in ("rps", "p50", "p99", "bps", "cpu"))
            cpu_x = div(cpu, n_cpu)
            line = f"  {c:>4}  {t:<12}{cpu:>8.1f}{cpu_x:>7.2f}{rps:>9.0f}{p50:>9.3f}{p99:>9.3f}"
            if show_bw:
                line += f"{bps / 2**20:>9.0f}"
            if t in ANCHORS:
                line += f"{'':>8}{'':>11}{'':>9}" if has_haproxy else f"{'':>8}{'':>11}"
                if t == "haproxy":
                    line += f"{'':>10}{'':>11}   vs nginx {div(rps, n_rps):.2f}"
                    line += "  (" + " ".join(f"{div(r['cpu'], ncr.get(r['round'])):.2f}" for r in rs) + ")"
            else:
                ratio, p99r = div(rps, n_rps), div(p99, n99)
                h_ratio = div(rps, med([r["rps"] for r in by[(c, "haproxy")]])) if has_haproxy else NAN
                rss = max(r["rss"] for r in rs) / 1024
                after = rs[-1]["rss_after"] / 1024
                # Each round's ssogate run is paired with the nginx run of the
                # same round (they ran back to back): the spread of these is
                # the honest error bar on a noisy machine.
                nr = {r["round"]: r["rps"] for r in n}
                per = " ".join(f"{div(r['rps'], nr.get(r['round'])):.2f}" for r in rs)
                line += f"{ratio:>8.2f}{p99r:>11.2f}"
                if has_haproxy:
                    line += f"{h_ratio:>9.2f}"
                line += f"{rss:>6.1f} MiB{after:>7.1f} MiB   {per}"
                line += "  (" + " ".join(f"{div(r['cpu'], ncr.get(r['round'])):.2f}" for r in rs) + ")"
                summary[(c, t)] = (ratio, p99r, rss, h_ratio, div(bps, med([r["bps"] for r in n])),
                                   cpu, cpu_x)
            print(line.rstrip())
            bad = sum(r["bad"] for r in rs)
            if bad:
                warnings.append(f"  WARNING: c={c} {t}: {bad} non-2xx responses / socket errors "
                                "(that run did not measure the proxy path alone)")
    for w in warnings:
        print(w)
    print()
    return summary, gates


# Second ssogate targets measured next to "ssogate": name, label, what to show.
COMPARISONS = (
    ("ssogate+log", "access log to a file", False, False),
    ("ssogate-b", "COMPARE_BIN (ssogate-b) vs ssogate", True, True),
    ("ssogate+cred", "credential request (?api_key=, app_credentials = redash) vs public path",
     True, False),
)


def compare(summary, conns, other, label, with_p99, with_rss):
    for c in conns:
        a, b = summary[(c, "ssogate")], summary[(c, other)]
        line = (f"{label}, c={c}: cpu {a[5]:.1f} -> {b[5]:.1f} us/request ({(b[5] / a[5] - 1) * 100:+.0f} %; "
                f"x nginx {a[6]:.2f} -> {b[6]:.2f}), "
                f"ratio {a[0]:.2f} -> {b[0]:.2f} ({(b[0] / a[0] - 1) * 100:+.0f} % throughput)")
        if with_p99:
            line += f", p99 ratio {a[1]:.2f} -> {b[1]:.2f}"
        if with_rss:
            line += f", RSS {a[2]:.1f} -> {b[2]:.1f} MiB"
        print(line)
    print()


def report(path, large_path=None):
    rows = load(path)
    if not rows:
        print("no results")
        return
    summary, gates = table(rows, "small response (18 bytes)")
    gate = "ssogate" if "ssogate" in gates else gates[0]
    conns = sorted({c for c, _ in summary})
    key = 128 if 128 in conns else max(conns)
    ratio, p99r, _, h_ratio, _, cpu, cpu_x = summary[(key, gate)]
    rss = max(v[2] for (c, t), v in summary.items() if t == gate)
    ok = lambda b: "PASS" if b else "MISS"
    for other, label, with_p99, with_rss in COMPARISONS:
        if other in gates:
            compare(summary, conns, other, label, with_p99, with_rss)
    large = ""
    if large_path:
        lrows = load(large_path)
        if lrows:
            lsummary, _ = table(lrows, "large response (1 MiB static file)", show_bw=True)
            lkey = max(c for c, t in lsummary if t == gate)
            bw = lsummary[(lkey, gate)][4]
            large = f"  1 MiB MiB/s ratio@{lkey}: {bw:.2f} (target >= {TARGET_LARGE:g}) {ok(bw >= TARGET_LARGE)}"
    line = (f"cpu@{key}: {cpu:.1f} us/request = {cpu_x:.2f} x nginx (target <= {TARGET_CPU:g}) "
            f"{ok(cpu_x <= TARGET_CPU)}\n"
            f"ratio@{key}: {ratio:.2f} (target >= {TARGET_RATIO:g}) {ok(ratio >= TARGET_RATIO)}  "
            f"p99 ratio: {p99r:.2f} (target <= {TARGET_P99:g}) {ok(p99r <= TARGET_P99)}  ")
    if h_ratio == h_ratio:
        line += f"vs haproxy: {h_ratio:.2f} (target >= {TARGET_RATIO_HAPROXY:g}) {ok(h_ratio >= TARGET_RATIO_HAPROXY)}  "
    line += f"rss: {rss:.1f} MiB (target <= {TARGET_RSS:g}) {ok(rss <= TARGET_RSS)}"
    print(line + large)


if __name__ == "__main__":
    if len(sys.argv) >= 2 and sys.argv[1] == "parse" and len(sys.argv) in (8, 10):
        parse(*sys.argv[2:])
    elif len(sys.argv) in (3, 4) and sys.argv[1] == "report":
        report(*sys.argv[2:])
    else:
        sys.exit(__doc__)
