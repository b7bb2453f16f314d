# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Build a release artifact on the controller, once per deploy (the lookup plugin
``zerodowntime.web.zdt_build`` runs it).

The artifact is a .tar.gz holding ``wheels/`` (the app and its dependencies, built here so
targets need no network), ``zdt-requirements.txt`` (what to install from them) and, for a
source-tree app, the code snapshot at its root (without VCS metadata). gunicorn is added
(a pinned version) when the app does not depend on it, and the extra requirements the
deploy names are added for every source form. Artifacts are cached by the hash of the
source content and of these build settings: building the same thing twice builds nothing.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import tarfile
import tempfile
from pathlib import Path

SKIP_DIRS = {".git", ".hg", ".svn", "build", "dist", "__pycache__", ".venv", "venv",
             "node_modules", ".tox", ".pytest_cache", ".ruff_cache", ".mypy_cache"}
REQUIREMENTS = "zdt-requirements.txt"


class BuildError(Exception):
    pass


def _run(cmd: list[str], what: str, **kwargs) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs, check=False)
    if proc.returncode != 0:
        lines = [line for line in (proc.stdout + "\n" + proc.stderr).splitlines() if line.strip()]
        raise BuildError(f"{what} failed (rc {proc.returncode}): " + " | ".join(lines[-8:]))
    return proc.stdout.strip()


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


def _git_sha(src: Path) -> str:
    """The commit of the app's own repository: only when the source folder is tracked by the
    repository that encloses it (a copy in an ignored folder of another repository has none)."""
    def git(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["git", "-C", str(src), *args], capture_output=True, text=True, check=False)
    sha = git("rev-parse", "HEAD")
    if sha.returncode != 0:
        return ""
    tracked = git("ls-files", "--", ".")
    return sha.stdout.strip() if tracked.returncode == 0 and tracked.stdout.strip() else ""


def snapshot(spec: dict, dest: Path) -> str:
    """Copy the source into DEST; return the git sha when known, else ''."""
    if spec.get("git_repo"):
        with tempfile.TemporaryDirectory() as clone:
            _run(["git", "clone", "--quiet", "--no-checkout", spec["git_repo"], clone], "git clone")
            sha = _run(["git", "-C", clone, "rev-parse", f"{spec.get('git_version') or 'HEAD'}^{{commit}}"],
                       f"finding {spec.get('git_version')} in {spec['git_repo']}")
            archive = subprocess.run(["git", "-C", clone, "archive", "--format=tar", sha],
                                     capture_output=True, check=True)
            dest.mkdir(parents=True)
            subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
        return sha
    src = Path(spec["source_path"]).expanduser().resolve()
    if not src.is_dir():
        raise BuildError(f"source path {src} is not a directory")

    def ignore(_dir: str, names: list[str]) -> set[str]:
        return {n for n in names if n in SKIP_DIRS or n.endswith((".egg-info", ".pyc"))}

    shutil.copytree(src, dest, ignore=ignore, symlinks=True)
    return _git_sha(src)


def tree_hash(root: Path, settings: dict) -> str:
    digest = hashlib.sha256(json.dumps(settings, sort_keys=True).encode() + b"\0")
    for path in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(os.readlink(path).encode() if path.is_symlink() else path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def build(spec: dict) -> dict:
    """SPEC: source_type (package|source), source_path or git_repo (+ git_version), package,
    requirements, version, python, out, extra_requirements, gunicorn (requirement added when
    the app has no gunicorn; '' adds none)."""
    out = Path(spec["out"]).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    source_type = spec.get("source_type", "package")
    extras = [str(r) for r in spec.get("extra_requirements") or []]
    settings = {"type": source_type, "package": spec.get("package", ""), "version": spec.get("version", "0"),
                "requirements": spec.get("requirements", "requirements.txt"), "extras": extras,
                "gunicorn": spec.get("gunicorn", "")}
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        work = Path(tmp)
        src = work / "src"
        git_sha = snapshot(spec, src)
        if source_type == "source" and not (src / settings["requirements"]).is_file():
            raise BuildError(f"the source tree has no {settings['requirements']} (deploy_source_type: source "
                             "needs one)")
        content_hash = tree_hash(src, settings)
        final = out / content_hash[:16]
        meta_file = final / "meta.json"
        if meta_file.is_file():
            meta = json.loads(meta_file.read_text())
            return {"changed": False, **meta, "git_sha": git_sha}

        wheels = work / "wheels"
        pip = [spec["python"], "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
               "--wheel-dir", str(wheels)]
        wanted: list[str] = []
        if source_type == "package":
            _run(pip + [str(src)], f"pip wheel of {spec.get('source_path') or spec.get('git_repo')}")
            name = _normalize(spec["package"])
            found = [w for w in wheels.glob("*.whl") if _normalize(w.name.split("-")[0]) == name]
            if not found:
                raise BuildError(f"no wheel named {spec['package']} was built from "
                                 f"{spec.get('source_path') or spec.get('git_repo')} (is deploy_package_name right?)")
            version = found[0].name.split("-")[1]
            wanted.append(f"{spec['package']}=={version}")
        else:
            _run(pip + ["-r", str(src / settings["requirements"])], f"pip wheel -r {settings['requirements']}")
            version = settings["version"]
            wanted.append(f"-r {settings['requirements']}")
        if extras:
            _run(pip + extras, "pip wheel of deploy_extra_requirements " + " ".join(extras))
            wanted += extras
        added_gunicorn = ""
        if settings["gunicorn"] and not any(_normalize(w.name.split("-")[0]) == "gunicorn" for w in wheels.glob("*.whl")):
            _run(pip + [settings["gunicorn"]], f"pip wheel of {settings['gunicorn']}")
            wanted.append(settings["gunicorn"])
            added_gunicorn = settings["gunicorn"]
        staging = work / "artifact.tar.gz"
        (work / REQUIREMENTS).write_text("\n".join(wanted) + "\n")
        with tarfile.open(staging, "w:gz") as tar:
            tar.add(wheels, arcname="wheels")
            tar.add(work / REQUIREMENTS, arcname=REQUIREMENTS)
            if source_type == "source":
                for child in sorted(src.iterdir()):
                    tar.add(child, arcname=child.name)
        meta = {"artifact": str(final / "artifact.tar.gz"), "version": version, "content_hash": content_hash,
                "type": source_type, "added_gunicorn": added_gunicorn, "requirements": wanted}
        final.mkdir()
        staging.rename(final / "artifact.tar.gz")
        meta_file.write_text(json.dumps(meta, indent=2) + "\n")
        return {"changed": True, **meta, "git_sha": git_sha}
