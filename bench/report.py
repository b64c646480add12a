#!/usr/bin/env python3
"""Summarises bench/run.sh samples: a markdown table (median, min-max, ratio
to direct, target), a PNG chart of throughput, and optionally the generated
section of docs/PERFORMANCE.md (between the bench:begin/end markers)."""
import argparse
import collections
import re
import statistics

ap = argparse.ArgumentParser()
ap.add_argument("--results", required=True)
ap.add_argument("--machine", required=True)
ap.add_argument("--out", required=True)
ap.add_argument("--chart", required=True)
ap.add_argument("--doc")
ap.add_argument("--png")
a = ap.parse_args()

machine = dict(l.rstrip("\n").split("=", 1) for l in open(a.machine) if "=" in l)
sizes = dict(kv.split("=") for kv in machine.get("sizes", "").split())
MB, N = sizes.get("MB", "?"), sizes.get("SMALL_N", "?")
RN, LN = sizes.get("RANGED_N", "?"), sizes.get("LIST_N", "?")
CONC = sizes.get("CONC", "?")

S = collections.defaultdict(list)  # (workload, endpoint) -> samples
for line in open(a.results):
    f = line.split()
    if len(f) == 4:
        S[(f[2], f[1])].append(float(f[3]))

EPS = ["direct", "sealgate", "peer"]
# workload, label, unit, target ratio (sealgate/direct), ratio base workload
ROWS = [
    ("aws_up", f"{MB} MiB upload, aws cli", "s", 1.10, None),
    ("aws_down", f"{MB} MiB download, aws cli", "s", 1.10, None),
    ("fast_up", f"{MB} MiB upload, aws-sdk-s3 16 parts", "s", 1.10, None),
    ("fast_down", f"{MB} MiB download, aws-sdk-s3 16 parts", "s", 1.10, None),
    ("aws_small_put", f"{N} x 4 KiB PUT, aws cli", "s", 1.15, None),
    ("aws_small_get", f"{N} x 4 KiB GET, aws cli", "s", None, None),
    ("aws_small_list", f"list those {N}, aws cli", "s", 1.10, None),
    ("fast_small_put", f"{N} x 4 KiB PUT, aws-sdk-s3 x16", "s", 1.15, None),
    ("fast_small_get", f"{N} x 4 KiB GET, aws-sdk-s3 x16", "s", None, None),
    ("fast_small_list", f"list those {N}, aws-sdk-s3", "s", 1.10, None),
    ("ranged", f"{RN} random 4 KiB ranged GETs of a {MB} MiB multipart object", "s", 1.15, None),
    ("ranged_p50_ms", "  ranged GET, median latency", "ms", 1.15, None),
    ("list", f"list {LN} objects (half multipart)", "s", 1.10, None),
    ("list_first", f"list {LN} objects, new sealgate instance, no index anywhere", "s", None, "list"),
    ("list_fresh", f"list {LN} objects, new sealgate instance (index at the store)", "s", None, "list"),
    ("list_cold", f"list {LN} objects, sealgate just restarted (listing index kept)", "s", 1.10, "list"),
    ("list_fill", f"create those {LN} objects (x16, untimed by target)", "s", None, None),
]
for bits in (2048, 3072, 4096):
    ROWS.append((f"get_cold_rsa{bits}", f"GET 4 KiB, first after start, RSA-{bits}", "ms", None, None))
    ROWS.append((f"get_warm_rsa{bits}", f"GET 4 KiB, warm, RSA-{bits}", "ms", None, None))
ROWS += [
    ("conc_up", f"{CONC} concurrent uploads (8 MiB parts)", "s", None, None),
    ("conc_down", f"{CONC} concurrent GETs", "s", None, None),
    ("rss_peak_mib", f"peak RSS during {CONC} concurrent PUTs+GETs", "MiB", 64, None),
    ("rss_big_mib", f"peak RSS during the {MB} MiB transfers", "MiB", 64, None),
    ("rss_list_mib", f"peak RSS after the {LN}-object listings", "MiB", 64, None),
]


def fmt(v, unit):
    if unit == "MiB":
        return f"{v:.0f}"
    if unit == "ms":
        return f"{v:.2f}" if v < 10 else f"{v:.1f}"
    return f"{v:.3f}" if v < 1 else f"{v:.2f}"


def cell(wl, ep, unit):
    v = S.get((wl, ep))
    if not v:
        stalled = wl in ("conc_up", "conc_down") and S.get(("conc_stalled", ep))
        return ("did not finish" if stalled else ""), None
    m = statistics.median(v)
    if unit == "MiB":
        return f"{max(v):.0f}", max(v)
    if len(v) == 1:
        return f"{fmt(m, unit)}", m
    return f"{fmt(m, unit)} ({fmt(min(v), unit)}-{fmt(max(v), unit)})", m


lines = [
    "| workload | unit | direct | sealgate | peer (rclone crypt) | sealgate / direct | peer / direct | target | met |",
    "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
]
verdicts = []
for wl, label, unit, target, base in ROWS:
    cells = {ep: cell(wl, ep, unit) for ep in EPS}
    if all(c[1] is None for c in cells.values()):
        continue
    if unit == "MiB":
        ratio = lambda ep: ""  # noqa: E731
        met = "" if cells["sealgate"][1] is None else ("yes" if cells["sealgate"][1] < target else "**no**")
        tgt = f"< {target} MiB"
    else:
        d = S.get((base or wl, "direct"))
        dm = statistics.median(d) if d else None

        def ratio(ep, dm=dm):
            m = cells[ep][1]
            return f"{m / dm:.2f}" if (m is not None and dm) else ""

        tgt = f"<= {target:.2f}" if target else ""
        r = ratio("sealgate")
        met = ("yes" if float(r) <= target else "**no**") if (target and r) else ""
    if met:
        verdicts.append((label.strip(), met.strip("*")))
    lines.append(
        f"| {label} | {unit} | {cells['direct'][0]} | {cells['sealgate'][0]} | {cells['peer'][0]} "
        f"| {ratio('sealgate')} | {ratio('peer')} | {tgt} | {met} |"
    )
table = "\n".join(lines)

# CPU seconds of the servers (store + gateway) per workload: less sensitive to
# the machine's other load than wall time.
CPU_ROWS = [
    ("aws_up", f"{MB} MiB upload, aws cli"), ("aws_down", f"{MB} MiB download, aws cli"),
    ("fast_up", f"{MB} MiB upload, aws-sdk-s3 16 parts"), ("fast_down", f"{MB} MiB download, aws-sdk-s3 16 parts"),
    ("aws_small_put", f"{N} x 4 KiB PUT, aws cli"), ("aws_small_get", f"{N} x 4 KiB GET, aws cli"),
    ("fast_small", f"{N} x 4 KiB PUT + GET + list, aws-sdk-s3 x16"),
    ("ranged", f"{RN} random 4 KiB ranged GETs"), ("list", f"list {LN} objects"),
    ("list_first", f"list {LN} objects, new sealgate instance, no index anywhere"),
    ("list_fresh", f"list {LN} objects, new sealgate instance (index at the store)"),
    ("list_cold", f"list {LN} objects, sealgate restarted (index kept)"),
]
cpu_lines = [
    "| workload | direct: store | sealgate: store + gateway (gateway) | peer: store + gateway (gateway) | sealgate / direct | peer / direct |",
    "| --- | --- | --- | --- | --- | --- |",
]
for wl, label in CPU_ROWS:
    med = {ep: (statistics.median(S[("cpu_" + wl, ep)]) if S.get(("cpu_" + wl, ep)) else None) for ep in EPS}
    if wl in ("list_first", "list_fresh", "list_cold") and S.get(("cpu_list", "direct")):
        med["direct"] = statistics.median(S[("cpu_list", "direct")])  # only sealgate restarts
    if med["direct"] is None:
        continue
    gw = {ep: (statistics.median(S[("gwcpu_" + wl, ep)]) if S.get(("gwcpu_" + wl, ep)) else None) for ep in EPS}

    def c(ep):
        if med[ep] is None:
            return ""
        return f"{med[ep]:.2f}" + (f" ({gw[ep]:.2f})" if gw[ep] is not None else "")

    def rr(ep):
        return f"{med[ep] / med['direct']:.2f}" if med[ep] is not None and med["direct"] > 0 else ""

    cpu_lines.append(f"| {label} | {c('direct')} | {c('sealgate')} | {c('peer')} | {rr('sealgate')} | {rr('peer')} |")
cpu_table = "\n".join(cpu_lines) if len(cpu_lines) > 2 else ""

# The gateway's own CPU per unit of work (the figure that matters when the
# store runs elsewhere): per GiB moved, per request, per object listed.
def _num(x):
    try:
        return float(x)
    except ValueError:
        return None


GIB = (_num(MB) or 1024.0) / 1024.0
PER_UNIT = [
    ("aws_up", "upload, aws cli (signed payload)", "s per GiB", GIB),
    ("aws_down", "download, aws cli", "s per GiB", GIB),
    ("fast_up", "upload, aws-sdk-s3 16 parts (unsigned payload)", "s per GiB", GIB),
    ("fast_down", "download, aws-sdk-s3 16 parts", "s per GiB", GIB),
    ("aws_small_put", "4 KiB PUT, aws cli", "ms per request", (_num(N) or 1.0) / 1000.0),
    ("aws_small_get", "4 KiB GET, aws cli", "ms per request", (_num(N) or 1.0) / 1000.0),
    ("ranged", "4 KiB ranged GET", "ms per request", (_num(RN) or 1.0) / 1000.0),
    ("list", "listing, warm", "µs per object", (_num(LN) or 1.0) / 1e6),
    ("list_cold", "listing, just restarted", "µs per object", (_num(LN) or 1.0) / 1e6),
    ("list_fresh", "listing, new instance (index at the store)", "µs per object", (_num(LN) or 1.0) / 1e6),
]


def per_unit(wl, ep, amount):
    v = S.get(("gwcpu_" + wl, ep))
    return statistics.median(v) / amount if v and amount else None


unit_lines = [
    "| gateway CPU | unit | sealgate | peer (rclone crypt) |",
    "| --- | --- | --- | --- |",
]
for wl, label, unit, amount in PER_UNIT:
    vals = {ep: per_unit(wl, ep, amount) for ep in ("sealgate", "peer")}
    if vals["sealgate"] is None:
        continue
    cells = [f"{v:.3g}" if v is not None else "" for v in vals.values()]
    unit_lines.append(f"| {label} | {unit} | {cells[0]} | {cells[1]} |")
unit_table = "\n".join(unit_lines) if len(unit_lines) > 2 else ""

mach = (
    f"{machine.get('cpus')} vCPU ({machine.get('cpu')}), {machine.get('ram_gib')} GiB RAM, "
    f"{machine.get('os')}, kernel {machine.get('kernel')}; rustc {machine.get('rustc')}, "
    f"{machine.get('aws')}, rclone {machine.get('rclone')}, {machine.get('garage')} (one node, lmdb); "
    f"sealgate {machine.get('sealgate')}; network: {machine.get('net')}; run {machine.get('date')}; "
    f"load average {machine.get('load_start')} at the start, {machine.get('load_end', '?')} at the end."
)
summary = (
    f"Machine: {mach}\n\nSizes: {machine.get('sizes')}. Cells: median (min-max) over the repetitions; "
    f"ratios are medians over the direct median (times: above 1 is slower). Memory: the largest VmHWM seen.\n\n"
    f"{table}\n"
)
if cpu_table:
    summary += (
        "\nCPU seconds (user + system, from /proc) the servers spent on each workload, median over the "
        "repetitions: Garage alone for direct; Garage plus the gateway, with the gateway's own share in "
        "brackets, for sealgate and the peer. Wall times above swing with the machine's other load; "
        "these do much less.\n\n" + cpu_table + "\n"
    )
if unit_table:
    summary += (
        "\nThe gateways' own CPU (user + system of the gateway process alone) per GiB moved, per request "
        "and per object listed: what a deployment with the store on other machines pays.\n\n"
        + unit_table + "\n"
    )
open(a.out, "w").write(summary)

# ---- chart -----------------------------------------------------------------------------
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

COL = {"direct": "#4c72b0", "sealgate": "#55a868", "peer": "#c44e52"}
NAME = {"direct": "direct (Garage)", "sealgate": "sealgate", "peer": "peer (rclone crypt)"}


def rate(wl, ep, amount):
    v = S.get((wl, ep))
    if not v:
        return None
    r = [amount / x for x in v if x > 0]
    return statistics.median(r), min(r), max(r)


def panel(ax, items, ylabel, title, log=False):
    width = 0.27
    for k, ep in enumerate(EPS):
        xs, ys, lo, hi = [], [], [], []
        for i, (wl, _, amount) in enumerate(items):
            r = rate(wl, ep, amount)
            if r:
                xs.append(i + (k - 1) * width)
                ys.append(r[0])
                lo.append(r[0] - r[1])
                hi.append(r[2] - r[0])
        if xs:
            ax.bar(xs, ys, width, yerr=[lo, hi], capsize=2, color=COL[ep], label=NAME[ep])
            for x, y, h in zip(xs, ys, hi):
                ax.annotate(f"{y:.0f}", (x, y + h), ha="center", va="bottom", fontsize=6,
                            xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(range(len(items)))
    ax.set_xticklabels([lab for _, lab, _ in items], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if log:
        ax.set_yscale("log")
    ax.grid(axis="y", alpha=0.3)


mb = float(MB) if MB != "?" else 1.0
n = float(N) if N != "?" else 1.0
rn = float(RN) if RN != "?" else 1.0
ln = float(LN) if LN != "?" else 1.0
fig, ((ax1, ax2), (ax3, ax4)) = plt.subplots(2, 2, figsize=(12, 9.2), gridspec_kw={"width_ratios": [1, 1.3]})
panel(ax1, [
    ("aws_up", "upload\naws cli", mb), ("aws_down", "download\naws cli", mb),
    ("fast_up", "upload\nsdk x16", mb), ("fast_down", "download\nsdk x16", mb),
], "MiB/s (higher is better)", f"{MB} MiB object")
panel(ax2, [
    ("aws_small_put", "4 KiB PUT\naws cli", n), ("fast_small_put", "4 KiB PUT\nsdk x16", n),
    ("fast_small_get", "4 KiB GET\nsdk x16", n), ("ranged", "4 KiB ranged\nGET x1", rn),
    ("list", "listing\n(objects/s)", ln),
], "operations/s (log scale)", "small objects, ranges, listing", log=True)


def cpu_panel(ax, items, ylabel, title):
    width = 0.35
    for k, ep in enumerate(("sealgate", "peer")):
        xs, ys = [], []
        for i, (wl, _, amount) in enumerate(items):
            v = per_unit(wl, ep, amount)
            if v is not None:
                xs.append(i + (k - 0.5) * width)
                ys.append(v)
        if xs:
            ax.bar(xs, ys, width, color=COL[ep], label=NAME[ep])
            for x, y in zip(xs, ys):
                ax.annotate(f"{y:.2g}", (x, y), ha="center", va="bottom", fontsize=6,
                            xytext=(0, 2), textcoords="offset points")
    ax.set_xticks(range(len(items)))
    ax.set_xticklabels([lab for _, lab, _ in items], fontsize=8)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(axis="y", alpha=0.3)


cpu_panel(ax3, [
    ("aws_up", "upload\naws cli", GIB), ("aws_down", "download\naws cli", GIB),
    ("fast_up", "upload\nsdk x16", GIB), ("fast_down", "download\nsdk x16", GIB),
], "gateway CPU s per GiB (lower is better)", "the gateway's own CPU per GiB")
cpu_panel(ax4, [
    ("aws_small_put", "4 KiB PUT\nms/req", (_num(N) or 1.0) / 1000.0),
    ("aws_small_get", "4 KiB GET\nms/req", (_num(N) or 1.0) / 1000.0),
    ("ranged", "ranged GET\nms/req", (_num(RN) or 1.0) / 1000.0),
    ("list", "listing\nµs/object", (_num(LN) or 1.0) / 1e6),
], "gateway CPU per unit (lower is better)", "the gateway's own CPU per request and per listed object")
ax3.legend(fontsize=8)
ax1.legend(fontsize=8)
reps = machine.get("sizes", "").split("REPEATS=")[-1].split()[0]
fig.suptitle(f"sealgate vs direct Garage vs rclone crypt over Garage: median of {reps} run(s), "
             f"bars min-max ({machine.get('cpus')} shared vCPU, {machine.get('date')})", fontsize=10)
fig.tight_layout()
fig.savefig(a.chart, dpi=110)
if a.png:
    fig.savefig(a.png, dpi=110)

# ---- doc -------------------------------------------------------------------------------
if a.doc:
    doc = open(a.doc).read()
    gen = (
        "<!-- bench:begin (generated by bench/run.sh; edit the script, not this block) -->\n"
        f"{summary}\n![throughput: direct, sealgate, peer](performance.png)\n"
        "<!-- bench:end -->"
    )
    pat = re.compile(r"<!-- bench:begin.*?<!-- bench:end -->", re.S)
    if pat.search(doc):
        doc = pat.sub(lambda _: gen, doc)
    else:
        doc = doc.rstrip("\n") + "\n\n## End to end: direct Garage, sealgate, the peer (`bench/run.sh`)\n\n" + gen + "\n"
    open(a.doc, "w").write(doc)
