"""Helpers every molecule scenario's tests share: run the collection's real playbooks
against the scenario's instance, stage releases of the example app, put a recorded load
through nginx (hey, every request counted), and read what ansible-playbook said."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
STAGE = REPO / "build" / "molecule"
sys.path.insert(0, str(REPO / "tools"))
from heyreport import parse  # noqa: E402

RESULTS: dict[str, dict] = {}


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
                          env=ansible_env(), check=False)


def stage(version: str, variant: str = "") -> Path:
    """A copy of webxample at VERSION (build/molecule/, ignored by git). VARIANT:
    'brokenmigration' adds a migration that raises; 'newcolumn' one that adds a NOT NULL
    column (a schema older releases do not know); 'nogunicorn' a source tree whose
    requirements.txt does not name gunicorn, as most projects' do not."""
    dest = STAGE / (f"webxample-{version}" + (f"-{variant}" if variant else ""))
    if dest.exists():
        return dest
    subprocess.run([str(REPO / "examples/stage_release.sh"), version, str(dest)], check=True, capture_output=True)
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
    if variant in ("nogunicorn", "newcolumn"):
        requirements = dest / "requirements.txt"
        requirements.write_text("".join(line for line in requirements.read_text().splitlines(keepends=True)
                                        if not line.lower().startswith("gunicorn")))
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


def wait_for(predicate, seconds: float, pause: float = 0.5):  # noqa: ANN001, ANN201
    deadline = time.monotonic() + seconds
    while True:
        value = predicate()
        if value or time.monotonic() >= deadline:
            return value
        time.sleep(pause)


@contextmanager
def load(host, name: str, rate: int, url: str = "http://localhost/", extra: str = "", concurrency: int = 10):
    """RATE requests/s through nginx, from inside the instance, for the duration of the block;
    yields hey's report (every request is a status code or an error)."""
    unit = f"zdt-load-{name}"
    host.run(f"mkdir -p /var/tmp/zdt-load; systemctl reset-failed {unit}")
    host.run_expect([0], f"systemd-run --unit={unit} --property=StandardOutput=truncate:/var/tmp/zdt-load/{name}.txt "
                    f"hey -z 900s -c {concurrency} -q {max(rate // concurrency, 1)} {extra} {url}")
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


def save_results(name: str) -> None:
    if RESULTS:
        out = REPO / "build" / f"{name}-results.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(RESULTS, indent=1))
