#!/usr/bin/python3
"""test-s3proxy.py - the proxy's own tests, against a fake upstream.

Starts a small HTTP/1.1 server (threads, stdlib) that answers by path:
/len (Content-Length body), /chunked (chunked body), /eof (body to EOF,
then close), PUT anything (echoes the body's length and SHA-256), and runs
s3proxy.py in front of it.  Checks forwarding (keep-alive, the three body
kinds, a 3 MiB PUT, Expect: 100-continue), every fault action, n= and p=
rules, the seed, each outage mode, and a dead upstream.  No S3 needed:
seconds, exit 0 on success, 1 with the first failed check.
"""
import hashlib
import http.client
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))
PROXY = os.path.join(HERE, "s3proxy.py")
BODY = bytes(range(256)) * 4096          # 1 MiB


class Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/chunked":
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(0, len(BODY), 100000):
                part = BODY[i:i + 100000]
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        elif self.path == "/eof":
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(BODY)
            self.close_connection = True
        else:
            self.send_response(200)
            self.send_header("Content-Length", str(len(BODY)))
            self.end_headers()
            self.wfile.write(BODY)

    def do_PUT(self):
        n = int(self.headers["Content-Length"])
        if self.headers.get("Expect", "").lower() == "100-continue":
            self.send_response_only(100)
            self.end_headers()
        h = hashlib.sha256()
        left = n
        while left:
            d = self.rfile.read(min(left, 65536))
            h.update(d)
            left -= len(d)
        out = f"{n} {h.hexdigest()}".encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def handle_expect_100(self):
        return True                     # do_PUT sends the 100 itself


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass                            # the proxy resets connections


failures = 0


def check(what, ok, detail=""):
    global failures
    print(("ok   " if ok else "FAIL ") + what + (f": {detail}" if detail and not ok else ""))
    if not ok:
        failures += 1
        raise SystemExit(1)


def main():
    tmp = tempfile.mkdtemp(prefix="s3proxy-test.")
    up = Server(("127.0.0.1", 0), Upstream)
    threading.Thread(target=up.serve_forever, daemon=True).start()
    ctl_path, ready = os.path.join(tmp, "ctl"), os.path.join(tmp, "port")
    proc = subprocess.Popen([sys.executable, PROXY, "serve", "--upstream",
                             f"http://127.0.0.1:{up.server_port}",
                             "--control", ctl_path, "--ready", ready,
                             "--seed", "7"], stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            if os.path.exists(ready):
                break
            time.sleep(0.05)
        port = int(open(ready).read())
        run(port, ctl_path, up)
    finally:
        proc.terminate()
        proc.wait(10)
        up.shutdown()
        for f in os.listdir(tmp):
            os.unlink(os.path.join(tmp, f))
        os.rmdir(tmp)
    print("test-s3proxy: PASS")
    return 0


def ctl(path, line):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(line.encode() + b"\n")
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            return out.decode()
        out += d


def stats(path):
    return {k: int(v) for k, v in
            (ln.split() for ln in ctl(path, "stats").splitlines())}


def run(port, cp, up):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)

    def get(path, conn=None):
        conn = conn or c
        conn.request("GET", path, headers={"Host": "store.example:7480"})
        r = conn.getresponse()
        return r.status, r.read()

    # forwarding, keep-alive, the three body kinds
    for path in ("/b/len", "/b/chunked", "/b/len", "/b/eof"):
        st, body = get(path)
        check(f"GET {path} forwarded", st == 200 and body == BODY, st)
    c.close()
    s = stats(cp)
    check("keep-alive: 4 GETs on 1 connection", s["connections"] == 1 and
          s["fwd_get"] == 4, s)
    big = os.urandom(3 << 20)
    for hdrs in ({}, {"Expect": "100-continue"}):
        c.request("PUT", "/b/k", body=big, headers=hdrs)
        r = c.getresponse()
        check(f"PUT 3 MiB {hdrs}", r.read().decode() ==
              f"{len(big)} {hashlib.sha256(big).hexdigest()}")

    # every action, by n=
    ctl(cp, "fault get 503 n=1")
    st, body = get("/b/len")
    check("503 SlowDown", st == 503 and b"<Code>SlowDown</Code>" in body)
    ctl(cp, "fault get 500 n=1")
    st, body = get("/b/len")
    check("500 InternalError", st == 500 and b"InternalError" in body)
    check("keep-alive after an error reply", get("/b/len")[0] == 200)
    for action in ("reset", "reset-mid"):
        ctl(cp, f"fault get {action} n=1")
        try:
            get("/b/len")
            check(action, False, "answered")
        except (ConnectionError, http.client.IncompleteRead,
                http.client.RemoteDisconnected) as e:
            check(f"{action}: {type(e).__name__}", True)
        c.close()
    ctl(cp, "fault put reset-mid n=1")
    try:
        c.request("PUT", "/b/k", body=b"x" * 10)
        c.getresponse().read()
        check("PUT reset-mid", False, "answered")
    except (ConnectionError, http.client.HTTPException) as e:
        check(f"PUT reset-mid: {type(e).__name__}", True)
    c.close()
    ctl(cp, "fault get stall n=1")
    c2 = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
    try:
        get("/b/len", c2)
        check("stall", False, "answered")
    except socket.timeout:
        check("stall: the client times out", True)
    c2.close()
    ctl(cp, "fault any delay=300 n=1")
    t = time.monotonic()
    st, _ = get("/b/len")
    check("delay=300", st == 200 and time.monotonic() - t >= 0.3)
    check("n=1 rules are spent", get("/b/len")[0] == 200)

    # p= with a seed: the same faults again after reseeding
    def pattern():
        ctl(cp, "clear")
        ctl(cp, "seed 99")
        ctl(cp, "fault head 503 p=0.5")
        out = []
        for _ in range(40):
            c.request("HEAD", "/b/len")
            r = c.getresponse()
            r.read()
            out.append(r.status)
        return out
    p1, p2 = pattern(), pattern()
    n503 = p1.count(503)
    check(f"p=0.5: {n503} of 40", 8 <= n503 <= 32)
    check("the same seed, the same faults", p1 == p2)
    check("a bad command is an error", ctl(cp, "fault get 404").startswith("error"))
    ctl(cp, "clear")

    # outages
    check("outage refuse", ctl(cp, "outage 1").startswith("outage"))
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        check("refuse: connect refused", False)
    except ConnectionRefusedError:
        check("refuse: connect refused", True)
    time.sleep(1.2)
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    check("listening again after the outage", get("/b/len")[0] == 200)
    ctl(cp, "outage 5 503")
    check("outage 503", get("/b/len")[0] == 503)
    ctl(cp, "clear")
    check("clear ends an outage", get("/b/len")[0] == 200)
    ctl(cp, "outage 5 reset")
    try:
        get("/b/len")
        check("outage reset", False, "answered")
    except (ConnectionError, http.client.HTTPException):
        check("outage reset", True)
    ctl(cp, "clear")
    c.close()
    s = stats(cp)
    check("counters", s["inj_503_get"] == 1 and s["inj_reset_get"] == 1 and
          s["inj_stall_get"] == 1 and s["delay_ms"] == 300 and
          s["outages"] == 3, s)

    # a dead upstream: the client gets a reset, the proxy lives on
    up.shutdown()
    up.server_close()
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        get("/b/len")
        check("dead upstream", False, "answered")
    except (ConnectionError, http.client.HTTPException):
        check("dead upstream: reset", True)
    check("proxy alive", ctl(cp, "ping") == "ok\n")


if __name__ == "__main__":
    sys.exit(main())
