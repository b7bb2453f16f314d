"""9. History and security: every deploy and rollback has a line; the app runs unprivileged;
secrets stay in the release's 0600 .env; the collection's private state is root's."""

from __future__ import annotations

from conftest import APP_ROOT, STATE_DIR, history, run


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
