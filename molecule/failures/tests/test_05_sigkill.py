"""5. ansible-playbook killed (SIGKILL) in any phase: the site keeps serving, and the next
deploy recovers by itself: the lock of a dead deploy from this controller is recovered
without deploy_break_lock, recorded as interrupted, and what it left is cleaned."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from conftest import BASE_ENV, SECRET, ansible_env, history, load, playbook_cmd, program, run, stage, state, tail

# The task (sub-role entry point and its step) during which ansible-playbook is killed.
KILL_POINTS = {
    "release": "release | Create the release",  # shipping uv or the artifact, or the installer running on the host
    "preview": "preview | Serve the release on the loopback preview port",
    "switch": "site | Point the site's upstream",
    "handover": "handover | Hand the app's programs",  # two programs running
}


@pytest.mark.parametrize("phase", list(KILL_POINTS))
def test_sigkill_in_any_phase_keeps_serving_and_the_next_deploy_recovers(host, serving, phase):
    env = {**BASE_ENV, "WEBXAMPLE_KILL_CASE": phase}  # a new release each time
    with load(host, f"sigkill-{phase}") as report:
        proc = subprocess.Popen(playbook_cmd("deploy.yml", source=stage("2.0.0"), env=env),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=ansible_env(), start_new_session=True)
        seen = ""
        for line in proc.stdout:
            seen += line
            if line.startswith("TASK [") and KILL_POINTS[phase] in line:
                os.killpg(proc.pid, signal.SIGKILL)
                break
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL, seen[-2000:]
        assert state(host)["lock"], "the killed deploy held the lock"
        recovered = run("deploy.yml", "-vvv", source=stage("2.0.0"), env=env)
    assert recovered.returncode == 0, tail(recovered)
    assert SECRET not in recovered.stdout + recovered.stderr, "a secret leaked into -vvv output"
    after = state(host)
    assert after["running"] == after["programs"] == [program(after["serving"])]
    assert after["current"] == f"releases/{after['serving']}"
    assert not after["lock"] and after["incomplete"] == [] and not after["preview"]
    interrupted = [e for e in history(host) if e["result"] == "interrupted"][-1]
    assert "ansible-playbook" in interrupted["reason"] and "is gone" in interrupted["reason"], interrupted
    assert report["failed"] == 0, report
