"""zdt_release with the uv installer, for real: the controller's uv put in place once per
version (root's, 0755, renamed into place), the virtualenv made and filled offline by uv as
the app user with the cache in the app root, and check mode changing nothing."""

from __future__ import annotations

import hashlib
import io
import os
import pwd
import stat
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App
from ansible_collections.zerodowntime.web.plugins.modules import zdt_release
from ansible_collections.zerodowntime.web.plugins.plugin_utils.zdt_build import uv_binary

UV = uv_binary(sys.executable)
pytestmark = [
    pytest.mark.skipif(os.geteuid() != 0, reason="the module runs as root and demotes to the app user"),
    pytest.mark.skipif(not UV, reason="no uv on this controller"),
]
PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


def wheel(value: int = 42) -> bytes:
    """A pure wheel of a one-module distribution, zdtdemo 1.0."""
    files = {"zdtdemo/__init__.py": f"VALUE = {value}\n",
             "zdtdemo-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: zdtdemo\nVersion: 1.0\n",
             "zdtdemo-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                            "Tag: py3-none-any\n"}
    files["zdtdemo-1.0.dist-info/RECORD"] = "".join(f"{name},,\n" for name in files) + "zdtdemo-1.0.dist-info/RECORD,,\n"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return out.getvalue()


def artifact(path: Path, value: int = 42) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in (("wheels/zdtdemo-1.0-py3-none-any.whl", wheel(value)),
                           ("zdt-requirements.txt", b"zdtdemo==1.0\n")):
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1700000000  # two builds in one second: the same mtime
            tar.addfile(info, io.BytesIO(data))
    return str(path)


@pytest.fixture
def host(tmp_path, monkeypatch):
    # The lock of an earlier holder's work lives in /var/lib/zerodowntime: not here.
    monkeypatch.setattr(zdt_release, "Lock", lambda app: type("NoLock", (), {"hold_work": lambda self: None})())
    root = tmp_path / "srv" / "demo"
    user = pwd.getpwuid(0)
    return {"root": root, "app": App("demo", str(root)),
            "args": {"app_name": "demo", "app_root": str(root), "user": user.pw_name, "group": "root",
                     "artifact": artifact(tmp_path / "artifact.tar.gz"), "python": PYTHON, "installer": "uv",
                     "uv_version": UV["version"]},
            "tmp": tmp_path}


def args_for(host, release: str, **more) -> dict:
    return {**host["args"], "release": release, **more,
            "pip_args": ["--quiet", "--offline", "--no-index", "--find-links", host["app"].wheelhouse, "-r",
                         f"{host['app'].release(release)}/zdt-requirements.txt"]}


def installed(host, release: str) -> Path:
    return next((Path(host["app"].release(release)) / "venv").glob("lib/python3*/site-packages/zdtdemo/__init__.py"))


def test_uv_is_put_in_place_once_and_makes_the_virtualenv_from_the_wheelhouse(run_module, host):
    app = host["app"]
    os.makedirs(app.tools)
    Path(app.uv("0.0.1")).write_text("an older uv")  # another version: removed when this one comes
    done = run_module(zdt_release.main, args_for(host, "1.0", uv=UV["path"]))
    assert not done.failed, done.result
    assert done.result["created"] and done.result["installer"] == "uv"
    assert set(done.result["timings"]) == {"uv", "unpack", "venv", "install"}
    placed = os.stat(app.uv(UV["version"]))
    assert (placed.st_uid, placed.st_gid, stat.S_IMODE(placed.st_mode)) == (0, 0, 0o755)
    # No temporary file, no older uv; the wheelhouse and its index.
    assert sorted(os.listdir(app.tools)) == [f"uv-{UV['version']}", "wheelhouse", "wheelhouse.sha256"]
    assert stat.S_IMODE(os.stat(app.tools).st_mode) == 0o755 and os.path.isdir(app.uv_cache)
    venv = Path(app.release("1.0")) / "venv"
    assert not (venv / "bin" / "pip").exists()  # uv's virtualenv has no pip; nothing may call it
    module = installed(host, "1.0")
    assert os.stat(module).st_nlink >= 2  # hard-linked from the cache in the app root
    assert list(module.parent.glob("__pycache__/*.pyc"))  # compiled, as pip does
    house = os.stat(f"{app.wheelhouse}/zdtdemo-1.0-py3-none-any.whl")
    assert (house.st_uid, stat.S_IMODE(house.st_mode)) == (0, 0o644)

    # The next release, the same wheel: uv is there; the wheelhouse keeps the wheel as it was,
    # so uv's cache serves it (the same files, linked again).
    again = run_module(zdt_release.main, args_for(host, "2.0"))
    assert not again.failed, again.result
    assert set(again.result["timings"]) == {"unpack", "venv", "install"}
    assert os.stat(f"{app.wheelhouse}/zdtdemo-1.0-py3-none-any.whl").st_ino == house.st_ino
    assert os.stat(installed(host, "2.0")).st_ino == os.stat(module).st_ino


def test_a_changed_wheel_of_the_same_name_and_mtime_is_installed_not_the_cached_one(run_module, host):
    done = run_module(zdt_release.main, args_for(host, "1.0", uv=UV["path"]))
    assert not done.failed, done.result
    changed = artifact(host["tmp"] / "changed.tar.gz", value=43)  # same name, version and mtime, other code
    again = run_module(zdt_release.main, args_for(host, "2.0", artifact=changed))
    assert not again.failed, again.result
    assert installed(host, "2.0").read_text() == "VALUE = 43\n"
    assert installed(host, "1.0").read_text() == "VALUE = 42\n"  # the older release keeps its files
    archives = list(Path(host["app"].uv_cache).glob("archive-*/*"))
    assert len(archives) == 1  # the replaced wheel's files left the cache: it grows with what changes only


def test_wheels_left_out_of_the_artifact_come_from_the_wheelhouse_checked(run_module, host, tmp_path):
    app = host["app"]
    done = run_module(zdt_release.main, args_for(host, "1.0", uv=UV["path"]))
    assert not done.failed, done.result
    name = "zdtdemo-1.0-py3-none-any.whl"
    with tarfile.open(host["args"]["artifact"]) as tar:
        shipped = tar.extractfile(f"wheels/{name}").read()  # zip entries carry the time: this very wheel
    digest = hashlib.sha256(shipped).hexdigest()
    assert Path(app.wheelhouse_index).read_text() == f"{digest}  {name}\n"
    assert stat.S_IMODE(os.stat(app.wheelhouse_index).st_mode) == 0o644
    slim = tmp_path / "slim.tar.gz"
    with tarfile.open(slim, "w:gz") as tar:
        info = tarfile.TarInfo("zdt-requirements.txt")
        info.size = 13
        tar.addfile(info, io.BytesIO(b"zdtdemo==1.0\n"))
    again = run_module(zdt_release.main, args_for(host, "2.0", artifact=str(slim), wheelhouse_wheels={name: digest}))
    assert not again.failed, again.result
    assert installed(host, "2.0").read_text() == "VALUE = 42\n"
    copied = os.stat(f"{app.release('2.0')}/wheels/{name}")
    assert copied.st_uid == pwd.getpwnam(host["args"]["user"]).pw_uid and copied.st_size == len(shipped)
    # The wheelhouse no longer holds what its index says: the release fails naming it, and the
    # index goes, so the next deploy ships every wheel.
    Path(f"{app.wheelhouse}/{name}").write_bytes(wheel(43))
    bad = run_module(zdt_release.main, args_for(host, "3.0", artifact=str(slim), wheelhouse_wheels={name: digest}))
    assert bad.failed and f"{name} in {app.wheelhouse} is not the wheel of sha256 {digest}" in bad.result["msg"]
    assert not os.path.exists(app.wheelhouse_index)
    named = run_module(zdt_release.main, args_for(host, "4.0", artifact=str(slim), wheelhouse_wheels={"../x": digest}))
    assert named.failed and "'../x' is not a wheel's file name" in named.result["msg"]


def test_uv_missing_and_not_shipped_is_a_clear_failure(run_module, host):
    done = run_module(zdt_release.main, args_for(host, "1.0"))
    assert done.failed and f"uv {UV['version']} is not on the host" in done.result["msg"]
    assert not os.path.exists(host["app"].release("1.0"))


def test_check_mode_changes_nothing(run_module, host):
    done = run_module(zdt_release.main, args_for(host, "1.0", uv=UV["path"], _ansible_check_mode=True))
    assert done.result["changed"] and done.result["created"]
    assert not host["root"].exists()
