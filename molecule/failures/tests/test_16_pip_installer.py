"""16. The pip fallback (deploy_installer: pip) deploys under load like uv, and shares the
host's wheelhouse: once the host holds a release's wheels, a code-only release ships only the
app's own wheel, as with uv."""

from __future__ import annotations

import json

from conftest import APP_ROOT, load, run, stage, state, tail

PIP = ["-e", "deploy_installer=pip", "-e", "deploy_standby_seconds=0"]
INDEX = f"{APP_ROOT}/.zdt/wheelhouse.sha256"


def last_deploy(host) -> dict:
    return json.loads(host.file(f"{APP_ROOT}/history.jsonl").content_string.splitlines()[-1])


def test_pip_deploys_fill_the_host_wheelhouse_then_ship_only_the_apps_wheel(host, serving):
    host.run_expect([0], f"rm -f {INDEX}")  # as on a host whose releases pip made before
    with load(host, "pip-installer") as report:
        # A release of its own (an earlier case may have left 2.0.0's complete on the host).
        first = run("deploy.yml", *PIP, "-e", json.dumps({"deploy_release_config": {"case": "pip-first"}}),
                    source=stage("2.0.0"))
        assert first.returncode == 0, tail(first)
        full = last_deploy(host)
        # Same dependencies, other code (1.0.0) and config: a new release.
        second = run("deploy.yml", *PIP, "-e", json.dumps({"deploy_release_config": {"case": "pip"}}),
                     source=stage("1.0.0"))
        assert second.returncode == 0, tail(second)
        slim = last_deploy(host)
    assert report["failed"] == 0 and report["requests"] >= 200, report
    print(f"pip: first release shipped {full['shipped_bytes']:,} bytes, the code-only one {slim['shipped_bytes']:,}")
    assert full["result"] == "success" and full["release"].startswith("2.0.0-"), full
    assert int(full["shipped_bytes"]) > 2_000_000, full
    assert slim["result"] == "success" and slim["release"].startswith("1.0.0-"), slim
    assert 0 < int(slim["shipped_bytes"]) < 200_000, slim
    now = state(host)
    assert now["serving"] == slim["release"] == now["current"].split("/")[-1], now
    wheels = [line.split()[1] for line in host.file(INDEX).content_string.splitlines()]
    assert any(name.startswith("webxample-1.0.0-") for name in wheels), wheels
    assert any(name.startswith("Django-") or name.startswith("django-") for name in wheels), wheels
    # pip made this venv (uv's have no pip in them).
    assert host.file(f"{APP_ROOT}/current/venv/bin/pip").exists
