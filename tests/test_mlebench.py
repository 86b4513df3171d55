"""MLE-bench's competitions as tasks (spec/mlebench.py, evaluation/mlebench.py), with MLE-bench's
real definitions from ../shared/mle-bench: synthetic raw data run through each competition's own
``prepare`` into the prepared layout, a synthetic leaderboard, then episodes played in the real
sandbox from reset to a graded, medalled submission by MLE-bench's own graders."""

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from types import SimpleNamespace

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from test_competition import MLEBENCH_CHECKOUT, SEARCH, act
from typer.testing import CliRunner

from mlsbench_env.env import ResearchEnv
from mlsbench_env.errors import TaskSpecError
from mlsbench_env.spec import load_task
from mlsbench_env.spec.mlebench import CACHE_ENV, DATA_ENV, list_rows
from mlsbench_env.spec.registration import register_tasks


def _spaceship(raw, rng):
    n = 400
    cryo = rng.random(n) < 0.4
    pd.DataFrame(
        {
            "PassengerId": [f"{i:04d}_01" for i in range(n)],
            "CryoSleep": cryo,
            "Age": rng.integers(1, 80, n),
            "Transported": cryo,  # the label is a feature: a one-line pipeline is perfect
        }
    ).to_csv(raw / "train.csv", index=False)


def _taxi(raw, rng):
    n = 10400  # prepare.py holds out 9914 rows, as the original test set
    lon0, lat0, lon1, lat1 = (rng.uniform(-74.0, -73.9, n) for _ in range(4))
    pc = rng.integers(1, 5, n)
    fare = np.round(2.5 + 100 * np.abs(lon1 - lon0) + 80 * np.abs(lat1 - lat0) + 0.5 * pc, 2)
    keys = [f"2015-01-01 00:00:00.{i}" for i in range(n)]
    pd.DataFrame(
        {
            "key": keys,
            "fare_amount": fare,
            "pickup_datetime": "2015-01-01 00:00:00 UTC",
            "pickup_longitude": lon0,
            "pickup_latitude": lat0,
            "dropoff_longitude": lon1,
            "dropoff_latitude": lat1,
            "passenger_count": pc,
        }
    ).to_csv(raw / "train.csv", index=False)
    (raw / "GCP-Coupons-Instructions.rtf").write_text("coupons\n")


def _spooky(raw, rng):
    n = 300
    authors = rng.choice(["EAP", "HPL", "MWS"], n)
    word = {"EAP": "raven", "HPL": "cthulhu", "MWS": "frankenstein"}
    frame = pd.DataFrame(
        {
            "id": [f"id{i:05d}" for i in range(n)],
            "text": [f"the night and the {word[a]} were dark" for a in authors],
            "author": authors,
        }
    )
    with zipfile.ZipFile(raw / "train.zip", "w") as z:
        z.writestr("train.csv", frame.to_csv(index=False))


# competition -> (raw data, leaderboard scores best first, a pipeline that writes submission.csv)
COMPETITIONS = {
    "spaceship-titanic": (
        _spaceship,
        np.linspace(0.81, 0.50, 60),  # < 100 teams, accuracy
        "t = pd.read_csv(P + '/test.csv'); "
        "t['Transported'] = t['CryoSleep']; "
        "t[['PassengerId', 'Transported']].to_csv('submission.csv', index=False)",
    ),
    "new-york-city-taxi-fare-prediction": (
        _taxi,
        np.linspace(0.3, 3.3, 300),  # 250-999 teams, RMSE (lower is better)
        "t = pd.read_csv(P + '/test.csv'); "
        "t['fare_amount'] = (2.5 + 100 * (t.dropoff_longitude - t.pickup_longitude).abs() "
        "+ 80 * (t.dropoff_latitude - t.pickup_latitude).abs() + 0.5 * t.passenger_count)"
        ".round(2); t[['key', 'fare_amount']].to_csv('submission.csv', index=False)",
    ),
    "spooky-author-identification": (
        _spooky,
        np.linspace(0.15, 1.1, 1200),  # 1,000+ teams, multi-class log loss
        "t = pd.read_csv(P + '/test.csv'); "
        "w = {'EAP': 'raven', 'HPL': 'cthulhu', 'MWS': 'frankenstein'}; "
        "[t.__setitem__(a, t.text.str.contains(k).map({True: 0.98, False: 0.01})) "
        "for a, k in w.items()]; t[['id', 'EAP', 'HPL', 'MWS']].to_csv('submission.csv', "
        "index=False)",
    ),
}


def _forget_mlebench():
    for name in [m for m in sys.modules if m == "mlebench" or m.startswith("mlebench.")]:
        del sys.modules[name]


@pytest.fixture(scope="module")
def mle(tmp_path_factory):
    if not (MLEBENCH_CHECKOUT / "mlebench").is_dir():
        pytest.skip(f"MLE-bench's package is not at {MLEBENCH_CHECKOUT} (../shared/mle-bench)")
    root = tmp_path_factory.mktemp("mlebench")
    # a copy of the package: the leaderboards (Git LFS files, absent from the shared copy) go
    # beside each competition's config.yaml, where MLE-bench's Registry looks for them
    checkout = root / "checkout"
    shutil.copytree(MLEBENCH_CHECKOUT / "mlebench", checkout / "mlebench")
    _forget_mlebench()
    sys.path.insert(0, str(checkout))
    try:
        from mlebench.registry import Registry
    except ImportError as e:
        sys.path.remove(str(checkout))
        pytest.skip(
            f"MLE-bench's modules do not import ({e}): pip install 'mlsbench-env[mlebench]'"
        )
    data = root / "data"
    rng = np.random.default_rng(0)
    for cid, (raw_data, board, _) in COMPETITIONS.items():
        comp = Registry(data).get_competition(cid)
        for folder in (comp.raw_dir, comp.public_dir, comp.private_dir):
            folder.mkdir(parents=True)
        raw_data(comp.raw_dir, rng)
        comp.prepare_fn(comp.raw_dir, comp.public_dir, comp.private_dir)  # MLE-bench's own
        pd.DataFrame(
            {"teamId": range(len(board)), "score": np.round(board, 5), "submissionDate": "2020"}
        ).to_csv(comp.leaderboard, index=False)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv(DATA_ENV, str(data))
        mp.setenv(CACHE_ENV, str(root / "cache"))
        yield SimpleNamespace(data=data, registry=Registry(data))
    sys.path.remove(str(checkout))
    _forget_mlebench()


@pytest.fixture
def play(mle, tmp_path):
    envs = []

    def make(cid):
        env = ResearchEnv(
            f"mlebench-{cid}", runs_dir=str(tmp_path / "runs"), work_dir=str(tmp_path / "eps")
        )
        envs.append(env)
        env.reset(seed=0)
        return env

    yield make
    for env in envs:
        env.close()


def _pipeline(env, code):
    public = env.task.readable_sources()[0]
    cmd = f"python -c \"import pandas as pd; P = '{public}'; {code}\""
    obs, *_ = env.step(act("shell", command=cmd, timeout=300))
    return obs


def test_every_competition_is_listed_with_its_state(mle):
    rows = dict(list_rows(str(mle.data)))
    assert len(rows) >= 75
    for cid in COMPETITIONS:
        assert rows[f"mlebench-{cid}"] is None
    why = rows["mlebench-leaf-classification"]
    assert f"mlebench prepare -c leaf-classification --data-dir {mle.data}" in why
    with pytest.raises(TaskSpecError, match="not prepared"):
        load_task("mlebench-leaf-classification")


@pytest.mark.parametrize("cid", list(COMPETITIONS))
def test_a_competition_plays_to_a_gold_medal(play, mle, cid):
    env = play(cid)
    task = env.task
    comp = mle.registry.get_competition(cid)
    obs = env.episode.last_obs
    assert obs.startswith("# Competition:") and str(comp.public_dir.resolve()) in obs
    anchors = task.anchors()
    [metric] = task.spec.metrics
    # 0: the sample submission's grade by MLE-bench's grader; 50: the leaderboard's median
    from mlebench.utils import load_answers, read_csv

    sample = comp.grader(read_csv(comp.sample_submission), load_answers(comp.answers))
    ref = anchors["anchors"]["test"][metric.name]
    assert ref["floor"] == sample
    assert ref["reference"] == pytest.approx(float(np.median(COMPETITIONS[cid][1])), abs=1e-5)
    assert metric.direction == ("higher" if cid == "spaceship-titanic" else "lower")

    out = _pipeline(env, COMPETITIONS[cid][2])
    obs, *_, info = env.step(act("validate"))
    assert info["ok"] and "valid" in obs, (obs, out)
    obs, reward, terminated, _, info = env.step(act("submit"))
    assert terminated and info["medal"] == "gold", obs
    assert info["score"] > 50
    value = info["metrics"]["test"][metric.name]
    expected = comp.grader(
        read_csv(env.workspace.root / "submission.csv"), load_answers(comp.answers)
    )
    assert value == expected


def test_the_sample_submission_scores_zero(play):
    env = play("spaceship-titanic")
    env.step(act("shell", command="cp sample_submission.csv submission.csv"))
    obs, _, terminated, _, info = env.step(act("submit"))
    assert terminated and info["score"] == pytest.approx(0.0) and info["medal"] is None, obs


def test_a_malformed_submission_gets_mlebenchs_own_message(play):
    env = play("spaceship-titanic")
    env.step(act("shell", command="cut -d, -f1 sample_submission.csv > submission.csv"))
    obs, reward, terminated, _, info = env.step(act("validate"))
    assert not info["ok"] and not terminated
    # prepare_for_accuracy_metric's own words (mlebench/competitions/utils.py)
    assert "Submission must have a `Transported` column" in obs, obs
    obs, reward, terminated, _, info = env.step(act("submit"))
    assert terminated and info["score"] == 0 and info["medal"] is None
    assert "Submission must have a `Transported` column" in info["errors"]["test"]


def test_private_answers_are_out_of_reach_and_public_files_read_only(play, mle):
    env = play("spaceship-titanic")
    comp = mle.registry.get_competition("spaceship-titanic")
    public = comp.public_dir.resolve()

    def inside(cmd):
        return env.step(act("shell", command=cmd))[0]

    obs = inside(f"head -c 12 {public}/train.csv")
    assert "PassengerId" in obs, obs
    other = mle.registry.get_competition("spooky-author-identification").public_dir
    for path in (comp.answers, comp.raw_dir, comp.private_dir, other):
        assert path.exists()
        obs = inside(f"ls {path} && echo READABLE")
        assert "No such file" in obs and "READABLE" not in obs, obs
    # of the data folder, only the path to the public files exists (it holds the mount)
    obs = inside(f"ls {mle.data}; ls {comp.public_dir.parent}")
    assert obs.split("\n")[1:3] == ["spaceship-titanic", "public"], obs
    obs = inside(f"touch {public}/x; echo gone > {public}/test.csv")
    assert "Read-only" in obs, obs
    assert not (public / "x").exists() and "gone" not in (public / "test.csv").read_text()


@pytest.mark.slow
def test_private_answers_are_nowhere_on_the_sandboxs_filesystem(play, mle):
    env = play("spaceship-titanic")
    comp = mle.registry.get_competition("spaceship-titanic")
    secret = [comp.answers, comp.raw_dir / "train.csv"]
    want = {p.stat().st_size: hashlib.sha256(p.read_bytes()).hexdigest() for p in secret}

    def search(run, roots):
        # by content only: the public folder has files named train.csv and test.csv too
        args = f"'{json.dumps(want)}' '[]' {' '.join(roots)}"
        out = run(f"python - {args} <<'EOF'\n{SEARCH}\nEOF")
        line = next(x for x in out.splitlines() if x.startswith("FOUND:"))
        return json.loads(line[len("FOUND:") :])

    def inside(cmd):
        return env.step(act("shell", command=cmd, timeout=600))[0]

    def outside(cmd):
        return subprocess.run(["bash", "-c", cmd], capture_output=True, text=True).stdout

    # the search finds them where they are readable (so it can fail)...
    assert len(search(outside, [str(mle.data)])) == 2
    # ...and nowhere on the sandbox's whole filesystem
    assert search(inside, ["/"]) == []


def test_gym_make_and_cli_list(mle, tmp_path):
    ids = register_tasks()
    assert "mlsbench/mlebench-spaceship-titanic-v0" in ids
    env = gym.make("mlsbench/mlebench-spaceship-titanic-v0", runs_dir=None, work_dir=str(tmp_path))
    obs, _ = env.reset(seed=0)
    assert "Spaceship Titanic" in obs
    env.close()
    from mlsbench_env.cli import app

    r = CliRunner().invoke(app, ["list", "--source", f"mlebench:{mle.data}", "--json"])
    assert r.exit_code == 0, r.output
    rows = {row["id"]: row for row in json.loads(r.output)}
    assert rows["mlebench-spaceship-titanic"]["error"] is None
    assert rows["mlebench-spaceship-titanic"]["gym_id"] == "mlsbench/mlebench-spaceship-titanic-v0"
    assert (
        "mlebench prepare -c leaf-classification" in rows["mlebench-leaf-classification"]["error"]
    )


def test_unset_data_folder_is_a_clear_error(mle, monkeypatch):
    monkeypatch.delenv(DATA_ENV)
    with pytest.raises(TaskSpecError, match=DATA_ENV):
        load_task("mlebench-spaceship-titanic")


@pytest.mark.slow
def test_served_competition_plays_through_the_client(mle, tmp_path, monkeypatch):
    pytest.importorskip("uvicorn")
    pytest.importorskip("fastapi")
    from test_server import Server

    from mlsbench_env.scale.client import RemoteEnv
    from mlsbench_env.scale.server import ServerConfig, task_folders

    monkeypatch.setenv("MLSBENCH_SLOTS_DIR", str(tmp_path / "slots"))
    tasks = task_folders(["mlebench-spaceship-titanic"])
    cfg = ServerConfig(runs_dir=str(tmp_path / "runs"), work_dir=str(tmp_path / "eps"), tasks=tasks)
    public = mle.registry.get_competition("spaceship-titanic").public_dir.resolve()
    code = COMPETITIONS["spaceship-titanic"][2]
    with Server(cfg) as server:
        remote = RemoteEnv("mlebench-spaceship-titanic", server.url)
        try:
            obs, _ = remote.reset(seed=0)
            assert str(public) in obs
            cmd = f"python -c \"import pandas as pd; P = '{public}'; {code}\""
            remote.step(act("shell", command=cmd, timeout=300))
            obs, _, terminated, _, info = remote.step(act("submit"))
            assert terminated and info["medal"] == "gold", obs
        finally:
            remote.close()
