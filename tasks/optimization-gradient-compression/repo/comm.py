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
