#!/usr/bin/python3
"""iolog.py - timestamps for lsvd-crash logs, and what happened in a window.

`lsvd-crash run` logs its requests (S/C lines for writes and write-zeroes,
FS/FC for flushes; see tests/crash/lsvd-crash.c) without times.  `watch`
follows such a log as it grows and stamps each line with the wall-clock time
it was seen (polled every 5 ms, so a latency is known to about 10 ms);
`report` pairs submissions with completions and sums up a time window (an
outage).

    iolog.py watch LOG OUT      until SIGTERM: "TIME LINE" for each new line
    iolog.py report OUT T0 T1   key=value lines (shell-sourceable):
        done, errors            completions, and those with ret != 0
        in_window               completions with T0 <= time < T1
        in_window_flushes       of them, flushes
        after_window            completions at or after T1
        max_lat, max_lat_at     the longest latency (s) of a request that
                                completed, and when it completed (s after T0)
        max_pending             the longest a request submitted before T1
                                had waited at the end of OUT without completing

Python 3 standard library only.
"""
import signal
import sys
import time


def watch(log, out):
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    with open(out, "w") as o:
        f = None
        buf = b""
        while True:
            if f is None:
                try:
                    f = open(log, "rb")
                except FileNotFoundError:
                    pass
            if f is not None:
                data = f.read()
                if data:
                    now = time.time()
                    buf += data
                    *lines, buf = buf.split(b"\n")
                    for ln in lines:
                        o.write(f"{now:.3f} {ln.decode()}\n")
                    o.flush()
            if stop:
                return 0
            time.sleep(0.005)


def report(out, t0, t1):
    sub, done, errors, in_win, in_win_fl, after = {}, 0, 0, 0, 0, 0
    max_lat, max_at, last = 0.0, 0.0, t1
    with open(out) as f:
        for ln in f:
            w = ln.split()
            if len(w) < 3:
                continue
            t = float(w[0])
            last = max(last, t)
            kind, rid = w[1], w[2]
            if kind in ("S", "FS"):
                sub[rid] = t
            elif kind in ("C", "FC") and rid in sub:
                done += 1
                if len(w) > 3 and w[3] != "0":
                    errors += 1
                lat = t - sub.pop(rid)
                if lat > max_lat:
                    max_lat, max_at = lat, t - t0
                if t0 <= t < t1:
                    in_win += 1
                    in_win_fl += kind == "FC"
                elif t >= t1:
                    after += 1
    pending = [last - s for s in sub.values() if s < t1]
    print(f"done={done}\nerrors={errors}\nin_window={in_win}\n"
          f"in_window_flushes={in_win_fl}\nafter_window={after}\n"
          f"max_lat={max_lat:.2f}\nmax_lat_at={max_at:.2f}\n"
          f"max_pending={max(pending, default=0.0):.2f}")
    return 0


def main():
    if len(sys.argv) == 4 and sys.argv[1] == "watch":
        return watch(sys.argv[2], sys.argv[3])
    if len(sys.argv) == 5 and sys.argv[1] == "report":
        return report(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
    sys.stderr.write("usage: iolog.py watch LOG OUT | report OUT T0 T1\n")
    return 2


if __name__ == "__main__":
    sys.exit(main())
