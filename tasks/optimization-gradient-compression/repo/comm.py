"""Fixed communication layer (numpy only; no torch, so the spawned children start fast).

Every message between processes is raw bytes; nothing is unpickled. A payload (a dict of numpy
arrays) is serialised as

    uint32 header length | JSON header [[name, dtype, shape], ...] (keys sorted) | raw data

The trusted parent parses every payload it receives, checks it, COUNTS ITS BITS and re-encodes
it canonically before forwarding it, so the only information that crosses from a worker to the
aggregator is what the counted arrays hold.

Bit rule (the same for every payload, uplink or reply):
    bits(payload) = sum over arrays of  numel * width(dtype) + 8 * len(name) + 8 + 32 * ndim
    width: bool 1, int8/uint8 8, int16/uint16/float16 16, int32/uint32/float32 32,
           int64/uint64/float64 64.
A bool array is sent one byte per element but counted as 1 bit, so its bytes must be 0 or 1.
Names match [A-Za-z0-9_.]{1,64}; at most 256 arrays, ndim <= 4.
"""
from __future__ import annotations

import json
import re
import struct
import traceback

import numpy as np

WIDTH = {"bool": 1, "int8": 8, "uint8": 8, "int16": 16, "uint16": 16, "float16": 16,
         "int32": 32, "uint32": 32, "float32": 32, "int64": 64, "uint64": 64, "float64": 64}
NAME_RE = re.compile(r"[A-Za-z0-9_.]{1,64}\Z")
MAX_ARRAYS = 256
MAX_NDIM = 4
MAX_HEADER = 1 << 16


class PayloadError(ValueError):
    pass


def encode(payload) -> bytes:
    """dict[str, array-like] -> bytes (used on the sending side)."""
    if not isinstance(payload, dict):
        raise PayloadError(f"a payload must be a dict of numpy arrays, got {type(payload).__name__}")
    header, chunks = [], []
    for name in sorted(payload):
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise PayloadError(f"payload key {name!r} must match [A-Za-z0-9_.]{{1,64}}")
        arr = np.asarray(payload[name])
        dt = arr.dtype.name
        if dt not in WIDTH:
            raise PayloadError(f"payload[{name!r}] has dtype {dt}; allowed: {sorted(WIDTH)}")
        arr = np.ascontiguousarray(arr, dtype=arr.dtype.newbyteorder("<"))
        header.append([name, dt, [int(s) for s in arr.shape]])
        chunks.append(arr.tobytes())
    h = json.dumps(header, separators=(",", ":")).encode()
    return struct.pack("<I", len(h)) + h + b"".join(chunks)


def parse(blob: bytes):
    """Trusted check of a received payload -> (canonical bytes, bits, header).

    Raises PayloadError on anything malformed."""
    if len(blob) < 4:
        raise PayloadError("payload shorter than its header")
    (hlen,) = struct.unpack("<I", blob[:4])
    if hlen > MAX_HEADER or 4 + hlen > len(blob):
        raise PayloadError("payload header too long")
    try:
        header = json.loads(blob[4:4 + hlen].decode("utf-8"))
    except Exception as e:  # noqa: BLE001
        raise PayloadError(f"payload header is not valid JSON: {e}") from None
    if not isinstance(header, list) or len(header) > MAX_ARRAYS:
        raise PayloadError(f"payload header must be a list of at most {MAX_ARRAYS} arrays")
    canon, bits, offset, names = [], 0, 4 + hlen, []
    chunks = []
    for entry in header:
        if not (isinstance(entry, list) and len(entry) == 3):
            raise PayloadError("malformed payload header entry")
        name, dt, shape = entry
        if not isinstance(name, str) or not NAME_RE.match(name):
            raise PayloadError(f"bad payload key {name!r}")
        if dt not in WIDTH:
            raise PayloadError(f"bad dtype {dt!r} for payload[{name!r}]")
        if (not isinstance(shape, list) or len(shape) > MAX_NDIM
                or not all(isinstance(s, int) and not isinstance(s, bool) and 0 <= s < 2 ** 31
                           for s in shape)):
            raise PayloadError(f"bad shape {shape!r} for payload[{name!r}]")
        numel = 1
        for s in shape:
            numel *= s
        nbytes = numel * np.dtype(dt).itemsize
        if offset + nbytes > len(blob):
            raise PayloadError("payload data shorter than its header says")
        raw = blob[offset:offset + nbytes]
        offset += nbytes
        if dt == "bool" and nbytes and np.frombuffer(raw, dtype=np.uint8).max() > 1:
            raise PayloadError(f"payload[{name!r}] is bool but holds bytes other than 0/1")
        bits += numel * WIDTH[dt] + 8 * len(name) + 8 + 32 * len(shape)
        canon.append([name, dt, shape])
        chunks.append(raw)
        names.append(name)
    if offset != len(blob):
        raise PayloadError("payload has trailing bytes")
    if names != sorted(set(names)):
        raise PayloadError("payload keys must be unique (and are sent sorted)")
    h = json.dumps(canon, separators=(",", ":")).encode()
    return struct.pack("<I", len(h)) + h + b"".join(chunks), bits, canon


def decode(blob: bytes) -> dict:
    """Canonical bytes -> dict of (writable) numpy arrays (receiving side)."""
    (hlen,) = struct.unpack("<I", blob[:4])
    header = json.loads(blob[4:4 + hlen].decode("utf-8"))
    out, offset = {}, 4 + hlen
    for name, dt, shape in header:
        dtype = np.dtype(dt).newbyteorder("<")
        n = int(np.prod(shape, dtype=np.int64)) if shape else 1
        out[name] = np.frombuffer(blob, dtype=dtype, count=n, offset=offset).reshape(shape).copy()
        offset += n * dtype.itemsize
    return out


def flat_to_dict(flat: np.ndarray, names, shapes) -> dict:
    out, i = {}, 0
    for name, shape in zip(names, shapes):
        n = int(np.prod(shape, dtype=np.int64))
        out[name] = flat[i:i + n].reshape(shape).copy()
        i += n
    return out


def pack_ints(*xs) -> bytes:
    return struct.pack(f"<{len(xs)}q", *xs)


def unpack_ints(b: bytes, n: int):
    return struct.unpack(f"<{n}q", b[:8 * n])

# ------------------------------------------------------------------ child processes (agent code)


def _send_error(conn, what):
    try:
        conn.send_bytes(b"X" + (what + traceback.format_exc()[-3000:]).encode("utf-8", "replace"))
    except Exception:  # noqa: BLE001
        pass


def worker_main(conn, worker, num_workers, names, shapes, budget_bits, seed):
    """One simulated worker: holds its own Compressor; sees only its own gradients and replies.

    parent -> worker  b"G" step | float32 gradient (all parameters, flattened, in order)
                      b"R" step round | canonical reply payload
                      b"Q"
    worker -> parent  b"P" payload bytes | b"X" error text
    """
    try:
        import compressor  # the editable module
        comp = compressor.Compressor({n: tuple(s) for n, s in zip(names, shapes)}, int(budget_bits),
                                     int(worker), int(num_workers), int(seed))
    except BaseException:  # noqa: BLE001
        _send_error(conn, f"worker {worker}: Compressor(...) raised:\n")
        conn.close()
        return
    grads = None
    try:
        while True:
            msg = conn.recv_bytes()
            kind = msg[:1]
            if kind == b"Q":
                break
            if kind == b"G":
                (step,) = unpack_ints(msg[1:9], 1)
                flat = np.frombuffer(msg, dtype="<f4", offset=9)
                grads = flat_to_dict(flat, names, shapes)
                rnd, reply = 0, None
            elif kind == b"R":
                step, rnd = unpack_ints(msg[1:17], 2)
                reply = decode(msg[17:])
            else:
                raise RuntimeError(f"unknown message {kind!r}")
            payload = comp.compress(grads, int(step), int(rnd), reply)
            conn.send_bytes(b"P" + encode(payload))
    except BaseException:  # noqa: BLE001
        _send_error(conn, f"worker {worker}: compress raised:\n")
    finally:
        conn.close()


def server_main(conn, num_workers, names, shapes, budget_bits, seed):
    """The aggregator: sees only the (counted, canonical) payloads of all workers.

    parent -> server  b"A" step round K len_1..len_K | payload_1 .. payload_K
                      b"Q"
    server -> parent  b"G" float32 aggregated gradient (flattened, in order)
                      b"R" reply payload bytes (broadcast to every worker for another round)
                      b"X" error text
    """
    shapes = [tuple(s) for s in shapes]
    try:
        import compressor  # the editable module
        agg = compressor.Aggregator({n: s for n, s in zip(names, shapes)}, int(budget_bits),
                                    int(num_workers), int(seed))
    except BaseException:  # noqa: BLE001
        _send_error(conn, "Aggregator(...) raised:\n")
        conn.close()
        return
    try:
        while True:
            msg = conn.recv_bytes()
            if msg[:1] == b"Q":
                break
            step, rnd, k = unpack_ints(msg[1:25], 3)
            lens = unpack_ints(msg[25:25 + 8 * k], k)
            off = 25 + 8 * k
            payloads = []
            for ln in lens:
                payloads.append(decode(msg[off:off + ln]))
                off += ln
            out = agg.aggregate(payloads, int(step), int(rnd))
            if not (isinstance(out, tuple) and len(out) == 2 and out[0] in ("grad", "reply")):
                raise TypeError('aggregate() must return ("grad", dict) or ("reply", dict)')
            if out[0] == "reply":
                conn.send_bytes(b"R" + encode(out[1]))
                continue
            g = out[1]
            if not isinstance(g, dict) or set(g) != set(names):
                raise ValueError("the aggregated gradient must be a dict with one entry per parameter")
            parts = []
            for n, s in zip(names, shapes):
                a = np.asarray(g[n], dtype=np.float32)
                if a.shape != s:
                    raise ValueError(f"aggregated gradient[{n!r}] has shape {a.shape}, expected {s}")
                parts.append(a.reshape(-1))
            conn.send_bytes(b"G" + np.concatenate(parts).astype("<f4").tobytes())
    except BaseException:  # noqa: BLE001
        _send_error(conn, "aggregate raised:\n")
    finally:
        conn.close()
