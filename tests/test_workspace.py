"""Workspace edits on the real first task's scaffold."""

import os
import subprocess
import sys

import pytest

from mlsbench_env.errors import EditError
from mlsbench_env.workspace import Workspace, transplant


@pytest.fixture
def ws(es_task, tmp_path):
    return Workspace(es_task, tmp_path / "ws")


def region(ws):
    file = next(iter(ws.ranges))
    return file, ws.ranges[file][0]


def test_edit_outside_the_ranges_is_refused_and_file_untouched(ws):
    file, r = region(ws)
    before = (ws.root / file).read_bytes()
    for start, end in [(r.start - 1, r.start), (r.end, r.end + 1), (1, 1)]:
        if start < 1 or r.start <= start <= end <= r.end:
            continue
        with pytest.raises(EditError, match="not inside one editable range"):
            ws.replace(file, start, end, "x = 1\n")
    with pytest.raises(EditError):
        ws.insert(file, r.end + 1, "x = 1\n")
    assert (ws.root / file).read_bytes() == before


def test_fixed_files_cannot_be_edited(ws, es_task):
    fixed = next(p for p in ws.pristine if p not in ws.ranges)
    with pytest.raises(EditError, match="fixed file"):
        ws.replace(fixed, 1, 1, "boom\n")


def test_ranges_follow_edits_and_undo_restores(ws):
    file, r = region(ws)
    start, end = r.start, r.end
    original = (ws.root / file).read_text()
    out = ws.replace(file, start, start, "a = 1\nb = 2\nc = 3\n")
    assert "*|" in out
    assert ws.ranges[file][0].end == end + 2
    ws.insert(file, start - 1, "# top of region\n")
    assert ws.ranges[file][0].end == end + 3
    # the last line of the region is still editable, one past it is not
    new_end = ws.ranges[file][0].end
    ws.replace(file, new_end, new_end, (ws.read(file).splitlines()[new_end - 1]) + "\n")
    with pytest.raises(EditError):
        ws.replace(file, new_end + 1, new_end + 1, "x\n")
    ws.undo(3)
    assert (ws.root / file).read_text() == original
    assert (ws.ranges[file][0].start, ws.ranges[file][0].end) == (start, end)


def test_create_refused_where_the_task_allows_no_new_files(ws, es_task):
    if es_task.spec.creatable:
        pytest.skip("task allows new files")
    with pytest.raises(EditError, match="not allowed"):
        ws.create("new_module.py", "x = 1\n")


def test_paths_outside_the_workspace_are_refused(ws):
    with pytest.raises(EditError, match="outside the workspace"):
        ws.view("../../etc/passwd")


def test_integrity_check_restores_fixed_and_editable_files(ws):
    file, r = region(ws)
    fixed = next(p for p in ws.pristine if p not in ws.ranges)
    snap = ws.editable_snapshot()
    (ws.root / fixed).write_text("tampered\n")
    (ws.root / file).write_text("tampered\n")
    events = ws.check_integrity(snap)
    assert len(events) == 2
    assert (ws.root / fixed).read_bytes() == ws.pristine[fixed]
    assert (ws.root / file).read_text() == snap[file]


def test_transplant_carries_only_the_editable_regions(ws, es_task, tmp_path):
    file, r = region(ws)
    ws.replace(file, r.start, r.start, "MARKER_INSIDE = 1\n")
    # a fixed line changed behind the workspace's back must not travel
    lines = ws.read(file).splitlines(keepends=True)
    lines[0] = "MARKER_OUTSIDE = 1\n"
    (ws.root / file).write_text("".join(lines))
    dest = tmp_path / "final"
    ranges = transplant(es_task, ws.region_texts(), {}, dest, with_hidden=True)
    text = (dest / file).read_text()
    assert "MARKER_INSIDE" in text and "MARKER_OUTSIDE" not in text
    assert (es_task.root / "hidden").is_dir() and any(
        (dest / p.name).exists() for p in (es_task.root / "hidden").iterdir()
    )
    s, e = ranges[file][0]
    assert "MARKER_INSIDE" in "".join(text.splitlines(keepends=True)[s - 1 : e])


def test_diff_against_the_scaffold(ws):
    file, r = region(ws)
    ws.replace(file, r.start, r.start, "NEW_LINE = 1\n")
    d = ws.diff()
    assert f"b/{file}" in d and "+NEW_LINE = 1" in d


def test_links_and_fifos_in_place_of_any_file_are_replaced_never_followed(es_task, tmp_path):
    """The host restores the workspace without following what a command left in place of a
    fixed, editable or created file (a link to a host file or folder, a FIFO that would block a
    reader): the host's files keep their bytes, and each path is a regular file again."""
    import os
    import shutil

    from mlsbench_env.spec import load_task

    task_dir = tmp_path / es_task.id
    shutil.copytree(es_task.root, task_dir)
    spec = (task_dir / "task.yaml").read_text().replace("creatable: []", "creatable: [notes.py]")
    (task_dir / "task.yaml").write_text(spec)
    task = load_task(task_dir)
    host = tmp_path / "host"
    host.mkdir()
    (host / "secret.txt").write_text("host bytes\n")
    ws = Workspace(task, tmp_path / "ws")
    ws.create("notes.py", "x = 1\n")
    editable = next(iter(ws.ranges))
    fixed = next(p for p in ws.pristine if p not in ws.ranges)
    for plant in ("file link", "folder link", "fifo"):
        snap = ws.editable_snapshot()
        for rel in (editable, fixed, "notes.py"):
            path = ws.root / rel
            path.unlink()
            if plant == "file link":
                path.symlink_to(host / "secret.txt")
            elif plant == "folder link":
                path.symlink_to(host)
            else:
                os.mkfifo(path)
        events = ws.check_integrity(snap)
        assert len(events) == 3, (plant, events)
        for rel in (editable, fixed, "notes.py"):
            assert (ws.root / rel).is_file() and not (ws.root / rel).is_symlink(), (plant, rel)
        assert ws.read("notes.py") == "x = 1\n" and ws.read(fixed) == ws.pristine[fixed].decode()
        assert sorted(p.name for p in host.iterdir()) == ["secret.txt"]
        assert (host / "secret.txt").read_text() == "host bytes\n"
    # the whole workspace folder replaced by a link: rebuilt, the host folder untouched
    shutil.move(ws.root, tmp_path / "moved")
    ws.root.symlink_to(host)
    snap = {rel: (tmp_path / "moved" / rel).read_text() for rel in [*ws.ranges, "notes.py"]}
    events = ws.check_integrity(snap)
    assert "rebuilt" in events[0] and ws.root.is_dir() and not ws.root.is_symlink()
    assert ws.read("notes.py") == "x = 1\n"
    assert sorted(p.name for p in host.iterdir()) == ["secret.txt"]


@pytest.mark.skipif(os.geteuid() != 0, reason="drops root's capabilities to meet file modes")
def test_a_fixed_file_made_unwritable_is_replaced_not_an_internal_error(tmp_path):
    """A rootless sandbox's command can `chmod 000` a fixed file; the host (the same uid, no
    capability to override modes) must still restore it."""
    (tmp_path / "run.py").write_text("fixed\n")
    (tmp_path / "run.py").chmod(0)
    script = (
        "import ctypes, sys\n"
        "from mlsbench_env.workspace import hostfs\n"
        "from mlsbench_env.taskkit.privilege import _CapData, _CapHeader\n"
        "libc = ctypes.CDLL(None, use_errno=True)\n"
        "assert libc.capset(ctypes.byref(_CapHeader(0x20080522, 0)), (_CapData * 2)()) == 0\n"
        "try:\n"
        "    open(sys.argv[1] + '/run.py', 'w')\n"
        "    raise SystemExit('the mode did not bind')\n"
        "except PermissionError:\n"
        "    pass\n"
        "hostfs.write_bytes(__import__('pathlib').Path(sys.argv[1]), 'run.py', b'restored\\n')\n"
    )
    subprocess.run([sys.executable, "-c", script, str(tmp_path)], check=True)
    assert (tmp_path / "run.py").read_text() == "restored\n"
