"""6. Two deploys at once: the second is refused in seconds, naming the holder; the first completes."""

from __future__ import annotations

import subprocess
import time

from conftest import (
    APP_ROOT,
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
)


def test_second_concurrent_deploy_fails_fast_naming_the_holder(host, serving):
    with load(host, "concurrent") as report:
        first = subprocess.Popen(playbook_cmd("deploy.yml", source=stage("2.0.0"),
                                              env={**BASE_ENV, "WEBXAMPLE_BOOT_DELAY": "5"}),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ansible_env())
        assert wait_for(lambda: host.file(f"{STATE_DIR}/lock/owner.json").exists, 120)
        started = time.monotonic()
        second = run("deploy.yml", source=stage("2.0.0"))
        second_seconds = time.monotonic() - started
        first_out, _ = first.communicate(timeout=600)
    assert second.returncode != 0
    message = squash(second)
    assert "refused" in message and "still running" in message and "Wait for it to finish" in message, tail(second)
    assert "deploy_break_lock" not in message, "a live holder must not be offered to be broken"
    assert second_seconds < 30
    assert first.returncode == 0, first_out[-3000:]
    after = state(host)
    assert after["serving"] != serving["serving"] and after["serving"] in message
    assert report["failed"] == 0, report
    assert not host.file(f"{APP_ROOT}/.deploy.lock").exists
