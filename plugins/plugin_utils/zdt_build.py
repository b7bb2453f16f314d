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

With a ``target`` (the Python version, implementation, machine and glibc of the hosts it is
for, see ``target_key``), the artifact is built for that target, not for the controller:
the app's own wheel is built here (pure Python), the requirements are resolved by uv for
the target's exact Python version and platform (environment markers included), binary
wheels for the target are fetched from the index, and a dependency published as an sdist
only is built here when it is pure Python; one that needs compiling is named in a clear
error. The target is part of the cache key and of the content hash (hence of the release
id): hosts of another kind get their own artifact.
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


# uv names manylinux platforms up to this glibc; newer glibcs run those wheels too.
UV_MAX_GLIBC = 40
UV_MIN_GLIBC = 17


def target_key(target: dict) -> str:
    """A target's name in cache keys, release ids and errors, e.g. cp3.13.5-x86_64-glibc2.41."""
    return (f"{'cp' if target.get('implementation', 'cpython') == 'cpython' else target['implementation']}"
            f"{target['python']}-{target['machine']}-glibc{target['glibc']}")


def _tags(target: dict) -> tuple[str, str, list[str], str]:
    """(python version, abi, pip platforms, uv platform) of a target."""
    if target.get("implementation", "cpython") != "cpython" or not target.get("glibc"):
        raise BuildError(f"target {target_key(target)}: only CPython on glibc Linux is supported")
    major, minor = (int(x) for x in str(target["python"]).split(".")[:2])
    machine = target["machine"]
    glibc_minor = int(str(target["glibc"]).split(".")[1])
    newest = min(glibc_minor, UV_MAX_GLIBC)
    platforms = [f"manylinux_2_{n}_{machine}" for n in range(glibc_minor, UV_MIN_GLIBC - 1, -1)]
    platforms += [f"manylinux2014_{machine}", f"manylinux2010_{machine}", f"manylinux1_{machine}"]
    uv_platform = f"{machine}-manylinux_2_{newest}" if newest >= 28 else f"{machine}-manylinux_2_17"
    return f"{major}.{minor}", f"cp{major}{minor}", platforms, uv_platform


def find_uv(python: str) -> str:
    """uv beside the controller's Python (pip install uv), else on PATH; '' when none."""
    beside = Path(python).parent / "uv"
    return str(beside) if beside.is_file() else (shutil.which("uv") or "")


def _uv(python: str) -> str:
    found = find_uv(python)
    if not found:
        raise BuildError("building for the targets' Python needs uv on the controller, beside "
                         f"{python} or on PATH: pip install uv")
    return found


# ELF e_machine values, named as platform.machine() names them on Linux.
ELF_MACHINES = {3: "i686", 8: "mips", 20: "ppc", 21: "ppc64le", 22: "s390x", 40: "armv7l", 62: "x86_64",
                183: "aarch64", 243: "riscv64", 258: "loongarch64"}


def elf_machine(path: str) -> str:
    """The machine a Linux (ELF) program is built for, e.g. x86_64; '' when PATH is no ELF program."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(20)
    except OSError:
        return ""
    if len(head) < 20 or head[:4] != b"\x7fELF" or head[5] not in (1, 2):
        return ""
    number = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return ELF_MACHINES.get(number, f"elf-machine-{number}")


def uv_binary(python: str) -> dict:
    """The controller's uv, found as the build finds it, as the installer ships it to the hosts:
    path, version and the machine it runs on ('' when it is no Linux program); {} when none."""
    path = find_uv(python)
    if not path:
        return {}
    proc = subprocess.run([path, "--version"], capture_output=True, text=True, check=False)
    words = proc.stdout.split()
    if proc.returncode != 0 or len(words) < 2 or words[0] != "uv":
        return {}
    return {"path": path, "version": words[1], "machine": elf_machine(path)}


def _pure(wheel: Path) -> bool:
    return wheel.name.endswith("-none-any.whl")


def _app_wheel(spec: dict, pip_wheel: list[str], wheel_dir: Path, src: Path) -> str:
    """Build the app's own wheel with PIP_WHEEL (a `pip wheel` or `uv build` command writing to
    WHEEL_DIR) and return its version; a wheel of another name is a wrong deploy_package_name."""
    origin = spec.get("source_path") or spec.get("git_repo")
    _run(pip_wheel + [str(src)], f"building the wheel of {origin}")
    name = _normalize(spec["package"])
    found = [w for w in wheel_dir.glob("*.whl") if _normalize(w.name.split("-")[0]) == name]
    if not found:
        raise BuildError(f"no wheel named {spec['package']} was built from {origin} (is deploy_package_name right?)")
    return found[0].name.split("-")[1]


def _build_for_target(spec: dict, settings: dict, src: Path, wheels: Path, work: Path) -> tuple[str, list[str], str]:
    """Fill WHEELS for spec['target']; return (version, the pinned requirements to install,
    the gunicorn requirement added or '')."""
    target = spec["target"]
    version_mm, abi, platforms, uv_platform = _tags(target)
    key = target_key(target)
    python = spec["python"]
    local = work / "local"
    local.mkdir()
    pip = [python, "-m", "pip", "--disable-pip-version-check"]
    wanted: list[str] = []
    if settings["type"] == "package":
        # uv builds it with the same build backend, its build environment from uv's cache
        # (about 1.4 s here, pip wheel 3.7 s).
        version = _app_wheel(spec, [_uv(python), "build", "--wheel", "--quiet", "--python", python,
                                    "--out-dir", str(local)], local, src)
        wanted.append(f"{spec['package']}=={version}")
    else:
        version = settings["version"]
        wanted.append(f"-r {src / settings['requirements']}")
    wanted += settings["extras"]

    def resolve(lines: list[str]) -> list[str]:
        (work / "wanted.in").write_text("\n".join(lines) + "\n")
        out = _run([_uv(python), "pip", "compile", "--quiet", "--no-header", "--no-annotate", "--no-strip-extras",
                    "--python-version", str(target["python"]), "--python-platform", uv_platform,
                    "--find-links", str(local), str(work / "wanted.in")],
                   f"resolving the requirements for {key} (uv pip compile)", cwd=str(src))
        return [line.strip() for line in out.splitlines() if line.strip() and not line.lstrip().startswith("#")]

    pinned = resolve(wanted)
    added_gunicorn = ""
    if settings["gunicorn"] and not any(_normalize(line.split("==")[0].split("[")[0]) == "gunicorn" for line in pinned):
        wanted.append(settings["gunicorn"])
        added_gunicorn = settings["gunicorn"]
        pinned = resolve(wanted)
    names = {_normalize(line.split("==")[0].split("[")[0]): line for line in pinned}
    for wheel in local.glob("*.whl"):
        if _normalize(wheel.name.split("-")[0]) in names:
            shutil.copy2(wheel, wheels / wheel.name)
    have = {_normalize(w.name.split("-")[0]) for w in wheels.glob("*.whl")}
    missing = [line for name, line in names.items() if name not in have]
    download = pip + ["download", "--quiet", "--no-deps", "--only-binary=:all:", "--dest", str(wheels),
                      "--python-version", version_mm, "--implementation", "cp", "--abi", abi, "--abi", "abi3",
                      "--abi", "none"]
    for platform in platforms:
        download += ["--platform", platform]
    # The wheels downloaded for this kind of host before, kept on the controller: a
    # dependency that did not change is copied from there, not downloaded again.
    store = Path(spec["out"]).expanduser().parent / "wheels" / key
    for line in missing:
        requirement = line.split(";")[0].strip()
        if _from_store(store, requirement, wheels):
            continue
        try:
            _run(download + [requirement], f"pip download {requirement}")
            _to_store(store, requirement, wheels)
            continue
        except BuildError:
            pass
        # No wheel for the target on the index: an sdist of pure Python builds here.
        built = work / "sdist-build"
        _run(pip + ["wheel", "--quiet", "--no-deps", "--ignore-requires-python", "--wheel-dir", str(built),
                    requirement], f"pip wheel of {requirement}")
        made = [w for w in built.glob("*.whl")
                if _normalize(w.name.split("-")[0]) == _normalize(requirement.split("==")[0].split("[")[0])]
        if not made or not _pure(made[0]):
            raise BuildError(
                f"{requirement} has no wheel for {key} (Python {target['python']}, {platforms[0]}) on the index "
                "and needs compiling: build on a machine of the target's kind (run the deploy from a controller "
                "with that Debian and Python, or set venv_release_build_python to such a Python), pin a version "
                "that publishes wheels, or drop the dependency")
        shutil.copy2(made[0], wheels / made[0].name)
    return version, pinned, added_gunicorn


def _pinned(requirement: str) -> tuple[str, str]:
    """(normalized name, version) of a pinned requirement NAME[extras]==VERSION; ('', '') otherwise."""
    name, sep, version = requirement.partition("==")
    return (_normalize(name.split("[")[0].strip()), version.strip()) if sep and version.strip() else ("", "")


def _wheel_of(directory: Path, name: str, version: str) -> list[Path]:
    return [w for w in directory.glob("*.whl") if _normalize(w.name.split("-")[0]) == name
            and w.name.split("-")[1] == version]


def _from_store(store: Path, requirement: str, wheels: Path) -> bool:
    """Copy the wheel of pinned REQUIREMENT from the controller's STORE into WHEELS, if there."""
    name, version = _pinned(requirement)
    found = _wheel_of(store, name, version) if name and store.is_dir() else []
    if found:
        shutil.copy2(found[0], wheels / found[0].name)
    return bool(found)


def _to_store(store: Path, requirement: str, wheels: Path) -> None:
    """Keep the wheel just downloaded for pinned REQUIREMENT in STORE (renamed into place)."""
    name, version = _pinned(requirement)
    for wheel in _wheel_of(wheels, name, version) if name else []:
        store.mkdir(parents=True, exist_ok=True)
        staging = store / f".{wheel.name}.{os.getpid()}"
        shutil.copy2(wheel, staging)
        staging.rename(store / wheel.name)


def _build_here(spec: dict, settings: dict, src: Path, wheels: Path) -> tuple[str, list[str], str]:
    """Fill WHEELS for the controller's own Python (no target given); return (version, the
    requirements to install, the gunicorn requirement added or '')."""
    pip = [spec["python"], "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
           "--wheel-dir", str(wheels)]
    wanted: list[str] = []
    if settings["type"] == "package":
        version = _app_wheel(spec, pip, wheels, src)
        wanted.append(f"{spec['package']}=={version}")
    else:
        _run(pip + ["-r", str(src / settings["requirements"])], f"pip wheel -r {settings['requirements']}")
        version = settings["version"]
        wanted.append(f"-r {settings['requirements']}")
    if settings["extras"]:
        _run(pip + settings["extras"], "pip wheel of deploy_extra_requirements " + " ".join(settings["extras"]))
        wanted += settings["extras"]
    added_gunicorn = ""
    if settings["gunicorn"] and not any(_normalize(w.name.split("-")[0]) == "gunicorn" for w in wheels.glob("*.whl")):
        _run(pip + [settings["gunicorn"]], f"pip wheel of {settings['gunicorn']}")
        wanted.append(settings["gunicorn"])
        added_gunicorn = settings["gunicorn"]
    return version, wanted, added_gunicorn


def build(spec: dict) -> dict:
    """SPEC: source_type (package|source), source_path or git_repo (+ git_version), package,
    requirements, version, python, out, extra_requirements, gunicorn (requirement added when
    the app has no gunicorn; '' adds none), target (optional: python, implementation, machine,
    glibc of the hosts the artifact is for)."""
    out = Path(spec["out"]).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    source_type = spec.get("source_type", "package")
    extras = [str(r) for r in spec.get("extra_requirements") or []]
    settings = {"type": source_type, "package": spec.get("package", ""), "version": spec.get("version", "0"),
                "requirements": spec.get("requirements", "requirements.txt"), "extras": extras,
                "gunicorn": spec.get("gunicorn", "")}
    if spec.get("target"):
        settings["target"] = target_key(spec["target"])
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
        wheels.mkdir()
        if spec.get("target"):
            version, wanted, added_gunicorn = _build_for_target(spec, settings, src, wheels, work)
        else:
            version, wanted, added_gunicorn = _build_here(spec, settings, src, wheels)
        staging = work / "artifact.tar.gz"
        (work / REQUIREMENTS).write_text("\n".join(wanted) + "\n")
        with tarfile.open(staging, "w:gz") as tar:
            tar.add(wheels, arcname="wheels")
            tar.add(work / REQUIREMENTS, arcname=REQUIREMENTS)
            if source_type == "source":
                for child in sorted(src.iterdir()):
                    tar.add(child, arcname=child.name)
        meta = {"artifact": str(final / "artifact.tar.gz"), "version": version, "content_hash": content_hash,
                "type": source_type, "added_gunicorn": added_gunicorn, "requirements": wanted,
                "target": settings.get("target", "")}
        final.mkdir()
        staging.rename(final / "artifact.tar.gz")
        meta_file.write_text(json.dumps(meta, indent=2) + "\n")
        return {"changed": True, **meta, "git_sha": git_sha}
