#!/usr/bin/env python3
"""Build a release artifact on the controller, once per deploy.

The artifact is a .tar.gz holding ``wheels/`` (the app and/or its dependencies,
built here so targets need no network) and, for a source-tree app, the code
snapshot itself at its root (without VCS metadata). Artifacts are cached by the hash of
the source content: building the same code twice builds nothing.

Prints one JSON object: changed, artifact, version, content_hash, git_sha.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

SKIP_DIRS = {".git", ".hg", ".svn", "build", "dist", "__pycache__", ".venv", "venv",
             "node_modules", ".tox", ".pytest_cache", ".ruff_cache", ".mypy_cache"}


def run(cmd: list[str], **kwargs) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout.strip()


def snapshot(args: argparse.Namespace, dest: Path) -> str:
    """Copy the source into dest; return the git sha when known, else ''."""
    if args.git_repo:
        with tempfile.TemporaryDirectory() as clone:
            run(["git", "clone", "--quiet", "--no-checkout", args.git_repo, clone])
            sha = run(["git", "-C", clone, "rev-parse", f"{args.git_version}^{{commit}}"])
            archive = subprocess.run(["git", "-C", clone, "archive", "--format=tar", sha],
                                     capture_output=True, check=True)
            dest.mkdir(parents=True)
            subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
        return sha
    src = Path(args.source_path).resolve()
    if not src.is_dir():
        sys.exit(f"source path {src} is not a directory")

    def ignore(_dir: str, names: list[str]) -> set[str]:
        return {n for n in names if n in SKIP_DIRS or n.endswith((".egg-info", ".pyc"))}

    shutil.copytree(src, dest, ignore=ignore, symlinks=True)
    proc = subprocess.run(["git", "-C", str(src), "rev-parse", "HEAD"], capture_output=True, text=True)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def tree_hash(root: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() or p.is_symlink()):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(os.readlink(path).encode() if path.is_symlink() else path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def build(args: argparse.Namespace) -> dict:
    out = Path(args.out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out) as tmp:
        work = Path(tmp)
        src = work / "src"
        git_sha = snapshot(args, src)
        if args.type == "source" and not (src / args.requirements).is_file():
            sys.exit(f"source tree has no {args.requirements}")
        content_hash = tree_hash(src)
        final = out / content_hash[:16]
        meta_file = final / "meta.json"
        if meta_file.is_file():
            meta = json.loads(meta_file.read_text())
            return {"changed": False, **meta}

        wheels = work / "wheels"
        pip = [args.python, "-m", "pip", "wheel", "--quiet", "--wheel-dir", str(wheels)]
        if args.type == "package":
            run(pip + [str(src)])
            name = re.sub(r"[-_.]+", "_", args.package).lower()
            found = [w for w in wheels.glob("*.whl") if w.name.lower().startswith(name + "-")]
            if not found:
                sys.exit(f"no wheel named {args.package} was built from {args.source_path or args.git_repo}")
            version = found[0].name.split("-")[1]
        else:
            run(pip + ["-r", str(src / args.requirements)])
            version = args.version

        staging = work / "artifact.tar.gz"
        with tarfile.open(staging, "w:gz") as tar:
            tar.add(wheels, arcname="wheels")
            if args.type == "source":
                # The code snapshot is the release's root, as in a checkout.
                for child in sorted(src.iterdir()):
                    tar.add(child, arcname=child.name)
        meta = {"artifact": str(final / "artifact.tar.gz"), "version": version,
                "content_hash": content_hash, "git_sha": git_sha, "type": args.type}
        final.mkdir()
        staging.rename(final / "artifact.tar.gz")
        meta_file.write_text(json.dumps(meta, indent=2) + "\n")
        return {"changed": True, **meta}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--type", choices=["package", "source"], required=True)
    parser.add_argument("--source-path", default="")
    parser.add_argument("--git-repo", default="")
    parser.add_argument("--git-version", default="HEAD")
    parser.add_argument("--package", default="")
    parser.add_argument("--requirements", default="requirements.txt")
    parser.add_argument("--version", default="0")
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    if not (args.source_path or args.git_repo):
        sys.exit("give --source-path or --git-repo")
    print(json.dumps(build(args)))


if __name__ == "__main__":
    main()
