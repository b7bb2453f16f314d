"""8. Rollback: the same health-gated switch back; instant within the standby window; refused
before anything changes when the target is missing, badly named, or does not know the schema."""

from __future__ import annotations

import json
import time

import pytest
from conftest import (
    BASE_ENV,
    history,
    load,
    previous_release,
    program,
    run,
    site_text,
    squash,
    stage,
    state,
    tail,
    window_active,
    window_over,
)


def program_pid(host, release: str) -> str:
    return host.run(f"supervisorctl pid {program(release)}").stdout.strip()


def test_rollback_returns_to_the_previous_release_under_load(host, serving):
    deployed = run("deploy.yml", source=stage("2.0.0"))
    assert deployed.returncode == 0, tail(deployed)
    before = state(host)
    assert before["serving"] != serving["serving"]
    started = time.monotonic()
    with load(host, "rollback") as report:
        result = run("rollback.yml")
    report["rollback_seconds"] = round(time.monotonic() - started, 1)
    assert result.returncode == 0, tail(result)
    after = state(host)
    assert after["serving"] == serving["serving"]
    assert after["running"] == [program(serving["serving"])] and not after["lock"]
    assert report["failed"] == 0, report


def test_instant_rollback_is_only_an_nginx_switch(host, serving):
    """With a standby window the previous release's program keeps running after a deploy: a
    rollback inside the window starts nothing; the window's end stops the other one."""
    env = {**BASE_ENV, "WEBXAMPLE_KILL_CASE": "standby"}
    deployed = run("deploy.yml", "-e", "deploy_standby_seconds=600", source=stage("2.0.0"), env=env)
    assert deployed.returncode == 0, tail(deployed)
    before = state(host)
    previous = previous_release(host)
    assert before["running"] == sorted([program(before["serving"]), program(previous)])
    assert window_active(host)
    pid = program_pid(host, previous)
    started = time.monotonic()
    with load(host, "instant-rollback") as report:
        result = run("rollback.yml", "-e", "deploy_standby_seconds=5", "-v")
    report["rollback_seconds"] = round(time.monotonic() - started, 1)
    assert result.returncode == 0, tail(result)
    # The window's helper on the host (the deploy's handover installed this code) did it, no module.
    assert "via: helper" in result.stdout, tail(result)
    after = state(host)
    assert after["serving"] == previous and program_pid(host, previous) == pid, "the standby was restarted"
    assert report["failed"] == 0, report
    # Its migration check was answered by the window's warm check (no Django start-up in the run).
    entry = history(host)[-1]
    assert (entry["action"], entry["result"], entry.get("migrations_checked")) == ("rollback", "rolled_back",
                                                                                  "window"), entry
    # The release rolled back from stands by for 5 s; then the host stops it (the helper holds
    # the lock while it removes the programs, and then stops its warm check and ends).
    final = window_over(host, previous, 60, 1)
    assert final, (state(host), window_active(host))
    assert final["serving"] == previous


def test_a_deploy_inside_a_window_then_a_rollback_leaves_no_removed_release_in_the_site(host, serving):
    """A deploy while a window is open replaces it: the old standby (the site's backup until
    then) is removed after nginx's older workers finished, and going back to the release it
    replaced is to that release's site without the removed one."""
    first, second = serving["serving"], "1.0.0" if serving["serving"].startswith("2.0.0-") else "2.0.0"
    window = ["-e", "deploy_standby_seconds=600", "-e", "deploy_watch_seconds=0"]
    opened = run("deploy.yml", *window, source=stage(second))
    assert opened.returncode == 0, tail(opened)
    middle = state(host)["serving"]
    with load(host, "deploy-in-window") as report:
        replaced = run("deploy.yml", *window, "-e", '{"deploy_release_config": {"variant": "c"}}', source=stage(second))
        assert replaced.returncode == 0, tail(replaced)
        third = state(host)["serving"]
        assert third not in (first, middle)
        site = site_text(host)
        assert f"/run/{middle}.sock max_fails=0 backup;" in site and f"/run/{first}.sock" not in site, site
        back = run("rollback.yml", "-e", "deploy_standby_seconds=600")
        assert back.returncode == 0, tail(back)
    after = state(host)
    assert after["serving"] == middle
    assert sorted(after["running"]) == sorted([program(middle), program(third)]), after
    site = site_text(host)
    assert f"/run/{middle}.sock max_fails=0;" in site and " backup;" not in site and f"/run/{first}.sock" not in site
    assert report["failed"] == 0, report


def test_rollback_to_a_missing_release_is_refused(host, serving):
    result = run("rollback.yml", "-e", "deploy_rollback_to=0.0.1-deadbeef")
    assert result.returncode != 0
    assert "0.0.1-deadbeef" in squash(result) and "no complete release" in squash(result), tail(result)
    assert state(host) == serving
    assert history(host)[-1]["result"] == "refused"


@pytest.mark.parametrize("target", ["", "../etc", "a b", "1.0.0\n"])
def test_rollback_to_a_bad_name_is_refused(host, serving, target):
    result = run("rollback.yml", "-e", json.dumps({"deploy_rollback_to": target}))
    assert result.returncode != 0
    assert "deploy_rollback_to" in squash(result), tail(result)
    assert state(host) == serving


def test_rollback_across_an_unknown_migration_is_refused_then_unapplied(host, serving):
    """A release that added a NOT NULL column: rolling back to one that does not know it is
    refused, naming the migration; with deploy_rollback_migrations=unapply it is unapplied
    with the serving release's code first, and the rolled-back release writes again."""
    deployed = run("deploy.yml", source=stage("3.0.0", "newcolumn"))
    assert deployed.returncode == 0, tail(deployed)
    before = state(host)
    refused = run("rollback.yml", "-e", f"deploy_rollback_to={serving['serving']}")
    assert refused.returncode != 0
    message = squash(refused)
    assert "pages.0004_greeting_lang" in message and "does not know" in message, tail(refused)
    assert "deploy_rollback_migrations=unapply" in message
    assert state(host) == before
    with load(host, "rollback-unapply") as report:
        result = run("rollback.yml", "-e", f"deploy_rollback_to={serving['serving']}",
                     "-e", "deploy_rollback_migrations=unapply")
    assert result.returncode == 0, tail(result)
    assert state(host)["serving"] == serving["serving"]
    # The rolled-back release can write again: a job is a row it creates.
    assert host.run("curl -s -o /dev/null -w '%{http_code}' -X POST http://localhost/jobs/").stdout == "201"
    assert report["failed"] == 0, report
