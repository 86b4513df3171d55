"""Task specs: every shipped task loads; a broken task.yaml names the file and the field."""

import shutil

import pytest
import yaml

from mlsbench_env.errors import TaskSpecError, UnknownNameError
from mlsbench_env.spec import builtin_task_ids, load_task


@pytest.mark.parametrize("task_id", builtin_task_ids("research"))
def test_every_shipped_task_loads(task_id):
    t = load_task(task_id)
    assert t.id == task_id and len(t.spec.settings) >= 3
    assert any(s.hidden for s in t.spec.settings)


@pytest.mark.parametrize("task_id", builtin_task_ids("competition"))
def test_every_shipped_competition_loads(task_id):
    t = load_task(task_id)
    assert t.id == task_id and t.is_competition and not t.regions
    assert (t.repo / "description.md").is_file() and (t.root / "private").is_dir()
    assert not (t.repo / t.spec.competition.submission).exists()


def test_unknown_task_suggests_the_closest():
    with pytest.raises(UnknownNameError, match="did you mean 'opt-evolution-strategy'"):
        load_task("opt-evolution-strateg")


@pytest.fixture
def broken(es_task, tmp_path):
    dest = tmp_path / es_task.id
    shutil.copytree(es_task.root, dest)

    def write(mutate):
        raw = yaml.safe_load((dest / "task.yaml").read_text())
        mutate(raw)
        (dest / "task.yaml").write_text(yaml.safe_dump(raw))
        return dest

    return write


def _set(path, value):
    def mutate(raw):
        node = raw
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return mutate


@pytest.mark.parametrize(
    "mutate,field,words",
    [
        (lambda r: r.pop("question"), "question", "required field is missing"),
        (lambda r: r.__setitem__("questoin", "typo"), "questoin", "unknown field"),
        (
            _set(["metrics", 0, "direction"], "sideways"),
            "metrics.0.direction",
            "'higher' or 'lower'",
        ),
        (_set(["editable", 0, "lines"], [1, 100000]), "editable.0.lines", "beyond the end"),
        (_set(["editable", 0, "file"], "nope.py"), "editable.0.file", "not a file in repo/"),
        (lambda r: r["settings"][0].pop("command"), "settings", "need a command"),
        (
            _set(["reference_baseline"], "nonexistent"),
            "reference_baseline",
            "not a listed baseline",
        ),
        (lambda r: r["editable"].append(dict(r["editable"][0])), "editable.1.lines", "overlaps"),
    ],
)
def test_broken_task_yaml_names_file_and_field(broken, mutate, field, words):
    root = broken(mutate)
    with pytest.raises(TaskSpecError) as e:
        load_task(root)
    msg = str(e.value)
    assert str(root / "task.yaml") in msg and field in msg and words in msg, msg


def test_invalid_yaml_syntax(broken):
    root = broken(lambda r: None)
    (root / "task.yaml").write_text("id: [unclosed\n")
    with pytest.raises(TaskSpecError, match="not valid YAML"):
        load_task(root)


def test_baseline_missing_its_region_file(broken, es_task):
    root = broken(lambda r: None)
    name = es_task.spec.baselines[0].name
    for p in (root / "baselines" / name).iterdir():
        p.unlink()
    with pytest.raises(TaskSpecError, match="missing replacement text"):
        load_task(root).baseline_regions(name)
