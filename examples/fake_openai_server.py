"""A stand-in for a trainer's model endpoint: the repository's fake OpenAI-compatible server
(tests/test_agent_fakes.py) answering with a task's reference baseline (view, edit, test,
submit), one action per reply, for ``--episodes`` conversations in a row.

    PYTHONPATH=. python examples/fake_openai_server.py --port 8001 --format text

``--format tools`` answers with tool calls (mlsbench's LLM agent with action_format=tools);
``--format text`` with the action as a JSON object (what verifiers' OpenEnv taskset parses).
Needs no network, weights or key; see docs/recipes.md.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # the fake server lives with the tests
sys.path.insert(0, str(ROOT / "examples"))

from openai_endpoint_rollout import reference_plan  # noqa: E402
from test_agent_fakes import FakeServer, as_openai, oa_reply  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="opt-evolution-strategy")
    p.add_argument("--port", type=int, default=8001)
    p.add_argument("--format", choices=("text", "tools"), default="text")
    p.add_argument("--episodes", type=int, default=1)
    args = p.parse_args()

    plan = reference_plan(args.task)
    one = [oa_reply(json.dumps(a)) if args.format == "text" else as_openai(a) for a in plan]
    with FakeServer(one * args.episodes, port=args.port) as srv:
        print(f"serving {len(srv.replies)} replies at {srv.openai_url}", flush=True)
        try:
            while srv.replies:
                time.sleep(0.2)
            time.sleep(1.0)  # let the last answer go out
        except KeyboardInterrupt:
            pass
        for path, body in zip(srv.paths, srv.requests, strict=True):
            print(f"{path} model={body.get('model')} messages={len(body.get('messages', []))}")


if __name__ == "__main__":
    main()
