"""The decoders' side of the harness (fixed file), and what the trainer (trainer.py) shares with
them: the children are the only processes that run the editable attention module.

harness.py starts each of them with the task kit's Child, which imports this module (torch, the
fixed GPT), drops the process's privileges for good and only then calls `decode` (or
trainer.train); those import attention.py. Everything a child sends is raw bytes in kit frames
(first byte the kind). Nothing a child says about its cache is believed: it sends the cache's
structure (JSON) and bytes, and the parent checks the structure against the bytes, counts them
and sends them back for the next step, to whichever decoder it picks, so the module gets
exactly what was counted and nothing else.
"""

from __future__ import annotations

import json
import math
import struct
import types

import gpt
import torch
from taskkit import RunFailure, torchstate

MAX_TENSORS = 16
DTYPES = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
    "float64": torch.float64,
    "int8": torch.int8,
    "uint8": torch.uint8,
    "int16": torch.int16,
    "int32": torch.int32,
    "int64": torch.int64,
    "bool": torch.bool,
}
NAMES = {v: k for k, v in DTYPES.items()}
STATE_MSG = "the attention module keeps state outside the cache it returns: "


def frame(kind: bytes, meta, raw: bytes = b"") -> bytes:
    """kind + uint32 length + JSON + bytes: the layout of every frame with a structure."""
    text = json.dumps(meta).encode()
    return kind + struct.pack("<I", len(text)) + text + raw


def unframe(payload: bytes):
    """(JSON, the bytes after it) of a frame's payload built by ``frame``."""
    (n,) = struct.unpack_from("<I", payload)
    return json.loads(payload[4 : 4 + n]), payload[4 + n :]


def pack(caches, limit: int = MAX_TENSORS) -> tuple[list, bytes]:
    """Per-layer caches -> (structure, bytes): per layer None or {"kind", "tensors": [[dtype,
    shape], ...]}. Fails on anything but plain tensors of the allowed dtypes."""
    if not isinstance(caches, list):
        raise RunFailure("the model's caches must be a list (one entry per layer)")
    header, chunks = [], []
    for i, c in enumerate(caches):
        if c is None:
            header.append(None)
            continue
        if type(c) not in (tuple, list):
            raise RunFailure(
                f"layer {i}: the cache must be None or a tuple/list of tensors, "
                f"got {type(c).__name__}"
            )
        if len(c) > limit:
            raise RunFailure(f"layer {i}: at most {limit} tensors in the cache, got {len(c)}")
        entries = []
        for j, t in enumerate(c):
            where = f"layer {i} cache[{j}]"
            if type(t) is not torch.Tensor:
                raise RunFailure(
                    f"{where}: cache entries must be plain torch.Tensor, got {type(t).__name__}"
                )
            if t.dtype not in NAMES:
                raise RunFailure(f"{where}: dtype {t.dtype} is not allowed in the cache")
            if t.numel() < 1:
                raise RunFailure(f"{where}: empty tensors are not allowed in the cache")
            flat = t.detach().contiguous().reshape(-1)
            chunks.append(flat.view(torch.uint8).numpy().tobytes())
            entries.append([NAMES[t.dtype], [int(s) for s in t.shape]])
        header.append({"kind": type(c).__name__, "tensors": entries})
    return header, b"".join(chunks)


def unpack(header, raw: bytes) -> list:
    """Fresh tensors from a structure the parent checked and the bytes it counted."""
    out, off = [], 0
    for layer in header:
        if layer is None:
            out.append(None)
            continue
        ts = []
        for dt, shape in layer["tensors"]:
            n = math.prod(shape) * torch.empty((), dtype=DTYPES[dt]).element_size()
            buf = bytearray(raw[off : off + n])
            off += n
            ts.append(torch.frombuffer(buf, dtype=torch.uint8).view(DTYPES[dt]).reshape(shape))
        out.append(tuple(ts) if layer["kind"] == "tuple" else ts)
    return out


def build(cfg: dict, seed: int):
    torchstate.setup(seed)
    import attention  # the editable module, imported after the privilege drop

    model = gpt.GPT(
        attention.CausalSelfAttention,
        cfg["d_model"],
        cfg["n_head"],
        cfg["n_layer"],
        cfg["block_size"],
    )
    return model, attention


def _digest(obj, depth=0, seen=None) -> str:
    """A fingerprint of an object's state: tensors by content, containers recursively."""
    import hashlib

    seen = set() if seen is None else seen
    if isinstance(obj, torch.Tensor):
        t = obj.detach().contiguous().reshape(-1)
        data = t.view(torch.uint8).numpy().tobytes() if t.numel() else b""
        return "T" + hashlib.sha1(data).hexdigest() + str(tuple(obj.shape))
    if isinstance(obj, (int, float, str, bool, bytes, type(None))):
        return repr(obj)
    if depth > 4 or id(obj) in seen:
        return type(obj).__name__
    seen.add(id(obj))
    if callable(obj) or isinstance(obj, type):
        return type(obj).__name__
    if isinstance(obj, dict):
        return "{" + ",".join(f"{k!r}:{_digest(v, depth + 1, seen)}" for k, v in obj.items()) + "}"
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=repr) if isinstance(obj, (set, frozenset)) else obj
        return "[" + ",".join(_digest(v, depth + 1, seen) for v in items) + "]"
    try:
        return type(obj).__name__ + _digest(dict(vars(obj)), depth + 1, seen)
    except TypeError:
        return type(obj).__name__


def module_state(model, attention_module) -> dict[str, str]:
    """Fingerprints of every attention module's own state and of attention.py's globals: the
    layer that names state kept outside the cache (the random choice of decoder is the one that
    defeats it)."""
    state = {}
    for i, block in enumerate(model.blocks):
        for name, sub in block.attn.named_modules():
            for k, v in vars(sub).items():
                if k != "_modules":
                    state[f"blocks[{i}].attn{'.' + name if name else ''}.{k}"] = _digest(v)
    for k, v in vars(attention_module).items():
        if k.startswith("__") or isinstance(v, (types.ModuleType, types.FunctionType)):
            continue
        if isinstance(v, type):
            for ck, cv in vars(v).items():
                if not ck.startswith("__") and not callable(cv):
                    if not isinstance(cv, (staticmethod, classmethod, property)):
                        state[f"attention.{k}.{ck}"] = _digest(cv)
            continue
        state[f"attention.{k}"] = _digest(v)
    return state


def decode(conn, cfg: dict, seed: int, n_seq: int) -> None:
    """A decoder: takes the trained weights ("W"), then answers decoding steps ("S": position,
    cache structure, tokens, cache bytes) with the new cache and the logits ("C") until "D"."""
    model, attention_module = build(cfg, seed)
    meta, raw = unframe(conn.recv_bytes()[1:])
    weights = unpack(meta["header"], raw)[0]
    model.load_state_dict(dict(zip(meta["names"], weights, strict=True)), strict=True)
    model.eval()
    before = module_state(model, attention_module)
    conn.send_bytes(b"K")
    with torch.no_grad():
        while (msg := conn.recv_bytes())[:1] == b"S":
            meta, rest = unframe(msg[1:])
            tok = torch.frombuffer(bytearray(rest[: 8 * n_seq]), dtype=torch.int64)
            caches = None
            if meta["header"] is not None:
                caches = unpack(meta["header"], rest[8 * n_seq :])
            logits, new = model(tok.reshape(-1, 1), caches, pos0=meta["pos"])
            now = module_state(model, attention_module)
            changed = sorted(k for k in {*before, *now} if before.get(k) != now.get(k))
            if changed:
                raise RunFailure(STATE_MSG + ", ".join(changed[:5]) + " changed during decoding")
            header, raw = pack(new)
            out = logits[:, 0].float().contiguous().numpy().tobytes()
            conn.send_bytes(frame(b"C", header, raw + out))
    conn.send_bytes(b"K")
