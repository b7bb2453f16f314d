"""Shared helpers of the failure matrix: run the real playbooks against the instance, read
what users and operators see on it, and put a recorded load through nginx.

Every case runs the real deploy (or rollback) playbook while hey sends requests through
nginx, then checks that nothing a user sees changed unless the case says it should.
Cases do not depend on each other's order: each starts from `ensure_serving`, which
redeploys the baseline release when an earlier case left something else serving.
"""

from __future__ import annotations

import json
import os
import re
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

APP = "webxample"
APP_ROOT = f"/srv/{APP}"
STATE_DIR = f"/var/lib/zerodowntime/{APP}"
STAGE = REPO / "build" / "molecule"
SANDBOX_VARS = yaml.safe_load((REPO / "inventories/sandbox/group_vars/sandbox.yml").read_text())
BASE_ENV: dict[str, str] = SANDBOX_VARS["webxample_env"]
SECRET = BASE_ENV["WEBXAMPLE_SECRET_KEY"]
FAST = ["-e", "deploy_health_timeout=10"]
RESULTS: dict[str, dict] = {}
# The core test and the benchmark load at 200 requests/s; this matrix runs many deploys,
# so it loads at 100/s to keep `make test` within its budget on 2 cores.
RATE = int(os.environ.get("ZDT_FAILURES_RATE", "100"))


# --- running the playbooks ------------------------------------------------------------

def ansible_env() -> dict[str, str]:
    return {**os.environ, "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
            "ANSIBLE_ROLES_PATH": str(REPO / "roles"), "ANSIBLE_FORCE_COLOR": "0",
            "ANSIBLE_COLLECTIONS_PATH": f"{REPO / 'collections'}:{Path.home() / '.ansible/collections'}",
            "ANSIBLE_NOCOLOR": "1", "ANSIBLE_PIPELINING": "true"}


def playbook_cmd(playbook: str, *extra: str, source: Path | None = None, env: dict | None = None) -> list[str]:
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"], str(REPO / "playbooks" / playbook)]
    if source is not None:
        cmd += ["-e", f"deploy_source_path={source}"]
    if env is not None:
        cmd += ["-e", json.dumps({"deploy_env": env})]
    return cmd + list(extra)


def run(playbook: str, *extra: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(playbook_cmd(playbook, *extra, **kwargs), capture_output=True, text=True, timeout=900,
                          env=ansible_env())


def stage(version: str, variant: str = "") -> Path:
    """A copy of webxample at VERSION; VARIANT 'brokenmigration' adds a migration that raises,
    'newcolumn' one that adds a NOT NULL column (a schema the older releases do not know)."""
    dest = STAGE / (f"webxample-{version}" + (f"-{variant}" if variant else ""))
    if not dest.exists():
        subprocess.run([str(REPO / "examples/stage_release.sh"), version, str(dest)], check=True,
                       capture_output=True)
        migrations = dest / "webxample/pages/migrations"
        if variant == "brokenmigration":
            (migrations / "0099_broken.py").write_text(
                "from django.db import migrations\n\n\n"
                "def fail(apps, schema_editor):\n"
                "    raise RuntimeError('this migration is broken on purpose')\n\n\n"
                "class Migration(migrations.Migration):\n"
                "    dependencies = [('pages', '0003_jobs')]\n"
                "    operations = [migrations.RunPython(fail)]\n")
        elif variant == "newcolumn":
            (migrations / "0004_greeting_lang.py").write_text(
                "from django.db import migrations, models\n\n\n"
                "class Migration(migrations.Migration):\n"
                "    dependencies = [('pages', '0003_jobs')]\n"
                "    operations = [migrations.AddField('greeting', 'lang', models.CharField(max_length=8,"
                " default='en'), preserve_default=False)]\n")
    return dest


def squash(result: subprocess.CompletedProcess | str) -> str:
    """What ansible-playbook said, on stdout and stderr, as one line: Ansible folds long
    messages and escapes quotes in them, so compare with both undone."""
    text = result if isinstance(result, str) else result.stdout + "\n" + result.stderr
    return re.sub(r"\s+", " ", text.replace('\\"', '"').replace("\\'", "'"))


def tail(result: subprocess.CompletedProcess) -> str:
    return (result.stdout + result.stderr)[-4000:]


def release_of(output: str) -> str:
    match = re.search(r"release ([0-9][A-Za-z0-9._-]*-[0-9a-f]{8})", output)
    return match.group(1) if match else ""


# --- what users and operators see -------------------------------------------------------

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
    "previous": os.readlink("previous") if os.path.islink("previous") else "",
    "site": out("sha256sum /etc/nginx/conf.d/%(app)s.conf").split()[0],
    "preview": os.path.exists("/etc/nginx/conf.d/%(app)s.preview.conf"),
    "serving": out("curl -s -o /dev/null -D - http://localhost/ | sed -n 's/^X-Release: //p'").strip(),
    "programs": sorted(l.split()[0] for l in status if l.startswith("%(app)s@")),
    "running": sorted(l.split()[0] for l in status if l.startswith("%(app)s@") and " RUNNING " in l),
    "lock": os.path.exists("%(state)s/lock"),
    "incomplete": sorted(d for d in os.listdir("releases") if not os.path.exists(f"releases/{d}/release.json")),
}))
PY
"""


def state(host) -> dict:
    """What users and operators see; a failed deploy must leave all of it as it was."""
    return json.loads(host.check_output(STATE_SCRIPT % {"root": APP_ROOT, "app": APP, "state": STATE_DIR}))


def program(release: str, process: str = "web") -> str:
    return f"{APP}@{release}.{process}"


def previous_release(host) -> str:
    return host.run(f"readlink {APP_ROOT}/previous").stdout.strip().split("/")[-1]


def history(host) -> list[dict]:
    text = host.run(f"cat {APP_ROOT}/history.jsonl").stdout
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def host_snapshot(host) -> str:
    """Files of the deploy (not shared/, whose SQLite files change as the app serves)."""
    return host.run(f"ls -la --time-style=full-iso {APP_ROOT} {APP_ROOT}/releases {APP_ROOT}/run "
                    "/etc/nginx/conf.d /etc/supervisor/conf.d | grep -v ' shared$'; "
                    "cat /etc/nginx/conf.d/*.conf | sha256sum").stdout


def assert_untouched(before: dict, after: dict, report: dict) -> None:
    assert after == before
    assert report["failed"] == 0, report
    assert report["requests"] >= 200, report


def wait_for(predicate, seconds: float, pause: float = 0.5):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(pause)


# --- load ---------------------------------------------------------------------------------

@contextmanager
def load(host, name: str, rate: int = RATE, url: str = "http://localhost/", extra: str = ""):
    """RATE requests/s through nginx for the duration of the block; yields hey's report."""
    unit = f"zdt-load-{name}"
    host.run(f"mkdir -p /var/tmp/zdt-load; systemctl reset-failed {unit}")
    host.run_expect([0], f"systemd-run --unit={unit} --property=StandardOutput=file:/var/tmp/zdt-load/{name}.txt "
                    f"hey -z 900s -c 10 -q {max(rate // 10, 1)} {extra} {url}")
    report: dict = {}
    started = time.monotonic()
    try:
        yield report
    finally:
        host.run(f"systemctl kill --signal=SIGINT {unit}")
        wait_for(lambda: host.run(f"systemctl is-active {unit}").stdout.strip() not in ("active", "deactivating"), 30)
        report.update(parse(host.file(f"/var/tmp/zdt-load/{name}.txt").content_string))
        report["load_seconds"] = round(time.monotonic() - started, 1)
        RESULTS[name] = report
        print(f"{name}: {json.dumps(report)}")


# --- the baseline every case starts from --------------------------------------------------

def healthy_baseline(s: dict) -> bool:
    serving = s["current"].split("/")[-1]
    return (bool(serving) and s["serving"] == serving and s["running"] == [program(serving)]
            and s["programs"] == s["running"] and not s["lock"] and not s["preview"] and not s["incomplete"])


@pytest.fixture
def serving(host) -> dict:
    """The state a case starts from: one release serving, alone, nothing half done. When an
    earlier case left something else, 1.0.0 is deployed again (no standby)."""
    s = state(host)
    if not healthy_baseline(s):
        result = run("deploy.yml", "-e", "deploy_standby_seconds=0", source=stage("1.0.0"))
        assert result.returncode == 0, tail(result)
        s = state(host)
        assert healthy_baseline(s), s
    return s


def pytest_sessionfinish(session, exitstatus) -> None:  # noqa: ANN001, ARG001
    if RESULTS:
        out = REPO / "build" / "failures-results.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(RESULTS, indent=1))
