"""Fakes for the agent tests (imported by the other test_agent_* files): a tiny real task and a
local HTTP server that speaks the Chat Completions and Messages wire formats."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from textwrap import dedent

from mlsbench_env.analysis.calibration import calibrate, write_anchors
from mlsbench_env.spec import load_task

# ------------------------------------------------------------------------------- a tiny task
TINY_ID = "tiny-guess"
EDIT_LINE = 5  # the one editable line of guess.py
TINY_YAML = """\
id: tiny-guess
version: 0
title: Guess a number
domain: toy
question: Return a number as close as you can to the input x.
editable:
  - file: guess.py
    lines: [5, 5]
settings:
  - label: one
    command: python run.py 1
  - label: two
    command: python run.py 2
  - label: three
    command: python run.py 3
    hidden: true
seeds: {dev: 0, final: [0]}
metrics:
  - {name: error, direction: lower, bound: 0.0}
baselines:
  - {name: good, title: Eighty percent}
reference_baseline: good
budgets: {tests: 3, compute_s: 300, max_steps: 12, command_timeout_s: 30}
"""


def make_tiny_task(root: Path):
    """A real task in miniature (scaffold, grader, hidden setting, calibrated anchors): guess x;
    the metric is |guess - x|. default returns 0 (0 points), `good` 0.8 x (50), x itself 100."""
    d = Path(root) / TINY_ID
    (d / "repo").mkdir(parents=True)
    (d / "baselines" / "good").mkdir(parents=True)
    (d / "task.yaml").write_text(TINY_YAML)
    (d / "repo" / "guess.py").write_text(
        '"""Return a number close to x (a toy task for tests)."""\n\n\ndef guess(x):\n'
        "    return 0.0\n"
    )
    (d / "repo" / "run.py").write_text(
        dedent(
            """\
            import json, os, sys
            from guess import guess
            x = float(sys.argv[1])
            with open(os.path.join(os.environ["MLSBENCH_OUT"], "answer.json"), "w") as f:
                json.dump({"guess": float(guess(x))}, f)
            """
        )
    )
    (d / "baselines" / "good" / "guess.py").write_text("    return 0.8 * x\n")
    (d / "grader.py").write_text(
        dedent(
            """\
            import json
            TARGET = {"one": 1.0, "two": 2.0, "three": 3.0}
            def grade(setting, seed, out_dir, task_dir):
                answer = json.loads((out_dir / "answer.json").read_text())
                return {"error": abs(answer["guess"] - TARGET[setting])}
            """
        )
    )
    task = load_task(d)
    anchors, _ = calibrate(task)
    write_anchors(task, anchors)
    return load_task(d)


# the actions of a perfect episode on the tiny task
PERFECT = [
    {"tool": "view", "args": {"path": "guess.py"}},
    {
        "tool": "edit",
        "args": {
            "path": "guess.py",
            "action": "replace",
            "start": EDIT_LINE,
            "end": EDIT_LINE,
            "text": "    return x",
        },
    },
    {"tool": "test", "args": {}},
    {"tool": "submit", "args": {}},
]


# ------------------------------------------------------------------------------- the server
@dataclass
class Reply:
    body: dict | str = field(default_factory=dict)
    status: int = 200
    headers: dict = field(default_factory=dict)
    delay: float = 0.0  # seconds before answering (a timeout test sleeps past the client's)


def _usage_oa(usage):
    p, c, cached = usage
    return {
        "prompt_tokens": p,
        "completion_tokens": c,
        "total_tokens": p + c,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


def oa_reply(text: str = "", calls=(), usage=(100, 10, 0), finish=None) -> Reply:
    """A chat.completion; ``calls`` are (name, arguments) with arguments a dict or raw text."""
    tool_calls = [
        {
            "id": f"call_{i}_{name}",
            "type": "function",
            "function": {"name": name, "arguments": a if isinstance(a, str) else json.dumps(a)},
        }
        for i, (name, a) in enumerate(calls)
    ]
    msg = {"role": "assistant", "content": text or None}
    if tool_calls:
        msg["tool_calls"] = tool_calls
    return Reply(
        {
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": "fake-model",
            "choices": [
                {
                    "index": 0,
                    "message": msg,
                    "finish_reason": finish or ("tool_calls" if tool_calls else "stop"),
                }
            ],
            "usage": _usage_oa(usage),
        }
    )


def an_reply(text: str = "", calls=(), usage=(100, 10, 0)) -> Reply:
    """A Messages API message; ``calls`` are (name, input dict)."""
    content = [{"type": "text", "text": text}] if text else []
    content += [
        {"type": "tool_use", "id": f"toolu_{i}_{name}", "name": name, "input": a}
        for i, (name, a) in enumerate(calls)
    ]
    i, o, cached = usage
    return Reply(
        {
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "model": "fake-claude",
            "content": content,
            "stop_reason": "tool_use" if calls else "end_turn",
            "stop_sequence": None,
            "usage": {
                "input_tokens": i,
                "output_tokens": o,
                "cache_read_input_tokens": cached,
                "cache_creation_input_tokens": 0,
            },
        }
    )


def error_reply(status: int, message: str = "fake error", headers=None, kind="api_error"):
    return Reply(
        {"type": "error", "error": {"type": kind, "message": message}}, status, headers or {}
    )


def as_openai(action: dict, usage=(100, 10, 0)) -> Reply:
    return oa_reply(calls=[(action["tool"], action["args"])], usage=usage)


def as_anthropic(action: dict, usage=(100, 10, 0)) -> Reply:
    return an_reply(calls=[(action["tool"], action["args"])], usage=usage)


def _sse(completion: dict) -> bytes:
    """A chat.completion as the server-sent events of ``"stream": true`` (a proxy in front of a
    trainer's model, as verifiers' interception server, streams): the message as one delta,
    then the finish reason and usage, then ``[DONE]``."""
    msg = completion["choices"][0]["message"]
    delta = {"role": "assistant", "content": msg.get("content") or ""}
    if msg.get("tool_calls"):
        delta["tool_calls"] = [dict(c, index=i) for i, c in enumerate(msg["tool_calls"])]
    head = {k: completion[k] for k in ("id", "created", "model")}
    head["object"] = "chat.completion.chunk"
    finish = completion["choices"][0]["finish_reason"]
    chunks = [
        dict(head, choices=[{"index": 0, "delta": delta, "finish_reason": None}]),
        dict(head, choices=[{"index": 0, "delta": {}, "finish_reason": finish}]),
        dict(head, choices=[], usage=completion["usage"]),
    ]
    return b"".join(f"data: {json.dumps(c)}\n\n".encode() for c in chunks) + b"data: [DONE]\n\n"


class FakeServer:
    """An HTTP server on 127.0.0.1 that answers POST /v1/chat/completions and /v1/messages with
    the queued replies, in order, and keeps every request body it received, when it arrived and
    the SDK's retry count header (``port`` 0: a free one)."""

    def __init__(self, replies=(), port: int = 0):
        self.replies: deque[Reply] = deque(replies)
        self.requests: list[dict] = []
        self.paths: list[str] = []
        self.times: list[float] = []  # time.monotonic() at each request's arrival
        self.retry_counts: list[str | None] = []  # x-stainless-retry-count, sent by the SDKs
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server's name)
                n = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(n) or b"{}")
                server.requests.append(body)
                server.paths.append(self.path)
                server.times.append(time.monotonic())
                server.retry_counts.append(self.headers.get("x-stainless-retry-count"))
                reply = (
                    server.replies.popleft()
                    if server.replies
                    else error_reply(400, "fake server: no scripted reply left")
                )
                if reply.delay:
                    time.sleep(reply.delay)
                kind = "application/json"
                if body.get("stream") and isinstance(reply.body, dict) and "choices" in reply.body:
                    data, kind = _sse(reply.body), "text/event-stream"
                else:
                    data = (
                        reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                    ).encode()
                try:
                    self.send_response(reply.status)
                    self.send_header("content-type", kind)
                    self.send_header("content-length", str(len(data)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up (timeout test)

            def log_message(self, *args):
                pass

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass

        self.httpd = Server(("127.0.0.1", port), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def gaps(self) -> list[float]:
        """Seconds between consecutive requests (the client's waits, plus a little)."""
        return [b - a for a, b in zip(self.times, self.times[1:], strict=False)]

    @property
    def openai_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def anthropic_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


# ------------------------------------------------------------------------------- sanity
def test_fake_server_answers_in_order_and_keeps_requests():
    import urllib.request

    with FakeServer([oa_reply("hi"), error_reply(503)]) as srv:
        req = urllib.request.Request(
            srv.openai_url + "/chat/completions", data=b'{"model": "m"}', method="POST"
        )
        with urllib.request.urlopen(req) as r:
            assert json.loads(r.read())["choices"][0]["message"]["content"] == "hi"
        try:
            urllib.request.urlopen(req)
        except Exception as e:  # HTTPError 503
            assert getattr(e, "code", None) == 503
        assert srv.requests == [{"model": "m"}, {"model": "m"}]
    with socket.socket() as s:  # the port is closed after the with block
        assert s.connect_ex(("127.0.0.1", srv.port)) != 0


def test_fake_server_streams_when_asked():
    import pytest

    openai = pytest.importorskip("openai")
    with FakeServer([oa_reply("hi", calls=[("view", {"path": "."})])]) as srv:
        client = openai.OpenAI(base_url=srv.openai_url, api_key="x")
        stream = client.chat.completions.create(model="m", messages=[], stream=True)
        chunks = list(stream)
    delta = chunks[0].choices[0].delta
    assert delta.content == "hi" and delta.tool_calls[0].function.name == "view"
    assert chunks[1].choices[0].finish_reason == "tool_calls"
    assert chunks[2].usage.completion_tokens == 10


_TINY: dict = {}


def tiny_task_once(tmp_path_factory):
    """The tiny task, built and calibrated once per test session (shared by the test files)."""
    if "task" not in _TINY:
        _TINY["task"] = make_tiny_task(tmp_path_factory.mktemp("tiny-task"))
    return _TINY["task"]


def first_task_plan():
    """The first shipped task and the actions of its reference baseline (view, edit, test,
    submit), or a skip while the task is not loadable yet."""
    import pytest

    from mlsbench_env.episode import BaselineAgent
    from mlsbench_env.errors import MLSBenchError

    try:
        task = load_task("opt-evolution-strategy")
        agent = BaselineAgent(task, task.spec.reference_baseline)
    except MLSBenchError as e:
        pytest.skip(f"opt-evolution-strategy is not ready: {e}")
    if task.anchors() is None:
        pytest.skip("opt-evolution-strategy has no anchors.json yet")
    actions = [{"tool": "view", "args": {"path": task.regions[0].file}}]
    while actions[-1]["tool"] != "submit":
        actions.append(agent.act("", {}))
    return task, actions
