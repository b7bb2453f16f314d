"""zdt_release's action side: one command tells whether the release is complete and uv is
there; the artifact is shipped unless the release is complete, uv only when it is missing too."""

from __future__ import annotations

import hashlib
import io
import subprocess
import tarfile

import pytest
from ansible_collections.zerodowntime.web.plugins.action.zdt_release import (host_wheels, probe_command,
                                                                             slim_artifact, to_ship)


@pytest.fixture
def host(tmp_path):
    (tmp_path / "releases" / "2.0").mkdir(parents=True)
    (tmp_path / ".zdt").mkdir()
    return tmp_path


def ask(host, uv: bool = True) -> list[str]:
    manifest, binary = f"{host}/releases/2.0/release.json", f"{host}/.zdt/uv-0.13.9"
    proc = subprocess.run(["sh", "-c", probe_command(manifest, binary if uv else None)], capture_output=True,
                          text=True, check=False)
    assert proc.returncode == 0
    return to_ship(proc.stdout, binary if uv else None)


def test_a_new_release_on_a_host_without_uv_gets_both(host):
    assert ask(host) == ["artifact", "uv"]


def test_uv_is_shipped_once_per_version(host):
    (host / ".zdt" / "uv-0.13.9").write_text("")
    (host / ".zdt" / "uv-0.13.9").chmod(0o755)
    assert ask(host) == ["artifact"]
    (host / ".zdt" / "uv-0.13.9").chmod(0o644)  # not executable: shipped again
    assert ask(host) == ["artifact", "uv"]


def test_a_complete_release_gets_nothing_even_without_uv(host):
    (host / "releases" / "2.0" / "release.json").write_text("{}")
    assert ask(host) == []


def test_with_pip_only_the_artifact_is_asked_about(host):
    assert "uv" not in probe_command("/srv/a/releases/1/release.json", None)
    assert ask(host, uv=False) == ["artifact"]


def test_paths_are_quoted_for_the_shell():
    assert "'/srv/a b/releases/1/release.json'" in probe_command("/srv/a b/releases/1/release.json", "/x;y")
    assert "'/x;y'" in probe_command("/srv/a/releases/1/release.json", "/x;y")


def artifact(path, wheels: dict[str, bytes]) -> str:
    with tarfile.open(path, "w:gz") as tar:
        folder = tarfile.TarInfo("wheels")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
        for name, data in [*((f"wheels/{n}", d) for n, d in wheels.items()), ("zdt-requirements.txt", b"app==2\n")]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def test_the_probe_lists_the_wheelhouse_and_only_index_lines_count(host):
    sha = hashlib.sha256(b"django").hexdigest()
    (host / ".zdt" / "wheelhouse.sha256").write_text(f"{sha}  Django-5.2-py3-none-any.whl\nnot a line\n"
                                                     f"{sha}  ../escape.whl\n")
    index = f"{host}/.zdt/wheelhouse.sha256"
    out = subprocess.run(["sh", "-c", probe_command(f"{host}/releases/2.0/release.json", None, index)],
                         capture_output=True, text=True, check=True).stdout
    assert host_wheels(out) == {"Django-5.2-py3-none-any.whl": sha}
    assert to_ship(out, None) == ["artifact"]
    (host / ".zdt" / "wheelhouse.sha256").unlink()  # a host without a wheelhouse yet
    out = subprocess.run(["sh", "-c", probe_command(f"{host}/releases/2.0/release.json", None, index)],
                         capture_output=True, text=True, check=True).stdout
    assert host_wheels(out) == {}


def test_only_the_wheels_the_host_lacks_are_shipped(tmp_path):
    wheels = {"Django-5.2-py3-none-any.whl": b"django" * 1000, "app-2.0-py3-none-any.whl": b"new code"}
    source = artifact(tmp_path / "artifact.tar.gz", wheels)
    there = {"Django-5.2-py3-none-any.whl": hashlib.sha256(b"django" * 1000).hexdigest(),
             "app-2.0-py3-none-any.whl": hashlib.sha256(b"old code, same version").hexdigest(),
             "gone-1.0-py3-none-any.whl": hashlib.sha256(b"gone").hexdigest()}
    slim = tmp_path / "slim.tar.gz"
    assert slim_artifact(source, there, str(slim)) == {"Django-5.2-py3-none-any.whl": there["Django-5.2-py3-none-any.whl"]}
    with tarfile.open(slim) as tar:
        assert tar.getnames() == ["wheels", "wheels/app-2.0-py3-none-any.whl", "zdt-requirements.txt"]
        assert tar.extractfile("wheels/app-2.0-py3-none-any.whl").read() == b"new code"


def test_a_host_without_an_index_gets_the_artifact_as_built(tmp_path):
    source = artifact(tmp_path / "artifact.tar.gz", {"app-2.0-py3-none-any.whl": b"code"})
    assert slim_artifact(source, {}, str(tmp_path / "slim.tar.gz")) == {}
    assert not (tmp_path / "slim.tar.gz").exists()
