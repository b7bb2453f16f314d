"""11. A release that dies after the switch is rolled back automatically: by the deploy's
watch while the run lasts, and by the host-side helper during the standby window after it."""

from __future__ import annotations

import time
from datetime import datetime

from conftest import (
    APP_ROOT,
    BASE_ENV,
    history,
    load,
    program,
    release_of,
    run,
    site_text,
    squash,
    stage,
    state,
    tail,
    wait_for,
    window_active,
    window_over,
)


def dying(after: float, case: str) -> dict:
    return {**BASE_ENV, "WEBXAMPLE_FAULT": "die", "WEBXAMPLE_DIE_AFTER": str(after), "WEBXAMPLE_KILL_CASE": case}


def test_release_dying_during_the_deploys_watch_is_rolled_back(host, serving):
    with load(host, "watch-in-run") as report:
        result = run("deploy.yml", "-e", "deploy_watch_seconds=10", source=stage("2.0.0"), env=dying(2, "watch"))
    assert result.returncode != 0
    message = squash(result)
    assert 'failed at step "watch"' in message, tail(result)
    assert f"Rolled back: release {serving['serving']} serves again" in message
    # The old release was still nginx's backup during the watch: no request failed.
    assert report["failed"] == 0, report
    after = state(host)
    assert after["serving"] == serving["serving"] and after["running"] == [program(serving["serving"])]
    assert not host.file(f"{APP_ROOT}/releases/{release_of(message)}").exists


def test_release_dying_after_the_deploy_is_rolled_back_by_the_host(host, serving):
    with load(host, "watch-by-host") as report:
        deployed = run("deploy.yml", "-e", "deploy_watch_seconds=0", "-e", "deploy_standby_seconds=300",
                       source=stage("2.0.0"), env=dying(8, "host"))
        assert deployed.returncode == 0, tail(deployed)
        dead = state(host)["serving"]
        assert dead != serving["serving"]
        # Not the release answering (the standby, nginx's backup, answers as soon as the new one
        # dies): the helper's rollback, recorded once it is done.
        entry = wait_for(lambda: (lambda e: e if e["action"] == "rollback" else None)(history(host)[-1]), 90, 0.5)
        time.sleep(2)
    assert entry, (history(host)[-1], state(host))
    assert (entry["action"], entry["result"], entry["user"]) == ("rollback", "rolled_back", "zdt-standby"), entry
    assert state(host)["serving"] == serving["serving"]
    assert entry["from_release"] == dead and entry["release"] == serving["serving"]
    # The helper asked its own warm check whether the database has migrations the standby lacks.
    assert entry.get("migrations_checked") == "window", entry
    died_at = float(host.run(f"stat -c %Y {APP_ROOT}/releases/{dead}/.webxample-dead").stdout)
    rolled_back_at = datetime.fromisoformat(entry["finished_at"].replace("Z", "+00:00")).timestamp()
    report["crash_to_rollback_s"] = round(rolled_back_at - died_at, 1)
    after = state(host)
    assert after["running"] == after["programs"] == [program(serving["serving"])], after
    # The helper ends once it has stopped its warm check (at most 5 s after the rollback).
    assert wait_for(lambda: not window_active(host), 15, 0.5)
    # Rolled back within seconds; meanwhile the old release, nginx's backup through the
    # window, answered what the dead one could not: no request failed.
    assert report["crash_to_rollback_s"] <= 10, report
    assert report["failed"] == 0, report


def test_the_standby_stays_the_backup_until_its_window_ends(host, serving):
    """No watch in the run: the release that served stays nginx's backup through the window; at its end
    the helper takes it out of the site (one reload, old workers done) before its program stops."""
    old = serving["serving"]
    with load(host, "window-end") as report:
        deployed = run("deploy.yml", "-e", "deploy_standby_seconds=8", "-e", "deploy_watch_seconds=0",
                       source=stage("1.0.0" if old.startswith("2.0.0-") else "2.0.0"))
        assert deployed.returncode == 0, tail(deployed)
        new = state(host)["serving"]
        site = site_text(host)
        assert f"/run/{old}.sock max_fails=0 backup;" in site and f"/run/{new}.sock max_fails=0;" in site, site
        ended = window_over(host, new, 60, 0.5)
        time.sleep(1)
    assert ended and ended["serving"] == new, state(host)
    site = site_text(host)
    assert f"/run/{old}.sock" not in site and " backup;" not in site, site
    assert report["failed"] == 0, report
