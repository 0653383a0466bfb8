#!/usr/bin/env python3
"""Drive `sembed serve` built with ThreadSanitizer (tools/check.d/15-tsan-serve.sh, issue 20).

Standard library only. Starts the server on a free loopback port (--port 0) and runs, against one
process:
  1. lone requests: the reference embedding of every text, one request at a time;
  2. concurrency: CLIENTS threads x ROUNDS requests over every route (embeddings in float and base64,
     TEI /embed, /tokenize, /similarity, /info, /health, /metrics, /v1/models, and 4xx errors),
     on keep-alive and fresh connections; every embedding must be bit-identical (float32) to the
     lone request's;
  3. hang-ups: clients that send a request and close the socket while it waits in the queue, while
     others are being answered; the server must count them cancelled and keep serving;
  4. graceful drain: SIGTERM with one request in the batcher and one with its body half sent: both
     answered 200, and the server exits 0.
Any ThreadSanitizer report makes the server exit 66 (TSAN_OPTIONS halt_on_error=1 exitcode=66, set by
the caller) and is also looked for in the server's log. Prints expected vs got for each failure and
exits 1; prints one closing line and exits 0 when all passed.

Usage: serve_tsan_drive.py SEMBED_BINARY MODEL.semb LOGFILE
"""
import base64
import http.client
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

CLIENTS = 12
ROUNDS = 8
PASS_DELAY_MS = 30  # a pause before each forward pass: requests pile up and share passes

TEXTS = [
    "A man is playing a guitar.",
    "A woman is slicing an onion.",
    "The quick brown fox jumps over the lazy dog, twice, and then sleeps.",
    "Caf\u00e9 na\u00efve \u6211\u60f3 supercalifragilistic",
    "a",
    "Two dogs run across a snowy field while a third one watches from the fence near the old barn.",
    "stocks fell sharply on monday",
    "a kitten is sitting on the mat",
]

failures = []
flock = threading.Lock()


def fail(msg):
    with flock:
        failures.append(msg)
        print("FAIL: " + msg, file=sys.stderr, flush=True)


def f32(values):
    """The float32 bit patterns of JSON numbers (the server prints each float32 exactly)."""
    return struct.pack("<%df" % len(values), *values)


class Server:
    def __init__(self, binary, model, log_path):
        # --threads 1 and OMP_NUM_THREADS=1 (the eager weight packing at load sizes its team by
        # omp_get_max_threads): no OpenMP team is ever formed. libgomp is not TSan-instrumented and
        # its barriers are reported as races that are not there (tests/test_threads.c); the
        # concurrency under test is the server's own threads: connections, batcher, drain.
        env = dict(os.environ, SEMBED_SERVE_PASS_DELAY_MS=str(PASS_DELAY_MS), OMP_NUM_THREADS="1")
        self.log = open(log_path, "wb")
        self.p = subprocess.Popen([binary, "serve", "-m", model, "--port", "0", "--threads", "1", "--timeout", "5"],
                                  stdout=subprocess.PIPE, stderr=self.log, env=env)
        line = self.p.stdout.readline().decode("utf-8", "replace")
        m = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
        if not m:
            self.p.wait(timeout=30)
            raise SystemExit("serve_tsan_drive: the server did not start (stdout %r, exit %s; see %s)"
                             % (line, self.p.returncode, log_path))
        self.port = int(m.group(1))

    def conn(self):
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=60)


def call(c, method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    headers = {"Content-Type": "application/json"} if data is not None else {}
    c.request(method, path, body=data, headers=headers)
    r = c.getresponse()
    return r.status, r.read()


def one(srv, method, path, body=None):
    c = srv.conn()
    try:
        return call(c, method, path, body)
    finally:
        c.close()


def metric(srv, name):
    st, b = one(srv, "GET", "/metrics")
    m = re.search(r"^%s (\d+)" % re.escape(name), b.decode(), re.M)
    return int(m.group(1)) if st == 200 and m else -1


def wait_metric(srv, name, at_least, seconds=60):
    end = time.time() + seconds
    while time.time() < end:
        if metric(srv, name) >= at_least:
            return True
        time.sleep(0.02)
    fail("metric %s did not reach %d within %d s (last %d)" % (name, at_least, seconds, metric(srv, name)))
    return False


def lone_references(srv):
    ref = {}
    for t in TEXTS:
        st, b = one(srv, "POST", "/embed", {"inputs": t})
        if st != 200:
            raise SystemExit("serve_tsan_drive: lone /embed of %r: expected 200, got %d %r" % (t, st, b[:200]))
        ref[t] = f32(json.loads(b)[0])
    return ref


def check_rows(what, texts, rows, ref):
    if len(rows) != len(texts):
        fail("%s: expected %d rows, got %d" % (what, len(texts), len(rows)))
        return
    for t, row in zip(texts, rows):
        if row != ref[t]:
            a = struct.unpack("<%df" % (len(ref[t]) // 4), ref[t])
            g = struct.unpack("<%df" % (len(row) // 4), row) if len(row) == len(ref[t]) else ()
            diff = max((abs(x - y) for x, y in zip(a, g)), default=float("nan"))
            fail("%s: embedding of %r differs from the lone request's (max abs diff %g, %d vs %d bytes)"
                 % (what, t, diff, len(row), len(ref[t])))


def client(srv, k, ref, counts):
    c = srv.conn()
    for i in range(ROUNDS):
        sel = (k * 7 + i) % 11
        texts = [TEXTS[(k + i + j) % len(TEXTS)] for j in range(1 + (k + i) % 4)]
        what = "client %d round %d" % (k, i)
        try:
            if i % 3 == 2:  # a fresh connection now and then, beside the keep-alive ones
                c.close()
                c = srv.conn()
            if sel in (0, 1):
                st, b = call(c, "POST", "/embed", {"inputs": texts})
                if st != 200:
                    fail("%s: /embed expected 200, got %d %r" % (what, st, b[:200]))
                else:
                    check_rows(what + " /embed", texts, [f32(r) for r in json.loads(b)], ref)
            elif sel in (2, 3):
                enc = "base64" if sel == 3 else "float"
                st, b = call(c, "POST", "/v1/embeddings", {"input": texts, "model": "m", "encoding_format": enc})
                if st != 200:
                    fail("%s: /v1/embeddings (%s) expected 200, got %d %r" % (what, enc, st, b[:200]))
                else:
                    data = sorted(json.loads(b)["data"], key=lambda d: d["index"])
                    rows = [base64.b64decode(d["embedding"]) if enc == "base64" else f32(d["embedding"]) for d in data]
                    check_rows(what + " /v1/embeddings " + enc, texts, rows, ref)
            elif sel == 4:
                st, b = call(c, "POST", "/tokenize", {"inputs": texts})
                if st != 200 or len(json.loads(b)) != len(texts):
                    fail("%s: /tokenize expected 200 with %d rows, got %d %r" % (what, len(texts), st, b[:200]))
            elif sel == 5:
                st, b = call(c, "POST", "/similarity", {"inputs": {"source_sentence": texts[0], "sentences": TEXTS[:3]}})
                if st != 200 or len(json.loads(b)) != 3:
                    fail("%s: /similarity expected 200 with 3 scores, got %d %r" % (what, st, b[:200]))
            elif sel == 6:
                for path in ("/info", "/health", "/v1/models", "/metrics"):
                    st, b = call(c, "GET", path)
                    if st != 200:
                        fail("%s: GET %s expected 200, got %d" % (what, path, st))
            elif sel == 7:
                c.request("POST", "/embed", body=b"{\"inputs\": [", headers={"Content-Type": "application/json"})
                r = c.getresponse()
                b = r.read()
                if r.status != 422:
                    fail("%s: truncated JSON expected 422, got %d %r" % (what, r.status, b[:200]))
            elif sel == 8:
                st, b = call(c, "GET", "/no/such/route")
                if st != 404:
                    fail("%s: unknown route expected 404, got %d" % (what, st))
            elif sel == 9:
                st, b = call(c, "GET", "/embed")
                if st != 405:
                    fail("%s: GET /embed expected 405, got %d" % (what, st))
            else:
                st, b = call(c, "POST", "/embed", {"inputs": []})
                if st != 422:
                    fail("%s: empty inputs expected 422, got %d %r" % (what, st, b[:200]))
            with flock:
                counts[0] += 1
        except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
            fail("%s: %s: %s" % (what, type(e).__name__, e))
            c.close()
            c = srv.conn()
    c.close()


def send_raw(srv, path, body, upto=None):
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=60)
    head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n"
            % (path, len(body))).encode()
    s.sendall(head + (body if upto is None else body[:upto]))
    return s


def read_raw(s):
    data = b""
    while True:
        try:
            k = s.recv(65536)
        except OSError:
            break
        if not k:
            break
        data += k
        head, sep, rest = data.partition(b"\r\n\r\n")
        if sep:
            m = re.search(rb"content-length:\s*(\d+)", head, re.I)
            if m and len(rest) >= int(m.group(1)):
                break
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/") else -1
    head, _, body = data.partition(b"\r\n\r\n")
    return status, head, body


def hang_ups(srv, ref):
    """Clients that go away while their request waits, among clients that stay."""
    before = metric(srv, "sembed_cancelled_total")
    stay = []
    gone = 0
    for k in range(6):
        # a client that stays, so the batcher is busy when the next one hangs up
        stay.append((send_raw(srv, "/embed", json.dumps({"inputs": [TEXTS[k], TEXTS[k + 1]]}).encode()), k))
        s = send_raw(srv, "/embed", json.dumps({"inputs": TEXTS * 4}).encode())
        time.sleep(0.002 * k)  # hang up at different moments (queued, mid-pass, answered)
        s.close()
        gone += 1
    for s, k in stay:
        st, _, body = read_raw(s)
        s.close()
        if st != 200:
            fail("hang-ups: the client that stayed (%d) expected 200, got %d" % (k, st))
        else:
            check_rows("hang-ups, client that stayed", [TEXTS[k], TEXTS[k + 1]], [f32(r) for r in json.loads(body)], ref)
    # at least one hang-up is seen while it waits (each pass pauses PASS_DELAY_MS first)
    wait_metric(srv, "sembed_cancelled_total", before + 1)
    st, b = one(srv, "POST", "/embed", {"inputs": TEXTS[0]})
    if st != 200 or f32(json.loads(b)[0]) != ref[TEXTS[0]]:
        fail("hang-ups: a request after them expected 200 and the lone embedding, got %d" % st)
    return gone, metric(srv, "sembed_cancelled_total") - before


def drain(srv, ref):
    """SIGTERM with a request in the batcher and one half sent: both answered, exit 0."""
    busy = send_raw(srv, "/embed", json.dumps({"inputs": TEXTS * 4}).encode())
    queued = send_raw(srv, "/embed", json.dumps({"inputs": TEXTS[2]}).encode())
    body = json.dumps({"inputs": TEXTS[3]}).encode()
    half = send_raw(srv, "/embed", body, upto=10)
    wait_metric(srv, "sembed_queue_requests", 2)
    srv.p.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    half.sendall(body[10:])
    for s, texts, what in ((busy, None, "in the batcher"), (queued, [TEXTS[2]], "queued"), (half, [TEXTS[3]], "half sent")):
        st, head, b = read_raw(s)
        s.close()
        if st != 200:
            fail("drain: request %s at SIGTERM expected 200, got %d %r" % (what, st, (head + b)[:200]))
        elif texts:
            check_rows("drain, " + what, texts, [f32(r) for r in json.loads(b)], ref)
    try:
        rc = srv.p.wait(timeout=120)
    except subprocess.TimeoutExpired:
        srv.p.kill()
        rc = srv.p.wait()
        fail("drain: the server did not exit within 120 s of SIGTERM")
    if rc != 0:
        fail("drain: server exit status after SIGTERM expected 0, got %d (66: a ThreadSanitizer report)" % rc)


def main():
    if len(sys.argv) != 4:
        raise SystemExit(__doc__)
    binary, model, log_path = sys.argv[1:]
    t0 = time.time()
    srv = Server(binary, model, log_path)
    try:
        run_phases(srv)
    except (OSError, http.client.HTTPException, ValueError, KeyError) as e:
        fail("%s: %s (server exit status %s; 66: a ThreadSanitizer report)" % (type(e).__name__, e, srv.p.poll()))
    finally:
        if srv.p.poll() is None:
            srv.p.kill()
            srv.p.wait()
        srv.log.close()
    with open(log_path, "rb") as f:
        log = f.read().decode("utf-8", "replace")
    n_reports = log.count("WARNING: ThreadSanitizer")
    if n_reports:
        fail("ThreadSanitizer: %d report(s) in %s" % (n_reports, log_path))
    if failures:
        print("serve_tsan_drive: %d failure(s)" % len(failures))
        return 1
    print("serve_tsan_drive: passed: %d clients x %d requests (%d inputs in %d passes), %d hang-ups (%d seen "
          "cancelled), drain on SIGTERM exit 0, 0 ThreadSanitizer reports, %.0f s"
          % (CLIENTS, ROUNDS, stats["inputs"], stats["passes"], stats["gone"], stats["cancelled"], time.time() - t0))
    return 0


stats = {"inputs": -1, "passes": -1, "gone": -1, "cancelled": -1}


def run_phases(srv):
    ref = lone_references(srv)
    counts = [0]
    ts = [threading.Thread(target=client, args=(srv, k, ref, counts)) for k in range(CLIENTS)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    if counts[0] != CLIENTS * ROUNDS:
        fail("concurrency: %d of %d requests completed as expected" % (counts[0], CLIENTS * ROUNDS))
    stats["passes"] = metric(srv, "sembed_passes_total")
    stats["inputs"] = metric(srv, "sembed_inputs_total")
    stats["gone"], stats["cancelled"] = hang_ups(srv, ref)
    drain(srv, ref)


if __name__ == "__main__":
    sys.exit(main())
