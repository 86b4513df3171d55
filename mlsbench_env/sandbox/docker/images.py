"""Sandbox images for the `docker` backend, built locally from sandbox/ (no registry pulls).

Two images, each tagged with a content hash of what it is made from, so that a changed recipe
rebuilds and an unchanged one is reused:

- ``mlsbench-base:<hash>``: a minimal Debian root filesystem with Python 3.11 (``base.sh``:
  mmdebstrap or debootstrap from Debian's package archive), imported with ``docker import``.
- ``mlsbench-sandbox:<hash>``: the base plus a virtual environment with the Python packages the
  tasks import (numpy, the ``tasks`` extra, each task's requirements.txt, and what they
  require), pinned to the versions installed on this host (``requirements_lock()``) so that the
  docker backend computes what the local one does. pip fetches the wheels on the host; the
  build itself runs with no network.

``mlsbench images build`` builds what is missing; the docker backend uses ``sandbox_tag()``.
"""

from __future__ import annotations

import hashlib
import importlib.metadata as md
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path

from mlsbench_env.errors import SandboxError

BASE_REPO, SANDBOX_REPO = "mlsbench-base", "mlsbench-sandbox"
# when the tasks extra cannot be read from the installed metadata
FALLBACK_TASK_PACKAGES = ("scipy", "scikit-learn", "networkx", "causal-learn")


def recipe_dir() -> Path:
    """sandbox/: package data when installed, the repository's folder when editable."""
    here = Path(__file__).resolve().parents[2]  # the package folder
    for candidate in (here / "sandbox_recipes", here.parent / "sandbox"):
        if (candidate / "Dockerfile").is_file():
            return candidate
    raise SandboxError(f"the image recipes (sandbox/Dockerfile) are missing next to {here}")


def _name(requirement: str) -> str:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement)
    return m.group(1) if m else requirement.strip()


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _applies(requirement: str) -> bool:
    """Whether a requirement of an installed distribution applies here (no extras)."""
    if ";" not in requirement:
        return True
    try:
        from packaging.requirements import Requirement
    except ImportError:  # pragma: no cover (pip vendors it)
        from pip._vendor.packaging.requirements import Requirement  # type: ignore[assignment]
    marker = Requirement(requirement).marker
    return marker is None or marker.evaluate({"extra": ""})


def task_packages() -> list[str]:
    """The packages the shipped tasks import: numpy, the ``tasks`` extra, tasks' requirements."""
    from mlsbench_env.spec import builtin_tasks_dir

    roots = ["numpy"]
    try:
        extra = [
            r for r in md.requires("mlsbench-env") or [] if re.search(r"extra\s*==\s*.tasks.", r)
        ]
    except md.PackageNotFoundError:
        extra = []
    roots += [_name(r) for r in extra] or list(FALLBACK_TASK_PACKAGES)
    for req_file in sorted(builtin_tasks_dir().glob("*/requirements.txt")):
        for line in req_file.read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                roots.append(_name(line))
    return list(dict.fromkeys(roots))


def requirements_lock(roots: list[str] | None = None) -> list[str]:
    """``name==version`` for the roots and everything they require, as installed here."""
    pins: dict[str, str] = {}
    todo = list(task_packages() if roots is None else roots)
    while todo:
        name = todo.pop()
        key = _canonical(name)
        if key in pins:
            continue
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            raise SandboxError(
                f"{name} is not installed here, and the sandbox image pins the versions "
                "installed on the building host; run: pip install 'mlsbench-env[tasks]'"
            ) from None
        pins[key] = f"{dist.metadata['Name']}=={dist.version}"
        todo += [_name(r) for r in dist.requires or [] if _applies(r)]
    return sorted(pins.values(), key=str.lower)


def _digest(*parts: str | bytes) -> str:
    h = hashlib.sha256()
    for p in parts:
        data = p.encode() if isinstance(p, str) else p
        h.update(len(data).to_bytes(8, "big") + data)
    return h.hexdigest()[:12]


def base_tag() -> str:
    return f"{BASE_REPO}:{_digest((recipe_dir() / 'base.sh').read_bytes())}"


@cache
def sandbox_tag() -> str:
    """The tag of the sandbox image that matches the recipe and this host's packages."""
    lock = "\n".join(requirements_lock())
    dockerfile = (recipe_dir() / "Dockerfile").read_bytes()
    return f"{SANDBOX_REPO}:{_digest(base_tag(), dockerfile, lock)}"


def _client():
    try:
        import docker
    except ImportError:
        raise SandboxError(
            "the docker SDK is not installed; install it with: pip install 'mlsbench-env[docker]'"
        ) from None
    try:
        return docker.from_env(timeout=1800)  # a build streams for minutes on a busy host
    except docker.errors.DockerException as e:
        raise SandboxError(
            f"no Docker engine is reachable ({e}); start dockerd (see docs/docker.md)"
        ) from None


def exists(tag: str, client=None) -> bool:
    import docker

    try:
        (client or _client()).api.inspect_image(tag)
        return True
    except docker.errors.ImageNotFound:
        return False


def build(force: bool = False, log: Callable[[str], None] = print) -> str:
    """Build the base and sandbox images where missing (or all with ``force``); their tag."""
    client = _client()
    base, tag = base_tag(), sandbox_tag()
    if force or not exists(base, client):
        _build_base(client, base, log)
    else:
        log(f"{base}: up to date")
    if not force and exists(tag, client):
        log(f"{tag}: up to date")
        return tag
    lock = requirements_lock()
    with tempfile.TemporaryDirectory(prefix="mlsbench-image-") as ctx:
        ctx_path = Path(ctx)
        shutil.copy(recipe_dir() / "Dockerfile", ctx_path / "Dockerfile")
        (ctx_path / "requirements.lock").write_text("\n".join(lock) + "\n")
        log(f"fetching {len(lock)} wheels with pip (pinned to this host's versions) ...")
        _fetch_wheels(ctx_path / "requirements.lock", ctx_path / "wheels")
        log(f"building {tag} (no network) ...")
        stream = client.api.build(
            path=ctx,
            tag=tag,
            buildargs={"BASE": base},
            network_mode="none",
            rm=True,
            forcerm=True,
            decode=True,
            labels={"mlsbench.recipe": tag.split(":")[1], "mlsbench.base": base},
        )
        for chunk in stream:
            if "error" in chunk:
                raise SandboxError(f"building {tag} failed: {chunk['error'].strip()}")
            text = chunk.get("stream", "").strip()
            if text.startswith("Step "):
                log("  " + text)
    # the first stage (wheels + pip) is left behind untagged; only its venv was copied out
    client.api.prune_images(filters={"dangling": True, "label": "mlsbench.stage=packages"})
    log(f"{tag}: built")
    return tag


def _build_base(client, tag: str, log: Callable[[str], None]) -> None:
    script = recipe_dir() / "base.sh"
    if not (shutil.which("mmdebstrap") or shutil.which("debootstrap")):
        raise SandboxError(
            "building the base image needs mmdebstrap or debootstrap (Debian: apt-get install "
            "mmdebstrap debootstrap)"
        )
    with tempfile.TemporaryDirectory(prefix="mlsbench-rootfs-") as tmp:
        tar = Path(tmp) / "rootfs.tar"
        log(f"building {tag}: Debian root filesystem from the package archive ...")
        done = subprocess.run(["bash", str(script), str(tar)], capture_output=True, text=True)
        if done.returncode != 0:
            raise SandboxError(f"{script} failed:\n{(done.stderr or done.stdout)[-3000:]}")
        repo, version = tag.split(":")
        client.api.import_image_from_file(str(tar), repository=repo, tag=version)
    log(f"{tag}: imported")


def _fetch_wheels(lock: Path, dest: Path) -> None:
    # `pip wheel` downloads wheels where they exist and builds the few sdist-only packages.
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(dest)]
    cmd += ["-r", str(lock)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        raise SandboxError(f"fetching wheels failed ({' '.join(cmd)}):\n{done.stderr[-3000:]}")


def listing(client=None) -> list[dict]:
    """mlsbench images on this engine, with whether each matches the current recipe."""
    client = client or _client()
    current = {base_tag(), sandbox_tag()}
    rows = []
    for repo in (BASE_REPO, SANDBOX_REPO):
        for img in client.api.images(name=repo):
            for t in img.get("RepoTags") or []:
                rows.append({"tag": t, "size_mb": img["Size"] / 2**20, "current": t in current})
    return rows


def remove_stale(client=None) -> list[str]:
    """Remove mlsbench images that no longer match the recipe; their tags."""
    client = client or _client()
    gone = []
    for row in listing(client):
        if not row["current"]:
            client.api.remove_image(row["tag"])
            gone.append(row["tag"])
    return gone
