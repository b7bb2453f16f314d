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
import sys
from functools import partial
from pathlib import Path

import pytest
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "shared"))
from testlib import (  # noqa: E402, F401 - the cases import these from here
    REPO,
    STAGE,
    ansible_env,
    playbook_cmd,
    release_of,
    run,
    save_results,
    squash,
    stage,
    tail,
    wait_for,
)
from testlib import load as _load  # noqa: E402

APP = "webxample"
APP_ROOT = f"/srv/{APP}"
STATE_DIR = f"/var/lib/zerodowntime/{APP}"
SANDBOX_VARS = yaml.safe_load((REPO / "inventories/sandbox/group_vars/sandbox.yml").read_text())
BASE_ENV: dict[str, str] = SANDBOX_VARS["webxample_env"]
SECRET = BASE_ENV["WEBXAMPLE_SECRET_KEY"]
FAST = ["-e", "deploy_health_timeout=10"]
# The core test and the benchmark load at 200 requests/s; this matrix runs many deploys,
# so it loads at 100/s to keep `make test` within its budget on 2 cores.
RATE = int(os.environ.get("ZDT_FAILURES_RATE", "100"))
load = partial(_load, rate=RATE)


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


def window_active(host) -> bool:
    """Whether the app's standby window helper (its systemd unit) is running."""
    return host.run(f"systemctl is-active zdt-standby-{APP}.service").stdout.strip() == "active"


def window_over(host, release: str, seconds: float, pause: float) -> dict | None:
    """Wait until the standby window is over: RELEASE's web program is the only program of
    the app on the host and runs, the helper let go of the lock and ended. The state then,
    or None when that did not come within SECONDS."""
    def over() -> dict | None:
        s = state(host)
        done = s["programs"] == s["running"] == [program(release)] and not s["lock"] and not window_active(host)
        return s if done else None
    return wait_for(over, seconds, pause)


def site_text(host) -> str:
    """The app's nginx site as it is on the host."""
    return host.file(f"/etc/nginx/conf.d/{APP}.conf").content_string


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
    save_results("failures")
