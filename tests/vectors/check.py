#!/usr/bin/env python3
"""An independent check of the test vectors against proto/FORMAT.md.

Written from FORMAT.md alone, not from the C code: a canonical msgpack
encoder and a strict decoder (which refuses what does not re-encode to the
same bytes), the changeset body, signature input and hash, the entity text,
the replay rules, the entity digest, ChaCha20 (RFC 8439), the LtHash16
state digest, the RFC 6962 log tree and its proofs (from the RFC's
recursive definitions), checkpoints with their signatures and
cosignatures, and key rotation (the key history, revocations). It
recomputes every output in changeset.json, entity.json, lthash.json,
state.json, merkle.json, checkpoint.json and rotation.json from their
inputs and says what differs.

    python3 tests/vectors/check.py [DIR]      (default: this file's folder)

Only the Python standard library, plus PyNaCl (Debian: python3-nacl) for
the Ed25519 signatures; without PyNaCl the signatures are skipped (said so)
and everything else is still checked. Not run by CI: a tool for whoever
changes the format, and a model for an auditor's own verifier.
"""
import hashlib
import json
import os
import re
import struct
import sys

try:
    import nacl.signing
except ImportError:  # pragma: no cover
    nacl = None

DOMAIN = b"loket/changeset/v1"
LANES = 2048

failures = 0


def fail(what, got, want):
    global failures
    failures += 1
    print(f"MISMATCH {what}:\n  computed {got}\n  vector   {want}")


def same(what, got, want):
    if got != want:
        fail(what, got, want)


# --- canonical msgpack (FORMAT.md, "Canonical msgpack") ---


def mp(v):
    if v is None:
        return b"\xc0"
    if v is False:
        return b"\xc2"
    if v is True:
        return b"\xc3"
    if isinstance(v, int):
        if 0 <= v <= 0x7F:
            return bytes([v])
        if 0 <= v <= 0xFF:
            return b"\xcc" + struct.pack(">B", v)
        if 0 <= v <= 0xFFFF:
            return b"\xcd" + struct.pack(">H", v)
        if 0 <= v <= 0xFFFFFFFF:
            return b"\xce" + struct.pack(">I", v)
        if 0 <= v <= 2**63 - 1:
            return b"\xcf" + struct.pack(">Q", v)
        if -32 <= v < 0:
            return struct.pack(">b", v)
        if -128 <= v < 0:
            return b"\xd0" + struct.pack(">b", v)
        if -32768 <= v < 0:
            return b"\xd1" + struct.pack(">h", v)
        if -(2**31) <= v < 0:
            return b"\xd2" + struct.pack(">i", v)
        if -(2**63) <= v < 0:
            return b"\xd3" + struct.pack(">q", v)
        raise ValueError(f"integer {v} beyond int64")
    if isinstance(v, float):
        if v != v or v in (float("inf"), float("-inf")):
            raise ValueError("NaN and infinities are not values")
        return b"\xcb" + struct.pack(">d", v)
    if isinstance(v, str):
        b = v.encode("utf-8")
        n = len(b)
        if n < 32:
            return bytes([0xA0 | n]) + b
        if n < 256:
            return b"\xd9" + struct.pack(">B", n) + b
        if n < 65536:
            return b"\xda" + struct.pack(">H", n) + b
        return b"\xdb" + struct.pack(">I", n) + b
    if isinstance(v, bytes):  # bin: only origin and prev, 32 bytes
        assert len(v) < 256
        return b"\xc4" + bytes([len(v)]) + v
    if isinstance(v, list):
        n = len(v)
        head = bytes([0x90 | n]) if n < 16 else (b"\xdc" + struct.pack(">H", n) if n < 65536 else b"\xdd" + struct.pack(">I", n))
        return head + b"".join(mp(x) for x in v)
    if isinstance(v, dict):
        n = len(v)
        head = bytes([0x80 | n]) if n < 16 else (b"\xde" + struct.pack(">H", n) if n < 65536 else b"\xdf" + struct.pack(">I", n))
        # Bytewise order of the UTF-8 keys; a prefix sorts first (Python's bytes order).
        keys = sorted(v, key=lambda k: k.encode("utf-8"))
        return head + b"".join(mp(k) + mp(v[k]) for k in keys)
    raise TypeError(type(v))


# --- changesets (FORMAT.md, "The changeset") ---


def op_value(op):
    if op.get("del") is True:
        return [2, op["coll"], op["id"]]
    return [1, op["coll"], op["id"], op["fields"]]


def body_of(federation, origin, seq, prev, hlc, ops):
    return mp([1, federation, origin, seq, prev, hlc, [op_value(o) for o in ops]])


def sign(seed, body):
    if nacl is None:
        return None
    return nacl.signing.SigningKey(seed).sign(DOMAIN + body).signature


def public_of(seed):
    if nacl is None:
        return None
    return bytes(nacl.signing.SigningKey(seed).verify_key)


# --- a strict decoder (FORMAT.md, sections 2 and 3) ---


class Refused(Exception):
    pass


def unpack(b, i):
    """Any msgpack value at b[i:] but ext; returns (value, next index)."""
    if i >= len(b):
        raise Refused("ends inside a value")
    t = b[i]
    i += 1

    def take(n):
        nonlocal i
        if len(b) - i < n:
            raise Refused("ends inside a value")
        i += n
        return b[i - n : i]

    def text(n):
        try:
            return take(n).decode("utf-8")
        except UnicodeDecodeError:
            raise Refused("string is not UTF-8")

    def items(n):
        return [unpack_at() for _ in range(n)]

    def unpack_at():
        nonlocal i
        v, i = unpack(b, i)
        return v

    def mapping(n):
        m = {}
        for _ in range(n):
            k = unpack_at()
            if not isinstance(k, str) or k in m:
                raise Refused("map key not a string, or twice")
            m[k] = unpack_at()
        return m

    if t <= 0x7F:
        return t, i
    if t >= 0xE0:
        return t - 256, i
    if t <= 0x8F:
        return mapping(t & 15), i
    if t <= 0x9F:
        return items(t & 15), i
    if t <= 0xBF:
        return text(t & 31), i
    if t in (0xC0, 0xC2, 0xC3):
        return {0xC0: None, 0xC2: False, 0xC3: True}[t], i
    if t in (0xC4, 0xC5, 0xC6):
        return bytes(take(int.from_bytes(take(1 << (t - 0xC4)), "big"))), i
    if t == 0xCA:
        return struct.unpack(">f", take(4))[0], i
    if t == 0xCB:
        return struct.unpack(">d", take(8))[0], i
    if 0xCC <= t <= 0xCF:
        return int.from_bytes(take(1 << (t - 0xCC)), "big"), i
    if 0xD0 <= t <= 0xD3:
        return int.from_bytes(take(1 << (t - 0xD0)), "big", signed=True), i
    if t in (0xD9, 0xDA, 0xDB):
        return text(int.from_bytes(take(1 << (t - 0xD9)), "big")), i
    if t in (0xDC, 0xDD):
        return items(int.from_bytes(take(2 if t == 0xDC else 4), "big")), i
    if t in (0xDE, 0xDF):
        return mapping(int.from_bytes(take(2 if t == 0xDE else 4), "big")), i
    raise Refused("ext or 0xc1")


def check_value(v, levels):
    """levels: containers still allowed, this one included."""
    if isinstance(v, bytes):
        raise Refused("bin in a value")
    if isinstance(v, int) and not isinstance(v, bool) and not -(2**63) <= v < 2**63:
        raise Refused("integer beyond int64")
    if isinstance(v, (list, dict)):
        if levels == 0:
            raise Refused("nested too deep")
        for x in v.values() if isinstance(v, dict) else v:
            check_value(x, levels - 1)


COLL = set("abcdefghijklmnopqrstuvwxyz0123456789_")
ID = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._:@-")


# Ed25519's curve (RFC 8032, 5.1.3: decoding a point), for the keys of rotation records.
P25519 = 2**255 - 19
D25519 = -121665 * pow(121666, P25519 - 2, P25519) % P25519


def on_curve(k):
    """Whether 32 bytes decode to a point of the curve (RFC 8032 5.1.3), not of small order."""
    y = int.from_bytes(k, "little") & ((1 << 255) - 1)
    sign = k[31] >> 7
    if y >= P25519:
        return False
    u, v = (y * y - 1) % P25519, (D25519 * y * y + 1) % P25519
    x = u * pow(v, 3, P25519) * pow(u * pow(v, 7, P25519), (P25519 - 5) // 8, P25519) % P25519
    if v * x * x % P25519 == (-u) % P25519:
        x = x * pow(2, (P25519 - 1) // 4, P25519) % P25519
    elif v * x * x % P25519 != u:
        return False
    if x == 0 and sign:
        return False
    if x & 1 != sign:
        x = P25519 - x
    # Small order: 8 times the point is the neutral element (0, 1).
    pt = (x, y)
    for _ in range(3):
        pt = ed_add(pt, pt)
    return pt != (0, 1)


def ed_add(a, b):
    (x1, y1), (x2, y2) = a, b
    t = D25519 * x1 * x2 * y1 * y2 % P25519
    x3 = (x1 * y2 + x2 * y1) * pow(1 + t, P25519 - 2, P25519) % P25519
    y3 = (y1 * y2 + x1 * x2) * pow(1 - t, P25519 - 2, P25519) % P25519
    return (x3, y3)


def decode(signed):
    """The body of a signed changeset, checked; Refused if any rule breaks."""
    if len(signed) < 65 or len(signed) > 1 << 20:
        raise Refused("size")
    body = signed[:-64]
    v, end = unpack(body, 0)
    if end != len(body):
        raise Refused("bytes after the body")
    if not isinstance(v, list) or not v or v[0] != 1:
        raise Refused("not a version 1 body")
    if len(v) != 7:
        raise Refused("not 7 elements")
    _, fed, origin, seq, prev, hlc, ops = v
    if not isinstance(fed, str) or not 1 <= len(fed.encode()) <= 64:
        raise Refused("federation")
    for x in (origin, prev):
        if not isinstance(x, bytes) or len(x) != 32:
            raise Refused("origin or prev")
    for x in (seq, hlc):
        if not isinstance(x, int) or isinstance(x, bool) or not 0 <= x < 2**63:
            raise Refused("seq or hlc")
    if seq == 0 or (seq == 1 and prev != bytes(32)):
        raise Refused("seq 0, or prev of seq 1")
    if not isinstance(ops, list) or not 1 <= len(ops) <= 10000:
        raise Refused("ops")
    for op in ops:
        if isinstance(op, list) and len(op) == 2 and type(op[0]) is int and op[0] == 3:
            # A rotation record (section 14): [3, key], the only op, a key other than the origin.
            if len(ops) != 1:
                raise Refused("rotate op beside others")
            if not isinstance(op[1], bytes) or len(op[1]) != 32 or op[1] in (origin, bytes(32)):
                raise Refused("rotate op's key")
            if not on_curve(op[1]):
                raise Refused("rotate op's key is no point of the curve")
            continue
        if not isinstance(op, list) or len(op) not in (3, 4) or type(op[0]) is not int or op[0] != 5 - len(op):
            raise Refused("op shape")
        coll, eid = op[1], op[2]
        if not isinstance(coll, str) or not 1 <= len(coll) <= 32 or not set(coll) <= COLL or not "a" <= coll[0] <= "z":
            raise Refused("collection")
        if not isinstance(eid, str) or not 1 <= len(eid) <= 128 or not set(eid) <= ID or eid in (".", ".."):
            raise Refused("id")
        if len(op) == 4:
            f = op[3]
            if not isinstance(f, dict) or not 1 <= len(f) <= 256:
                raise Refused("fields")
            for k, x in f.items():
                if not 1 <= len(k.encode()) <= 64 or len(mp_or_refuse(x)) > 65536:
                    raise Refused("field name or size")
                check_value(x, 7)
    if mp_or_refuse(v) != body:
        raise Refused("not the canonical encoding")
    return v


def mp_or_refuse(v):
    try:
        return mp(v)
    except ValueError as e:
        raise Refused(str(e))


# --- the entity text (FORMAT.md, "The entity text") ---

SHORT = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}


def text_str(s):
    out = ['"']
    for ch in s:
        if ch in SHORT:
            out.append(SHORT[ch])
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def text_float(d):
    s = "%.17g" % d
    if not any(c in s for c in ".e"):
        s += ".0"
    return s


def text(v):
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return text_float(v)
    if isinstance(v, str):
        return text_str(v)
    if isinstance(v, list):
        return "[" + ",".join(text(x) for x in v) + "]"
    if isinstance(v, dict):
        keys = sorted(v, key=lambda k: k.encode("utf-8"))
        return "{" + ",".join(text_str(k) + ":" + text(v[k]) for k in keys) + "}"
    raise TypeError(type(v))


# --- replay (FORMAT.md, "Replay") ---


class Entity:
    def __init__(self):
        self.exists = False
        self.deleted = False
        self.fields = {}
        self.seq = 0
        self.hlc = 0


def fold(e, op, seq, hlc):
    """Applies op to e; returns whether anything changed."""
    if op.get("del") is True:
        if not e.exists or e.deleted:
            return False
        e.deleted, e.fields = True, {}
    else:
        live = e.exists and not e.deleted
        base = dict(e.fields) if live else {}
        new = dict(base)
        for k, v in op["fields"].items():
            if v is None:
                new.pop(k, None)
            else:
                new[k] = v
        if live and text(new) == text(base):
            return False
        e.exists, e.deleted, e.fields = True, False, new
    e.seq, e.hlc = seq, hlc
    return True


def entity_digest(coll, owner, eid, deleted, fields_text):
    m = coll.encode() + b"\0" + owner + eid.encode() + b"\0" + bytes([1 if deleted else 0])
    return hashlib.sha256(m + fields_text.encode("utf-8")).digest()


# --- ChaCha20 (RFC 8439) and LtHash16 (FORMAT.md, "The state digest") ---


def rotl(x, n):
    return ((x << n) | (x >> (32 - n))) & 0xFFFFFFFF


def chacha20_block(key, counter, nonce):
    s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    s += list(struct.unpack("<8I", key)) + [counter] + list(struct.unpack("<3I", nonce))
    w = list(s)

    def qr(a, b, c, d):
        w[a] = (w[a] + w[b]) & 0xFFFFFFFF
        w[d] = rotl(w[d] ^ w[a], 16)
        w[c] = (w[c] + w[d]) & 0xFFFFFFFF
        w[b] = rotl(w[b] ^ w[c], 12)
        w[a] = (w[a] + w[b]) & 0xFFFFFFFF
        w[d] = rotl(w[d] ^ w[a], 8)
        w[c] = (w[c] + w[d]) & 0xFFFFFFFF
        w[b] = rotl(w[b] ^ w[c], 7)

    for _ in range(10):
        qr(0, 4, 8, 12), qr(1, 5, 9, 13), qr(2, 6, 10, 14), qr(3, 7, 11, 15)
        qr(0, 5, 10, 15), qr(1, 6, 11, 12), qr(2, 7, 8, 13), qr(3, 4, 9, 14)
    return struct.pack("<16I", *[(w[i] + s[i]) & 0xFFFFFFFF for i in range(16)])


def expand(d):
    return b"".join(chacha20_block(d, i, bytes(12)) for i in range(64))


def lanes_of(d):
    return list(struct.unpack("<%dH" % LANES, expand(d)))


def lt_add(acc, d, sign_=1):
    for i, x in enumerate(lanes_of(d)):
        acc[i] = (acc[i] + sign_ * x) % 65536


def lt_bytes(acc):
    return struct.pack("<%dH" % LANES, *acc)


def lt_digest(acc):
    return hashlib.sha256(lt_bytes(acc)).digest()


def selftest():
    # RFC 8439 A.1, test vectors 1 and 2: the zero key, zero nonce, blocks 0 and 1.
    ks = expand(bytes(32))
    same("RFC 8439 A.1 #1", ks[:64].hex(), "76b8e0ada0f13d90405d6ae55386bd28bdd219b8a08ded1aa836efcc8b770dc7da41597c5157488d7724e03fb8d84a376a43b8f41518a11cc387b669b2ee6586")
    same("RFC 8439 A.1 #2", ks[64:128].hex(), "9f07e7be5551387a98ba977c732d080dcb0f29a048e3656912c6533e32ee7aed29b721769ce64e43d57133b074d839d531ed1f28510afb45ace10a1f4b794d6f")


# --- the vector files ---


def h(s):
    return bytes.fromhex(s)


def check_changesets(path):
    v = json.load(open(path, encoding="utf-8"))
    seed = h(v["key"]["seed"])
    if nacl:
        same("key public", public_of(seed).hex(), v["key"]["public"])
    origin = h(v["key"]["public"])
    for c in v["valid"]:
        body = body_of(c["federation"], origin, c["seq"], h(c["prev"]), c["hlc"], c["ops"])
        same(f"{c['name']}: body", body.hex(), c["body"])
        sig = sign(seed, h(c["body"]))
        if sig is not None:
            same(f"{c['name']}: signature", sig.hex(), c["signature"])
        same(f"{c['name']}: hash", hashlib.sha256(h(c["body"]) + h(c["signature"])).hexdigest(), c["hash"])
        try:
            decode(h(c["body"]) + h(c["signature"]))
        except Refused as e:
            fail(f"{c['name']}: decode", f"refused ({e})", "accepted")
    for c in v["invalid"]:
        try:
            decode(h(c["body"]) + bytes(64))
            fail(f"{c['name']}: decode", "accepted", f"refused ({c['error']})")
        except Refused:
            pass
    return len(v["valid"]) + len(v["invalid"])


def check_entities(path):
    v = json.load(open(path, encoding="utf-8"))
    n = 0
    for c in v["text"]:
        same(f"{c['name']}: msgpack", mp(c["fields"]).hex(), c["msgpack"])
        e = Entity()
        if c["old"] is not None:
            e.exists, e.fields = True, json.loads(c["old"])
            same(f"{c['name']}: old is entity text", text(e.fields), c["old"])
        fold(e, {"fields": c["fields"]}, 1, 1)
        same(f"{c['name']}: text", text(e.fields), c["text"])
        n += 1
    for c in v["fold"]:
        e = Entity()
        for i, (op, want) in enumerate(zip(c["ops"], c["states"])):
            changed = fold(e, op, i + 1, i + 1)
            got = {"changed": changed, "exists": e.exists, "deleted": e.deleted, "fields": text(e.fields) if e.exists else None, "seq": e.seq}
            same(f"{c['name']}: after op {i}", got, want)
        n += 1
    for c in v["digest"]:
        d = entity_digest(c["coll"], h(c["owner"]), c["id"], c["deleted"], c["fields"])
        same(f"{c['name']}: digest", d.hex(), c["digest"])
        n += 1
    return n


def check_lthash(path):
    v = json.load(open(path, encoding="utf-8"))
    for c in v["expand"]:
        ks = expand(h(c["d"]))
        same(f"expand {c['d'][:8]}: first 64 bytes", ks[:64].hex(), c["first64"])
        same(f"expand {c['d'][:8]}: sha256", hashlib.sha256(ks).hexdigest(), c["sha256"])
    for c in v["sets"]:
        acc = [0] * LANES
        for d in c["add"]:
            lt_add(acc, h(d))
        for d in c["remove"]:
            lt_add(acc, h(d), -1)
        same(f"set {c['name']}: lanes[0:8]", acc[:8], c["lanes0_7"])
        same(f"set {c['name']}: digest", lt_digest(acc).hex(), c["digest"])
    return len(v["expand"]) + len(v["sets"])


def check_state(path):
    v = json.load(open(path, encoding="utf-8"))
    seeds = [h(o["seed"]) for o in v["origins"]]
    pubs = [h(o["public"]) for o in v["origins"]]
    if nacl:
        for i, s in enumerate(seeds):
            same(f"origin {i} public", public_of(s).hex(), v["origins"][i]["public"])
    heads = [(0, bytes(32)) for _ in seeds]
    ents = {}
    acc = [0] * LANES
    for k, c in enumerate(v["changesets"]):
        o = c["origin"]
        seq, prev = heads[o][0] + 1, heads[o][1]
        same(f"changeset {k}: seq", seq, c["seq"])
        same(f"changeset {k}: prev", prev.hex(), c["prev"])
        body = body_of(v["federation"], pubs[o], seq, prev, c["hlc"], c["ops"])
        same(f"changeset {k}: body", body.hex(), c["body"])
        sig = sign(seeds[o], body)
        if sig is not None:
            same(f"changeset {k}: signature", sig.hex(), c["signature"])
        hsh = hashlib.sha256(body + h(c["signature"])).digest()
        same(f"changeset {k}: hash", hsh.hex(), c["hash"])
        heads[o] = (seq, hsh)
        for op in c["ops"]:
            key = (op["coll"].encode(), pubs[o], op["id"].encode())
            e = ents.setdefault(key, Entity())
            old = entity_digest(op["coll"], pubs[o], op["id"], e.deleted, text(e.fields)) if e.exists else None
            if fold(e, op, seq, c["hlc"]):
                if old is not None:
                    lt_add(acc, old, -1)
                lt_add(acc, entity_digest(op["coll"], pubs[o], op["id"], e.deleted, text(e.fields)))
        same(f"changeset {k}: state digest after it", lt_digest(acc).hex(), c["digest"])
    rows = []
    for (coll, owner, eid), e in sorted((k, e) for k, e in ents.items() if e.exists):
        t = text(e.fields)
        rows.append({"coll": coll.decode(), "owner": owner.hex(), "id": eid.decode(), "deleted": e.deleted, "fields": t, "seq": e.seq, "hlc": e.hlc, "digest": entity_digest(coll.decode(), owner, eid.decode(), e.deleted, t).hex()})
    same("final entity rows", rows, v["entities"])
    same("final lanes", lt_bytes(acc).hex(), v["lanes"])
    same("final state digest", lt_digest(acc).hex(), v["digest"])
    return len(v["changesets"])


# --- the log tree (FORMAT.md, section 10): RFC 6962 / RFC 9162 as written ---


def leaf_hash(h32):
    return hashlib.sha256(b"\x00" + h32).digest()


def node_hash(l, r):
    return hashlib.sha256(b"\x01" + l + r).digest()


def split(n):
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(d):
    """MTH(D[n]) of RFC 6962 2.1, over the changeset hashes d."""
    if not d:
        return hashlib.sha256(b"").digest()
    if len(d) == 1:
        return leaf_hash(d[0])
    k = split(len(d))
    return node_hash(mth(d[:k]), mth(d[k:]))


def path(m, d):
    """PATH(m, D[n]) of RFC 9162 2.1.3.1."""
    if len(d) == 1:
        return []
    k = split(len(d))
    if m < k:
        return path(m, d[:k]) + [mth(d[k:])]
    return path(m - k, d[k:]) + [mth(d[:k])]


def subproof(m, d, b):
    """SUBPROOF(m, D[n], b) of RFC 9162 2.1.4.1."""
    n = len(d)
    if m == n:
        return [] if b else [mth(d)]
    k = split(n)
    if m <= k:
        return subproof(m, d[:k], b) + [mth(d[k:])]
    return subproof(m - k, d[k:], False) + [mth(d[:k])]


def verify_inclusion(leaf, index, size, proof, root):
    """RFC 9162 2.1.3.2."""
    if index >= size:
        return False
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency(m, n, root_m, root_n, proof):
    """RFC 9162 2.1.4.2, with m = n and m = 0 taking an empty proof."""
    if m > n:
        return False
    if m == n:
        return not proof and root_m == root_n
    if m == 0:
        return not proof
    if not proof:
        return False
    proof = list(proof)
    if m & (m - 1) == 0:
        proof = [root_m] + proof
    fn, sn = m - 1, n - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = proof[0]
    for c in proof[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            while not fn & 1 and fn != 0:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == root_m and sr == root_n


def check_merkle(path_):
    v = json.load(open(path_, encoding="utf-8"))
    d = [h(x) for x in v["leaves"]]
    n = 0
    for c in v["roots"]:
        same(f"{c['name']}", mth(d[: c["size"]]).hex(), c["root"])
        n += 1
    for c in v["inclusion"]:
        t = d[: c["size"]]
        pr = path(c["index"], t)
        same(f"{c['name']}: proof", [x.hex() for x in pr], c["proof"])
        same(f"{c['name']}: verifies", verify_inclusion(leaf_hash(t[c["index"]]), c["index"], c["size"], pr, mth(t)), True)
        if pr:
            bad = [bytes([pr[0][0] ^ 1]) + pr[0][1:]] + pr[1:]
            same(f"{c['name']}: a flipped bit is refused", verify_inclusion(leaf_hash(t[c["index"]]), c["index"], c["size"], bad, mth(t)), False)
        same(f"{c['name']}: another root is refused", verify_inclusion(leaf_hash(t[c["index"]]), c["index"], c["size"], pr, hashlib.sha256(b"x").digest()), False)
        n += 1
    for c in v["consistency"]:
        a, b = d[: c["m"]], d[: c["n"]]
        pr = subproof(c["m"], b, True) if 0 < c["m"] < c["n"] else []
        same(f"{c['name']}: proof", [x.hex() for x in pr], c["proof"])
        same(f"{c['name']}: verifies", verify_consistency(c["m"], c["n"], mth(a), mth(b), pr), True)
        if c["m"] < c["n"]:
            same(f"{c['name']}: another old root is refused", verify_consistency(c["m"], c["n"], hashlib.sha256(b"x").digest(), mth(b), pr), False)
        n += 1
    return n


# --- signed notes, checkpoints, cosignatures (FORMAT.md, sections 11, 12) ---

import base64  # noqa: E402

DASH = "\u2014 "


def key_id(name, typ, pub):
    return hashlib.sha256(name.encode() + b"\n" + bytes([typ]) + pub).digest()[:4]


def sig_line(name, kid, sig):
    return DASH + name + " " + base64.b64encode(kid + sig).decode() + "\n"


def check_checkpoints(path_):
    v = json.load(open(path_, encoding="utf-8"))
    lg = v["log"]
    d = [h(x) for x in json.load(open(os.path.join(os.path.dirname(path_), "merkle.json")))["leaves"]]
    root = mth(d[: lg["size"]])
    same("log root", root.hex(), lg["root"])
    pub = public_of(h(lg["seed"])) if nacl else h(lg["public"])
    same("log public", pub.hex(), lg["public"])
    origin = "loket/" + lg["federation"] + "/" + pub.hex()
    same("origin line", origin, lg["origin"])
    text = origin + "\n" + str(lg["size"]) + "\n" + base64.b64encode(root).decode() + "\n"
    same("checkpoint text", text, lg["text"])
    kid = key_id(origin, 1, pub)
    same("log key id", kid.hex(), lg["key_id"])
    note = lg["note"]
    if nacl:
        sig = nacl.signing.SigningKey(h(lg["seed"])).sign(text.encode()).signature
        note = text + "\n" + sig_line(origin, kid, sig)
        same("signed checkpoint", note, lg["note"])
    n = 1
    for c in v["cosigners"]:
        cpub = public_of(h(c["seed"])) if nacl else h(c["public"])
        same(f"{c['name']}: public", cpub.hex(), c["public"])
        name = "loket/leiden/" + cpub.hex()
        same(f"{c['name']}: name", name, c["name"])
        ckid = key_id(name, 4, cpub)
        same(f"{c['name']}: key id", ckid.hex(), c["key_id"])
        msg = "cosignature/v1\ntime " + str(c["time"]) + "\n" + text
        same(f"{c['name']}: message", msg, c["message"])
        if nacl:
            sig = nacl.signing.SigningKey(h(c["seed"])).sign(msg.encode()).signature
            note += sig_line(name, ckid, struct.pack(">Q", c["time"]) + sig)
            same(f"{c['name']}: cosigned note", note, c["note"])
        n += 1
    sp = v["split"]
    root_b = mth(d[sp["first_leaf"] : sp["first_leaf"] + lg["size"]])
    same("split: the other root", root_b.hex(), sp["root"])
    same("split: a root other than the log's", root_b != root, True)
    text_b = origin + "\n" + str(lg["size"]) + "\n" + base64.b64encode(root_b).decode() + "\n"
    same("split: the other text", text_b, sp["text"])
    if nacl:
        sig = nacl.signing.SigningKey(h(lg["seed"])).sign(text_b.encode()).signature
        same("split: the other note", text_b + "\n" + sig_line(origin, kid, sig), sp["note"])
    return n + 1


# --- the audit bundle (FORMAT.md, section 15) ---

BUNDLE_ORDER = "RKSFC"


def bundle_records(b):
    """The records of a bundle, by 15.1's framing; raises ValueError on a refusal."""
    if b[:8] != b"loketbd\x01":
        raise ValueError("magic")
    at, recs, stage = 8, [], 0
    while True:
        if at + 5 > len(b):
            raise ValueError("ends inside a header or before the end")
        tag, ln = chr(b[at]), struct.unpack(">I", b[at + 1:at + 5])[0]
        if tag not in "RKSFCME" or at + 5 + ln > len(b):
            raise ValueError(f"record at {at}")
        if stage == 0 and tag in BUNDLE_ORDER:
            if recs and recs[-1][0] in BUNDLE_ORDER and BUNDLE_ORDER.index(tag) < BUNDLE_ORDER.index(recs[-1][0]):
                raise ValueError(f"order at {at}")
        elif (stage == 0 and tag != "M") or (stage == 1 and tag != "E"):
            raise ValueError(f"{tag} at {at}")
        recs.append((tag, b[at:at + 5 + ln], b[at + 5:at + 5 + ln], at))
        at += 5 + ln
        stage += tag in "ME"
        if tag == "E":
            if at != len(b):
                raise ValueError("bytes after the end")
            return recs


def bundle_check(b, federation_digest=None):
    """Checks a bundle as 15.5 says; returns the manifest's digest or raises ValueError."""
    recs = bundle_records(b)
    hashes = {t: hashlib.sha256() for t in BUNDLE_ORDER}
    roster, chains, n_ops = {}, {}, 0
    keys, used, revoked = {}, {}, {}
    for tag, whole, p, at in recs:
        if tag in BUNDLE_ORDER:
            hashes[tag].update(whole)
        if tag == "R":
            # Version 1: key, name; version 2 adds the revocations (15.2).
            nl = p[33] if len(p) > 33 else 0
            name = p[34:34 + nl]
            if p[0] == 1 and len(p) == 34 + nl:
                revs = []
            elif p[0] == 2 and len(p) > 34 + nl and 1 <= p[34 + nl] <= 4 and len(p) == 35 + nl + 40 * p[34 + nl]:
                r = p[35 + nl:]
                revs = [(r[40 * i:40 * i + 32], struct.unpack(">Q", r[40 * i + 32:40 * i + 40])[0]) for i in range(p[34 + nl])]
                if any(a >= 1 << 63 for _, a in revs):
                    raise ValueError(f"roster entry at {at}")
            else:
                raise ValueError(f"roster entry at {at}")
            if not re.fullmatch(rb"[a-z0-9_-]{1,64}", name):
                raise ValueError(f"roster entry at {at}")
            if roster and max(roster) >= p[1:33]:
                raise ValueError("roster order")
            roster[p[1:33]] = name.decode()
            revoked[p[1:33]] = revs
        elif tag == "C":
            try:
                cs = decode(p)
            except Refused:
                raise ValueError(f"changeset at {at}")
            origin, seq, prev = cs[2], cs[3], cs[4]
            if chains and origin not in chains and max(chains) > origin:
                raise ValueError("origin order")
            last = chains.get(origin, (0, bytes(32)))
            if seq != last[0] + 1 or prev != last[1]:
                raise ValueError(f"chain at {at}")
            if roster and origin not in roster:
                raise ValueError("origin not in the roster")
            # The key at seq (14.2): the origin, then what each rotation record names.
            signer = keys.get(origin, origin)
            if nacl:
                try:
                    nacl.signing.VerifyKey(signer).verify(b"loket/changeset/v1" + p[:-64], p[-64:])
                except Exception:
                    raise ValueError(f"signature at {at}")
            if any(k == signer and seq > a for k, a in revoked.get(origin, [])):
                raise ValueError(f"revoked key at {at}")
            ops = cs[6]
            if len(ops) == 1 and ops[0][0] == 3:
                past = used.setdefault(origin, {origin})
                if ops[0][1] in past:
                    raise ValueError(f"rotation to a key of the past at {at}")
                past.add(ops[0][1])
                keys[origin] = ops[0][1]
            chains[origin] = (seq, hashlib.sha256(p).digest())
            n_ops += len(cs[6])
    m = recs[-2][2]
    fl = m[0]
    fed = m[1:1 + fl]
    nm, nk, ns, nf, no = struct.unpack(">5I", m[1 + fl:21 + fl])
    ncs, nops, nents = struct.unpack(">3Q", m[21 + fl:45 + fl])
    digest = m[45 + fl:77 + fl]
    sec = [m[77 + fl + 32 * i:109 + fl + 32 * i] for i in range(5)]
    heads = m[237 + fl:]
    counts = {t: sum(1 for r in recs if r[0] == t) for t in BUNDLE_ORDER}
    want_heads = b"".join(o + struct.pack(">Q", s_) + hh for o, (s_, hh) in sorted(chains.items()))
    if (nm, nk, ns, nf, no, ncs, nops) != (counts["R"], counts["K"], counts["S"], counts["F"], len(chains), counts["C"], n_ops):
        raise ValueError("manifest counts")
    if sec != [hashes[t].digest() for t in BUNDLE_ORDER]:
        raise ValueError("manifest section hashes")
    if heads != want_heads:
        raise ValueError("manifest heads")
    if federation_digest is not None and (fed.decode(), digest.hex()) != federation_digest:
        raise ValueError("manifest federation or digest")
    if recs[-1][2] != hashlib.sha256(b[:recs[-1][3]]).digest():
        raise ValueError("end hash")
    return digest.hex(), nents


def bundle_record(tag, payload):
    return tag.encode() + struct.pack(">I", len(payload)) + payload


def check_bundle(path):
    v = json.load(open(path, encoding="utf-8"))
    st = json.load(open(os.path.join(os.path.dirname(path), v["state"]), encoding="utf-8"))
    pubs = [h(o["public"]) for o in st["origins"]]
    roster = sorted((pubs[m["origin"]], m["name"]) for m in v["members"])
    seqs = [0, 0]
    css = []
    for c in st["changesets"]:
        seqs[c["origin"]] += 1
        css.append((pubs[c["origin"]], seqs[c["origin"]], h(c["body"]) + h(c["signature"]), h(c["hash"]), len(c["ops"])))
    css.sort()
    sections = {t: b"" for t in BUNDLE_ORDER}
    for k, name in roster:
        sections["R"] += bundle_record("R", b"\x01" + k + bytes([len(name)]) + name.encode())
    heads = {}
    for o, seq, signed, hsh, _ in css:
        sections["C"] += bundle_record("C", signed)
        heads[o] = (seq, hsh)
    fed = st["federation"].encode()
    m = bytes([len(fed)]) + fed + struct.pack(">5I", len(roster), 0, 0, 0, len(heads))
    m += struct.pack(">3Q", len(css), sum(c[4] for c in css), len(st["entities"]))
    m += h(st["digest"])
    m += b"".join(hashlib.sha256(sections[t]).digest() for t in BUNDLE_ORDER)
    m += b"".join(o + struct.pack(">Q", s_) + hh for o, (s_, hh) in sorted(heads.items()))
    body = b"loketbd\x01" + b"".join(sections[t] for t in BUNDLE_ORDER) + bundle_record("M", m)
    bundle = body + bundle_record("E", hashlib.sha256(body).digest())
    same("bundle", bundle.hex(), v["bundle"])
    for i, t in enumerate(BUNDLE_ORDER):
        name = ["roster", "checkpoints", "split views", "forks", "changesets"][i]
        same(f"bundle: hash of the {name} section", hashlib.sha256(sections[t]).hexdigest(), v["sections"][name])
    same("bundle: end", hashlib.sha256(body).hexdigest(), v["end"])
    same("bundle: digest", v["digest"], st["digest"])
    try:
        same("bundle: checked", bundle_check(bundle, (st["federation"], st["digest"])), (st["digest"], len(st["entities"])))
    except ValueError as e:
        fail("bundle: refused by this checker", str(e), "accepted")
    n = 1
    for c in v["invalid"]:
        b = bytearray(bundle)
        if "truncate" in c:
            b = b[:-c["truncate"]]
        elif "append" in c:
            b += h(c["append"])
        else:
            b[c["offset"]] ^= 1
        try:
            bundle_check(bytes(b), (st["federation"], st["digest"]))
            fail(f"bundle: {c['name']}", "accepted", "refused")
        except ValueError:
            pass
        n += 1
    return n


def verifies(pub, body, sig):
    if nacl is None:
        return None
    try:
        nacl.signing.VerifyKey(pub).verify(DOMAIN + body, sig)
        return True
    except Exception:  # nacl.exceptions.BadSignatureError
        return False


def rotation_body(v, pubs, c, seq, prev):
    if "rotate" in c:
        ops = [[3, pubs[c["rotate"]]]]
    else:
        ops = [op_value(o) for o in c["ops"]]
    return mp([1, v["federation"], pubs[0], seq, prev, c["hlc"], ops])


def key_at(history, origin, seq):
    """Section 14: the key of the last rotation record below seq, else the origin."""
    key = origin
    for from_seq, k in history:
        if from_seq <= seq:
            key = k
    return key


def check_rotation(path):
    v = json.load(open(path, encoding="utf-8"))
    seeds = [h(k["seed"]) for k in v["keys"]]
    pubs = [h(k["public"]) for k in v["keys"]]
    if nacl:
        for i, sd in enumerate(seeds):
            same(f"key {i} public", public_of(sd).hex(), v["keys"][i]["public"])
    origin, prev, history, hashes = pubs[0], bytes(32), [], [bytes(32)]
    ents, acc = {}, [0] * LANES
    for k, c in enumerate(v["chain"]):
        seq = k + 1
        same(f"chain {k}: seq", seq, c["seq"])
        same(f"chain {k}: prev", prev.hex(), c["prev"])
        body = rotation_body(v, pubs, c, seq, prev)
        same(f"chain {k}: body", body.hex(), c["body"])
        signer = key_at(history, origin, seq)
        same(f"chain {k}: signed by the key the history names", pubs[c["signer"]].hex(), signer.hex())
        sig = h(c["signature"])
        if verifies(signer, body, sig) is False:
            fail(f"chain {k}: signature", "does not verify under the key at its seq", "verifies")
        try:
            decode(body + sig)
        except Refused as e:
            fail(f"chain {k}: decode", f"refused ({e})", "accepted")
        prev = hashlib.sha256(body + sig).digest()
        same(f"chain {k}: hash", prev.hex(), c["hash"])
        hashes.append(prev)
        if "rotate" in c:
            history.append((seq + 1, pubs[c["rotate"]]))
            continue
        for op in c["ops"]:
            key = (op["coll"].encode(), origin, op["id"].encode())
            e = ents.setdefault(key, Entity())
            old = entity_digest(op["coll"], origin, op["id"], e.deleted, text(e.fields)) if e.exists else None
            if fold(e, op, seq, c["hlc"]):
                if old is not None:
                    lt_add(acc, old, -1)
                lt_add(acc, entity_digest(op["coll"], origin, op["id"], e.deleted, text(e.fields)))
    same("key history", [{"from_seq": f, "key": k.hex()} for f, k in history], v["key_history"])
    same("state digest", lt_digest(acc).hex(), v["digest"])
    for c in v["refused"]:
        after = c["after"]
        seq, hist = after + 1, [(f, k) for f, k in history if f <= after + 1]
        body = rotation_body(v, pubs, c, seq, hashes[after])
        same(f"{c['name']}: body", body.hex(), c["body"])
        sig = sign(seeds[c["signer"]], body)
        if sig is not None:
            same(f"{c['name']}: signature", sig.hex(), c["signature"])
        want = key_at(hist, origin, seq)
        past = [origin] + [k for f, k in hist]
        if "rotate" in c and pubs[c["rotate"]] in past:
            verdict = "KEY_REUSED"
        elif pubs[c["signer"]] != want or verifies(want, body, h(c["signature"])) is False:
            verdict = "BAD_SIGNATURE"
        elif "revoke" in c and pubs[c["revoke"][0]] == want and seq > c["revoke"][1]:
            verdict = "REVOKED"
        else:
            verdict = "accepted"
        same(f"{c['name']}: verdict", verdict, c["verdict"])
    for c in v["invalid"]:
        try:
            decode(h(c["body"]) + bytes(64))
            fail(f"{c['name']}: decode", "accepted", f"refused ({c['error']})")
        except Refused:
            pass
    return len(v["chain"]) + len(v["refused"]) + len(v["invalid"])


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    selftest()
    n = check_changesets(os.path.join(d, "changeset.json"))
    n += check_entities(os.path.join(d, "entity.json"))
    n += check_lthash(os.path.join(d, "lthash.json"))
    n += check_state(os.path.join(d, "state.json"))
    n += check_merkle(os.path.join(d, "merkle.json"))
    n += check_checkpoints(os.path.join(d, "checkpoint.json"))
    n += check_bundle(os.path.join(d, "bundle.json"))
    n += check_rotation(os.path.join(d, "rotation.json"))
    if nacl is None:
        print("PyNaCl is not installed: Ed25519 public keys and signatures were not checked")
    print(f"{n} vectors checked, {failures} mismatches")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
