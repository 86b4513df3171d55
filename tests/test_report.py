"""Reports: leaderboard arithmetic, intervals, paired comparison, comparability, the files."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import numpy as np
import pytest
import scipy.stats
from rich.console import Console
from typer.testing import CliRunner

from mlsbench_env.analysis.render import render_html, render_terminal, write_report
from mlsbench_env.analysis.report import build_report, comparable
from mlsbench_env.analysis.stats import grouped_mean_ci, mean_ci, sign_test
from mlsbench_env.cli import app
from mlsbench_env.scale.store import ResultsStore

DOMAIN = {"t1": "d1", "t2": "d1", "t3": "d2"}
SCORES = {  # agent -> task -> per-seed final scores (None: no final evaluation)
    "A": {"t1": [10, 20, 30], "t2": [40, 40, 40], "t3": [60, 70, 80]},
    "B": {"t1": [5, 5, 5], "t2": [None, 10, 20], "t3": [50, 50, 50]},
    "baseline:strongest": {"t1": [50] * 3, "t2": [50] * 3, "t3": [50] * 3},
}


def rows(scores=SCORES, **extra):
    out = []
    for agent, per_task in scores.items():
        for task, values in per_task.items():
            for seed, v in enumerate(values):
                out.append(
                    {
                        "cell_key": f"{agent}-{task}-{seed}",
                        "status": "ok",
                        "task": task,
                        "task_version": 0,
                        "domain": DOMAIN[task],
                        "agent": agent,
                        "agent_hash": f"hash-{agent}",
                        "seed": seed,
                        "score": v,
                        "score_reason": None if v is not None else "no final evaluation",
                        "vanilla_score": 1.0 if agent == "A" else 2.0,
                        "steps": 10 + seed,
                        "tests_used": 2,
                        "input_tokens": 1000,
                        "output_tokens": 100,
                        "cost_usd": 0.5 if agent == "A" else 0.0,
                        "compute_s": 30.0,
                        "wall_s": 40.0,
                        "options_hash": "o",
                        "task_hash": f"th-{task}",
                        "anchors_hash": "ah",
                        "score_curve": [[3, 5.0], [7, (v or 0) / 2]],
                        "setting_scores": {"s1": v or 0},
                        "trajectory": f"/runs/{agent}-{task}",
                        **extra,
                    }
                )
    return out


@pytest.mark.parametrize("n", [2, 3, 10, 40])
def test_t_interval_uses_the_t_quantile_of_its_degrees_of_freedom(n):
    values = [float((7 * i) % 11) for i in range(n)]
    sem = np.std(values, ddof=1) / np.sqrt(n)
    t = scipy.stats.t.ppf(0.975, n - 1)
    mean, lo, hi = mean_ci(values)
    assert mean == pytest.approx(np.mean(values))
    assert (lo, hi) == pytest.approx((mean - t * sem, mean + t * sem), rel=1e-12)
    if n == 40:  # beyond 30 degrees of freedom t is still well above the normal 1.96
        assert (hi - mean) / sem == pytest.approx(2.0227, abs=1e-4)


def test_t_interval_of_one_value_is_the_value():
    assert mean_ci([7.0]) == (7.0, 7.0, 7.0)


@pytest.mark.parametrize(
    ("wins", "losses", "p"),
    [
        (5, 0, 2 / 32),
        (9, 0, 2 / 512),
        (0, 6, 2 / 64),
        (3, 6, 2 * (1 + 9 + 36 + 84) / 512),  # 2 P(X <= 3), X ~ Binomial(9, 1/2)
        (7, 3, 2 * (1 + 10 + 45 + 120) / 1024),
        (3, 3, 1.0),
        (0, 0, 1.0),
    ],
)
def test_sign_test_p_values(wins, losses, p):
    assert sign_test(wins, losses) == pytest.approx(p, rel=1e-12)


def test_bootstrap_holds_one_episode_tasks_fixed_and_is_seeded():
    rng = np.random.default_rng
    samples = [np.array([5.0]), np.array([1.0, 2.0, 3.0])]
    mean, lo, hi = grouped_mean_ci(samples, ["d", "d"], rng(0))
    assert mean == 3.5 and 3.0 <= lo < 3.5 < hi <= 4.0  # (5 + a mean of 1..3) / 2
    assert grouped_mean_ci(samples, ["d", "d"], rng(0)) == (mean, lo, hi)
    assert grouped_mean_ci([np.array([5.0]), np.array([1.0])], ["d", "e"], rng(0)) == (3, 3, 3)
    assert build_report(rows()).to_json() == build_report(rows()).to_json()


def test_leaderboard_has_mls_bench_shape_and_means_over_domains():
    rep = build_report(rows())
    assert rep.domains == ["d1", "d2"]
    lb = {r["agent"]: r for r in rep.leaderboard}
    a = lb["A"]["domains"]
    assert a["d1"]["score"] == pytest.approx(30.0)  # mean of task means 20 and 40
    assert a["d2"]["score"] == pytest.approx(70.0)
    assert a["overall"]["score"] == pytest.approx(50.0)  # mean over domains, not tasks
    assert a["overall"]["vanilla"] == pytest.approx(1.0)
    assert a["overall"]["baseline"] == pytest.approx(50.0) and a["overall"]["baseline_measured"]
    assert a["d1"]["ci_lo"] <= 30.0 <= a["d1"]["ci_hi"] and a["d1"]["ci_lo"] < a["d1"]["ci_hi"]
    b = lb["B"]["domains"]
    assert b["d1"]["score"] == pytest.approx(7.5)  # the episode without a score counts 0
    assert b["overall"]["score"] == pytest.approx(28.75)
    assert [r["agent"] for r in rep.leaderboard] == ["A", "baseline:strongest", "B"]
    t2b = next(t for t in rep.tasks if t["task"] == "t2" and t["agent"] == "B")
    assert t2b["no_submission"] == 1 and t2b["n"] == 3


def test_paired_comparison_uses_shared_task_seed_pairs():
    rep = build_report(rows(), compare=("A", "B"))
    (p,) = rep.paired
    assert (p["n"], p["tasks"], p["wins"], p["losses"], p["ties"]) == (9, 3, 9, 0, 0)
    assert p["mean_diff"] == pytest.approx(195 / 9)
    assert p["ci_lo"] <= p["mean_diff"] <= p["ci_hi"]
    assert p["p_sign"] == pytest.approx(2 / 512)
    assert len(build_report(rows()).paired) == 3  # every pair by default


def test_uncalibrated_episodes_are_left_out_and_label_collisions_are_told_apart():
    extra = rows({"A": {"t1": [None]}})
    extra[0].update(cell_key="u", agent_hash="other", score_reason="uncalibrated: no anchors")
    more = rows({"A": {"t3": [99]}})
    more[0].update(cell_key="c", agent_hash="hash-other-config")
    rep = build_report(rows() + extra + more)
    assert any("uncalibrated" in w for w in rep.warnings)
    # two configs named A: each label carries its config hash
    assert {"A@hash-A", "A@hash-o"} <= set(rep.agents) and "A" not in rep.agents


def test_fingerprint_flags_mixed_and_changed_hashes_and_reports_compare():
    mixed = rows()
    mixed[0]["task_hash"] = "th-t1-old"
    today = {"t3": {"version": 0, "task_hash": "th-t3-new", "anchors_hash": "ah"}}
    rep = build_report(mixed, today=today)
    fp = rep.fingerprint["tasks"]
    assert any("mix task hashes" in w for w in fp["t1"]["warnings"])
    assert any("task changed" in w for w in fp["t3"]["warnings"])
    same = build_report(rows())
    assert comparable(same.to_json(), build_report(rows()).to_json()) == []
    why = comparable(same.to_json(), rep.to_json())
    assert why and why[0].startswith("t1: task hashes differ")
    assert same.fingerprint["key"] != rep.fingerprint["key"]


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.refs, self.open = [], []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "img":
            self.refs.append(a["src"])
        elif tag == "a":
            self.refs.append(a["href"])
        elif tag in ("table", "tr", "td", "th", "p", "h1", "h2", "h3"):
            self.open.append(tag)

    def handle_endtag(self, tag):
        if tag in ("table", "tr", "td", "th", "p", "h1", "h2", "h3"):
            assert self.open.pop() == tag, f"</{tag}> closes another element"


def test_report_files_exist_and_every_reference_of_the_page_resolves(tmp_path):
    rep = build_report(rows())
    files = write_report(rep, tmp_path)
    for name in (
        "index.html",
        "report.json",
        "episodes.csv",
        "leaderboard.csv",
        "tasks.csv",
        "paired.csv",
        "score_by_domain.png",
        "score_vs_cost.png",
        "score_over_steps.png",
    ):
        assert name in files and (tmp_path / name).stat().st_size > 0
    parser = _Refs()
    parser.feed((tmp_path / "index.html").read_text())
    assert parser.open == [] and len(parser.refs) >= 8
    for ref in parser.refs:
        assert (tmp_path / ref).is_file(), ref
        if ref.endswith(".png"):
            data = (tmp_path / ref).read_bytes()
            assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    data = json.loads((tmp_path / "report.json").read_text())
    assert data["leaderboard"][0]["agent"] == "A"
    lines = (tmp_path / "leaderboard.csv").read_text().splitlines()
    assert lines[0].startswith("agent,domain,vanilla,score") and len(lines) == 1 + 3 * 3


def test_names_in_the_page_are_escaped():
    hostile = "<script>alert(1)</script>"
    rs = rows({"A": {"t1": [10, 20]}, "B": {"t1": [5, 15]}})
    for r in rs:
        r["task"] = hostile
        r["agent"] = hostile if r["agent"] == "A" else r["agent"]
    rep = build_report(rs)
    assert rep.agents == [hostile, "B"] and rep.paired
    page = render_html(rep, [])
    assert "<script>" not in page
    # the task: two per-task rows and comparability; the agent: leaderboard, per task, paired
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 6


def test_terminal_rendering_and_the_report_command(tmp_path):
    console = Console(record=True, width=160)
    render_terminal(build_report(rows()), console)
    text = console.export_text()
    assert "Leaderboard" in text and "overall" in text and "Paired comparison" in text
    store = ResultsStore(tmp_path / "s.sqlite")
    for r in rows():
        store.record_episode(r)
    r = CliRunner().invoke(
        app,
        [
            "report",
            "--store",
            str(tmp_path / "s.sqlite"),
            "--out",
            str(tmp_path / "out"),
            "--compare",
            "A",
            "--compare",
            "B",
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "out" / "report.json").read_text())["paired"][0]["n"] == 9
    r = CliRunner().invoke(app, ["report", "--store", str(tmp_path / "none.sqlite")])
    assert r.exit_code == 2 and "no results store" in r.output
