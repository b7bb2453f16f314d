"""14. nginx or supervisord stopped before a deploy: refused before anything changes, naming
the daemon and what the site does; with deploy_install_packages the deploy starts it."""

from __future__ import annotations

import time

import pytest
from conftest import BASE_ENV, host_snapshot, run, squash, stage, state, tail

CASES = {
    "nginx": ("nginx", "nothing answers the site"),
    "supervisor": ("supervisord", "the site answers 502"),
}


@pytest.mark.parametrize("daemon", list(CASES))
def test_a_stopped_daemon_is_named_or_started(host, serving, daemon):
    name, effect = CASES[daemon]
    # A release that does not serve yet, whatever an earlier run left serving.
    env = {**BASE_ENV, "WEBXAMPLE_KILL_CASE": f"daemon-{daemon}-{time.time_ns()}"}
    host.run_expect([0], f"systemctl stop {daemon}")
    try:
        snapshot = host_snapshot(host)  # stopping supervisord removes the sockets itself
        refused = run("deploy.yml", source=stage("2.0.0"), env=env)
        assert refused.returncode != 0
        message = squash(refused)
        assert f"{name} not running" in message and effect in message, tail(refused)
        assert "deploy_install_packages=true" in message and "Nothing was changed" in message
        assert host_snapshot(host) == snapshot
        started = run("deploy.yml", "-e", "deploy_install_packages=true", source=stage("2.0.0"), env=env)
        assert started.returncode == 0, tail(started)
        assert host.run(f"systemctl is-active {daemon}").stdout.strip() == "active"
        assert state(host)["serving"] != serving["serving"]
    finally:
        host.run(f"systemctl start {daemon}")
