#!/usr/bin/env python3
"""Clients for the HTTP integration tests that curl cannot be: raw sockets
(malformed HTTP, slow clients, connections from other loopback addresses),
timing (the long poll, server-sent events), and concurrency (paging while
another client writes). Standard library only. Each subcommand prints what
it measured and exits 0 if it held, 1 otherwise.

  http_probe.py PORT TOKEN malformed
  http_probe.py PORT TOKEN slow N TIMEOUT_S
  http_probe.py PORT TOKEN slowloris N DEADLINE_S
  http_probe.py PORT TOKEN burst BURST OTHER_TOKEN
  http_probe.py PORT TOKEN client-cap CAP
  http_probe.py PORT TOKEN total-cap TOTAL PER_ADDRESS
  http_probe.py PORT TOKEN longpoll WRITE_TOKEN TRIALS LOG LOKET CONF
  http_probe.py PORT TOKEN page-while-writing WRITE_TOKEN COLL N
  http_probe.py PORT TOKEN feed SINCE OUT
  http_probe.py PORT TOKEN sse-follow WRITE_TOKEN LOKET CONF
  http_probe.py PORT TOKEN sse-quiet HEARTBEAT_MS MAX_S
  http_probe.py PORT TOKEN sse-gone CAP

Connections that must count apart come from 127.0.0.2 and up (Linux
answers the whole of 127/8 on loopback); the client that must be served
meanwhile comes from 127.0.0.1.
"""
import http.client
import json
import select
import socket
import statistics
import subprocess
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


def connect(src=None, timeout=10):
    return socket.create_connection(("127.0.0.1", PORT), timeout=timeout,
                                    source_address=(src, 0) if src else None)


def raw(data, read=True, timeout=5):
    s = connect(timeout=timeout)
    s.sendall(data)
    out = b""
    if read:
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
                s.settimeout(0.2)  # the answer has come; a connection kept alive need not close
        except socket.timeout:
            pass
    s.close()
    return out


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def end_cursor(token=TOKEN):
    """The cursor after everything the feed holds now."""
    status, body = call("GET", "/v1/changes?limit=1000", token)
    while status == 200 and body["more"]:
        status, body = call("GET", "/v1/changes?limit=1000&since=" + body["cursor"], token)
    if status != 200:
        fail("the feed answered %d: %r" % (status, body))
    return body["cursor"]


class Sse:
    """A GET of the change feed as text/event-stream, read event by event."""

    def __init__(self, path, headers=None, src=None, timeout=10):
        self.conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout,
                                               source_address=(src, 0) if src else None)
        h = {"Authorization": "Bearer " + TOKEN, "Accept": "text/event-stream"}
        h.update(headers or {})
        self.conn.request("GET", path, headers=h)
        self.resp = self.conn.getresponse()
        self.status = self.resp.status

    def next(self):
        """The next event or comment as a dict (id, data, event; comment), None at the end."""
        ev = {}
        while True:
            line = self.resp.readline()
            if not line:
                return None
            line = line.decode().rstrip("\n")
            if line == "":
                if ev:
                    ev["at"] = time.monotonic()
                    return ev
                continue
            if line.startswith(":"):
                ev.setdefault("comment", line[1:].strip())
                continue
            k, _, v = line.partition(":")
            ev[k] = v[1:] if v.startswith(" ") else v

    def next_event(self):
        """The next event, past comments."""
        while True:
            ev = self.next()
            if ev is None or "comment" not in ev:
                return ev

    def close(self):
        self.conn.close()


def put(token, coll, id_, fields):
    st, body = call("PUT", "/v1/entities/%s/%s" % (coll, id_), token, json.dumps(fields).encode())
    if st != 200:
        fail("put %s/%s answered %d %r" % (coll, id_, st, body))


if CMD == "malformed":
    cases = [
        (b"GARBAGE\r\n\r\n", b" 400 "),
        (b"GET /v1/status HTTP/1.1\r\nHost: x\r\nBad Header Line\r\n\r\n", b" 400 "),
        (b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 100000 + b"\r\n\r\n", b" 43"),
        (b"GET /" + b"a" * 100000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", b" 41"),
        (b"PUT /v1/entities/expert/x HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n", b" 400 "),
        (b"PUT /v1/entities/expert/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() +
         b"\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", b" 40"),
        (b"GET /v1/status HTTP/1.1\r\n\r\n", b" 400 "),  # HTTP/1.1 without Host
        (b"GET /v1/status HTTP/1.1\r\nHost : x\r\n\r\n", b" 400 "),
        (b"GET /v1/status HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", b" 400 "),
        (b"GET /v1/status\r\nHost: x\r\n\r\n", b" 400 "),
        (b"GET /v1/status HTTP/9.9\r\nHost: x\r\n\r\n", b" 505 "),
        # Two lengths: the smuggling of a request inside another's body.
        (b"PUT /v1/entities/expert/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() +
         b"\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", b" 400 "),
        (b"PUT /v1/entities/expert/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() +
         b"\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nabcdef", b" 400 "),
        (b"PUT /v1/entities/expert/x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + TOKEN.encode() +
         b"\r\nContent-Length: -1\r\n\r\n", b" 400 "),
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
        s = connect("127.0.0.3")
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
    # Each trial waits until loket-http logs that the poll found nothing and
    # waits (log_level debug), then writes, through HTTP or through loket
    # put, and measures from the write's reply to the poll's answer.
    wtoken, trials, log, loket, conf = sys.argv[4], int(sys.argv[5]), sys.argv[6], sys.argv[7], sys.argv[8]
    cursor = end_cursor()
    delays = []
    for i in range(trials):
        result = {}

        def poll(since=cursor):
            result["status"], result["body"] = call("GET", "/v1/changes?wait=10&since=" + since)
            result["at"] = time.monotonic()

        th = threading.Thread(target=poll)
        th.start()
        marker = "a long poll waits for changes after " + cursor
        deadline = time.monotonic() + 5
        while marker not in open(log, errors="replace").read():
            if time.monotonic() > deadline or not th.is_alive():
                fail("the long poll did not wait (no %r in %s)" % (marker, log))
            time.sleep(0.005)
        how = "http" if i % 2 == 0 else "loket put"
        if how == "http":
            put(wtoken, "expert", "lp%d" % i, {"name": "LP %d" % i})
        else:
            subprocess.run([loket, "-c", conf, "put", "expert", "lp%d" % i, "--json",
                            json.dumps({"name": "LP %d" % i})], check=True, stdout=subprocess.DEVNULL)
        wrote = time.monotonic()
        th.join()
        if result["status"] != 200 or [c["id"] for c in result["body"]["changes"]] != ["lp%d" % i]:
            fail("long poll answered %r" % result)
        delays.append((how, (result["at"] - wrote) * 1000))
        cursor = result["body"]["cursor"]
    print("long poll woke after the write's reply: %s" %
          ", ".join("%.1f ms (%s)" % (d, how) for how, d in delays))
    worst = max(d for _, d in delays)
    if worst > 100:
        fail("a long poll woke %.1f ms after the write, more than 100 ms" % worst)
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
        path = "/v1/entities/%s?limit=997" % coll + ("&after=" + after if after else "")
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
elif CMD == "slowloris":
    # n clients from 127.0.0.3 send their request a byte a second, never
    # silent for the idle timeout; each must be cut at the deadline while
    # 127.0.0.1 is served all along.
    n, deadline_s = int(sys.argv[4]), float(sys.argv[5])
    request = b"GET /v1/status HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"
    cut, answered = {}, []

    def slow(k):
        s = connect("127.0.0.3")
        t0 = time.monotonic()
        for b in request:
            try:
                s.send(bytes([b]))
            except OSError:
                break
            # A second between bytes, ended early by the server's closing.
            if select.select([s], [], [], 1.0)[0]:
                try:
                    if s.recv(100) == b"":
                        break
                except OSError:
                    break
                answered.append(k)  # it has no whole request to answer
                break
            if time.monotonic() - t0 > deadline_s + 10:
                break
        cut[k] = time.monotonic() - t0
        s.close()

    threads = [threading.Thread(target=slow, args=(k,)) for k in range(n)]
    for th in threads:
        th.start()
    served = []
    while any(th.is_alive() for th in threads):
        t = time.monotonic()
        if not healthy():
            fail("a normal request was not served beside the slow clients")
        served.append((time.monotonic() - t) * 1000)
        time.sleep(0.3)
    for th in threads:
        th.join()
    if answered:
        fail("slow clients %r got an answer to half a request" % answered)
    print("slow clients cut after %s s (deadline %.0f s); %d normal requests served meanwhile, "
          "slowest %.0f ms" % (", ".join("%.1f" % c for c in sorted(cut.values())), deadline_s,
                               len(served), max(served)))
    if max(cut.values()) > deadline_s + 1 or min(cut.values()) < deadline_s - 0.5:
        fail("a slow client was not cut at the deadline of %.0f s" % deadline_s)
    print("ok")

elif CMD == "burst":
    # Requests back to back on one keep-alive connection: the burst passes,
    # then 429 with Retry-After; another token is not held back; the first
    # token is served again once Retry-After has passed.
    burst, other = int(sys.argv[4]), sys.argv[5]
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10)
    h = {"Authorization": "Bearer " + TOKEN}
    ok, limited = 0, None
    for i in range(burst + 20):
        c.request("GET", "/v1/openapi.json", headers=h)
        r = c.getresponse()
        data = r.read()
        if r.status == 200 and limited is None:
            ok += 1
        elif r.status == 429:
            limited = (r.getheader("Retry-After"), json.loads(data))
            break
        else:
            fail("request %d answered %d" % (i, r.status))
    if limited is None:
        fail("%d requests at once were all served (burst %d)" % (burst + 20, burst))
    retry, body = limited
    print("%d served, then 429 Retry-After %s: %s" % (ok, retry, body["error"]["message"]))
    if not burst <= ok <= burst + 2:
        fail("the burst let %d requests through, not %d" % (ok, burst))
    if body["error"]["name"] != "RATE_LIMITED" or not retry or int(retry) < 1:
        fail("a 429 without its code or Retry-After: %r %r" % (retry, body))
    st, _ = call("GET", "/v1/status", other)
    if st != 200:
        fail("another token was held back too (%d)" % st)
    t = time.monotonic()
    while True:
        c.request("GET", "/v1/openapi.json", headers=h)
        r = c.getresponse()
        r.read()
        if r.status == 200:
            break
        if time.monotonic() - t > int(retry) + 1:
            fail("still refused %.1f s after a Retry-After of %s" % (time.monotonic() - t, retry))
        time.sleep(0.1)
    print("served again after %.1f s" % (time.monotonic() - t))
    # Without a token the address is the client: 127.0.0.4 runs out, 127.0.0.1 does not.
    codes = []
    c4 = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10, source_address=("127.0.0.4", 0))
    for i in range(burst + 20):
        c4.request("GET", "/v1/status")
        r = c4.getresponse()
        r.read()
        codes.append(r.status)
        if r.status == 429:
            break
    print("without a token from 127.0.0.4: %d answered 401, then %d" % (codes.count(401), codes[-1]))
    if codes[-1] != 429 or codes.count(401) < burst:
        fail("requests without a token were not limited by address: %r" % codes)
    st, _ = call("GET", "/v1/status", other)
    if st != 200:
        fail("127.0.0.1 was held back by 127.0.0.4's requests (%d)" % st)
    print("ok")

elif CMD == "client-cap":
    # cap connections from 127.0.0.2 are served and kept open; one more
    # from there is closed without an answer, 127.0.0.1 is served, and once
    # they close 127.0.0.2 is served again.
    cap = int(sys.argv[4])
    held = []
    for i in range(cap):
        c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10, source_address=("127.0.0.2", 0))
        c.request("GET", "/v1/openapi.json")
        r = c.getresponse()
        r.read()
        if r.status != 200:
            fail("connection %d of %d answered %d" % (i + 1, cap, r.status))
        held.append(c)
    extra = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10, source_address=("127.0.0.2", 0))
    try:
        extra.request("GET", "/v1/openapi.json")
        r = extra.getresponse()
        fail("connection %d from one address was served (%d)" % (cap + 1, r.status))
    except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
        pass
    print("connection %d from 127.0.0.2 was closed unanswered" % (cap + 1))
    if not healthy():
        fail("127.0.0.1 was not served while 127.0.0.2 was at its cap")
    for c in held:
        c.close()
    t = time.monotonic()
    while True:
        c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10, source_address=("127.0.0.2", 0))
        try:
            c.request("GET", "/v1/openapi.json")
            if c.getresponse().status == 200:
                break
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            pass
        finally:
            c.close()
        if time.monotonic() - t > 3:
            fail("127.0.0.2 was not served again after its connections closed")
        time.sleep(0.05)
    print("ok")

elif CMD == "total-cap":
    # total connections from several addresses fill the server; the next
    # one, from yet another address, is closed unanswered until one of
    # them closes.
    total, per = int(sys.argv[4]), int(sys.argv[5])
    held = []
    for i in range(total):
        src = "127.0.0.%d" % (10 + i // per)
        c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10, source_address=(src, 0))
        c.request("GET", "/v1/openapi.json")
        r = c.getresponse()
        r.read()
        if r.status != 200:
            fail("connection %d of %d answered %d" % (i + 1, total, r.status))
        held.append(c)

    def served(src):
        c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10, source_address=(src, 0))
        try:
            c.request("GET", "/v1/openapi.json")
            return c.getresponse().status == 200
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            return False
        finally:
            c.close()

    if served("127.0.0.99"):
        fail("connection %d was served" % (total + 1))
    print("connection %d was closed unanswered while %d are open" % (total + 1, total))
    held[0].close()
    t = time.monotonic()
    while not served("127.0.0.99"):
        if time.monotonic() - t > 3:
            fail("no connection was served after one of the %d closed" % total)
        time.sleep(0.05)
    print("and one is served %.0f ms after one closes" % ((time.monotonic() - t) * 1000))
    for c in held[1:]:
        c.close()
    print("ok")

elif CMD == "sse-follow":
    # A stream from the end of the feed: each write (through HTTP or loket
    # put) arrives as one event within 100 ms, with the cursor after it as
    # its id; a reconnect with Last-Event-ID gets exactly what came after.
    wtoken, loket, conf = sys.argv[4], sys.argv[5], sys.argv[6]
    start = end_cursor()
    s = Sse("/v1/changes?since=" + start)
    if s.status != 200 or s.resp.getheader("Content-Type") != "text/event-stream":
        fail("the stream answered %d %s" % (s.status, s.resp.getheader("Content-Type")))
    opening = s.next()
    if "comment" not in opening:
        fail("the stream did not open with a comment: %r" % opening)
    events, delays = [], []
    for i in range(6):
        how = "http" if i < 3 else "loket put"
        if how == "http":
            put(wtoken, "expert", "sse%d" % i, {"name": "SSE %d" % i})
        else:
            subprocess.run([loket, "-c", conf, "put", "expert", "sse%d" % i, "--json",
                            json.dumps({"name": "SSE %d" % i})], check=True, stdout=subprocess.DEVNULL)
        wrote = time.monotonic()
        ev = s.next_event()
        if ev is None or json.loads(ev["data"])["id"] != "sse%d" % i or not ev.get("id"):
            fail("write %d came as %r" % (i, ev))
        delays.append((how, (ev["at"] - wrote) * 1000))
        events.append(ev)
    s.close()
    print("events came after the write's reply: %s" % ", ".join("%.1f ms (%s)" % (d, h) for h, d in delays))
    if max(d for _, d in delays) > 100:
        fail("an event came more than 100 ms after its write")
    # Each id is the feed's cursor after its change.
    for a, b in zip(events, events[1:]):
        st, body = call("GET", "/v1/changes?limit=1&since=" + a["id"])
        got = [c["id"] for c in body["changes"]]
        if got != [json.loads(b["data"])["id"]] or body["cursor"] != b["id"]:
            fail("the feed after id %s gives %r %s, the stream gave %s %s" %
                 (a["id"], got, body["cursor"], json.loads(b["data"])["id"], b["id"]))
    # Reconnecting as EventSource does: the URL it began with, and the last id it saw.
    s = Sse("/v1/changes?since=" + start, {"Last-Event-ID": events[1]["id"]})
    again = []
    while True:
        ev = s.next()
        if ev is None:
            fail("the resumed stream ended")
        if "comment" in ev:
            if len(again) == 4:
                break  # a heartbeat after the four: nothing more, nothing repeated
            continue
        again.append(ev)
        if len(again) > 4:
            fail("the resumed stream gave more than the four changes after the id")
    s.close()
    if [(e["id"], e["data"]) for e in again] != [(e["id"], e["data"]) for e in events[2:]]:
        fail("the resumed stream gave %r" % [json.loads(e["data"])["id"] for e in again])
    print("resumed with Last-Event-ID: exactly the 4 changes after it")
    print("ok")

elif CMD == "sse-quiet":
    # A stream with nothing to say: a comment every heartbeat, and a clean
    # end with a comment after MAX_S.
    beat_ms, max_s = int(sys.argv[4]), float(sys.argv[5])
    t0 = time.monotonic()
    s = Sse("/v1/changes?since=" + end_cursor(), timeout=max_s + 10)
    comments = []
    while True:
        ev = s.next()
        if ev is None:
            break
        if "comment" not in ev:
            fail("an event on a quiet stream: %r" % ev)
        comments.append(ev)
    took = time.monotonic() - t0
    s.close()
    gaps = [(b["at"] - a["at"]) * 1000 for a, b in zip(comments, comments[1:])]
    print("%d comments, at most %.0f ms apart; the stream ended after %.1f s with %r" %
          (len(comments), max(gaps), took, comments[-1]["comment"]))
    if max(gaps) > beat_ms + 300:
        fail("a quiet stream was silent for %.0f ms (heartbeat %d ms)" % (max(gaps), beat_ms))
    if not max_s - 0.5 <= took <= max_s + 1.5 or "ends after" not in comments[-1]["comment"]:
        fail("the stream did not end after %.0f s as it should" % max_s)
    print("ok")

elif CMD == "sse-gone":
    # cap streams from 127.0.0.2 fill its connections; once their clients
    # close, loket-http notices within a poll (not at the next heartbeat)
    # and 127.0.0.2 is served again.
    cap = int(sys.argv[4])
    start = end_cursor()
    streams = []
    for i in range(cap):
        s = Sse("/v1/changes?since=" + start, src="127.0.0.2")
        if s.status != 200 or "comment" not in s.next():
            fail("stream %d did not open" % i)
        streams.append(s)
    for s in streams:
        s.close()
    t = time.monotonic()
    while True:
        c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=10, source_address=("127.0.0.2", 0))
        try:
            c.request("GET", "/v1/openapi.json")
            if c.getresponse().status == 200:
                break
        except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
            pass
        finally:
            c.close()
        if time.monotonic() - t > 5:
            fail("the closed streams still held their connections after 5 s")
        time.sleep(0.02)
    took = (time.monotonic() - t) * 1000
    print("%d closed streams let go of their connections within %.0f ms" % (cap, took))
    if took > 500:
        fail("loket-http noticed the closed streams only after %.0f ms" % took)
    print("ok")

elif CMD == "feed":
    # The whole feed after SINCE ("" for all), a page of 1000 at a time:
    # "COLL/ID" (and " deleted") a line into OUT; the last cursor on stdout.
    since, out = sys.argv[4], sys.argv[5]
    with open(out, "w") as f:
        while True:
            st, body = call("GET", "/v1/changes?limit=1000" + ("&since=" + since if since else ""))
            if st != 200:
                fail("the feed answered %d %r" % (st, body))
            for c in body["changes"]:
                f.write("%s/%s%s\n" % (c["coll"], c["id"], " deleted" if c["deleted"] else ""))
            since = body["cursor"]
            if not body["more"]:
                break
    print(since)
else:
    fail("unknown command " + CMD)
