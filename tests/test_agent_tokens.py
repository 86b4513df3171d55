"""tiktoken works offline: the encodings come from the bpe-openai wheel, never the network."""

import os
import subprocess
import sys
import textwrap

import pytest

pytest.importorskip("tiktoken")

NO_NETWORK = textwrap.dedent(
    """\
    import socket, sys
    def deny(*args, **kwargs):
        raise AssertionError("network access attempted")
    socket.socket.connect = deny
    socket.create_connection = deny
    socket.getaddrinfo = deny
    sys.modules["requests"] = None  # tiktoken downloads with requests: make that impossible
    """
)


def run_py(code: str, cache_dir) -> subprocess.CompletedProcess:
    env = {**os.environ, "TIKTOKEN_CACHE_DIR": str(cache_dir)}
    return subprocess.run(
        [sys.executable, "-c", NO_NETWORK + code], capture_output=True, text=True, env=env
    )


def test_counts_with_networking_disabled_and_an_empty_cache(tmp_path):
    cache = tmp_path / "tiktoken-cache"
    code = textwrap.dedent(
        """\
        from mlsbench_env.env import tokens
        assert tokens.encoding("o200k_base") is not None
        assert tokens.encoding("cl100k_base") is not None
        print(tokens.count("hello world"), tokens.count("hello world", "gpt-4"))
        """
    )
    r = run_py(code, cache)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["2", "2"]
    assert len(list(cache.iterdir())) == 2  # both files now sit in tiktoken's own cache


def test_the_guard_catches_a_download(tmp_path):
    # without our seeding, tiktoken would download: the same guard must stop it
    r = run_py("import tiktoken\ntiktoken.get_encoding('o200k_base')\n", tmp_path / "empty")
    assert r.returncode != 0 and ("requests" in r.stderr or "network" in r.stderr)


def test_disabled_cache_or_no_tiktoken_falls_back_to_four_chars_per_token(tmp_path):
    code = "from mlsbench_env.env import tokens\nprint(tokens.encoding(), tokens.count('x' * 40))\n"
    r = run_py(code, "")  # TIKTOKEN_CACHE_DIR="" turns tiktoken's cache off: we never download
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["None", "10"]
    r = run_py("sys.modules['tiktoken'] = None\n" + code, tmp_path / "c")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["None", "10"]


def test_counts_match_the_bpe_openai_tokenizer():
    from mlsbench_env.env import tokens

    bpe = pytest.importorskip("bpe_openai")
    text = "def guess(x):\n    return 0.8 * x  # café, 東京, emoji 🎉\n" * 20
    assert tokens.count(text) == len(bpe.get_encoding("o200k_base").encode(text))


def test_truncate_middle_keeps_both_ends_and_says_what_was_cut():
    from mlsbench_env.env import tokens

    text = "head " + "word " * 5000 + "tail"
    out = tokens.truncate_middle(text, 100)
    assert out.startswith("head ") and out.endswith("tail")
    assert "tokens omitted; the observation budget is 100 tokens" in out
    assert tokens.count(out) < 140
    assert tokens.truncate_middle("short", 100) == "short"


def test_env_truncates_command_output_with_tiktoken():
    from mlsbench_env.env.render import truncate_tokens as _truncate_tokens

    out = _truncate_tokens("line of output\n" * 3000, 200)
    assert "tokens omitted" in out and "characters" not in out
