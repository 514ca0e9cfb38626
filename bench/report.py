#!/usr/bin/python3
"""Turn the rows of scripts/bench.sh into docs/bench: README.md, results.csv
and PNG plots (gnuplot).

    report.py ROWS.csv META.csv OUTDIR

A row: id,section,workload,system,metric,value,unit,ref,target,note.  ref is
';'-separated ids of reference rows (or =NUMBER); target is one condition per
ref on value/ref (">=0.9", "<=1"), or empty.  Nothing here is measured or
assumed: every number printed comes from a row.
"""
import csv
import os
import subprocess
import sys

FIELDS = ["id", "section", "workload", "system", "metric", "value", "unit",
          "ref", "target", "note"]
SYSTEMS = ["raw", "qcow2", "lsvd", "rbd", "s3backer"]


def load(path):
    rows = []
    with open(path, newline="") as f:
        for r in csv.reader(f):
            if not r or r[0] == "id":
                continue
            rows.append(dict(zip(FIELDS, r)))
    return rows


def num(s):
    try:
        return float(s)
    except ValueError:
        return None


def fmt(v):
    """Three significant digits, no exponent for the usual ranges."""
    if v is None:
        return "-"
    a = abs(v)
    if a == 0:
        return "0"
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 1:
        return f"{v:.3g}" if a < 100 else f"{v:.0f}"
    if a >= 0.001:
        return f"{v:.3g}"
    return f"1/{1 / v:,.0f}"


def ratio_str(r):
    return "-" if r is None else f"{r:.3g}x"


def refs(row, by_id):
    """[(ref label, ref value, target or '')] for a row."""
    out = []
    rs = [x for x in row["ref"].split(";")] if row["ref"] else []
    ts = row["target"].split(";") if row["target"] else []
    for i, ref in enumerate(rs):
        if not ref:
            continue
        tgt = ts[i] if i < len(ts) else ""
        if ref.startswith("="):
            out.append((ref[1:], num(ref[1:]), tgt))
        else:
            r = by_id.get(ref)
            label = (f"{r['system']} ({r['workload']})" if r and r["workload"] != row["workload"]
                     else (r["system"] if r else ref))
            out.append((label, num(r["value"]) if r else None, tgt))
    return out


def check(ratio, tgt):
    if not tgt:
        return ""
    if ratio is None:
        return "NOT measured"
    op, lim = tgt[:2], float(tgt[2:])
    ok = ratio >= lim if op == ">=" else ratio <= lim
    return "met" if ok else "**NOT met**"


def targets_table(rows, by_id):
    out = ["| figure | value | reference | ratio | target | status |",
           "|---|---|---|---|---|---|"]
    n = bad = 0
    for row in rows:
        for label, rv, tgt in refs(row, by_id):
            if not tgt:
                continue
            v = num(row["value"])
            ratio = v / rv if v is not None and rv else None
            st = check(ratio, tgt)
            n += 1
            bad += st != "met"
            out.append(f"| {row['section']} {row['workload']} {row['system']} {row['metric']} "
                       f"| {fmt(v)} {row['unit']} | {label}: {fmt(rv)} | {ratio_str(ratio)} "
                       f"| {tgt[:2]} {tgt[2:]}x | {st} |")
    return out, n, bad


def matrix(rows, by_id, metric, workloads):
    """fio: one line per workload, one column per system, value (x raw)."""
    systems = [s for s in SYSTEMS if any(r["system"] == s for r in rows)]
    out = ["| workload | " + " | ".join(systems) + " |",
           "|---" * (len(systems) + 1) + "|"]
    for w in workloads:
        cells = []
        for s in systems:
            r = by_id.get(f"fio/{w}/{s}/{metric}")
            if not r:
                cells.append("-")
                continue
            v = num(r["value"])
            ref = by_id.get(f"fio/{w}/raw/{metric}")
            rv = num(ref["value"]) if ref and s != "raw" else None
            cells.append(fmt(v) + (f" ({v / rv:.2g}x)" if rv else ""))
        out.append(f"| {w} | " + " | ".join(cells) + " |")
    return out


def rows_table(rows, by_id):
    out = ["| workload | system | metric | value | reference | ratio | note |",
           "|---|---|---|---|---|---|---|"]
    for row in rows:
        v = num(row["value"])
        rs = refs(row, by_id)
        refcol = "; ".join(f"{label}: {fmt(rv)}" for label, rv, _ in rs) or "-"
        ratios = "; ".join(ratio_str(v / rv if v is not None and rv else None)
                           for _, rv, _ in rs) or "-"
        out.append(f"| {row['workload']} | {row['system']} | {row['metric']} "
                   f"| {fmt(v)} {row['unit']} | {refcol} | {ratios} | {row['note']} |")
    return out


def gnuplot(outdir, name, title, ylabel, header, lines, logy=True):
    """A clustered bar chart: header = [x label, series...], lines = [[x, v...]]."""
    if not lines:
        return None
    dat = os.path.join(outdir, f".{name}.dat")
    with open(dat, "w") as f:
        f.write(" ".join(f'"{h}"' for h in header) + "\n")
        for ln in lines:
            f.write(" ".join(f'"{x}"' if i == 0 else (str(x) if x is not None else "?")
                             for i, x in enumerate(ln)) + "\n")
    script = f"""
set terminal pngcairo size 1200,560 noenhanced font ",10"
set output "{os.path.join(outdir, name + '.png')}"
set title "{title}"
set ylabel "{ylabel}"
set style data histogram
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set boxwidth 0.9
set xtics rotate by -30 left
set key outside right top
set grid ytics
set datafile missing "?"
{"set logscale y" if logy else "set yrange [0:*]"}
plot for [i=2:{len(header)}] "{dat}" using i:xtic(1) title columnheader(i)
"""
    try:
        subprocess.run(["gnuplot"], input=script.encode(), check=True,
                       stderr=subprocess.PIPE)
    except (OSError, subprocess.CalledProcessError) as e:
        print(f"report: gnuplot {name}: {e}", file=sys.stderr)
        return None
    finally:
        os.unlink(dat)
    return name + ".png"


def series(by_id, section, workloads, systems, metric):
    return [[w] + [num(by_id[k]["value"]) if (k := f"{section}/{w}/{s}/{metric}") in by_id else None
                   for s in systems] for w in workloads]


def main():
    rows_path, meta_path, outdir = sys.argv[1:4]
    rows = load(rows_path)
    by_id = {r["id"]: r for r in rows}
    meta = {}
    with open(meta_path, newline="") as f:
        for r in csv.reader(f):
            if r:
                meta[r[0]] = ",".join(r[1:])
    os.makedirs(outdir, exist_ok=True)
    with open(os.path.join(outdir, "results.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FIELDS)
        for r in rows:
            w.writerow([r[k] for k in FIELDS])

    fio = [r for r in rows if r["section"] == "fio"]
    workloads = list(dict.fromkeys(r["workload"] for r in fio))
    systems = [s for s in SYSTEMS if any(r["system"] == s for r in fio)]
    md = ["# LSVD benchmarks", "",
          "Written by `make bench` (`scripts/bench.sh`, then `bench/report.py`); "
          "every figure below is a row of [results.csv](results.csv), measured in the run "
          "described here, with its reference measured side by side in the same run.", ""]
    if meta.get("quick") == "1":
        md += ["**Quick mode (BENCH_QUICK=1): every run cut to a few seconds; "
               "a smoke test of the harness, not figures to quote.**", ""]
    md += ["Run: `make bench` (all sections, at most 30 minutes), or "
           "`scripts/bench.sh SECTION...` (extmap write fio s3 recovery; the other "
           "sections' rows are kept), `BENCH_QUICK=1` for a smoke run of a few minutes, "
           "`BENCH_SYSTEMS=\"raw lsvd\"` to restrict the fio systems.  Needs "
           "`scripts/setup-deps.sh` (fio, gnuplot-nox, s3backer) and the Ceph packages "
           "`scripts/rgw.sh` installs; no ceph-mgr.", "",
           "The machine is shared (2 cores; other jobs ran beside this one: see the load "
           "averages below), so single figures are noisy; in the fio section the systems "
           "take turns workload by workload, so each ratio compares runs made seconds "
           "apart.", ""]
    md += ["| | |", "|---|---|"] + [f"| {k} | {v} |" for k, v in meta.items()] + [""]

    md += ["## What the references are (read before the ratios)", "",
           "- The Ceph cluster is `scripts/rgw.sh`'s: one mon, one **memstore** OSD (RAM, "
           "8 GiB here), radosgw, all on 127.0.0.1, on the same 2 cores as the system "
           "measured: lsvd's write-back (RGW and OSD) takes CPU from its own writes, as "
           "rbd's OSD does from rbd's.  RBD and the RGW store into RAM, "
           "not a disk: rbd's figures are those of a RAM-backed OSD one loopback hop away, "
           "far faster than a real cluster; lsvd and s3backer reach the same OSD through "
           "the RGW.",
           "- raw and qcow2 are files on the disk that holds lsvd's journal and read cache, "
           "opened with O_DIRECT: the physical limit of that disk through the same NBD path.",
           "- Cache hits (s3 section): lsvd's read cache is read with buffered pread; the "
           "reference is the raw file read buffered too, after one full read (both warm in "
           "the page cache: like for like); the O_DIRECT figure is shown beside it.  In the "
           "fio section lsvd's reads come from its journal or read cache (just written), "
           "against raw and qcow2 with O_DIRECT: not like for like, for reads.",
           "- CPU per I/O: perf's instruction counter is not available in this VM; the "
           "figure is user+system CPU seconds of the serving process per I/O (qsd for raw, "
           "qcow2 and lsvd, which includes the NBD server; s3backer's process; for rbd the "
           "fio process with librbd, the OSD's CPU not counted).",
           "- Every fio write carries fresh random data (`--refill_buffers`); the s3 "
           "section's qemu-img bench writes carry qemu-img's pattern (compressible).",
           ""]
    tt, n, bad = targets_table(rows, by_id)
    md += ["## Targets", "",
           f"{n} targets, {n - bad} met, {bad} not met.  ratio = value / reference.", ""] + tt + [""]

    if fio:
        md += ["## Block I/O: fio", "",
               "fio " + meta.get("fio", "") + " against each system through the path a VM "
               "would use: raw (a raw file on the cache's disk, the physical limit), qcow2 "
               "(on that disk) and lsvd (on the run's RGW) are qemu-storage-daemon NBD "
               "exports (`ioengine=nbd`; files with cache.direct=on, aio=io_uring); rbd is "
               "fio's librbd engine on the same Ceph cluster (our QEMU has no rbd driver); "
               "s3backer is its FUSE file on the same RGW (64 KiB blocks, default block "
               "cache) with libaio and O_DIRECT.  Reads run for the runtime over the span "
               "filled by seqwrite-1m; writes stop at the write cap or the runtime.  "
               "lsvd's journal is the default 1 GiB, more than a workload writes (the "
               "write-back section measures writes beyond the cache).  "
               "lsvd's reads here are served from its journal/read cache (the span was just "
               "written).  In parentheses: the ratio to raw.", ""]
        for metric, title in (("iops", "IOPS"), ("mb_s", "MB/s"), ("lat_mean", "mean latency (us)"),
                              ("lat_p99", "p99 completion latency (us)"),
                              ("cpu_per_io", "CPU per I/O (us; qsd/s3backer process, rbd: fio+librbd)")):
            md += [f"### {title}", ""] + matrix(fio, by_id, metric, workloads) + [""]
        rand = [w for w in workloads if w.startswith("rand")]
        plots = [
            gnuplot(outdir, "fio-iops", "fio random I/O, IOPS (log scale)", "IOPS",
                    ["workload"] + systems, series(by_id, "fio", rand, systems, "iops")),
            gnuplot(outdir, "fio-seq", "fio sequential 1M and fsync mix, MB/s (log scale)", "MB/s",
                    ["workload"] + systems,
                    series(by_id, "fio", [w for w in workloads if not w.startswith("rand")],
                           systems, "mb_s")),
            gnuplot(outdir, "fio-cpu", "CPU per I/O, us (log scale)", "us",
                    ["workload"] + systems, series(by_id, "fio", workloads, systems, "cpu_per_io")),
        ]
        md += [f"![{p}]({p})" for p in plots if p] + [""]

    be = [r for r in rows if r["section"] == "backend"]
    if be:
        md += ["## Backend efficiency", "",
               "Per fio write workload (one session each, counted until the session closed, "
               "so everything is in the store): the OSD's write operations (`op_w + op_rw` "
               "from `ceph --admin-daemon osd.0.asok perf dump`, all clients of the cluster: "
               "for lsvd and s3backer that includes the RGW's own index and metadata "
               "writes) per client write, and lsvd's own S3 requests (`lsvd stats`).", ""]
        md += rows_table(be, by_id) + [""]
        bw = list(dict.fromkeys(r["workload"] for r in be))
        p = gnuplot(outdir, "backend", "OSD write ops per client write (log scale)", "ops/write",
                    ["workload", "lsvd", "rbd", "s3backer"],
                    series(by_id, "backend", bw, ["lsvd", "rbd", "s3backer"], "osd_writes_per_write"))
        md += [f"![{p}]({p})", ""] if p else []

    for sec, title, text in (
            ("write", "Block I/O: qemu-img bench", "`qemu-img bench` straight on the "
             "block driver (no NBD): lsvd on a local dir:// store against a raw file with "
             "O_DIRECT and io_uring, same disk."),
            ("s3", "Write-back, read miss, read cache hits", "lsvd on the run's RGW against "
             "the bare store (bench/s3put-bench.c, the core's backend) and a raw file."),
            ("recovery", "Recovery", "Open time (qemu-storage-daemon start until its NBD "
             "export exists) after kill -9 with a full journal, against a clean open."),
            ("extmap", "Extent map", "bench/extmap-bench.c: memory per extent and time per "
             "operation (no reference: absolute figures).")):
        sr = [r for r in rows if r["section"] == sec]
        if sr:
            md += [f"## {title}", "", text, ""] + rows_table(sr, by_id) + [""]
    rec = [r for r in rows if r["section"] == "recovery" and r["workload"].startswith("journal-")]
    if rec:
        js = list(dict.fromkeys(r["workload"] for r in rec))
        p = gnuplot(outdir, "recovery", "open time after kill -9 vs clean, by journal size",
                    "seconds", ["journal", "after kill -9", "clean"],
                    [[j, num(by_id.get(f"recovery/{j}/lsvd/crash_open_s", {}).get("value", "")),
                      num(by_id.get(f"recovery/{j}/lsvd/clean_open_s", {}).get("value", ""))]
                     for j in js], logy=False)
        md += [f"![{p}]({p})", ""] if p else []
    with open(os.path.join(outdir, "README.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    print(f"report: {len(rows)} rows, {n} targets, {n - bad} met, {bad} not met")


if __name__ == "__main__":
    main()
