"""12. The lock cannot be stolen: a live holder is never broken (not even with
deploy_break_lock), and the standby helper and a deploy never hold it together."""

from __future__ import annotations

import json
import subprocess
import threading
import time

from conftest import (
    BASE_ENV,
    STATE_DIR,
    ansible_env,
    load,
    playbook_cmd,
    run,
    squash,
    stage,
    state,
    tail,
    wait_for,
    window_active,
)

HOLD = r"""
import sys, time
sys.path.insert(0, "/usr/local/lib/zerodowntime/lib")
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_lock import Lock
lock = Lock(App("webxample"))
taken = lock.take({"action": "retire", "user": "zdt-standby", "release": "test"}, host_process=True)
time.sleep(float(sys.argv[1]))
lock.release(taken["token"])
"""


def holder(host) -> dict:
    text = host.run(f"cat {STATE_DIR}/lock/owner.json").stdout
    try:
        return json.loads(text) if text.strip() else {}
    except ValueError:
        return {}


def hold_lock(host, seconds: float, after: dict | None = None) -> dict:
    """A live holder of the lock for SECONDS; returns its owner record. Without AFTER (an
    earlier holder of this test, killed), the standby helper of an earlier deploy may be
    retiring (it holds the lock for a moment): start from a free lock. Go on only once this
    holder has the lock."""
    if after is None:
        assert wait_for(lambda: not window_active(host) and not holder(host), 60, 0.2), holder(host)
    host.run(f"cat > /var/tmp/zdt-hold.py <<'PY'\n{HOLD}\nPY")
    host.run("systemctl reset-failed zdt-hold")
    host.run_expect([0], f"systemd-run --unit=zdt-hold python3 /var/tmp/zdt-hold.py {seconds}")
    assert wait_for(lambda: holder(host).get("release") == "test"
                    and holder(host).get("pid") != (after or {}).get("pid"), 10, 0.2), holder(host)
    return holder(host)


def test_a_live_helper_is_never_broken_and_a_deploy_waits_for_it(host, serving):
    # The host-side helper is installed by the first deploy that opens a standby window.
    assert run("deploy.yml", "-e", "deploy_standby_seconds=1", source=stage("2.0.0")).returncode == 0
    first = hold_lock(host, 60)
    refused = run("deploy.yml", "-e", "deploy_break_lock=true", "-e", "deploy_standby_seconds=0",
                  source=stage("1.0.0"))
    assert refused.returncode != 0
    message = squash(refused)
    assert "deploy_break_lock was refused" in message and "is alive" in message, tail(refused)
    assert state(host)["lock"] and "retire" in host.run(f"cat {STATE_DIR}/lock/owner.json").stdout
    host.run("systemctl stop zdt-hold")
    hold_lock(host, 8, after=first)  # a short holder: the deploy waits for it, then goes on
    started = time.monotonic()
    waited = run("deploy.yml", "-e", "deploy_standby_seconds=0", source=stage("1.0.0"))
    assert waited.returncode == 0, tail(waited)
    assert time.monotonic() - started > 5
    assert not state(host)["lock"]


def test_a_window_ending_during_a_deploy_never_shares_the_lock(host, serving):
    """The standby helper retires at the window's end; here that end falls inside the next
    deploy. Sampled every 0.1 s, the lock's holder never changes while the deploy holds it."""
    first = run("deploy.yml", "-e", "deploy_standby_seconds=6", "-e", "deploy_watch_seconds=0", source=stage("2.0.0"))
    assert first.returncode == 0, tail(first)
    holders: list[str] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            text = subprocess.run(["podman", "exec", "zdt-molecule-failures", "cat", f"{STATE_DIR}/lock/owner.json"],
                                  capture_output=True, text=True).stdout
            try:
                owner = json.loads(text) if text else {}
            except ValueError:
                owner = {}
            holders.append(f"{owner.get('action')}:{owner.get('token')}" if owner else "-")
            time.sleep(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    with load(host, "lock-race") as report:
        sampler.start()
        second = subprocess.run(playbook_cmd("deploy.yml", "-e", "deploy_standby_seconds=0", source=stage("1.0.0"),
                                             env={**BASE_ENV, "WEBXAMPLE_BOOT_DELAY": "8"}),
                                capture_output=True, text=True, env=ansible_env(), timeout=600)
        time.sleep(3)
        stop.set()
        sampler.join()
    assert second.returncode == 0, tail(second)
    runs = [h for i, h in enumerate(holders) if h != "-" and (i == 0 or holders[i - 1] != h)]
    deploy_tokens = [h for h in runs if h.startswith("deploy:")]
    assert len(set(deploy_tokens)) == 1, runs
    # While the deploy held the lock, nobody else did: its token appears in one unbroken stretch.
    stretch = [i for i, h in enumerate(holders) if h == deploy_tokens[0]]
    assert all(holders[i] == deploy_tokens[0] for i in range(stretch[0], stretch[-1] + 1)), runs
    assert not state(host)["lock"] and report["failed"] == 0, report
