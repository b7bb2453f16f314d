"""13. Host restarts: one during the build and one at the preview leave a lock whose holder
died with the previous boot; the next deploy recovers it by itself (no deploy_break_lock),
records it as interrupted and cleans what was left. A restart after a deploy resumes the
standby window: the previous release stands by, watched, and retires when the window ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
from conftest import (
    APP,
    BASE_ENV,
    ansible_env,
    history,
    playbook_cmd,
    program,
    run,
    stage,
    state,
    tail,
    wait_for,
    window_active,
    window_over,
)

CONTAINER = "zdt-molecule-failures"


def restart_host(host) -> None:
    """Power loss and boot: the container is killed and started again."""
    subprocess.run(["podman", "restart", "--time", "0", CONTAINER], check=True, capture_output=True)
    assert wait_for(lambda: subprocess.run(["podman", "exec", CONTAINER, "systemctl", "is-system-running"],
                                           capture_output=True, text=True).stdout.strip() in ("running", "degraded"),
                    90, 1)
    assert wait_for(lambda: host.run("true").rc == 0 if _reachable(host) else False, 60, 1)


def _reachable(host) -> bool:
    try:
        return host.run("true").rc == 0
    except Exception:  # noqa: BLE001 - the SSH connection is being re-established
        return False


# The preview takes well under a second with a 0 s boot, and the switch follows it: the
# restart lands in the preview step through its after-preview hook, which holds the deploy
# there (the step is the same; a sleep after the preview's line raced the switch).
HOLD = """- name: Hold the deploy between the preview and the switch
  ansible.builtin.pause:
    seconds: 300
"""


@pytest.mark.parametrize("phase", ["release | Create the release", "Hold the deploy between the preview"])
def test_restart_during_a_deploy_is_recovered_by_the_next_deploy(host, serving, phase, tmp_path):
    env = {**BASE_ENV, "WEBXAMPLE_KILL_CASE": f"restart-{phase.split()[0]}"}
    extra = []
    if phase.startswith("Hold"):
        (tmp_path / "hold.yml").write_text(HOLD)
        extra = ["-e", json.dumps({"deploy_hooks": {"after_preview": str(tmp_path / "hold.yml")}})]
    proc = subprocess.Popen(playbook_cmd("deploy.yml", *extra, source=stage("2.0.0"), env=env),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ansible_env(),
                            start_new_session=True)
    for line in proc.stdout:
        if line.startswith("TASK [") and phase in line:
            time.sleep(1)
            restart_host(host)
            break
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=120)
    assert state(host)["lock"], "the interrupted deploy's lock is gone before any recovery"
    assert state(host)["serving"] == serving["serving"], "the site must serve the old release after the boot"
    recovered = run("deploy.yml", source=stage("2.0.0"), env=env)
    assert recovered.returncode == 0, tail(recovered)
    after = state(host)
    assert after["running"] == after["programs"] == [program(after["serving"])]
    assert not after["lock"] and after["incomplete"] == [] and not after["preview"]
    interrupted = [e for e in history(host) if e["result"] == "interrupted"][-1]
    assert "before this host restarted" in interrupted["reason"], interrupted


def test_restart_after_a_deploy_resumes_the_standby_window(host, serving):
    deployed = run("deploy.yml", "-e", "deploy_standby_seconds=45", "-e", "deploy_watch_seconds=0",
                   source=stage("2.0.0"))
    assert deployed.returncode == 0, tail(deployed)
    new = state(host)["serving"]
    restart_host(host)
    after = wait_for(lambda: (lambda s: s if len(s["running"]) == 2 else None)(state(host)), 30, 1)
    assert after and after["serving"] == new, state(host)
    assert sorted(after["running"]) == sorted([program(new), program(serving["serving"])])
    assert window_active(host)
    # The window ends 45 s after the deploy: the standby is retired although the host restarted.
    # The helper holds the lock while it removes the standby's programs: the end is when it let go.
    final = window_over(host, new, 90, 2)
    assert final and final["serving"] == new, state(host)


def test_nginx_and_supervisor_restarted_inside_the_window_neither_stop_its_helper_nor_roll_back(host, serving):
    """What an OS upgrade or the rolling maintenance does inside a standby window: nginx and
    supervisor restarted (every gunicorn with it). The helper keeps watching (a call while
    supervisord stops used to kill it: the window was never closed), does not count the
    restart as the release failing, and ends the window on time."""
    old = serving["serving"]
    deployed = run("deploy.yml", "-e", "deploy_standby_seconds=30", "-e", "deploy_watch_seconds=0",
                   source=stage("1.0.0" if old.startswith("2.0.0-") else "2.0.0"))
    assert deployed.returncode == 0, tail(deployed)
    new, recorded = state(host)["serving"], len(history(host))
    host.run_expect([0], "systemctl restart nginx && systemctl restart supervisor")
    back = wait_for(lambda: (lambda s: s if sorted(s["running"]) == sorted([program(new), program(old)]) else None)(
        state(host)), 30, 0.5)
    assert back and back["serving"] == new, state(host)
    # Three failed checks in a row (1 s apart) roll back: well past them, still the new release.
    time.sleep(6)
    assert window_active(host), host.run(f"journalctl -u zdt-standby-{APP}.service -n 30 --no-pager").stdout
    assert state(host)["serving"] == new
    assert [e for e in history(host)[recorded:] if e["action"] == "rollback"] == [], history(host)[recorded:]
    final = window_over(host, new, 90, 1)
    assert final and final["serving"] == new, state(host)
