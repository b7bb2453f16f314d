"""zdt_release with the uv installer, for real: the controller's uv put in place once per
version (root's, 0755, renamed into place), the virtualenv made and filled offline by uv as
the app user with the cache in the app root, and check mode changing nothing."""

from __future__ import annotations

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


def wheel() -> bytes:
    """A pure wheel of a one-module distribution, zdtdemo 1.0."""
    files = {"zdtdemo/__init__.py": "VALUE = 42\n",
             "zdtdemo-1.0.dist-info/METADATA": "Metadata-Version: 2.1\nName: zdtdemo\nVersion: 1.0\n",
             "zdtdemo-1.0.dist-info/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                                            "Tag: py3-none-any\n"}
    files["zdtdemo-1.0.dist-info/RECORD"] = "".join(f"{name},,\n" for name in files) + "zdtdemo-1.0.dist-info/RECORD,,\n"
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return out.getvalue()


@pytest.fixture
def host(tmp_path, monkeypatch):
    # The lock of an earlier holder's work lives in /var/lib/zerodowntime: not here.
    monkeypatch.setattr(zdt_release, "Lock", lambda app: type("NoLock", (), {"hold_work": lambda self: None})())
    artifact = tmp_path / "artifact.tar.gz"
    with tarfile.open(artifact, "w:gz") as tar:
        for name, data in (("wheels/zdtdemo-1.0-py3-none-any.whl", wheel()), ("zdt-requirements.txt", b"zdtdemo==1.0\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    root = tmp_path / "srv" / "demo"
    user = pwd.getpwuid(0)
    return {"root": root, "app": App("demo", str(root)),
            "args": {"app_name": "demo", "app_root": str(root), "user": user.pw_name, "group": "root",
                     "artifact": str(artifact), "python": PYTHON, "installer": "uv", "uv_version": UV["version"]}}


def args_for(host, release: str, **more) -> dict:
    wheels = f"{host['app'].release(release)}/wheels"
    return {**host["args"], "release": release, **more,
            "pip_args": ["--quiet", "--offline", "--no-index", "--find-links", wheels, "-r",
                         f"{host['app'].release(release)}/zdt-requirements.txt"]}


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
    assert os.listdir(app.tools) == [f"uv-{UV['version']}"]  # no temporary file, no older version
    assert stat.S_IMODE(os.stat(app.tools).st_mode) == 0o755 and os.path.isdir(app.uv_cache)
    venv = Path(app.release("1.0")) / "venv"
    assert not (venv / "bin" / "pip").exists()  # uv's virtualenv has no pip; nothing may call it
    installed = next(venv.glob("lib/python3*/site-packages/zdtdemo/__init__.py"))
    assert os.stat(installed).st_nlink >= 2  # hard-linked from the cache in the app root
    assert list(installed.parent.glob("__pycache__/*.pyc"))  # compiled, as pip does

    # The next release: uv is there, nothing shipped.
    again = run_module(zdt_release.main, args_for(host, "2.0"))
    assert not again.failed, again.result
    assert set(again.result["timings"]) == {"unpack", "venv", "install"}


def test_uv_missing_and_not_shipped_is_a_clear_failure(run_module, host):
    done = run_module(zdt_release.main, args_for(host, "1.0"))
    assert done.failed and f"uv {UV['version']} is not on the host" in done.result["msg"]
    assert not os.path.exists(host["app"].release("1.0"))


def test_check_mode_changes_nothing(run_module, host):
    done = run_module(zdt_release.main, args_for(host, "1.0", uv=UV["path"], _ansible_check_mode=True))
    assert done.result["changed"] and done.result["created"]
    assert not host["root"].exists()
