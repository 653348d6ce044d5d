#!/usr/bin/env python3
"""A fault-injecting HTTP/1.1 reverse proxy for testing S3 clients: it sits on loopback between
an S3 client (repo's S3 backend, boto3, curl) and a real S3 server (scripts/s3-server.sh) and,
as a JSON control file says, answers errors itself, stalls, or drops and cuts connections, so
that tests can see retries, timeouts and clear errors happen for real.

  python3 scripts/s3-fault-proxy.py --upstream http://127.0.0.1:PORT --port-file FILE \
      [--control-file CTRL] [--log LOG] [--timeout SECONDS]

It listens on 127.0.0.1 on a free port and writes that port to FILE (tmp file, then rename) once
it listens; it serves until SIGTERM or SIGINT. Point the client at http://127.0.0.1:<port>.

Forwarding: every request is passed on byte for byte (request line, path and query, every header
including Host and Authorization, in the client's order and spelling; SigV4 signatures stay
valid) over a new upstream connection per request, and the answer is passed back byte for byte.
Bodies are streamed in pieces of at most 256 KiB, never held whole: Content-Length and chunked
bodies both ways, close-delimited answers, HEAD/204/304 answers without a body, and 1xx interim
answers (Expect: 100-continue works end to end). Client connections are kept alive for as
many requests as the client sends on them. Besides "strip_headers" below, the one change made: when the server answers
before the request body was sent (after Expect: 100-continue) or stops reading it, the proxy
relays that answer with "Connection: close" and closes the client connection. If the server
cannot be reached the client gets 502 BadGateway; if it closes or stalls (--timeout, 300 s)
before its answer is complete, the client connection is reset.

The control file (missing or empty = no faults) is read again on every request, so a test can
change it while the proxy runs; write it atomically (tmp file, then rename). Any change to it
(content, inode or mtime; even a touch) restarts the counters below. All fields are optional:

  "fail_next": N          answer the next N matching requests with "status"/"code" and an S3
                          XML error body, without forwarding them (a request body is read and
                          thrown away first, so the connection stays usable)
  "fail_every": K         answer every K-th matching request the same way (a steady error rate)
  "status": 503           the status of those answers (default 503)
  "code": "SlowDown"      the S3 error code (default: SlowDown for 503/429, InternalError for
                          500, ...); "message" overrides the usual message for the code
  "json_error": true      send the error as AWS's JSON protocols do (KMS and others):
                          {"__type": code, "message": message}, application/x-amz-json-1.1
  "drop_next": N          for the next N matching requests: read the request head, then close
                          the client connection abruptly without an answer (a TCP reset;
                          "drop_style": "eof" closes it with a FIN instead, where no unread
                          body bytes force a reset)
  "methods": ["PUT"]      fail_next, fail_every and drop_next apply only to these methods
  "delay_seconds": 1.5    sleep this long before acting on each request (forwarding it,
                          answering an error, dropping it): a slow server
  "delay_methods": [...]  delay_seconds applies only to these methods (and, like every fault,
                          only to requests that path_contains matches)
  "drop_after_bytes": B   forward the request, but after B bytes of its request body have been
                          relayed, reset both connections (a server dying mid-upload). Applies to
                          requests whose body has at least B bytes; with exactly B bytes the
                          whole body reached the server, which may or may not have stored it.
  "drop_methods": ["PUT"] drop_after_bytes applies only to these methods (default: all)
  "drop_after_next": N    drop_after_bytes applies only to the next N matching requests
                          (default: every matching request)
  "path_contains": "s"    every fault above applies only to requests whose path+query holds s
  "strip_headers": [...]  remove these request headers before forwarding (with "methods" and
                          "path_contains" as for the faults): e.g. ["If-None-Match"] makes a
                          server that honours conditional writes behave like one that ignores
                          them. Signatures covering the header no longer match, so use it in
                          front of a server that does not check them (moto by default).

The first fault that applies wins, in this order: drop_next, fail_next, fail_every, then
drop_after_bytes while forwarding. fail_every counts matching requests, including ones that
drop_next or fail_next took. The counters are shared by all connections.

Example: the next 3 PUTs get 503 SlowDown, every request waits 0.2 s:

  {"fail_next": 3, "status": 503, "code": "SlowDown", "methods": ["PUT"], "delay_seconds": 0.2}

In a test (s3-server.sh gives the upstream):

  set -a; eval "$(scripts/s3-server.sh start "$D/s3")"; set +a
  python3 scripts/s3-fault-proxy.py --upstream "$S3_ENDPOINT" --port-file "$D/port" \
      --control-file "$D/ctrl" --log "$D/proxy.log" & PROXY=$!
  until [ -s "$D/port" ]; do sleep 0.05; done
  echo '{"fail_next": 3}' >"$D/ctrl.tmp" && mv "$D/ctrl.tmp" "$D/ctrl"
  REPO_REPOSITORY="s3:http://127.0.0.1:$(cat "$D/port")/bucket/prefix" repo ...
  kill "$PROXY"; scripts/s3-server.sh stop "$D/s3"

Log: one line per request on stderr (or appended to --log): connection and request number,
method, path, the status answered or relayed ("-" if none), the fault applied, body bytes in
and out, and time taken. Requests to /__proxy/... are answered by the proxy itself and never
forwarded, counted or faulted: GET /__proxy/stats returns
  {"requests": n, "faults": {"fail": a, "drop": b, "cut": c, "delay": d},
   "by_method": {"PUT": ...}, "by_status": {"200": ...}, "connections": k}
and DELETE /__proxy/stats returns the same and sets the counts back to zero. SIGUSR1 writes the
same JSON as one line to the log.

Limits: plain http upstream only (no TLS), HTTP/1.x only (no Upgrade/101), one upstream
connection per request. The proxy's own error bodies hold Code and Message only.
Python 3.11 standard library only; a thread per client connection.
"""
import argparse, email.utils, itertools, json, os, select, signal, socket, socketserver, struct
import sys, threading, time, traceback, urllib.parse, uuid
from xml.sax.saxutils import escape

PIECE = 256 * 1024        # largest piece of a body read or written at once
MAX_HEAD = 64 * 1024      # longest request or response head accepted

MESSAGES = {
    "SlowDown": "Please reduce your request rate.",
    "ServiceUnavailable": "Service is unable to handle request.",
    "InternalError": "We encountered an internal error. Please try again.",
    "RequestTimeout": "Your socket connection to the server was not read from or written to within the timeout period.",
    "AccessDenied": "Access Denied",
    "NoSuchKey": "The specified key does not exist.",
    "NoSuchBucket": "The specified bucket does not exist.",
    "BadGateway": "The proxy could not reach the upstream server.",
}
DEFAULT_CODES = {503: "SlowDown", 429: "SlowDown", 500: "InternalError", 502: "BadGateway",
                 504: "GatewayTimeout", 408: "RequestTimeout", 403: "AccessDenied", 404: "NoSuchKey"}
REASONS = {200: "OK", 400: "Bad Request", 403: "Forbidden", 404: "Not Found", 408: "Request Timeout",
           429: "Too Many Requests", 500: "Internal Server Error", 502: "Bad Gateway",
           503: "Service Unavailable", 504: "Gateway Timeout"}


class Closed(Exception):
    """The peer closed its connection (or reset it) where more was expected."""


class BadMessage(Exception):
    """A request or response that is not HTTP/1.x as this proxy understands it."""


# -- reading HTTP off a socket --------------------------------------------------------------

class Reader:
    """A socket with a read buffer, for heads, lines and pieces of bodies."""

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()

    def _fill(self):
        data = self.sock.recv(PIECE)
        if not data:
            return False
        self.buf += data
        return True

    def head(self):
        """The next message head, CRLF CRLF included; None on a clean EOF before any byte."""
        while True:
            # Empty lines before a request line are to be ignored (RFC 9112, 2.2).
            while self.buf[:2] == b"\r\n":
                del self.buf[:2]
            end = self.buf.find(b"\r\n\r\n")
            if end >= 0:
                head = bytes(self.buf[:end + 4])
                del self.buf[:end + 4]
                return head
            if len(self.buf) > MAX_HEAD:
                raise BadMessage("head longer than %d bytes" % MAX_HEAD)
            if not self._fill():
                if self.buf:
                    raise Closed("connection closed in the middle of a head")
                return None

    def line(self):
        """One line, CRLF included (chunk sizes and trailers)."""
        while True:
            end = self.buf.find(b"\n")
            if end >= 0:
                line = bytes(self.buf[:end + 1])
                del self.buf[:end + 1]
                return line
            if len(self.buf) > MAX_HEAD:
                raise BadMessage("line longer than %d bytes" % MAX_HEAD)
            if not self._fill():
                raise Closed("connection closed in the middle of a line")

    def some(self, n):
        """Up to n bytes (at least one); b"" at EOF."""
        if self.buf:
            data = bytes(self.buf[:n])
            del self.buf[:n]
            return data
        return self.sock.recv(min(n, PIECE))

    def buffered(self):
        return len(self.buf) > 0


class Message:
    """A parsed head: its first line's three parts and its headers (names in lower case)."""

    def __init__(self, raw):
        self.raw = raw
        lines = raw[:-4].split(b"\r\n")
        first = lines[0].decode("latin-1")
        parts = first.split(" ", 2)
        if len(parts) < 2:
            raise BadMessage("bad first line %r" % first[:200])
        self.parts = parts + [""] * (3 - len(parts))
        self.headers = {}
        for line in lines[1:]:
            text = line.decode("latin-1")
            name, sep, value = text.partition(":")
            if not sep or not name or name != name.strip():
                raise BadMessage("bad header line %r" % text[:200])
            self.headers.setdefault(name.lower(), []).append(value.strip())

    def get(self, name):
        values = self.headers.get(name)
        return ", ".join(values) if values else None

    def tokens(self, name):
        return {t.strip().lower() for t in (self.get(name) or "").split(",") if t.strip()}

    def body_framing(self):
        """("chunked", None), ("length", n) or ("none", 0) for a request."""
        if "chunked" in self.tokens("transfer-encoding"):
            return "chunked", None
        cl = self.get("content-length")
        if cl is not None:
            values = {v.strip() for v in cl.split(",")}
            if len(values) != 1 or not next(iter(values)).isdigit():
                raise BadMessage("bad Content-Length %r" % cl)
            return "length", int(next(iter(values)))
        return "none", 0


def relay_length(src, sink, n, limit=None, count=None):
    """Copies n bytes from Reader src to the callable sink (None: throws them away), at most
    `limit` of them. Returns the number copied. `count` (a one-item list) is kept up to date
    as bytes go out."""
    done = 0
    stop = n if limit is None else min(n, limit)
    while done < stop:
        data = src.some(min(PIECE, stop - done))
        if not data:
            raise Closed("connection closed after %d of %d body bytes" % (done, n))
        if sink is not None:
            sink(data)
        done += len(data)
        if count is not None:
            count[0] += len(data)
    return done


def relay_chunked(src, sink, limit=None, count=None):
    """Copies a chunked body (chunks, last chunk, trailers) verbatim. Returns True if it was
    copied whole, False if it stopped at `limit` bytes."""
    done = 0

    def out(data):
        nonlocal done
        if limit is not None and done + len(data) > limit:
            data = data[:limit - done]
        if sink is not None and data:
            sink(data)
        done += len(data)
        if count is not None:
            count[0] += len(data)
        return limit is None or done < limit

    while True:
        line = src.line()
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadMessage("bad chunk size line %r" % line[:100])
        if not out(line):
            return False
        if size == 0:
            while True:  # trailers, up to the empty line
                line = src.line()
                if not out(line):
                    return False
                if line in (b"\r\n", b"\n"):
                    return True
        left = size + 2  # the chunk's data and its CRLF
        while left:
            data = src.some(min(PIECE, left))
            if not data:
                raise Closed("connection closed inside a chunk")
            left -= len(data)
            if not out(data):
                return False


def without_headers(raw, names):
    """A request head with every header line named in `names` (lower case) left out."""
    lines = raw[:-4].split(b"\r\n")
    kept = [lines[0]] + [l for l in lines[1:] if l.split(b":", 1)[0].decode("latin-1").lower() not in names]
    return b"\r\n".join(kept) + b"\r\n\r\n"


def to_client(sock, data):
    try:
        sock.sendall(data)
    except OSError as e:
        raise ClientError(str(e)) from e


def send_all(sock, data):
    try:
        sock.sendall(data)
    except (BrokenPipeError, ConnectionResetError) as e:
        raise Closed(str(e)) from e


def reset(sock):
    """Closes a socket with a TCP reset (SO_LINGER 0)."""
    if sock is None:
        return
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    try:
        sock.close()
    except OSError:
        pass


def close_eof(sock):
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    sock.close()


# -- control file and counters --------------------------------------------------------------

class Decision:
    def __init__(self):
        self.action = None          # None (forward), "fail" or "drop"
        self.status, self.code, self.message = 503, "SlowDown", MESSAGES["SlowDown"]
        self.delay = 0.0
        self.cut_after = None       # drop_after_bytes, when it applies to this request
        self.drop_style = "reset"
        self.fault = "none"         # for the log
        self.json_error = False     # a JSON error body ({"__type", "message"}) instead of XML
        self.strip = ()             # header names (lower case) removed before forwarding


class Control:
    """Reads the control file and keeps the counters of its current version."""

    def __init__(self, path, log):
        self.path = path
        self.log = log
        self.lock = threading.Lock()
        self.version = None
        self.config = {}
        self.state = {}

    def _load(self):
        if not self.path:
            return {}
        try:
            with open(self.path, "rb") as f:
                st = os.fstat(f.fileno())
                data = f.read()
        except FileNotFoundError:
            version = None
            data = b""
        else:
            version = (st.st_ino, st.st_mtime_ns, st.st_size, data)
        if version != self.version:
            self.version = version
            self.state = {"fail_next": None, "drop_next": None, "drop_after_next": None, "every": 0}
            self.config = {}
            if data.strip():
                try:
                    config = json.loads(data)
                    if not isinstance(config, dict):
                        raise ValueError("not a JSON object")
                    self.config = config
                except ValueError as e:
                    self.log("control file %s: %s; no faults until it changes" % (self.path, e))
            if self.config:
                self.log("control file: %s" % json.dumps(self.config, sort_keys=True))
        return self.config

    def _take(self, name):
        """Takes one from counter `name` (started from the config); True if one was left."""
        left = self.state.get(name)
        if left is None:
            left = int(self.config.get(name) or 0)
        if left > 0:
            self.state[name] = left - 1
            return True
        self.state[name] = left
        return False

    @staticmethod
    def _methods(config, key, method):
        methods = config.get(key)
        return not methods or method.upper() in {str(m).upper() for m in methods}

    def decide(self, method, target, body_length):
        """What to do with one request. body_length is None for a chunked body."""
        try:
            return self._decide(method, target, body_length)
        except (ValueError, TypeError, AttributeError) as e:
            self.log("control file %s: bad value (%s); this request gets no fault" % (self.path, e))
            return Decision()

    def _decide(self, method, target, body_length):
        d = Decision()
        with self.lock:
            c = self._load()
            if not c:
                return d
            status = int(c.get("status", 503))
            d.status = status
            d.code = str(c.get("code") or DEFAULT_CODES.get(status, "InternalError"))
            d.message = str(c.get("message") or MESSAGES.get(d.code, "Injected fault."))
            d.drop_style = str(c.get("drop_style", "reset"))
            d.json_error = bool(c.get("json_error"))
            if self._methods(c, "delay_methods", method):
                d.delay = float(c.get("delay_seconds") or 0)
            path_ok = not c.get("path_contains") or str(c["path_contains"]) in target
            if path_ok and self._methods(c, "methods", method):
                d.strip = tuple(str(h).lower() for h in c.get("strip_headers") or ())
            if not path_ok:
                d.delay = 0.0
                return d
            if self._methods(c, "methods", method):
                every = int(c.get("fail_every") or 0)
                hit_every = False
                if every > 0:
                    self.state["every"] += 1
                    hit_every = self.state["every"] % every == 0
                if self._take("drop_next"):
                    d.action, d.fault = "drop", "drop_next"
                    return d
                if self._take("fail_next"):
                    d.action, d.fault = "fail", "fail_next"
                    return d
                if hit_every:
                    d.action, d.fault = "fail", "fail_every"
                    return d
            b = c.get("drop_after_bytes")
            if b is not None and self._methods(c, "drop_methods", method):
                b = int(b)
                if body_length is None or body_length >= b:
                    if c.get("drop_after_next") is None or self._take("drop_after_next"):
                        d.cut_after = b
        return d


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.reset()
        self.connections = 0

    def reset(self):
        self.requests = 0
        self.faults = {"fail": 0, "drop": 0, "cut": 0, "delay": 0}
        self.by_method = {}
        self.by_status = {}

    def add(self, field=None, method=None, status=None, n=1):
        with self.lock:
            if method is not None:
                self.requests += 1
                self.by_method[method] = self.by_method.get(method, 0) + 1
            if field is not None:
                self.faults[field] += n
            if status is not None:
                key = str(status)
                self.by_status[key] = self.by_status.get(key, 0) + 1

    def snapshot(self, clear=False):
        with self.lock:
            s = {"requests": self.requests, "faults": dict(self.faults), "by_method": dict(self.by_method),
                 "by_status": dict(self.by_status), "connections": self.connections}
            if clear:
                self.reset()
            return s


# -- the proxy ------------------------------------------------------------------------------

class Proxy:
    def __init__(self, args):
        u = urllib.parse.urlsplit(args.upstream)
        if u.scheme != "http" or not u.hostname:
            raise SystemExit("--upstream must be http://HOST:PORT (got %r)" % args.upstream)
        self.upstream = (u.hostname, u.port or 80)
        self.timeout = args.timeout
        self.log_file = open(args.log, "a", buffering=1) if args.log else sys.stderr
        self.log_lock = threading.Lock()
        self.control = Control(args.control_file, self.log)
        self.stats = Stats()
        self.conn_ids = itertools.count(1)

    def log(self, text):
        now = time.time()
        stamp = time.strftime("%H:%M:%S", time.localtime(now)) + ".%03d" % (now % 1 * 1000)
        # (With a timeout: a signal handler in the main thread logs too.)
        if not self.log_lock.acquire(timeout=2):
            return
        try:
            self.log_file.write("%s s3-fault-proxy: %s\n" % (stamp, text))
            self.log_file.flush()
        except (OSError, ValueError):
            pass
        finally:
            self.log_lock.release()

    # One client connection: requests one after the other until either side closes.
    def serve(self, sock):
        cid = next(self.conn_ids)
        with self.stats.lock:
            self.stats.connections += 1
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        reader = Reader(sock)
        closed = False
        try:
            for n in itertools.count(1):
                sock.settimeout(None)  # an idle keep-alive connection may wait for ever
                try:
                    head = reader.head()
                except (Closed, BadMessage, OSError):
                    break
                if head is None:
                    break
                sock.settimeout(self.timeout)
                try:
                    keep, closed = self.request(sock, reader, head, "%d.%d" % (cid, n))
                except Exception as e:  # a bug here, or a control file with odd values
                    self.log("%d.%d internal error, connection reset: %s" % (cid, n, traceback.format_exc().strip()))
                    reset(sock)
                    closed = True
                    break
                if not keep:
                    break
        finally:
            if not closed:
                try:
                    sock.close()
                except OSError:
                    pass

    def request(self, sock, reader, head, rid):
        """Handles one request. Returns (keep the connection, the socket is closed already)."""
        t0 = time.monotonic()
        try:
            req = Message(head)
            framing, length = req.body_framing()
        except BadMessage as e:
            self.log("%s bad request: %s" % (rid, e))
            self.safe_answer(sock, None, 400, "InvalidRequest", str(e))
            return False, False
        method, target = req.parts[0], req.parts[1]
        if target.split("?", 1)[0].startswith("/__proxy/"):
            return self.proxy_endpoint(sock, reader, req, framing, length, rid)

        self.stats.add(method=method)
        d = self.control.decide(method, target, length)
        expect = "100-continue" in req.tokens("expect") and framing != "none" and length != 0
        keep_alive = self.wants_keep_alive(req)
        shown = target if len(target) <= 200 else target[:200] + "..."
        info = {"in": 0, "out": 0}

        def done(status, fault, note=""):
            self.log("%s %s %s -> %s fault=%s in=%d out=%d %.3fs%s" % (
                rid, method, shown, status, fault, info["in"], info["out"],
                time.monotonic() - t0, " (" + note + ")" if note else ""))
            if status != "-":
                self.stats.add(status=status)

        if d.delay > 0:
            self.stats.add("delay")
            time.sleep(d.delay)

        if d.action == "drop":
            self.stats.add("drop")
            done("-", "drop_next", "connection closed by %s without an answer"
                 % ("FIN" if d.drop_style == "eof" else "reset"))
            if d.drop_style == "eof":
                close_eof(sock)
            else:
                reset(sock)
            return False, True

        if d.action == "fail":
            self.stats.add("fail")
            close = not keep_alive
            count = [0]
            try:
                if expect:
                    close = True  # no 100 Continue: the client may or may not send the body now
                elif framing == "length":
                    relay_length(reader, None, length, count=count)
                elif framing == "chunked":
                    relay_chunked(reader, None, count=count)
                info["in"] = count[0]
                if d.json_error:
                    body = json.dumps({"__type": d.code, "message": d.message}).encode()
                    info["out"] = self.local_answer(sock, req, d.status, d.code, d.message, close=close, body=body,
                                                    ctype="application/x-amz-json-1.1")
                else:
                    info["out"] = self.local_answer(sock, req, d.status, d.code, d.message, close=close)
            except (Closed, BadMessage, OSError) as e:
                info["in"] = count[0]
                done("-", d.fault, "client: %s" % e)
                return False, False
            done(d.status, d.fault + " " + d.code)
            return not close, False

        return self.forward(sock, reader, req, framing, length, expect, keep_alive, d, info, done)

    @staticmethod
    def wants_keep_alive(req):
        conn = req.tokens("connection")
        if req.parts[2].upper() == "HTTP/1.0":
            return "keep-alive" in conn
        return "close" not in conn

    def forward(self, sock, reader, req, framing, length, expect, keep_alive, d, info, done):
        fault = "none" if d.cut_after is None else "drop_after_bytes(%d)" % d.cut_after
        try:
            up = socket.create_connection(self.upstream, timeout=min(self.timeout, 10))
        except OSError as e:
            # As a gateway would: 502, and close (a request body, if any, was not read).
            info["out"] = self.safe_answer(sock, req, 502, "BadGateway",
                                           "upstream %s:%d: %s" % (self.upstream + (e,)))
            done(502, fault, "upstream connect failed: %s" % e)
            return False, False
        up.settimeout(self.timeout)
        up.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        up_reader = Reader(up)

        def to_upstream(data):
            try:
                up.sendall(data)
            except OSError as e:
                raise UpstreamSendError(str(e)) from e

        count = [0]
        try:
            to_upstream(without_headers(req.raw, d.strip) if d.strip else req.raw)
            # Expect: 100-continue: pass the server's interim answer on before the body goes
            # (the client may also give up waiting and send the body anyway).
            resp = self.await_continue(sock, reader, up, up_reader) if expect else None
            if resp is None:
                cut = d.cut_after == 0
                if not cut and framing == "length":
                    relay_length(reader, to_upstream, length, limit=d.cut_after, count=count)
                    cut = d.cut_after is not None and count[0] >= d.cut_after
                elif not cut and framing == "chunked":
                    cut = not relay_chunked(reader, to_upstream, limit=d.cut_after, count=count)
                info["in"] = count[0]
                if cut:
                    self.stats.add("cut")
                    reset(up)
                    reset(sock)
                    done("-", fault, "reset both connections after %d body bytes" % count[0])
                    return False, True
                resp = self.final_head(sock, up_reader)
                early = False
            else:
                early = True  # a final answer before the body
            status = self.relay_response(sock, up_reader, resp, req, info, force_close=early)
            close = (early or not keep_alive or "close" in resp.tokens("connection")
                     or self.response_framing(resp, req)[0] == "eof")
            done(status, fault, "answered before the body" if early else "")
            up.close()
            return not close, False
        except UpstreamSendError as e:
            # The server stopped reading: it may have answered early (an error); pass that on.
            info["in"] = count[0]
            try:
                up.settimeout(2)
                resp = self.final_head(sock, up_reader)
                up.settimeout(self.timeout)
                status = self.relay_response(sock, up_reader, resp, req, info, force_close=True)
                done(status, fault, "server stopped reading the body after %d bytes (%s)" % (count[0], e))
                reset(up)
                return False, False
            except Exception as e2:
                reset(up)
                reset(sock)
                done("-", fault, "sending to the server failed (%s), no answer (%s); client connection reset"
                     % (e, e2))
                return False, True
        except UpstreamError as e:
            info["in"] = max(info["in"], count[0])
            reset(up)
            reset(sock)
            done("-", fault, "server: %s; client connection reset" % e)
            return False, True
        except (Closed, ClientError, BadMessage, OSError) as e:
            info["in"] = max(info["in"], count[0])
            reset(up)
            reset(sock)
            done("-", fault, "client: %s; both connections reset" % e)
            return False, True

    def final_head(self, sock, up_reader):
        """Reads the server's answer head, passing interim (1xx) answers on to the client."""
        while True:
            try:
                head = up_reader.head()
            except (Closed, OSError) as e:
                raise UpstreamError("reading the answer: %s" % e)
            if head is None:
                raise UpstreamError("the server closed the connection without answering")
            try:
                resp = Message(head)
            except BadMessage as e:
                raise UpstreamError(str(e))
            status = int(resp.parts[1]) if resp.parts[1].isdigit() else 0
            if 100 <= status < 200 and status != 101:
                to_client(sock, head)
                continue
            return resp

    def await_continue(self, sock, reader, up, up_reader):
        """Waits for the server's 100 Continue (relayed) or for the client to start the body.
        Returns a final answer's head that came instead, or None to go on with the body."""
        deadline = time.monotonic() + self.timeout
        while True:
            if reader.buffered():
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([sock, up], [], [], left)
            if up in ready or up_reader.buffered():
                try:
                    head = up_reader.head()
                    if head is None:
                        raise UpstreamError("the server closed the connection without answering")
                    resp = Message(head)
                except (Closed, BadMessage, OSError) as e:
                    raise UpstreamError("reading the answer: %s" % e)
                status = int(resp.parts[1]) if resp.parts[1].isdigit() else 0
                if 100 <= status < 200 and status != 101:
                    to_client(sock, head)
                    if status == 100:
                        return None
                    continue
                return resp
            if sock in ready:
                return None

    @staticmethod
    def response_framing(resp, req):
        status = int(resp.parts[1]) if resp.parts[1].isdigit() else 0
        if req.parts[0].upper() == "HEAD" or status in (204, 304) or 100 <= status < 200:
            return "none", 0
        if "chunked" in resp.tokens("transfer-encoding"):
            return "chunked", None
        cl = resp.get("content-length")
        if cl is not None:
            v = cl.split(",")[0].strip()
            if v.isdigit():
                return "length", int(v)
        return "eof", None

    def relay_response(self, sock, up_reader, resp, req, info, force_close=False):
        """Sends an answer's head and body to the client. Returns its status. A server that
        stops in the middle of the body gets the client connection reset (UpstreamError).
        force_close: the proxy closes the connection afterwards, so the answer's Connection
        header (the only change ever made to an answer) says `close`."""
        head = resp.raw
        if force_close:
            lines = [l for l in head[:-4].split(b"\r\n") if not l.lower().startswith(b"connection:")]
            head = b"\r\n".join(lines + [b"Connection: close"]) + b"\r\n\r\n"
        to_client(sock, head)
        framing, length = self.response_framing(resp, req)
        count = [0]
        sink = lambda data: to_client(sock, data)
        try:
            if framing == "length":
                relay_length(up_reader, sink, length, count=count)
            elif framing == "chunked":
                relay_chunked(up_reader, sink, count=count)
            elif framing == "eof":
                while True:
                    data = up_reader.some(PIECE)
                    if not data:
                        break
                    sink(data)
                    count[0] += len(data)
        except (Closed, BadMessage, OSError) as e:
            info["out"] = count[0]
            raise UpstreamError("answer body cut short after %d bytes (%s)" % (count[0], e))
        info["out"] = count[0]
        return int(resp.parts[1]) if resp.parts[1].isdigit() else resp.parts[1]

    def local_answer(self, sock, req, status, code, message, close=False, body=None, ctype="application/xml"):
        """Sends an answer of the proxy's own. Returns the body's length."""
        if body is None:
            body = ('<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>%s</Message></Error>'
                    % (escape(code), escape(message))).encode()
        rid = uuid.uuid4().hex[:16].upper()
        lines = ["HTTP/1.1 %d %s" % (status, REASONS.get(status, "Error")),
                 "Date: " + email.utils.formatdate(usegmt=True),
                 "Server: s3-fault-proxy",
                 "x-amz-request-id: " + rid,
                 "Content-Type: " + ctype,
                 "Content-Length: %d" % len(body)]
        if close:
            lines.append("Connection: close")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode()
        is_head = req is not None and req.parts[0].upper() == "HEAD"
        send_all(sock, head if is_head else head + body)
        return 0 if is_head else len(body)

    def safe_answer(self, sock, req, status, code, message):
        try:
            return self.local_answer(sock, req, status, code, message, close=True)
        except (Closed, OSError):
            return 0

    def proxy_endpoint(self, sock, reader, req, framing, length, rid):
        method, target = req.parts[0].upper(), req.parts[1]
        path = target.split("?", 1)[0]
        try:
            if framing == "length":
                relay_length(reader, None, length)
            elif framing == "chunked":
                relay_chunked(reader, None)
            close = not self.wants_keep_alive(req)
            if path == "/__proxy/stats" and method in ("GET", "HEAD", "DELETE"):
                body = (json.dumps(self.stats.snapshot(clear=method == "DELETE"), sort_keys=True) + "\n").encode()
                self.local_answer(sock, req, 200, "", "", close=close, body=body, ctype="application/json")
                status = 200
            else:
                self.local_answer(sock, req, 404, "NoSuchProxyEndpoint", "GET or DELETE /__proxy/stats", close=close)
                status = 404
        except (Closed, BadMessage, OSError) as e:
            self.log("%s %s %s: %s" % (rid, method, target, e))
            return False, False
        self.log("%s %s %s -> %d (proxy endpoint)" % (rid, method, target, status))
        return not close, False


class UpstreamError(Exception):
    """The server failed: no answer, a malformed one, or one cut short."""


class UpstreamSendError(Exception):
    """Sending the request to the server failed."""


class ClientError(Exception):
    """The client went away while its answer was being sent."""


class Server(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, address, proxy):
        self.proxy = proxy
        super().__init__(address, Handler)


class Handler(socketserver.BaseRequestHandler):
    def handle(self):
        self.server.proxy.serve(self.request)

    def finish(self):
        pass


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--upstream", required=True, help="http://HOST:PORT of the real S3 server")
    p.add_argument("--port-file", required=True, help="written with the port once listening")
    p.add_argument("--control-file", help="JSON faults, read on every request (see above)")
    p.add_argument("--log", help="append the request log here instead of stderr")
    p.add_argument("--listen", default="127.0.0.1", help="address to listen on (127.0.0.1)")
    p.add_argument("--timeout", type=float, default=300,
                   help="seconds to wait for either side in the middle of a request (300)")
    args = p.parse_args()

    proxy = Proxy(args)
    server = Server((args.listen, 0), proxy)
    port = server.server_address[1]

    def stop(signum, frame):
        # Exit at once, from the handler: raising SystemExit here could land inside the
        # server's Thread.start() (a lock's __exit__), turn into another exception that
        # socketserver catches, and leave the proxy running.
        proxy.log("stopping (signal %d): stats %s" % (signum, json.dumps(proxy.stats.snapshot(), sort_keys=True)))
        os._exit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGUSR1, lambda s, f: proxy.log("stats " + json.dumps(proxy.stats.snapshot(), sort_keys=True)))

    tmp = "%s.tmp.%d" % (args.port_file, os.getpid())
    with open(tmp, "w") as f:
        f.write("%d\n" % port)
    os.replace(tmp, args.port_file)
    proxy.log("listening on %s:%d, upstream %s:%d, control file %s" % (
        args.listen, port, proxy.upstream[0], proxy.upstream[1], args.control_file or "(none)"))
    try:
        server.serve_forever(poll_interval=0.2)
    except BaseException:
        traceback.print_exc()
    os._exit(1)  # only after an unexpected error: signals exit in `stop`


if __name__ == "__main__":
    main()
