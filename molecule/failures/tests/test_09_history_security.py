"""9. History, housekeeping and security: every deploy and rollback has a line; old releases
are pruned; the app runs unprivileged; secrets stay in the release's 0600 .env; the
collection's private state is root's."""

from __future__ import annotations

import json
import time

from conftest import APP_ROOT, BASE_ENV, STATE_DIR, history, run, stage, tail, wait_for


def test_history_records_deploys_and_rollbacks(host, serving):
    entries = history(host)
    assert entries, "no history"
    for entry in entries:
        assert set(entry) >= {"action", "release", "result", "user", "controller", "started_at"}
    assert {e["result"] for e in entries} <= {"success", "noop", "failed", "rolled_back", "interrupted", "refused"}
    shown = run("history.yml")
    assert shown.returncode == 0 and entries[-1]["release"] in shown.stdout


def test_the_app_runs_unprivileged_and_its_files_are_private(host, serving):
    current = host.run(f"readlink {APP_ROOT}/current").stdout.strip()
    env_file = host.file(f"{APP_ROOT}/{current}/.env")
    assert env_file.mode == 0o600 and env_file.user == "webxample"
    users = set(host.run("ps -eo user:32=,args= | awk '/bin\\/gunicorn/ {print $1}'").stdout.split())
    assert users == {"webxample"}
    assert host.file("/var/run/supervisor.sock").mode & 0o002 == 0
    assert host.file(f"{APP_ROOT}/run").mode == 0o750
    state_dir = host.file(STATE_DIR)
    assert (state_dir.user, state_dir.mode) == ("root", 0o700)


def test_old_releases_are_pruned_in_the_unlocks_run_or_by_the_step_around_a_hook(host, serving, tmp_path):
    """deploy_keep_releases: a deploy that went live keeps that many releases. Without a
    prune hook the unlock's module run removes the others (no prune step runs); with one the
    prune step does, between its hooks. Removed releases leave releases/ at once and the
    background rm empties the trash."""
    hook = tmp_path / "after_prune.yml"
    hook.write_text("- name: Mark the after-prune hook\n  ansible.builtin.file:\n"
                    "    path: /tmp/zdt-after-prune\n    state: touch\n    mode: '0644'\n")
    host.run("rm -f /tmp/zdt-after-prune")

    def deploy(*extra: str) -> tuple[str, list[str], set[str]]:
        env = {**BASE_ENV, "ZDT_PRUNE_CASE": str(time.time_ns())}  # a new release each time
        result = run("deploy.yml", "-e", "deploy_keep_releases=2", "-e", "deploy_standby_seconds=0", *extra,
                     source=stage("1.0.0"), env=env)
        assert result.returncode == 0, tail(result)
        kept = sorted(host.run(f"ls {APP_ROOT}/releases").stdout.split())
        serving = {host.run(f"readlink {APP_ROOT}/{link}").stdout.strip().split("/")[-1]
                   for link in ("current", "previous")}
        assert history(host)[-1]["result"] == "success"
        return result.stdout, kept, serving

    # The two newest, and previous when an earlier case left a newer release than it.
    with_hook, kept, serving = deploy("-e", json.dumps({"deploy_hooks": {"after_prune": str(hook)}}))
    assert "venv_release : cleanup" in with_hook and host.file("/tmp/zdt-after-prune").exists
    assert serving <= set(kept) and len(kept) <= 3, (kept, serving)
    # Now current and previous are the two newest; one more before it is removed.
    without, kept, serving = deploy()
    assert set(kept) == serving and len(kept) == 2, (kept, serving)
    assert "venv_release : cleanup" not in without
    assert wait_for(lambda: host.run(f"ls -A {APP_ROOT}/.zdt/trash").stdout.strip() == "", 30, 0.5)
