#!/usr/bin/env python3
"""`make bench`: deploy a new release of webxample under a constant load through
nginx, with four strategies (zerodowntime with each installer, uv and pip) and three app
boot delays, and write what users saw.

For every (strategy, boot delay): a fresh sandbox container, the 1.0.0 release
deployed with that strategy, 10 s of steady-state load, then the 2.0.0 deploy while
hey sends 200 requests/s through nginx, until 2.0.0 answers. Every request ends up
in hey's report (a status code or a connection error).

Then, under the same load: the same release deployed again (a no-op), a rollback to
1.0.0 (ours: in the standby window, warm; the usual ways: 1.0.0 deployed again), and for
ours 2.0.0 deployed again without a standby and a rollback then (cold: 1.0.0 boots).

Writes build/bench/report.json (strategy, boot_delay_s, requests, failed, p50_ms,
p99_ms, max_ms, p99_x_steady, deploy_s, shipped_kb), build/bench/steady.json,
build/bench/phases.json (where the seconds of our deploy go; "beyond manage + boot" is
the deploy without the app's migrate, collectstatic and boot), build/bench/after.json
(noop_s, rollback_s, rollback_cold_s, requests and failed during them) and prints them as markdown tables.
BENCH_AFTER=0 leaves the no-op and rollback rows out; BENCH_OUT writes elsewhere;
BENCH_STRATEGIES may name zerodowntime-watch (see VARIANTS).
"""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tools"))
from heyreport import parse  # noqa: E402

OUT = Path(os.environ.get("BENCH_OUT", REPO / "build" / "bench"))
HOST = "zdt-sandbox"
STRATEGIES = os.environ.get("BENCH_STRATEGIES", "restart hup zerodowntime zerodowntime-pip").split()
DELAYS = [int(d) for d in os.environ.get("BENCH_DELAYS", "0 10 30").split()]
AFTER = os.environ.get("BENCH_AFTER", "1") != "0"
RATE, CONCURRENCY = 200, 10
# Every task of a deploy belongs to the step whose file ran last: each step file of the
# deploy role (roles/deploy/tasks/<step>.yml) begins with a task, and the tasks of the
# roles a step includes run after it. Seconds that the app itself spends are read from
# the modules' results: venv and install (zdt_release, "uv install" or "pip install" after
# the installer it names), the boot until healthy (zdt_program). The strategy
# zerodowntime-pip is zerodowntime with deploy_installer=pip, zerodowntime-watch with
# deploy_watch_seconds=5 (the run watches the release 5 s, as one host's default was before;
# by default the standby window's helper alone watches it).
VARIANTS = {"zerodowntime": [], "zerodowntime-pip": ["-e", "deploy_installer=pip"],
            "zerodowntime-watch": ["-e", "deploy_watch_seconds=5"]}
STEP_FILE = re.compile(r"/roles/deploy/tasks/(\w+)\.yml:\d+$")


def sh(*cmd: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, **kwargs)


def in_sandbox(command: str) -> str:
    return sh("podman", "exec", HOST, "sh", "-c", command, capture_output=True).stdout


def env_for(delay: int) -> dict:
    import yaml
    base = yaml.safe_load((REPO / "inventories/sandbox/group_vars/sandbox.yml").read_text())["webxample_env"]
    return {**base, "WEBXAMPLE_BOOT_DELAY": str(delay)}


def playbook(path: str, source: Path, delay: int, *extra: str, stdout_json: bool = False) -> tuple[float, str]:
    cmd = ["ansible-playbook", "-l", "sandbox", str(REPO / path), "-e", f"deploy_source_path={source}",
           "-e", json.dumps({"deploy_env": env_for(delay), "deploy_health_timeout": delay + 60}), *extra]
    env = dict(os.environ)
    if stdout_json:
        env.update(ANSIBLE_STDOUT_CALLBACK="ansible.posix.json", ANSIBLE_CALLBACK_RESULT_FORMAT="json")
    started = time.monotonic()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO)
    seconds = time.monotonic() - started
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-2000:]}")
    return seconds, proc.stdout


def deploy(strategy: str, source: Path, delay: int, profile: bool = False) -> tuple[float, str]:
    if strategy in VARIANTS:
        return playbook("playbooks/deploy.yml", source, delay, *VARIANTS[strategy], stdout_json=profile)
    return playbook("tools/bench/classic.yml", source, delay, "-e", f"bench_strategy={strategy}")


def rollback(strategy: str, source: Path, delay: int) -> float:
    """Back to 1.0.0: ours through the rollback playbook, the usual ways by deploying it again."""
    if strategy.startswith("zerodowntime"):
        return playbook("playbooks/rollback.yml", source, delay)[0]
    return deploy(strategy, source, delay)[0]


def shipped_kb() -> float | str:
    """What the last deploy sent to the host (its history line), in KB."""
    last = in_sandbox("tail -n 1 /srv/webxample/history.jsonl 2>/dev/null").strip()
    return round(json.loads(last).get("shipped_bytes", 0) / 1024, 1) if last else ""


def after_rows(strategy: str, stage: Path, delay: int) -> dict:
    """A no-op, a warm rollback and (ours) a cold one, under the load."""
    load("start")
    time.sleep(2)
    noop = deploy(strategy, stage / "webxample-2.0.0", delay)[0]
    warm = rollback(strategy, stage / "webxample-1.0.0", delay)
    cold: float | str = ""
    if strategy.startswith("zerodowntime"):
        extra = ["-e", "deploy_standby_seconds=0", *VARIANTS[strategy]]
        playbook("playbooks/deploy.yml", stage / "webxample-2.0.0", delay, *extra)
        cold = round(rollback(strategy, stage / "webxample-1.0.0", delay), 1)
    time.sleep(2)
    load("stop")
    report = parse(in_sandbox("cat /var/tmp/zdt-load/bench.txt"))
    return {"strategy": strategy, "boot_delay_s": delay, "noop_s": round(noop, 1), "rollback_s": round(warm, 1),
            "rollback_cold_s": cold, "requests": report["requests"], "failed": report["failed"],
            "p99_ms": report["p99_ms"], "max_ms": report["max_ms"]}


def hey_for(seconds: int, name: str) -> dict:
    in_sandbox(f"hey -z {seconds}s -c {CONCURRENCY} -q {RATE // CONCURRENCY} http://localhost/ "
               f"> /var/tmp/{name}.txt 2>&1")
    return parse(in_sandbox(f"cat /var/tmp/{name}.txt"))


def load(action: str) -> None:
    sh("ansible-playbook", "-l", "sandbox", str(REPO / "tools/load.yml"), "-e", f"load_action={action}",
       "-e", "load_name=bench", "-e", f"load_rate={RATE}", "-e", f"load_concurrency={CONCURRENCY}",
       cwd=REPO, capture_output=True)


def phases(json_stdout: str) -> dict:
    data = json.loads(json_stdout[json_stdout.index("{"):])
    totals: dict[str, float] = {}
    step = "preflight"
    for play in data["plays"]:
        for task in play["tasks"]:
            duration = task["task"]["duration"]
            if not duration.get("end"):
                continue
            found = STEP_FILE.search(task["task"].get("path", ""))
            if found and found.group(1) not in ("main", "flow"):
                step = found.group(1)
            seconds = (datetime.fromisoformat(duration["end"].rstrip("Z")).timestamp()
                       - datetime.fromisoformat(duration["start"].rstrip("Z")).timestamp())
            host = task["hosts"].get(HOST, {})
            timings = host.get("timings") or {}
            if "install" in timings:
                label = f"{host.get('installer', 'pip')} install"
                install = timings.get("venv", 0) + timings["install"]
                totals[label] = totals.get(label, 0) + install
                seconds -= install
            if "health" in timings:
                totals["health wait"] = totals.get("health wait", 0) + timings["health"]
                seconds -= timings["health"]
            totals[step] = totals.get(step, 0) + seconds
    return {k: round(v, 1) for k, v in sorted(totals.items())}


def table(rows: list[dict], keys: list[str]) -> str:
    lines = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
    lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    return "\n".join(lines)


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    stage = REPO / "build" / "bench"
    for version in ("1.0.0", "2.0.0"):
        if not (stage / f"webxample-{version}" / "pyproject.toml").exists():
            sh(str(REPO / "examples/stage_release.sh"), version, str(stage / f"webxample-{version}"))
    rows, steady, phase_rows, after = [], [], [], []
    for delay in DELAYS:
        for strategy in STRATEGIES:
            print(f"== {strategy}, boot delay {delay} s", flush=True)
            sh(str(REPO / "sandbox/sandbox.sh"), "stop", HOST, capture_output=True)
            sh(str(REPO / "sandbox/sandbox.sh"), "start", HOST, capture_output=True)
            sh(str(REPO / "sandbox/sandbox.sh"), "wait", HOST, capture_output=True)
            deploy(strategy, stage / "webxample-1.0.0", delay)
            before = hey_for(10, "steady")
            steady.append({"strategy": strategy, "boot_delay_s": delay, "p50_ms": before["p50_ms"],
                           "p99_ms": before["p99_ms"], "max_ms": before["max_ms"]})
            load("start")
            time.sleep(2)
            seconds, output = deploy(strategy, stage / "webxample-2.0.0", delay, profile=True)
            time.sleep(2)
            load("stop")
            report = parse(in_sandbox("cat /var/tmp/zdt-load/bench.txt"))
            rows.append({"strategy": strategy, "boot_delay_s": delay, "requests": report["requests"],
                         "failed": report["failed"], "p50_ms": report["p50_ms"], "p99_ms": report["p99_ms"],
                         "max_ms": report["max_ms"], "p99_x_steady": round(report["p99_ms"] / before["p99_ms"], 2) if before["p99_ms"] else "",
                         "deploy_s": round(seconds, 1),
                         "shipped_kb": shipped_kb() if strategy.startswith("zerodowntime") else ""})
            print(json.dumps(rows[-1]), flush=True)
            if strategy.startswith("zerodowntime"):
                split = phases(output)
                install = split.get("uv install", 0) + split.get("pip install", 0)
                overhead = seconds - install - split.get("health wait", 0)
                # The measure: everything but the app's own migrate and collectstatic
                # (the manage step) and its boot.
                ours = seconds - split.get("manage", 0) - split.get("health wait", 0)
                phase_rows.append({"strategy": strategy, "boot_delay_s": delay, "deploy_s": round(seconds, 1),
                                   **split, "beyond install + boot": round(overhead, 1),
                                   "beyond manage + boot": round(ours, 1)})
            if AFTER:
                after.append(after_rows(strategy, stage, delay))
                print(json.dumps(after[-1]), flush=True)
    (OUT / "report.json").write_text(json.dumps(rows, indent=1) + "\n")
    (OUT / "steady.json").write_text(json.dumps(steady, indent=1) + "\n")
    (OUT / "phases.json").write_text(json.dumps(phase_rows, indent=1) + "\n")
    (OUT / "after.json").write_text(json.dumps(after, indent=1) + "\n")
    cores = os.cpu_count()
    print(f"\n### Deploy under {RATE} requests/s, {time.strftime('%Y-%m-%d')}, {cores} cores\n")
    print(table(rows, ["strategy", "boot_delay_s", "requests", "failed", "p50_ms", "p99_ms", "max_ms", "p99_x_steady",
                       "deploy_s", "shipped_kb"]))
    print("\n### Steady state just before each deploy\n")
    print(table(steady, ["strategy", "boot_delay_s", "p50_ms", "p99_ms", "max_ms"]))
    if after:
        print("\n### The same release again (no-op), a rollback in the standby window (warm) and after it (cold)\n")
        print(table(after, ["strategy", "boot_delay_s", "noop_s", "rollback_s", "rollback_cold_s", "requests",
                            "failed", "p99_ms", "max_ms"]))
    if phase_rows:
        first = ["strategy", "boot_delay_s", "deploy_s"]
        keys = first + sorted({k for r in phase_rows for k in r} - set(first))
        print("\n### Where the seconds of the zerodowntime deploy go\n")
        print(table([{k: r.get(k, 0) for k in keys} for r in phase_rows], keys))


if __name__ == "__main__":
    main()
