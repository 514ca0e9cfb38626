#!/usr/bin/python3
"""s3proxy.py - an HTTP/1.1 fault-injecting proxy in front of an S3 server.

Used by tests/fault/test-s3-faults.sh to make an S3 store (Ceph RGW) fail in
the ways a real one does: error replies, connection resets, stalls, latency
and outages, by rule and at run time.  Python 3 standard library only.

    s3proxy.py serve --upstream http://127.0.0.1:7480 --control SOCK
                     [--port N] [--seed S] [--rules FILE] [--ready FILE]
        Listen on 127.0.0.1:N (0 or none: a free port) and forward every
        request to the upstream, one upstream connection per client
        connection.  Prints "s3proxy: listening on 127.0.0.1:PORT" and writes
        PORT to the --ready file once both sockets accept.  Point lsvd's
        `[backend] endpoint` at http://127.0.0.1:PORT: the Host header is
        forwarded unchanged, and SigV4 signs the Host the client sent, so
        signatures still match upstream.  Runs until SIGTERM/SIGINT.
    s3proxy.py ctl SOCK COMMAND...
        Send one command line to a running proxy and print its answer; exit
        status 1 if the answer starts with "error".

Control commands (one line each, on the unix socket SOCK; --rules FILE runs
one per line at start):

    fault OP ACTION [p=P] [n=N]   add a rule; prints its number
    outage SECONDS [MODE]         the store is down for SECONDS from now
    clear                         drop every rule and end an outage
    rules                         list the rules, with how often each fired
    stats                         the counters, "key value" per line
    seed S                        reseed the random generator
    ping                          "ok"

OP is put, get, head, delete, list (a GET on the bucket: ListObjectsV2),
post, or any.  ACTION is one of

    500        reply 500 InternalError (an S3 <Error> body)
    503        reply 503 SlowDown
    reset      reset the connection (RST: SO_LINGER 0) instead of answering
    reset-mid  forward the request, then send half of the response (half the
               body, or half the head if it has no body) and reset: the
               request was done upstream but the client never hears so
    stall      read the request, never answer; the connection is held until
               the client gives up (its timeout) or for 600 s
    delay=MS   wait MS milliseconds, then go on (latency)

A rule fires on a matching request with probability P (default 1), at most
N times (default: for ever); "n=3" alone is "the next 3 requests".  Rules
are tried in the order they were added: every delay rule that fires adds its
latency, and the first other rule that fires decides the fault; a request no
fault rule fires for is forwarded.  The random generator is seeded (--seed,
`seed`), so a single client's sequence of faults repeats.

Outage MODEs (default refuse):

    refuse   the listening socket is closed (connects are refused:
             ECONNREFUSED) and every open connection is reset; the proxy
             listens again when the outage ends
    reset    connections are accepted and reset at once, open ones reset
    503      every request gets 503 SlowDown
    stall    every request is read and never answered (as `stall` above)

During an outage the rules do not apply.  `stats` counts requests per
operation (req_OP), requests forwarded (fwd_OP), faults injected
(inj_ACTION_OP, delays as delay_OP and delay_ms), requests and connections
turned away by an outage (outage_req, outage_conn), connections accepted,
bytes each way, and outages started.

One client connection gets one upstream connection, opened when its first
request is forwarded and again after the upstream closes it.  Bodies are
streamed in 256 KiB pieces (never held whole); request bodies need a
Content-Length or chunked encoding; response bodies may have either or run
to EOF.  Threads: one, asyncio.
"""
import argparse
import asyncio
import os
import random
import signal
import socket
import struct
import sys
import time

PIECE = 1024 * 1024
BUFFER = 4 * 1024 * 1024       # a stream's buffer (asyncio's "limit")
STALL_MAX = 600.0
OPS = ("put", "get", "head", "delete", "list", "post", "any")
ERRORS = {
    500: ("Internal Server Error", "InternalError",
          "We encountered an internal error. Please try again."),
    503: ("Service Unavailable", "SlowDown",
          "Please reduce your request rate."),
}


class Reset(Exception):
    """The client connection is to be reset (or is gone)."""


class Rule:
    def __init__(self, op, action, p, n):
        self.op, self.action, self.p, self.n = op, action, p, n
        self.fired = 0

    def describe(self):
        n = "" if self.n is None else f" n={self.n}"
        return f"{self.op} {self.action} p={self.p}{n} fired={self.fired}"


def parse_rule(words):
    """fault OP ACTION [p=P] [n=N] -> Rule (raises ValueError)."""
    if len(words) < 2:
        raise ValueError("usage: fault OP ACTION [p=P] [n=N]")
    op, action = words[0].lower(), words[1].lower()
    if op not in OPS:
        raise ValueError(f"unknown operation {op!r} (one of {' '.join(OPS)})")
    if action.startswith("delay="):
        if int(action[6:]) < 0:
            raise ValueError("delay must be >= 0 ms")
    elif action not in ("500", "503", "reset", "reset-mid", "stall"):
        raise ValueError(f"unknown action {action!r}")
    p, n = 1.0, None
    for w in words[2:]:
        k, _, v = w.partition("=")
        if k == "p":
            p = float(v)
            if not 0.0 <= p <= 1.0:
                raise ValueError("p must be in [0, 1]")
        elif k == "n":
            n = int(v)
            if n < 0:
                raise ValueError("n must be >= 0")
        else:
            raise ValueError(f"unknown option {w!r}")
    return Rule(op, action, p, n)


def classify(method, target):
    """The S3 operation of a request, as the rules name it."""
    m = method.upper()
    path, _, query = target.partition("?")
    if m == "GET":
        # ListObjectsV2 is a GET on the bucket itself: /BUCKET or /BUCKET/
        if "list-type=" in query or path.strip("/").count("/") == 0:
            return "list"
        return "get"
    return {"PUT": "put", "HEAD": "head", "DELETE": "delete",
            "POST": "post"}.get(m, "any")


def headers_of(head):
    """Request or status line, and the header lines as (name, value)."""
    lines = head.decode("latin-1").split("\r\n")
    hdrs = []
    for ln in lines[1:]:
        if ln:
            k, _, v = ln.partition(":")
            hdrs.append((k.strip().lower(), v.strip()))
    return lines[0], hdrs


def body_kind(hdrs):
    """('chunked', None), ('length', N) or ('none', None)."""
    for k, v in hdrs:
        if k == "transfer-encoding" and "chunked" in v.lower():
            return "chunked", None
    for k, v in hdrs:
        if k == "content-length":
            return "length", int(v)
    return "none", None


def reset_writer(writer):
    """Close with an RST (SO_LINGER 0) rather than a FIN."""
    sock = writer.get_extra_info("socket")
    try:
        if sock is not None:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                            struct.pack("ii", 1, 0))
    except OSError:
        pass
    writer.transport.abort()


async def read_head(reader):
    """One HTTP head (through the blank line), or None at a clean EOF."""
    try:
        return await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as e:
        if not e.partial:
            return None
        raise Reset()
    except asyncio.LimitOverrunError:
        raise Reset()


async def relay_body(reader, kind, length, sink, limit=None):
    """Copy a body from reader to sink(bytes) (a coroutine).  limit: stop
    after that many bytes (for reset-mid) and return False.  Returns True
    when the whole body went through."""
    sent = 0

    async def put(data):
        nonlocal sent
        if limit is not None and sent + len(data) > limit:
            await sink(data[:max(0, limit - sent)])
            sent = limit
            return False
        await sink(data)
        sent += len(data)
        return True

    async def relay(left):
        # exactly @left bytes; False: the transfer was cut
        while left > 0:
            data = await reader.read(min(PIECE, left))
            if not data:
                raise Reset()
            left -= len(data)
            if not await put(data):
                return False
        return True

    if kind == "length":
        return await relay(length)
    if kind == "chunked":
        while True:
            line = await reader.readuntil(b"\r\n")
            size = int(line.split(b";")[0].strip(), 16)
            if not await put(line):
                return False
            if size == 0:
                # trailers, up to the blank line
                while True:
                    t = await reader.readuntil(b"\r\n")
                    if not await put(t):
                        return False
                    if t == b"\r\n":
                        return True
            if not await relay(size + 2):    # the data and its CRLF
                return False
    # no length: to EOF
    while True:
        data = await reader.read(PIECE)
        if not data:
            return True
        if not await put(data):
            return False


def error_reply(code, target):
    reason, s3code, msg = ERRORS[code]
    body = ("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>"
            f"{s3code}</Code><Message>{msg}</Message><Resource>"
            f"{target.split('?')[0]}</Resource><RequestId>s3proxy"
            "</RequestId></Error>").encode()
    head = (f"HTTP/1.1 {code} {reason}\r\nContent-Type: application/xml\r\n"
            f"Content-Length: {len(body)}\r\nx-amz-request-id: s3proxy\r\n"
            "\r\n").encode()
    return head + body


class Proxy:
    def __init__(self, upstream, port, seed):
        host, _, p = upstream.split("://", 1)[-1].rstrip("/").partition(":")
        self.up_host, self.up_port = host, int(p or 80)
        self.port = port
        self.rng = random.Random(seed)
        self.rules = []
        self.outage_end = 0.0
        self.outage_mode = None
        self.outage_task = None
        self.server = None
        self.conns = set()              # client writers
        self.stats = {}

    # ---- counters and rules
    def count(self, key, n=1):
        self.stats[key] = self.stats.get(key, 0) + n

    def in_outage(self):
        return time.monotonic() < self.outage_end

    def decide(self, op):
        """(delay in s, fault action or None) for a request."""
        delay, fault = 0.0, None
        for r in self.rules:
            if r.op not in ("any", op) or (r.n is not None and r.fired >= r.n):
                continue
            is_delay = r.action.startswith("delay=")
            if not is_delay and fault is not None:
                continue
            if r.p < 1.0 and self.rng.random() >= r.p:
                continue
            r.fired += 1
            if is_delay:
                ms = int(r.action[6:])
                delay += ms / 1000.0
                self.count(f"delay_{op}")
                self.count("delay_ms", ms)
            else:
                fault = r.action
        if fault:
            self.count(f"inj_{fault}_{op}")
        return delay, fault

    # ---- listening
    async def listen(self):
        self.server = await asyncio.start_server(
            self.client, "127.0.0.1", self.port, reuse_address=True,
            limit=BUFFER)
        self.port = self.server.sockets[0].getsockname()[1]

    def reset_all(self):
        for w in list(self.conns):
            reset_writer(w)

    async def outage(self, seconds, mode):
        """Start an outage (replacing one under way)."""
        if self.outage_task:
            self.outage_task.cancel()
        self.outage_end = time.monotonic() + seconds
        self.outage_mode = mode
        self.count("outages")
        if mode in ("refuse", "reset"):
            self.reset_all()
        if mode == "refuse" and self.server:
            self.server.close()
            await self.server.wait_closed()
            self.server = None
        elif mode != "refuse" and self.server is None:
            await self.listen()         # one outage replacing a refusal
        self.outage_task = asyncio.ensure_future(self.end_outage_at())

    async def end_outage_at(self):
        try:
            await asyncio.sleep(max(0.0, self.outage_end - time.monotonic()))
        except asyncio.CancelledError:
            return
        await self.end_outage()

    async def end_outage(self):
        self.outage_end = 0.0
        self.outage_mode = None
        if self.server is None:
            await self.listen()

    # ---- one client connection
    async def client(self, reader, writer):
        self.conns.add(writer)
        self.count("connections")
        up = [None, None]               # upstream reader, writer
        try:
            if self.in_outage() and self.outage_mode in ("reset", "refuse"):
                self.count("outage_conn")
                raise Reset()
            while await self.one_request(reader, writer, up):
                pass
        except (Reset, OSError, asyncio.IncompleteReadError,
                asyncio.LimitOverrunError, ValueError):
            # a reset of ours, a client or upstream gone or unreachable, or
            # bytes that are not HTTP: the client sees a reset
            reset_writer(writer)
        except asyncio.CancelledError:
            reset_writer(writer)
            raise
        finally:
            self.conns.discard(writer)
            if up[1] is not None:
                up[1].transport.abort()
            if not writer.is_closing():
                writer.close()

    async def upstream(self, up):
        if up[1] is None or up[1].is_closing() or up[0].at_eof():
            if up[1] is not None:
                up[1].transport.abort()
            up[0], up[1] = await asyncio.open_connection(
                self.up_host, self.up_port, limit=BUFFER)
            up[1].get_extra_info("socket").setsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return up

    async def one_request(self, reader, writer, up):
        """Serve one request; False when the connection is to be closed."""
        head = await read_head(reader)
        if head is None:
            return False
        line, hdrs = headers_of(head)
        method, target, _ = line.split(" ", 2)
        op = classify(method, target)
        kind, length = body_kind(hdrs)
        expect = any(k == "expect" and "100-continue" in v.lower()
                     for k, v in hdrs)
        if kind == "none":
            kind, length = "length", 0  # a request without one has none
        self.count(f"req_{op}")
        self.count("bytes_in", len(head))

        if self.in_outage():
            self.count("outage_req")
            fault = {"503": "503", "stall": "stall"}.get(self.outage_mode,
                                                         "reset")
        else:
            delay, fault = self.decide(op)
            if delay:
                await asyncio.sleep(delay)

        if fault == "reset":
            raise Reset()
        if fault in ("500", "503") and expect:
            # the client waits for "100 Continue": answer now, and close
            # rather than guess whether it sends the body anyway
            writer.write(error_reply(int(fault), target))
            await writer.drain()
            return False
        if fault in ("500", "503", "stall"):
            await relay_body(reader, kind, length, self.discard)
            if fault == "stall":
                await self.stall(reader)
                raise Reset()
            writer.write(error_reply(int(fault), target))
            await writer.drain()
            return True
        return await self.forward(reader, writer, up, head, method, kind,
                                  length, fault == "reset-mid", op, expect)

    async def discard(self, data):
        self.count("bytes_in", len(data))

    async def stall(self, reader):
        """Hold a connection, answering nothing, until the client closes it
        (or STALL_MAX, or an outage/clear resets it)."""
        try:
            await asyncio.wait_for(reader.read(), STALL_MAX)
        except asyncio.TimeoutError:
            pass

    async def forward(self, reader, writer, up, head, method, kind, length,
                      cut, op, expect):
        ur, uw = await self.upstream(up)
        uw.write(head)

        async def to_up(data):
            self.count("bytes_in", len(data))
            uw.write(data)
            await uw.drain()

        async def response_head():
            rhead = await read_head(ur)
            if rhead is None:
                self.count("upstream_closed")
                raise Reset()           # upstream closed: so do we
            status, rhdrs = headers_of(rhead)
            return rhead, rhdrs, int(status.split(" ", 2)[1])

        sent = not expect or length == 0
        if not sent:
            # "Expect: 100-continue": the body follows the server's 100
            await uw.drain()
            rhead, rhdrs, code = await response_head()
            if code == 100:
                writer.write(rhead)
                await writer.drain()
                sent = True
        if sent:
            await relay_body(reader, kind, length, to_up)
            await uw.drain()
            rhead, rhdrs, code = await response_head()
        self.count(f"fwd_{op}")
        while code < 200 and code != 101:
            writer.write(rhead)         # other 1xx: pass on, wait for more
            rhead, rhdrs, code = await response_head()
        rkind, rlen = body_kind(rhdrs)
        if method.upper() == "HEAD" or code in (204, 304) or code < 200:
            rkind, rlen = "length", 0
        if cut:
            return await self.cut_response(writer, ur, rhead, rkind, rlen)
        writer.write(rhead)
        self.count("bytes_out", len(rhead))

        async def to_client(data):
            self.count("bytes_out", len(data))
            writer.write(data)
            await writer.drain()
        await relay_body(ur, rkind, rlen, to_client)
        await writer.drain()
        closing = any(k == "connection" and "close" in v.lower()
                      for k, v in rhdrs + headers_of(head)[1])
        if rkind == "none" or closing or not sent:
            return False                # (not sent: the body is unread)
        return True

    async def cut_response(self, writer, ur, rhead, rkind, rlen):
        """reset-mid: half the body (or half the head) and then an RST."""
        if rkind == "length" and rlen == 0:
            writer.write(rhead[:len(rhead) // 2])
        else:
            writer.write(rhead)
            half = (rlen // 2) if rkind == "length" else PIECE // 2

            async def to_client(data):
                writer.write(data)
            await relay_body(ur, rkind, rlen, to_client, limit=half)
        await writer.drain()
        raise Reset()

    # ---- control
    async def control(self, reader, writer):
        try:
            line = (await reader.readline()).decode().strip()
            out = await self.command(line)
        except Exception as e:          # report, never die of a bad command
            out = f"error: {e}"
        writer.write((out + "\n").encode())
        await writer.drain()
        writer.close()

    async def command(self, line):
        words = line.split()
        if not words:
            return "error: empty command"
        cmd, args = words[0].lower(), words[1:]
        if cmd == "ping":
            return "ok"
        if cmd == "fault":
            self.rules.append(parse_rule(args))
            return f"rule {len(self.rules)}"
        if cmd == "outage":
            if not args:
                return "error: usage: outage SECONDS [refuse|reset|503|stall]"
            mode = args[1].lower() if len(args) > 1 else "refuse"
            if mode not in ("refuse", "reset", "503", "stall"):
                return f"error: unknown outage mode {mode!r}"
            secs = float(args[0])
            await self.outage(secs, mode)
            return f"outage {secs:g} s {mode}"
        if cmd == "clear":
            self.rules = []
            if self.outage_task:
                self.outage_task.cancel()
                self.outage_task = None
            await self.end_outage()
            return "cleared"
        if cmd == "rules":
            return "\n".join(f"{i + 1} {r.describe()}"
                             for i, r in enumerate(self.rules)) or "no rules"
        if cmd == "stats":
            s = dict(self.stats)
            s["outage_left_ms"] = int(max(0.0, self.outage_end -
                                          time.monotonic()) * 1000)
            return "\n".join(f"{k} {v}" for k, v in sorted(s.items()))
        if cmd == "seed":
            self.rng.seed(int(args[0]))
            return "ok"
        return f"error: unknown command {cmd!r}"


async def serve(args):
    proxy = Proxy(args.upstream, args.port, args.seed)
    if args.rules:
        with open(args.rules) as f:
            for ln in f:
                if ln.strip() and not ln.lstrip().startswith("#"):
                    out = await proxy.command(ln)
                    if out.startswith("error"):
                        sys.exit(f"s3proxy: {args.rules}: {out}")
    await proxy.listen()
    if os.path.exists(args.control):
        os.unlink(args.control)
    ctl = await asyncio.start_unix_server(proxy.control, args.control)
    os.chmod(args.control, 0o600)
    print(f"s3proxy: listening on 127.0.0.1:{proxy.port}, control "
          f"{args.control}, upstream {proxy.up_host}:{proxy.up_port}",
          flush=True)
    if args.ready:
        tmp = args.ready + ".tmp"
        with open(tmp, "w") as f:
            f.write(f"{proxy.port}\n")
        os.rename(tmp, args.ready)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    ctl.close()
    if proxy.server:
        proxy.server.close()
    proxy.reset_all()
    os.unlink(args.control)


def ctl(sock_path, words):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(30)
    s.connect(sock_path)
    s.sendall((" ".join(words) + "\n").encode())
    out = b""
    while True:
        data = s.recv(65536)
        if not data:
            break
        out += data
    s.close()
    text = out.decode()
    sys.stdout.write(text)
    return 1 if text.startswith("error") else 0


def main():
    ap = argparse.ArgumentParser(description="fault-injecting S3 proxy")
    sub = ap.add_subparsers(dest="cmd", required=True)
    sv = sub.add_parser("serve")
    sv.add_argument("--upstream", required=True)
    sv.add_argument("--port", type=int, default=0)
    sv.add_argument("--control", required=True)
    sv.add_argument("--seed", type=int, default=1)
    sv.add_argument("--rules")
    sv.add_argument("--ready")
    c = sub.add_parser("ctl")
    c.add_argument("sock")
    c.add_argument("words", nargs="+")
    args = ap.parse_args()
    if args.cmd == "serve":
        asyncio.run(serve(args))
        return 0
    return ctl(args.sock, args.words)


if __name__ == "__main__":
    sys.exit(main())
