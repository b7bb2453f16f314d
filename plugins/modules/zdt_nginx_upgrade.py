#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Upgrade (or downgrade) nginx's binary while it serves, with its rollback."""
from __future__ import annotations

DOCUMENTATION = r"""
module: zdt_nginx_upgrade
short_description: Replace nginx's binary while it serves (USR2, WINCH, QUIT), going back on any failure
author: zerodowntime.web contributors (@zerodowntime)
description:
  - Takes the host's nginx upgrade lock and the deploy lock of every app on the host (an upgrade and a deploy
    never overlap), then gets the new binary (from the distribution's package at O(version), or the file
    O(binary)) and tests it with C(nginx -t) against the live configuration before anything is signalled.
  - Checks every app whose site the collection switched (its record in C(/var/lib/zerodowntime/APP/site.json)), for
    health, release header, verify pages and their assets, through nginx. An app that fails before the upgrade
    is reported and not held against it.
  - Puts the new binary in place (the old one kept as a hard link), sends USR2 to the master and waits for the
    new master and its workers; checks the sites; sends WINCH to the old master and, once its workers stopped
    taking connections, checks the sites again (now only the new workers answer); watches the sites and the new
    master for O(bake_seconds); then sends QUIT to the old master and waits for it to exit. systemd follows the
    new master through the pid file (checked).
  - Any failure before QUIT goes back (the old binary in place, HUP to the old master, QUIT to the new one),
    ends with the old binary serving and fails saying what failed and what was done.
  - With O(version), the package database is changed only once the new binary serves alone, with apt using the
    downloaded packages and their maintainer scripts kept from restarting nginx (C(policy-rc.d)).
  - When the running master already runs the requested binary, nothing changes.
  - Each app's history.jsonl gets a line (C(action=nginx_upgrade)).
version_added: 0.1.0
options:
  version:
    description: Version of the distribution's nginx package to run (as C(apt-cache policy nginx) lists it).
    type: str
    default: ""
  binary:
    description: A binary on the host to run instead (a custom build). Exactly one of O(version) and O(binary).
    type: path
    default: ""
  bake_seconds:
    description: Seconds the new binary serves alone, watched, while the old master can still take over.
    type: float
    default: 10
  start_timeout:
    description: Seconds the new master gets to start its workers after USR2.
    type: float
    default: 15
  quit_timeout:
    description: Seconds the old master (and, on a rollback, the new one) gets to exit after QUIT.
    type: float
    default: 120
  lock_wait:
    description: Seconds to wait for a host-side holder of an app's lock (the standby helper retiring a program).
    type: float
    default: 30
  owner:
    description: Who upgrades (C(user), C(controller), C(started_at)), for the locks and the history.
    type: dict
    default: {}
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: In check mode the host is read and nothing is downloaded, signalled or written.
  diff_mode:
    support: none
  platform:
    platforms: debian
"""

EXAMPLES = r"""
- name: Run bookworm-security's build of nginx, with zero downtime
  zerodowntime.web.zdt_nginx_upgrade:
    version: 1.22.1-9+deb12u11
    bake_seconds: 10

- name: Run a custom build
  zerodowntime.web.zdt_nginx_upgrade:
    binary: /usr/local/src/nginx-1.27.4/objs/nginx
"""

RETURN = r"""
msg:
  description: What runs now, or what went wrong.
  type: str
  returned: always
  sample: "nginx 1.22.1-9+deb12u11 serves: master 40 -> 248 in 11.7 s; apps checked: shop, shop-admin"
before:
  description: What ran before (C(master), C(package_version), C(version), C(sha256)).
  type: dict
  returned: always
  sample: {master: 40, package_version: 1.22.1-9+deb12u11, version: "nginx version: nginx/1.22.1", sha256: 3f0c...}
after:
  description: What runs now (the same keys).
  type: dict
  returned: when changed
apps:
  description: Each app checked (C(app), C(release)), and those not checked with why (C(skipped)).
  type: list
  returned: always
timings:
  description: Seconds of each phase (C(prepare), C(start), C(winch), C(bake), C(quit), C(package), C(total)).
  type: dict
  returned: when changed
rolled_back:
  description: Whether the upgrade failed and went back to the old binary.
  type: bool
  returned: always
"""

import fcntl
import json
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.zerodowntime.web.plugins.module_utils import zdt_nginx
from ansible_collections.zerodowntime.web.plugins.module_utils import zdt_nginx_binary as nb
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_files import directory, read
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_host import now_utc, record
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import (
    NGINX_BINARY,
    NGINX_BINARY_BEFORE,
    NGINX_BINARY_STAGED,
    NGINX_UPGRADE_LOCK,
    STATE_DIR,
    App,
    apps_on_host,
)
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_lock import Lock, LockHeld


def running(master: int) -> dict:
    exe = f"/proc/{master}/exe"
    return {"master": master, "package_version": nb.installed_versions().get(nb.owning_package(), ""),
            "version": nb.version_line(exe), "sha256": nb.sha256(exe)}


class Sites:
    """Every app on the host whose site the collection switched, checked through nginx."""

    def __init__(self) -> None:
        self.apps: list[dict] = []
        self.skipped: list[dict] = []
        for name in apps_on_host():
            try:
                recorded = json.loads(read(App(name).site_record) or "null")
            except ValueError:
                recorded = None
            if not isinstance(recorded, dict) or not isinstance(recorded.get("check"), dict):
                self.skipped.append({"app": name, "why": "no record of its site (deploy it once with this "
                                                         "collection version)"})
                continue
            app = App(name, recorded.get("root") or None)
            release = app.serving()[0]
            if not release:
                self.skipped.append({"app": name, "why": "no release serves"})
                continue
            self.apps.append({"app": name, "root": app.root, "release": release,
                              "check": {**recorded["check"], "release": release}})

    def baseline(self) -> None:
        """Check each app once before anything changes; one that fails is not held against the upgrade."""
        kept = []
        for entry in self.apps:
            _answers, error = zdt_nginx.check_release({**entry["check"], "timeout": 2})
            if error:
                self.skipped.append({"app": entry["app"], "why": f"failed before the upgrade: {error}"})
            else:
                kept.append(entry)
        self.apps = kept

    def check(self) -> str:
        """Every page of every app ('' when all answer)."""
        for entry in self.apps:
            _answers, error = zdt_nginx.check_release({**entry["check"], "timeout": 5})
            if error:
                return f"{entry['app']}: {error}"
        return ""

    def health(self) -> str:
        for entry in self.apps:
            ok, said, _refused = zdt_nginx.health_ok(entry["check"])
            if not ok:
                return f"{entry['app']}: health answered {said}"
        return ""


class Upgrade:
    def __init__(self, module: AnsibleModule, old: int, sites: Sites, packages: nb.Packages | None) -> None:
        self.module, self.params = module, module.params
        self.old, self.new = old, None
        self.sites, self.packages = sites, packages
        self.swapped = self.winched = False
        self.timings: dict[str, float] = {}
        self.done: list[str] = []

    def _time(self, phase: str, started: float) -> None:
        self.timings[phase] = round(time.monotonic() - started, 2)

    def stage(self) -> bool:
        """The new binary at NGINX_BINARY_STAGED, tested; False when the binary on disk is already it
        (the package was installed, the master still runs an older binary)."""
        started = time.monotonic()
        if self.packages is not None:
            if self.packages.current() == self.params["version"]:
                candidate = NGINX_BINARY
            else:
                nb.extract_binary(self.packages.fetch())
                candidate = NGINX_BINARY_STAGED
        else:
            nb.stage_file(self.params["binary"])
            candidate = NGINX_BINARY_STAGED
        problem = nb.test_binary(candidate)
        if problem:
            raise nb.UpgradeError("test", f"the new binary refuses the live configuration (nginx -t): {problem}")
        self._time("prepare", started)
        return candidate == NGINX_BINARY_STAGED

    def swap(self) -> None:
        if os.path.lexists(NGINX_BINARY_BEFORE):
            os.unlink(NGINX_BINARY_BEFORE)
        os.link(NGINX_BINARY, NGINX_BINARY_BEFORE)
        os.rename(NGINX_BINARY_STAGED, NGINX_BINARY)
        self.swapped = True

    def start(self) -> None:
        """USR2: a new master with the new binary, beside the old one, with its workers. The old
        master renames its pid file to .oldbin before it starts the new binary, and back when that
        exits: the pid file naming the old master again means the new one died."""
        started, renamed = time.monotonic(), False
        logged = os.path.getsize(zdt_nginx.ERROR_LOG) if os.path.isfile(zdt_nginx.ERROR_LOG) else 0
        nb.signal_master(self.old, "USR2")
        deadline = started + self.params["start_timeout"]
        while time.monotonic() < deadline:
            new, oldbin = nb.pid_file(), nb.pid_file(".oldbin")
            renamed = renamed or oldbin == self.old
            if new and new != self.old and oldbin == self.old and nb.alive(new) and nb.workers(new):
                self.new = new
                break
            if renamed and oldbin is None and new == self.old:
                break  # the new binary exited
            time.sleep(0.05)
        self._time("start", started)
        if not self.new:
            others = [m for m in nb.masters() if m != self.old]
            self.new = others[0] if others else None
            why = ("the new master did not start its workers within "
                   f"{self.params['start_timeout']:g} s" if self.new else "the new master exited after USR2")
            said = "; ".join(line.split("]", 1)[-1].strip() for line in nb.log_since(zdt_nginx.ERROR_LOG, logged)[-3:])
            raise nb.UpgradeError("start", f"{why} ({zdt_nginx.ERROR_LOG} since USR2: {said or 'nothing'})")
        self.done.append(f"new master {self.new} started beside {self.old}")

    def winch(self) -> None:
        """WINCH: the old workers stop taking connections; then only the new workers answer."""
        started = time.monotonic()
        nb.signal_master(self.old, "WINCH")
        self.winched = True
        if not nb.wait(lambda: not nb.workers(self.old), 10):
            raise nb.UpgradeError("winch", f"the old master {self.old}'s workers still take connections 10 s after "
                                           "WINCH")
        self._time("winch", started)
        self.done.append(f"old master {self.old}'s workers stopped (WINCH)")

    def bake(self) -> None:
        started = time.monotonic()
        while time.monotonic() - started < self.params["bake_seconds"]:
            if not nb.alive(self.new) or not nb.workers(self.new):
                raise nb.UpgradeError("bake", f"the new master {self.new} or its workers died")
            why = self.sites.health()
            if why:
                raise nb.UpgradeError("bake", why)
            time.sleep(1)
        self._time("bake", started)

    def quit_old(self) -> None:
        started = time.monotonic()
        nb.signal_master(self.old, "QUIT")
        if not nb.wait(lambda: not nb.alive(self.old), self.params["quit_timeout"], 0.1):
            raise nb.UpgradeError("quit", f"the old master {self.old} did not exit within "
                                          f"{self.params['quit_timeout']:g} s of QUIT")
        self._time("quit", started)
        self.done.append(f"old master {self.old} exited (QUIT)")

    def rollback(self) -> tuple[list[str], list[str]]:
        """Back to the old binary and master; what was done, and what could not be."""
        steps, errors = [], []
        if self.swapped and os.path.exists(NGINX_BINARY_BEFORE):
            os.rename(NGINX_BINARY_BEFORE, NGINX_BINARY)
            steps.append(f"the old binary is back at {NGINX_BINARY}")
        if os.path.lexists(NGINX_BINARY_STAGED):
            os.unlink(NGINX_BINARY_STAGED)
        if not nb.alive(self.old):
            return steps, [f"the old master {self.old} is gone"]
        if self.winched or not nb.workers(self.old):
            nb.signal_master(self.old, "HUP")
            if nb.wait(lambda: nb.workers(self.old), 10):
                steps.append(f"old master {self.old}'s workers back (HUP)")
            else:
                errors.append(f"old master {self.old} started no workers after HUP")
        if self.new and nb.alive(self.new):
            nb.signal_master(self.new, "QUIT")
            if nb.wait(lambda: not nb.alive(self.new), self.params["quit_timeout"], 0.1):
                steps.append(f"new master {self.new} exited (QUIT)")
            else:
                errors.append(f"new master {self.new} still runs {self.params['quit_timeout']:g} s after QUIT")
        if nb.wait(lambda: nb.pid_file() == self.old, 5):
            steps.append(f"{zdt_nginx.PID_FILE} names the old master again")
        else:
            errors.append(f"{zdt_nginx.PID_FILE} does not name the old master {self.old}")
        why = self.sites.check()
        if why:
            errors.append(f"after going back: {why}")
        return steps, errors

    def finish(self) -> None:
        """The new binary serves alone: systemd follows it, the package database says so."""
        started = time.monotonic()
        main_pid = nb.wait(lambda: nb.systemd_main_pid() == self.new, 5)
        if not main_pid:
            self.done.append(f"WARNING: systemd's MainPID of nginx.service is {nb.systemd_main_pid()}, not "
                             f"{self.new} (systemctl reload nginx would not reach the new master)")
        if self.packages is not None and self.packages.current() != self.params["version"]:
            self.packages.install()
            self.done.append(f"packages {', '.join(self.packages.names)} recorded at {self.params['version']}")
            if not nb.runs_file(self.new, NGINX_BINARY):
                raise nb.UpgradeError("package", f"apt installed another binary than the one serving at "
                                                 f"{NGINX_BINARY}")
        if os.path.lexists(NGINX_BINARY_BEFORE):
            os.unlink(NGINX_BINARY_BEFORE)
        self._time("package", started)


def lock_all(module: AnsibleModule, owner: dict) -> tuple[int, list[tuple[Lock, str, dict]]]:
    """The host's upgrade lock (a flock held while this module runs) and every app's deploy lock."""
    directory(STATE_DIR, 0o755, 0, 0)
    descriptor = os.open(NGINX_UPGRADE_LOCK, os.O_CREAT | os.O_RDWR, 0o600)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        module.fail_json(msg="Another nginx upgrade runs on this host. Nothing was changed.")
    taken: list[tuple[Lock, str, dict]] = []
    for name in apps_on_host():
        lock = Lock(App(name))
        try:
            got = lock.take(owner, wait=module.params["lock_wait"], host_process=True)
        except LockHeld as held:
            for other, token, _got in taken:
                other.release(token)
            module.fail_json(msg=f"nginx upgrade refused: {held.describe(name)} Nothing was changed.",
                             holder={**held.holder, "state": held.state})
        taken.append((lock, got["token"], got))
    return descriptor, taken


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "version": {"type": "str", "default": ""},
            "binary": {"type": "path", "default": ""},
            "bake_seconds": {"type": "float", "default": 10},
            "start_timeout": {"type": "float", "default": 15},
            "quit_timeout": {"type": "float", "default": 120},
            "lock_wait": {"type": "float", "default": 30},
            "owner": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    params = module.params
    version, binary = params["version"], params["binary"]
    if bool(version) == bool(binary):
        module.fail_json(msg="nginx_upgrade_version or nginx_upgrade_binary: give exactly one of them. "
                             "Nothing was changed.")
    if version and not nb.valid_version(version):
        module.fail_json(msg=f"nginx_upgrade_version {version!r} is not a Debian package version. Nothing was "
                             "changed.")
    if binary and not (os.path.isfile(binary) and os.access(binary, os.X_OK)):
        module.fail_json(msg=f"nginx_upgrade_binary {binary} is not an executable file on this host. Nothing was "
                             "changed.")
    old = zdt_nginx.master_pid()
    if old is None:
        module.fail_json(msg="nginx is not running: there is no master to upgrade (systemctl start nginx). "
                             "Nothing was changed.")
    others = [m for m in nb.masters() if m != old]
    if others or os.path.exists(zdt_nginx.PID_FILE + ".oldbin"):
        module.fail_json(msg=f"an earlier binary upgrade is unfinished: nginx masters {[old] + others} run (see "
                             f"{zdt_nginx.PID_FILE}.oldbin). Finish or undo it first. Nothing was changed.")
    packages = nb.Packages(version) if version else None
    if packages is not None:
        up_to_date = packages.current() == version and nb.runs_file(old, NGINX_BINARY)
    else:
        up_to_date = nb.sha256(binary) == nb.sha256(NGINX_BINARY) and nb.runs_file(old, NGINX_BINARY)
    result = {"changed": not up_to_date, "rolled_back": False, "before": running(old), "apps": []}
    wanted = version or binary
    if up_to_date:
        module.exit_json(msg=f"nginx already runs {wanted} (master {old})", **result)
    if module.check_mode:
        module.exit_json(msg=f"nginx would go from {result['before']['package_version']} (master {old}) to {wanted}",
                         **result)

    clock, started_at = time.monotonic(), now_utc()
    owner = {"action": "nginx_upgrade", "release": "", "started_at": started_at, **params["owner"]}
    _descriptor, locks = lock_all(module, owner)
    sites = Sites()
    upgrade = Upgrade(module, old, sites, packages)
    target = version or f"{binary} (sha256 {nb.sha256(binary)[:12]})"
    entry = {"action": "nginx_upgrade", "from_nginx": result["before"]["package_version"], "to_nginx": target,
             "user": owner.get("user", ""), "controller": owner.get("controller", ""), "started_at": started_at}
    failure = None
    try:
        try:
            swap = upgrade.stage()
            sites.baseline()
        except nb.UpgradeError as error:
            if os.path.lexists(NGINX_BINARY_STAGED):
                os.unlink(NGINX_BINARY_STAGED)
            failure = f"nginx upgrade to {target} refused ({error.phase}): {error.why}. Nothing was changed."
            entry.update(result="failed", reason=f"{error.phase}: {error.why}")
            result["changed"] = False
        else:
            try:
                if swap:
                    upgrade.swap()
                upgrade.start()
                why = sites.check()
                if why:
                    raise nb.UpgradeError("check", f"with both masters running: {why}")
                upgrade.winch()
                why = sites.check()
                if why:
                    raise nb.UpgradeError("check", f"through the new workers: {why}")
                upgrade.bake()
            except (nb.UpgradeError, OSError) as error:
                phase, why = getattr(error, "phase", "signal"), getattr(error, "why", str(error))
                steps, errors = upgrade.rollback()
                result["rolled_back"] = not errors
                state = ("the old binary serves, master " + str(old)) if not errors else "NOT DONE: " + "; ".join(
                    errors)
                failure = (f"nginx upgrade to {target} failed at {phase}: {why}. Rolled back: "
                           f"{'; '.join(steps) or 'nothing to undo'}; {state}.")
                entry.update(result="rolled_back" if not errors else "failed", reason=f"{phase}: {why}")
            else:
                try:
                    # From QUIT on the old master is leaving: there is no going back to it.
                    upgrade.quit_old()
                    upgrade.finish()
                except nb.UpgradeError as error:
                    failure = (f"nginx {target} serves (master {upgrade.new}), but {error.phase} failed: {error.why}")
                    entry.update(result="failed", reason=f"{error.phase}: {error.why}")
                else:
                    entry.update(result="success", reason="; ".join(upgrade.done))
                result["after"] = running(upgrade.new)
    finally:
        upgrade.timings["total"] = round(time.monotonic() - clock, 2)
        entry.update(finished_at=now_utc(), duration_s=upgrade.timings["total"])
        by_name = {a["app"]: a for a in sites.apps}
        for lock, token, got in locks:
            name = lock.app.name
            root = by_name.get(name, {}).get("root")
            if root or os.path.isfile(App(name).history):
                app = App(name, root)
                for dead in got["recovered"]:
                    record(app, {"action": dead.get("action", "deploy"), "release": dead.get("release", ""),
                                 "result": "interrupted", "finished_at": now_utc(),
                                 "reason": f"recovered by an nginx upgrade: {dead.get('why', '')}"})
                record(app, {**entry, "release": app.serving()[0]})
            lock.release(token)
    result.update(apps=[{"app": a["app"], "release": a["release"]} for a in sites.apps] + [
        {**s, "skipped": True} for s in sites.skipped], timings=upgrade.timings, steps=upgrade.done)
    if failure:
        module.fail_json(msg=failure, **result)
    checked = ", ".join(a["app"] for a in sites.apps) or "none"
    module.exit_json(msg=f"nginx {wanted} serves: master {old} -> {upgrade.new} in {upgrade.timings['total']:g} s; "
                         f"apps checked: {checked}", **result)


if __name__ == "__main__":
    main()
