"""zdt_release's action side: one command tells whether the release is complete and uv is
there; the artifact is shipped unless the release is complete, uv only when it is missing too."""

from __future__ import annotations

import subprocess

import pytest
from ansible_collections.zerodowntime.web.plugins.action.zdt_release import probe_command, to_ship


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
