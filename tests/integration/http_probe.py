#!/usr/bin/env python3
"""Clients for the HTTP integration tests that curl cannot be: raw sockets
(malformed HTTP, slow clients), timing (the long poll), and concurrency
(paging while another client writes). Standard library only. Each
subcommand prints what it measured and exits 0 if it held, 1 otherwise.

  http_probe.py PORT TOKEN malformed
  http_probe.py PORT TOKEN slow N TIMEOUT_S
  http_probe.py PORT TOKEN longpoll WRITE_TOKEN TRIALS
  http_probe.py PORT TOKEN page-while-writing WRITE_TOKEN COLL N
"""
import json
import socket
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request

PORT, TOKEN, CMD = int(sys.argv[1]), sys.argv[2], sys.argv[3]
BASE = "http://127.0.0.1:%d" % PORT


def call(method, path, token=TOKEN, body=None, timeout=30):
    req = urllib.request.Request(BASE + path, data=body, method=method)
    req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")


def healthy():
    status, body = call("GET", "/v1/status")
    return status == 200 and body.get("name")


def raw(data, read=True, timeout=5):
    s = socket.create_connection(("127.0.0.1", PORT), timeout=timeout)
    s.sendall(data)
    out = b""
    if read:
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
        except socket.timeout:
            pass
    s.close()
    return out


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


if CMD == "malformed":
    cases = [
        (b"GARBAGE\r\n\r\n", b" 400 "),
        (b"GET /v1/status HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n", b" 400 "),
        (b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n", b" 43"),
        (b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b" 41"),
        (b"PUT /v1/entities/expert/x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", b" 400 "),
        (b"PUT /v1/entities/expert/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() +
         b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b" 40"),
    ]
    for data, want in cases:
        got = raw(data)
        first = got.split(b"\r\n", 1)[0]
        # Refused with the status, or (where HTTP has no answer for it) closed without one.
        if first and want not in first:
            fail("%r... got %r, expected a status with %r" % (data[:40], first, want))
        print("refused %r... with %s" % (data[:30], first.decode() or "the connection closed"))
    if not healthy():
        fail("loket-http does not answer after malformed requests")
    print("ok")

elif CMD == "slow":
    n, timeout_s = int(sys.argv[4]), float(sys.argv[5])
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", PORT), timeout=10)
        s.sendall(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n")  # headers never end
        socks.append(s)
    # While they hang, others are served.
    t0 = time.time()
    if not healthy():
        fail("a normal request was not served while %d slow clients hang" % n)
    print("served a normal request beside %d slow clients in %.0f ms" % (n, (time.time() - t0) * 1000))
    # A silent one is dropped after the timeout.
    t0 = time.time()
    for s in socks:
        s.settimeout(timeout_s + 5)
        try:
            data = s.recv(100)
        except (ConnectionResetError, socket.timeout) as e:
            data = b"" if isinstance(e, ConnectionResetError) else None
        if data is None:
            fail("a silent client was still connected %.1f s after the timeout" % (timeout_s + 5))
        s.close()
    took = time.time() - t0
    print("all %d silent clients dropped within %.1f s (timeout %.0f s)" % (n, took, timeout_s))
    if took > timeout_s + 3:
        fail("dropping took too long")
    if not healthy():
        fail("loket-http does not answer after the slow clients")
    print("ok")

elif CMD == "longpoll":
    wtoken, trials = sys.argv[4], int(sys.argv[5])
    status, body = call("GET", "/v1/changes?limit=1000")
    cursor = body["cursor"]
    while body["more"]:
        status, body = call("GET", "/v1/changes?limit=1000&since=" + body["cursor"])
        cursor = body["cursor"]
    delays = []
    for i in range(trials):
        result = {}

        def poll():
            t = time.monotonic()
            result["status"], result["body"] = call("GET", "/v1/changes?wait=10&since=" + cursor)
            result["at"] = time.monotonic()
            result["waited"] = result["at"] - t

        th = threading.Thread(target=poll)
        th.start()
        time.sleep(0.3)  # the poll is waiting: its request has been sent and found nothing
        st, _ = call("PUT", "/v1/entities/expert/lp%d" % i, wtoken, json.dumps({"name": "LP %d" % i}).encode())
        wrote = time.monotonic()
        if st != 200:
            fail("put answered %d" % st)
        th.join()
        if result["status"] != 200 or [c["id"] for c in result["body"]["changes"]] != ["lp%d" % i]:
            fail("long poll answered %r" % result)
        delays.append((result["at"] - wrote) * 1000)
        cursor = result["body"]["cursor"]
    print("long poll woke %s ms after the write's reply" % ", ".join("%.0f" % d for d in delays))
    if statistics.median(delays) > 100 or max(delays) > 500:
        fail("the long poll did not wake within 100 ms (median) of the write")
    # Nothing changes: the poll comes back empty after the wait.
    t = time.monotonic()
    status, body = call("GET", "/v1/changes?wait=1&since=" + cursor)
    took = time.monotonic() - t
    if status != 200 or body["changes"] or not 0.9 <= took <= 2.5:
        fail("an idle long poll of 1 s answered %d %r after %.2f s" % (status, body, took))
    print("ok")

elif CMD == "page-while-writing":
    wtoken, coll, n = sys.argv[4], sys.argv[5], int(sys.argv[6])
    stop = threading.Event()
    writes = [0]

    def writer():
        # New ids between the old ones, and updates of old ones, all the while.
        i = 0
        while not stop.is_set():
            lines = []
            for k in range(50):
                lines.append(json.dumps({"coll": coll, "id": "e%05d-new%d" % ((i * 50 + k) * 7 % n, i), "fields": {"name": "new"}}))
                lines.append(json.dumps({"coll": coll, "id": "e%05d" % ((i * 50 + k) * 13 % n), "fields": {"name": "upd %d" % i}}))
            st, body = call("POST", "/v1/bulk", wtoken, ("\n".join(lines) + "\n").encode())
            if st != 200:
                print("writer: %d %r" % (st, body))
                return
            writes[0] += len(lines)
            i += 1

    th = threading.Thread(target=writer)
    th.start()
    seen = {}
    after = None
    pages = 0
    while True:
        path = "/v1/entities/%s?limit=97" % coll + ("&after=" + after if after else "")
        st, body = call("GET", path)
        if st != 200:
            stop.set()
            fail("page answered %d %r" % (st, body))
        for e in body["entities"]:
            seen[e["id"]] = seen.get(e["id"], 0) + 1
        pages += 1
        after = body["next"]
        if not after:
            break
    stop.set()
    th.join()
    old = ["e%05d" % i for i in range(n)]
    missing = [i for i in old if i not in seen]
    repeated = [i for i, c in seen.items() if c > 1]
    print("%d pages, %d entities seen, %d writes meanwhile; missing %d, repeated %d" %
          (pages, len(seen), writes[0], len(missing), len(repeated)))
    if missing or repeated or writes[0] == 0:
        fail("missing %r repeated %r (writes %d)" % (missing[:5], repeated[:5], writes[0]))
    print("ok")
else:
    fail("unknown command " + CMD)
