# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""A deploy across several hosts, read from each host's ``deploy_outcome`` fact.

    {{ ansible_play_hosts_all | zerodowntime.web.zdt_fleet(hostvars, deploy_fleet_max_fail_percentage) }}

Each host's deploy records ``deploy_outcome`` (result, release, from_release, step,
reason, batch, started); a host the fleet no longer deploys records ``skipped``. The
filter says whether the fleet stopped (more hosts failed than the share allowed), which
hosts then go back to the release they served (those that switched in this run), the
run's entry for the controller's fleet history, and the message that names the failing
hosts and why.
"""
from __future__ import annotations

import time

SWITCHED = "success"
FAILED = ("failed", "rolled_back")


def _outcome(hostvars, host: str) -> dict:  # noqa: ANN001 - Ansible's HostVars or a dict
    try:
        value = hostvars[host].get("deploy_outcome")
    except (KeyError, AttributeError):
        value = None
    return dict(value) if isinstance(value, dict) else {}


def fleet(hosts: list, hostvars, max_fail_percentage: object = 0) -> dict:  # noqa: ANN001
    """What a deploy across HOSTS came to (see the module docstring)."""
    hosts = [str(h) for h in hosts]
    outcomes = {h: _outcome(hostvars, h) for h in hosts}
    failed = {h: o for h, o in outcomes.items() if o.get("result") in FAILED}
    switched = [h for h, o in outcomes.items()
                if o.get("result") == SWITCHED and o.get("from_release") and o.get("from_release") != o.get("release")]
    skipped = [h for h, o in outcomes.items() if o.get("result") == "skipped"]
    pending = [h for h, o in outcomes.items() if not o]
    share = float(max_fail_percentage or 0)
    stopped = bool(failed) and len(failed) * 100.0 / max(len(hosts), 1) > share
    rollback = {h: outcomes[h]["from_release"] for h in switched} if stopped else {}
    batches: list[list[str]] = []
    for host in hosts:
        batch = [str(b) for b in outcomes[host].get("batch") or []]
        if batch and batch not in batches:
            batches.append(batch)
    if not failed:
        result = "success" if any(o.get("result") == SWITCHED for o in outcomes.values()) else "noop"
    elif stopped:
        result = "rolled_back" if switched else "failed"
    else:
        result = "partial"
    releases = sorted({o["release"] for o in outcomes.values() if o.get("release")})
    reasons = "; ".join(f"{h} failed at step \"{o.get('step', '?')}\": {o.get('reason', '?')}" for h, o in failed.items())
    if stopped:
        back = ", ".join(f"{h} (to {r})" for h, r in rollback.items()) or "none (no host had switched)"
        message = (f"Fleet deploy of release {', '.join(releases) or '?'} stopped: {reasons}. "
                   f"Rolled back to the release each served: {back}."
                   + (f" Not deployed: {', '.join(skipped)}." if skipped else "")
                   + " Every host serves the release it served before.")
    elif failed:
        message = (f"Fleet deploy of release {', '.join(releases) or '?'}: {reasons}. "
                   f"{len(failed)} of {len(hosts)} hosts failed, within deploy_fleet_max_fail_percentage={share:g}: "
                   "the other hosts went on.")
    else:
        message = ""
    started = [float(o["started"]) for o in outcomes.values() if o.get("started")]
    entry = {
        "finished_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "duration_s": round(time.time() - min(started), 1) if started else None,
        "releases": releases, "hosts": hosts, "batches": batches, "result": result,
        "failed": {h: {"step": o.get("step", "?"), "reason": o.get("reason", "?")} for h, o in failed.items()},
        "switched": switched, "rolled_back": sorted(rollback), "skipped": skipped,
        "per_host": {h: o.get("result", "not run") for h, o in outcomes.items()},
        "canary": {h: o["canary"] for h, o in outcomes.items() if o.get("canary")},
    }
    return {"hosts": hosts, "failed": sorted(failed), "switched": switched, "skipped": skipped,
            "pending": pending, "stopped": stopped, "rollback": rollback, "result": result,
            "message": message, "entry": entry, "batches": batches}


class FilterModule:
    def filters(self) -> dict:
        return {"zdt_fleet": fleet}
