"""The failure matrix: every bad deploy leaves the serving release serving.

Each case runs the real deploy (or rollback) playbook against the instance while hey
sends 200 requests/s through nginx, then checks that nothing a user sees changed: the
same release answers, `current` and the nginx site are unchanged, no orphan program
runs, the deploy lock is free, no request failed, and the error names the release and
the reason. Cases run in file order: the order is part of the story.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tools"))
from heyreport import parse  # noqa: E402

APP_ROOT = "/srv/webxample"
STAGE = REPO / "build" / "molecule"
SANDBOX_VARS = yaml.safe_load((REPO / "inventories/sandbox/group_vars/sandbox.yml").read_text())
BASE_ENV: dict[str, str] = SANDBOX_VARS["webxample_env"]
SECRET = BASE_ENV["WEBXAMPLE_SECRET_KEY"]
FAST = ["-e", "deploy_health_timeout=10"]
RESULTS: dict[str, dict] = {}


# --- helpers ----------------------------------------------------------------------

def ansible_env() -> dict[str, str]:
    return {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_ROLES_PATH": str(REPO / "roles"), "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_COLLECTIONS_PATH": f"{REPO / 'collections'}:{Path.home() / '.ansible/collections'}",
            "ANSIBLE_NOCOLOR": "1", "ANSIBLE_PIPELINING": "true"}


def playbook_cmd(playbook: str, *extra: str, source: Path | None = None,
                 env: dict | None = None) -> list[str]:
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(REPO / "playbooks" / playbook)]
    if source is not None:
        cmd += ["-e", f"deploy_source_path={source}"]
    if env is not None:
        cmd += ["-e", json.dumps({"deploy_env": env})]
    return cmd + list(extra)


def run(playbook: str, *extra: str, **kwargs) -> subprocess.CompletedProcess:
    cmd = playbook_cmd(playbook, *extra, **kwargs)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=ansible_env())


def stage(version: str, broken_migration: bool = False) -> Path:
    dest = STAGE / (f"webxample-{version}" + ("-brokenmigration" if broken_migration else ""))
    if not dest.exists():
        subprocess.run([str(REPO / "examples/stage_release.sh"), version, str(dest)], check=True)
        if broken_migration:
            (dest / "webxample/pages/migrations/0099_broken.py").write_text(
                "from django.db import migrations\n\n\n"
                "def fail(apps, schema_editor):\n"
                "    raise RuntimeError('this migration is broken on purpose')\n\n\n"
                "class Migration(migrations.Migration):\n"
                "    dependencies = [('pages', '0002_initial_greeting')]\n"
                "    operations = [migrations.RunPython(fail)]\n")
    return dest


STATE_SCRIPT = r"""
cd %(root)s
status=$(supervisorctl status)
python3 - "$status" <<'PY'
import json, os, subprocess, sys
status = sys.argv[1].splitlines()
def out(cmd):
    return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
print(json.dumps({
    "current": os.readlink("current") if os.path.islink("current") else "",
    "site": out("sha256sum /etc/nginx/conf.d/webxample.conf").split()[0],
    "preview": os.path.exists("/etc/nginx/conf.d/webxample-preview.conf"),
    "serving": out("curl -s -o /dev/null -D - http://localhost/ | sed -n 's/^X-Release: //p'").strip(),
    "programs": sorted(l.split()[0] for l in status if l.startswith("webxample-")),
    "running": sorted(l.split()[0] for l in status if " RUNNING " in l),
    "lock": os.path.exists(".deploy.lock"),
    "incomplete": sorted(d for d in os.listdir("releases") if not os.path.exists(f"releases/{d}/release.json")),
}))
PY
"""


def previous_release(host) -> str:
    return host.run(f"readlink {APP_ROOT}/previous").stdout.strip().split("/")[-1]


def state(host) -> dict:
    """What users and operators see; a failed deploy must leave all of it as it was."""
    return json.loads(host.check_output(STATE_SCRIPT % {"root": APP_ROOT}))


# The core test and the benchmark load at 200 requests/s; this matrix runs ~20
# deploys, so it loads at 100/s to keep `make test` within its budget on 2 cores.
RATE = int(os.environ.get("ZDT_FAILURES_RATE", "100"))


@contextmanager
def load(host, name: str):
    """RATE requests/s through nginx for the duration of the block; yields the report."""
    unit = f"zdt-load-{name}"
    host.run(f"mkdir -p /var/tmp/zdt-load; systemctl reset-failed {unit}")
    host.run_expect([0], f"systemd-run --unit={unit} --property=StandardOutput=file:/var/tmp/zdt-load/{name}.txt "
                    f"hey -z 900s -c 10 -q {RATE // 10} http://localhost/")
    report: dict = {}
    started = time.monotonic()
    try:
        yield report
    finally:
        host.run(f"systemctl kill --signal=SIGINT {unit}")
        for _ in range(30):
            if host.run(f"systemctl is-active {unit}").stdout.strip() not in ("active", "deactivating"):
                break
            time.sleep(1)
        report.update(parse(host.file(f"/var/tmp/zdt-load/{name}.txt").content_string))
        report["load_seconds"] = round(time.monotonic() - started, 1)
        RESULTS[name] = report
        print(f"{name}: {json.dumps(report)}")


def squash(result: subprocess.CompletedProcess | str) -> str:
    """What ansible-playbook said, on stdout and stderr, as one line: Ansible folds long
    messages and escapes quotes in them, so compare with both undone."""
    text = result if isinstance(result, str) else result.stdout + "\n" + result.stderr
    return re.sub(r"\s+", " ", text.replace('\\"', '"'))


def release_of(output: str) -> str:
    match = re.search(r"release ([0-9][A-Za-z0-9._-]*-[0-9a-f]{8})", output)
    return match.group(1) if match else ""


def assert_untouched(before: dict, after: dict, report: dict) -> None:
    assert after == before
    assert report["failed"] == 0, report
    assert report["requests"] >= 200, report


# --- baseline ---------------------------------------------------------------------

def test_baseline_serves_v1(host):
    s = state(host)
    assert s["current"].startswith("releases/1.0.0-")
    assert s["serving"] == s["current"].split("/")[1]
    assert s["running"] == [f"webxample-{s['serving']}"] and not s["lock"]


# --- 1. the new release is unhealthy -----------------------------------------------

HEALTH_STEP = "program | Run the release's program on its own socket; wait for its health check there"
MANAGE_STEP = "release | Run the management commands and write the manifest"
# case: (env, extra args, step that must fail, text the reason must contain)
UNHEALTHY = {
    "health_500": ({**BASE_ENV, "WEBXAMPLE_FAULT": "health"}, [], HEALTH_STEP, "answered 500"),
    "crash_at_import": ({**BASE_ENV, "WEBXAMPLE_FAULT": "import"}, [], HEALTH_STEP, "gave no answer"),
    # Settings fail fast: the first management command already stops the deploy.
    "missing_env_var": ({k: v for k, v in BASE_ENV.items() if k != "WEBXAMPLE_SECRET_KEY"}, [],
                        MANAGE_STEP, "WEBXAMPLE_SECRET_KEY"),
    # A program that runs but never binds its socket.
    "never_binds": (BASE_ENV, ["-e", json.dumps({"gunicorn_supervisor_command": "/bin/sh -c 'exec sleep 3600' zdt",
                                                 "deploy_release_config": {"case": "never-binds"}})],
                    HEALTH_STEP, "No such file or directory"),
}


@pytest.mark.parametrize("case", list(UNHEALTHY))
def test_unhealthy_release_never_takes_traffic(host, case):
    env, extra, step, reason = UNHEALTHY[case]
    before = state(host)
    started = time.monotonic()
    with load(host, f"unhealthy-{case}") as report:
        result = run("deploy.yml", *FAST, *extra, source=stage("2.0.0"), env=env)
    report["deploy_seconds"] = round(time.monotonic() - started, 1)
    assert result.returncode != 0
    failed_release = release_of(squash(result))
    assert failed_release and failed_release != before["serving"], result.stdout[-3000:]
    message = squash(result)
    assert f'failed at "{step}' in message, result.stdout[-3000:]
    assert reason in message, result.stdout[-3000:]
    assert f"Release {before['serving']} kept serving" in squash(result)
    assert_untouched(before, state(host), report)
    assert not host.file(f"{APP_ROOT}/releases/{failed_release}").exists
    assert not host.file(f"/etc/supervisor/conf.d/webxample-{failed_release}.conf").exists


# --- 4. a migration fails -------------------------------------------------------------

def test_failed_migration_stops_before_the_switch(host):
    before = state(host)
    with load(host, "failed-migration") as report:
        result = run("deploy.yml", *FAST, source=stage("2.0.0", broken_migration=True))
    assert result.returncode != 0
    assert f'failed at "{MANAGE_STEP}' in squash(result) and "`migrate" in squash(result), result.stdout[-3000:]
    assert "this migration is broken on purpose" in squash(result)
    assert_untouched(before, state(host), report)


# --- 3. an invalid nginx config -------------------------------------------------------

def nginx_workers(host) -> str:
    """The pids of nginx's workers: a reload replaces them all."""
    return host.run("pgrep -f '^nginx: worker process' | sort").stdout


def test_invalid_nginx_config_is_never_loaded(host):
    before, workers = state(host), nginx_workers(host)
    with load(host, "invalid-nginx") as report:
        result = run("deploy.yml", *FAST, "-e", json.dumps({"nginx_upstream_extra_config": "not_a_directive on;",
                                                            "deploy_release_config": {"case": "invalid-nginx"}}),
                     source=stage("2.0.0"))
    assert result.returncode != 0
    message = squash(result)
    assert 'failed at "preview | Serve the release on the loopback preview port' in message, result.stdout[-3000:]
    assert "unknown directive" in message and "not_a_directive" in message, result.stdout[-3000:]
    assert f"Release {before['serving']} kept serving; nothing was switched" in message
    assert nginx_workers(host) == workers, "nginx was reloaded"
    assert_untouched(before, state(host), report)


# --- 2. healthy on its socket, broken through nginx -------------------------------------

# case: (name of the load, step that fails, port the failed check asked, how the deploy ends)
# `proxied` is caught on the loopback preview server, before the public switch.
# `public` passes the preview and fails once public: the previous release, nginx's
# backup until the new one is verified, answers the failed requests; then the rollback.
THROUGH_NGINX = {
    "proxied": ("proxied-before-switch", "preview | Serve the release on the loopback preview port", ":8099/",
                "Release {serving} kept serving; nothing was switched"),
    "public": ("public-after-switch", "site | Point the site's upstream at the release's socket", ":80/",
               "Rolled back: release {serving} serves again"),
}


@pytest.mark.parametrize("fault", list(THROUGH_NGINX))
def test_release_failing_through_nginx_never_fails_a_request(host, fault):
    name, step, port, outcome = THROUGH_NGINX[fault]
    before = state(host)
    with load(host, name) as report:
        result = run("deploy.yml", *FAST, source=stage("2.0.0"), env={**BASE_ENV, "WEBXAMPLE_FAULT": fault})
    assert result.returncode != 0
    message = squash(result)
    assert f'failed at "{step}' in message and port in message, result.stdout[-3000:]
    assert outcome.format(serving=before["serving"]) in message
    assert_untouched(before, state(host), report)


# --- 7. bad input is refused before anything changes ------------------------------------

def host_snapshot(host) -> str:
    """Files of the deploy (not shared/, whose SQLite files change as the app serves)."""
    return host.run(f"ls -la --time-style=full-iso {APP_ROOT} {APP_ROOT}/releases {APP_ROOT}/run "
                    "/etc/nginx/conf.d /etc/supervisor/conf.d | grep -v ' shared$'; "
                    "cat /etc/nginx/conf.d/*.conf | sha256sum").stdout


BAD_INPUT = {
    "release_id_with_slash": (["-e", "deploy_release_id=2.0.0/evil"], "refusing to deploy"),
    "release_id_with_dotdot": (["-e", "deploy_release_id=.."], "refusing to deploy"),
    "release_id_with_space": (["-e", '{"deploy_release_id": "2.0.0 evil"}'], "refusing to deploy"),
    "release_id_empty": (["-e", '{"deploy_release_id": ""}'], "refusing to deploy"),
    "missing_required_variable": (["-e", '{"deploy_wsgi_app": null}'], "deploy_wsgi_app"),
    "wrong_type_int": (["-e", "deploy_workers=many"], "deploy_workers"),
    "wrong_type_dict": (["-e", '{"deploy_env": "SECRET=1"}'], "deploy_env"),
}


@pytest.mark.parametrize("case", list(BAD_INPUT))
def test_bad_input_is_refused_before_anything_changes(host, case):
    extra, expected = BAD_INPUT[case]
    before, snapshot = state(host), host_snapshot(host)
    result = run("deploy.yml", *extra, source=stage("2.0.0"))
    assert result.returncode != 0
    assert expected in squash(result), result.stdout[-3000:]
    assert (state(host), host_snapshot(host)) == (before, snapshot)


# --- 6. two deploys at once ---------------------------------------------------------------

def test_second_concurrent_deploy_fails_fast_naming_the_holder(host):
    before = state(host)
    with load(host, "concurrent") as report:
        first = subprocess.Popen(playbook_cmd("deploy.yml", source=stage("2.0.0"),
                                              env={**BASE_ENV, "WEBXAMPLE_BOOT_DELAY": "5"}),
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=ansible_env())
        deadline = time.monotonic() + 120
        while not host.file(f"{APP_ROOT}/.deploy.lock/owner.json").exists and time.monotonic() < deadline:
            time.sleep(0.5)
        started = time.monotonic()
        second = run("deploy.yml", source=stage("2.0.0"))
        second_seconds = time.monotonic() - started
        first_out, _ = first.communicate(timeout=600)
    assert second.returncode != 0
    holder = re.search(r"is held by (\{.*?\})", squash(second))
    assert holder, second.stdout[-3000:]
    owner = json.loads(holder.group(1))
    assert set(owner) >= {"user", "controller", "release", "started_at"}
    assert second_seconds < 60
    assert first.returncode == 0, first_out[-3000:]
    after = state(host)
    assert after["serving"] == owner["release"] != before["serving"]
    assert report["failed"] == 0, report


# --- 5. SIGKILL at every phase --------------------------------------------------------------

KILL_POINTS = [
    "release | Create the release (unpack, virtualenv, pip install",  # creating the release
    "preview | Serve the release on the loopback preview port",  # preview server going up
    "site | Point the site's upstream at the release's socket",  # at the switch
    "retire | Stop every other release's program",  # two programs running
]


@pytest.mark.parametrize("phase", KILL_POINTS)
def test_sigkill_in_any_phase_keeps_serving_and_the_next_deploy_recovers(host, phase):
    index = KILL_POINTS.index(phase)
    env = {**BASE_ENV, "WEBXAMPLE_KILL_CASE": str(index)}  # a new release each time
    with load(host, f"sigkill-{index}") as report:
        proc = subprocess.Popen(playbook_cmd("deploy.yml", source=stage("2.0.0"), env=env),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                env=ansible_env(), start_new_session=True)
        seen = ""
        for line in proc.stdout:
            seen += line
            if line.startswith("TASK [") and phase in line:
                time.sleep(0.3)
                os.killpg(proc.pid, signal.SIGKILL)
                break
        proc.wait(timeout=60)
        assert proc.returncode == -signal.SIGKILL, seen[-2000:]
        assert state(host)["lock"], "the killed deploy held the lock"
        if index == 0:  # a stale lock is never broken silently
            refused = run("deploy.yml", source=stage("2.0.0"), env=env)
            assert refused.returncode != 0 and "deploy_break_lock=true" in squash(refused)
        recovered = run("deploy.yml", "-e", "deploy_break_lock=true", "-vvv", source=stage("2.0.0"), env=env)
    assert recovered.returncode == 0, recovered.stdout[-3000:]
    assert SECRET not in recovered.stdout + recovered.stderr, "a secret leaked into -vvv output"
    after = state(host)
    assert after["running"] == [f"webxample-{after['serving']}"]
    assert after["programs"] == after["running"]
    assert after["current"] == f"releases/{after['serving']}"
    assert not after["lock"] and after["incomplete"] == []
    assert report["failed"] == 0, report


# --- rollback ---------------------------------------------------------------------------------

def test_rollback_returns_to_the_previous_release_under_load(host):
    before = state(host)
    previous = previous_release(host)
    assert previous and previous != before["serving"]
    started = time.monotonic()
    with load(host, "rollback") as report:
        result = run("rollback.yml")
    report["rollback_seconds"] = round(time.monotonic() - started, 1)
    assert result.returncode == 0, result.stdout[-3000:]
    after = state(host)
    assert after["serving"] == previous
    assert after["running"] == [f"webxample-{previous}"] and not after["lock"]
    assert report["failed"] == 0, report


def program_pid(host, release: str) -> str:
    return host.run(f"supervisorctl pid webxample-{release}").stdout.strip()


def test_instant_rollback_is_only_an_nginx_switch(host):
    """With a standby window the previous release's program keeps running after a
    deploy: a rollback inside the window starts nothing; the window's end stops it."""
    env = {**BASE_ENV, "WEBXAMPLE_KILL_CASE": "standby"}
    deployed = run("deploy.yml", "-e", "deploy_standby_seconds=600", source=stage("2.0.0"), env=env)
    assert deployed.returncode == 0, deployed.stdout[-3000:]
    before = state(host)
    previous = previous_release(host)
    assert before["running"] == sorted([f"webxample-{before['serving']}", f"webxample-{previous}"])
    assert host.run(f"systemctl is-active zdt-standby-webxample-{previous}.timer").stdout.strip() == "active"
    pid = program_pid(host, previous)
    started = time.monotonic()
    with load(host, "instant-rollback") as report:
        result = run("rollback.yml", "-e", "deploy_standby_seconds=5")
    report["rollback_seconds"] = round(time.monotonic() - started, 1)
    assert result.returncode == 0, result.stdout[-3000:]
    after = state(host)
    assert after["serving"] == previous and program_pid(host, previous) == pid, "the standby was restarted"
    assert host.run(f"systemctl is-active zdt-standby-webxample-{previous}.timer").stdout.strip() != "active"
    assert report["failed"] == 0, report
    # The release rolled back from stands by for 5 s; then its timer stops it.
    deadline, final = time.monotonic() + 60, state(host)
    while (final["running"], final["programs"]) != ([f"webxample-{previous}"],) * 2 and time.monotonic() < deadline:
        time.sleep(2)
        final = state(host)
    assert final["running"] == final["programs"] == [f"webxample-{previous}"]
    assert not final["lock"] and final["serving"] == previous


def test_rollback_to_a_missing_release_is_refused(host):
    before = state(host)
    result = run("rollback.yml", "-e", "deploy_rollback_to=0.0.1-deadbeef")
    assert result.returncode != 0
    assert "0.0.1-deadbeef" in squash(result) and "no complete release" in squash(result), result.stdout[-3000:]
    assert state(host) == before


@pytest.mark.parametrize("target", ["", "../etc", "a b"])
def test_rollback_to_a_bad_name_is_refused(host, target):
    before = state(host)
    result = run("rollback.yml", "-e", json.dumps({"deploy_rollback_to": target}) if target else "deploy_rollback_to=")
    assert result.returncode != 0
    assert "refusing to roll back" in squash(result), result.stdout[-3000:]
    assert state(host) == before


# --- history and security -----------------------------------------------------------------------

def test_history_records_every_deploy_and_rollback(host):
    lines = host.file(f"{APP_ROOT}/history.jsonl").content_string.strip().splitlines()
    entries = [json.loads(line) for line in lines]
    assert {e["action"] for e in entries} >= {"deploy", "rollback"}
    assert {e["result"] for e in entries} >= {"success", "failed", "rolled_back"}
    for entry in entries:
        assert set(entry) >= {"action", "release", "result", "user", "controller", "started_at",
                              "finished_at", "duration_s"}
    shown = run("history.yml")
    assert shown.returncode == 0 and entries[-1]["release"] in shown.stdout


def test_the_app_runs_unprivileged_and_its_files_are_private(host):
    current = host.run(f"readlink {APP_ROOT}/current").stdout.strip()
    env_file = host.file(f"{APP_ROOT}/{current}/.env")
    assert env_file.mode == 0o600 and env_file.user == "webxample"
    users = set(host.run("ps -eo user:32=,args= | awk '/bin\\/gunicorn/ {print $1}'").stdout.split())
    assert users == {"webxample"}
    assert host.file("/var/run/supervisor.sock").mode & 0o002 == 0
    assert host.file(f"{APP_ROOT}/run").mode == 0o750


def test_print_the_measured_results():
    print(json.dumps(RESULTS, indent=1))
    Path(REPO / "build" / "failures-results.json").write_text(json.dumps(RESULTS, indent=1))
