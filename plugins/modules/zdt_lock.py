#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Take or release an app's deploy lock; check that the host can be deployed to."""
from __future__ import annotations

DOCUMENTATION = r"""
module: zdt_lock
short_description: Take or release the deploy lock of an app, after checking the host
author: zerodowntime.web contributors (@zerodowntime)
description:
  - C(state=present) first checks the host (nginx and supervisord running, the preview port free), then takes
    the app's lock (C(/var/lib/zerodowntime/APP/lock), an atomic C(mkdir)) with a new token, and returns where
    C(current) and C(previous) point, the release standing by, and whether O(release) is complete here.
  - A lock whose holder is dead (it ran before this host restarted, or its host process is gone, or its
    C(ansible-playbook) on this controller is gone) is recovered, and a history line records the holder as
    C(interrupted). A live holder is never broken, even with O(break_lock); a holder this host cannot check (a
    deploy from another controller with none of its modules running here) is broken only with O(break_lock).
  - C(state=absent) appends O(history_entry) to the app's history.jsonl and releases the lock if O(token)
    still holds it (it never removes someone else's lock). With O(prune) it first removes old releases, as
    M(zerodowntime.web.zdt_prune) does, in the same run (a deploy saves a module run).
  - The action plugin of the same name fills in who takes the lock (user, controller, its pid) and, when the
    holder is a deploy from this controller whose C(ansible-playbook) is gone, asks again with its token.
version_added: 0.1.0
options:
  app_name:
    description: Name of the application.
    type: str
    required: true
  app_root:
    description: Root of the application.
    type: path
    required: true
  state:
    description: C(present) takes the lock, C(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  owner:
    description: Who takes the lock (C(action), C(release), C(started_at); the action plugin adds C(user), C(controller), C(controller_pid)).
    type: dict
    default: {}
  token:
    description: (absent) The token C(state=present) returned.
    type: str
    default: ""
  break_lock:
    description: Break a lock whose holder this host cannot check (never a live one).
    type: bool
    default: false
  dead_token:
    description: Token of a holder known dead (set by the action plugin).
    type: str
    default: ""
  wait:
    description: Seconds to wait while a live holder works on this host (the standby helper retiring a program).
    type: float
    default: 30
  release:
    description: Release id to look for (its C(release.json) marks it complete).
    type: str
    default: ""
  rollback_to:
    description: >-
      A rollback's target, C(previous) (the release C(previous) points at) or a release id; it is then the
      O(release) looked for and the one the lock's record names.
    type: str
  check_daemons:
    description: Check that nginx and supervisord run (skipped while no release serves).
    type: bool
    default: true
  start_daemons:
    description: Start nginx or supervisord when they are stopped, instead of failing.
    type: bool
    default: false
  preview_port:
    description: Loopback port the preview will listen on; fail if another service holds it (0 skips).
    type: int
    default: 0
  history_entry:
    description: (absent) The line to append to history.jsonl, as a dict.
    type: dict
  prune:
    description:
      - (absent, while O(token) holds the lock) Remove old and incomplete releases before releasing the lock, as
        M(zerodowntime.web.zdt_prune) does with its options C(keep) (int, default 5) and C(protect) (list).
      - A failure to remove them is a warning (RV(prune_error)); the history line is still appended and the lock
        still released.
    type: dict
  noop_if_serving:
    description:
      - (present, a deploy) When O(release) already serves as a deploy left it, end here; the lock is taken, the
        C(noop) line appended to history.jsonl and the lock released in this one run, and RV(noop) is true. It
        serves as left when it is C(current) and complete, no preview or incomplete release is left, no program of
        another release runs but the one standing by in an open window, the site names its socket, its programs run
        (C(processes)) and its health answers through nginx with its release id (C(check), see
        M(zerodowntime.web.zdt_watch)). A lock recovered from a dead deploy, or broken, never ends here (the deploy
        cleans up after it).
      - C(started) (the deploy's clock, seconds since the epoch) gives the history line its C(duration_s);
        C(keep_standby) false (no standby window asked for) makes a release standing by a reason to go on.
    type: dict
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: In check mode nothing is written; the host is still read.
  diff_mode:
    support: none
  platform:
    platforms: debian
"""

EXAMPLES = r"""
- name: Take the lock of webxample
  zerodowntime.web.zdt_lock:
    app_name: webxample
    app_root: /srv/webxample
    owner: {action: deploy, release: 2.0.0-3f2a9c1d, started_at: "2026-11-23T10:00:00Z"}
    release: 2.0.0-3f2a9c1d
    preview_port: 8099
  register: lock

- name: Record the outcome and release it
  zerodowntime.web.zdt_lock:
    app_name: webxample
    app_root: /srv/webxample
    state: absent
    token: "{{ lock.token }}"
    history_entry: {action: deploy, release: 2.0.0-3f2a9c1d, result: success}
"""

RETURN = r"""
token:
  description: The lock's token (present).
  type: str
  returned: when state is present and not in check mode
  sample: 5f0c2d7b8e0f4a4c9f1d2a3b4c5d6e7f
current:
  description: Release id C(current) points at ("" for none).
  type: str
  returned: always
  sample: 1.0.0-4491536f
previous:
  description: Release id C(previous) points at ("" for none).
  type: str
  returned: always
  sample: 0.9.0-0b2e6c11
standby:
  description: Release whose programs stand by in an open standby window ("" for none).
  type: str
  returned: always
  sample: 0.9.0-0b2e6c11
standby_in_site:
  description: Whether the site still names the standby as nginx's backup (until its window ends).
  type: bool
  returned: always
release:
  description: The release looked for (a rollback's target, resolved).
  type: str
  returned: always
  sample: 1.0.0-4491536f
release_complete:
  description: Whether O(release) has its manifest on this host.
  type: bool
  returned: always
  sample: false
recovered:
  description: Holders found dead and recovered (each recorded in history.jsonl as interrupted).
  type: list
  returned: when state is present
  sample: [{action: deploy, release: 2.0.0-3f2a9c1d, why: its holder ran before this host restarted}]
holder:
  description: The holder of a lock that could not be taken, and whether it is C(alive) or C(unknown).
  type: dict
  returned: on failure to take the lock
released:
  description: Whether the lock was released (absent); false when O(token) no longer held it.
  type: bool
  returned: when state is absent
removed:
  description: Release ids O(prune) removed (in check mode, would remove).
  type: list
  returned: when state is absent and O(prune) is given
  sample: [0.8.0-77aa01b2]
prune_error:
  description: Why O(prune) could not remove a release (the lock was released all the same).
  type: str
  returned: when O(prune) failed
noop:
  description: Whether the release already serves as a deploy left it (O(noop_if_serving)); the lock is released.
  type: bool
  returned: when state is present
noop_why:
  description: Why it was not a no-op (O(noop_if_serving)), e.g. the program that is not running.
  type: str
  returned: when state is present and O(noop_if_serving) is given
  sample: release 2.0.0-3f2a9c1d is not current
"""

import os
import socket
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.zerodowntime.web.plugins.module_utils import zdt_nginx
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_files import read
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_host import load_state, now_utc, probe, prune, record
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App, LayoutError, valid_release
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_lock import Lock, LockHeld
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_supervisor import Supervisor


def listener(port: int) -> str:
    """'' when nothing listens on loopback PORT, else what does (its process)."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table, encoding="ascii") as handle:
                next(handle)
                for line in handle:
                    fields = line.split()
                    if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                        inodes.add(fields[9])
        except OSError:
            continue
    if not inodes:
        return ""
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                if os.readlink(f"/proc/{pid}/fd/{fd}").strip("socket:[]") in inodes:
                    with open(f"/proc/{pid}/cmdline", "rb") as handle:
                        command = handle.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
                    return f"{command} (pid {pid})"
        except OSError:
            continue
    return "a process this module cannot see"


def check_daemons(module: AnsibleModule, app: App) -> list[str]:
    """Fail (or start them) when nginx or supervisord is not running; the daemons started."""
    started, stopped = [], []
    for name, running, unit in (("nginx", lambda: zdt_nginx.master_pid() is not None, "nginx"),
                                ("supervisord", lambda: Supervisor().running(), "supervisor")):
        if running():
            continue
        if module.params["start_daemons"] and not module.check_mode:
            proc = module.run_command(["systemctl", "start", unit])
            deadline = time.monotonic() + 20
            while not running() and time.monotonic() < deadline:
                time.sleep(0.2)
            if running():
                started.append(name)
                continue
            stopped.append(f"{name} (systemctl start {unit}: {(proc[2] or proc[1]).strip() or 'did not come up'})")
        else:
            stopped.append(name)
    if stopped:
        serving = app.serving()[0]
        effect = ("nothing answers the site" if any(s.startswith("nginx") for s in stopped)
                  else f"no program of release {serving} is supervised, so the site answers 502")
        module.fail_json(msg=f"{' and '.join(stopped)} not running on {socket.gethostname()}: {effect}. Nothing was "
                             "changed. Start it (systemctl start nginx / supervisor), or deploy with "
                             "deploy_install_packages=true to have the deploy start it.")
    return started


def check_port(module: AnsibleModule, app: App) -> None:
    port = module.params["preview_port"]
    if not port:
        return
    holder = listener(port)
    if not holder:
        return
    preview = app.preview_conf
    ours = os.path.isfile(preview) and f":{port};" in open(preview, encoding="utf-8").read()
    if not ours:
        module.fail_json(msg=f"deploy_preview_port {port} is already in use on this host by {holder}: the preview "
                             f"of {app.name} cannot listen there. Nothing was changed. Set deploy_preview_port to "
                             "a free loopback port (each app on a host needs its own).")


def serving_as_left(app: App, release: str, spec: dict) -> str:
    """'' when RELEASE serves as a deploy left it (see noop_if_serving), else why not."""
    if release != app.serving()[0] or not app.complete(release):
        return f"release {release} is not current"
    if os.path.exists(app.preview_conf):
        return "a preview is left"
    incomplete = sorted(d for d in os.listdir(app.releases) if not valid_release(d) or not app.complete(d))
    if incomplete:
        return f"incomplete releases are left ({', '.join(incomplete)})"
    standby = (load_state(app) or {}).get("standby", "")
    if standby and str(spec.get("keep_standby", True)).lower() not in ("true", "1", "yes"):
        return f"release {standby} stands by and is to stop (no standby window asked for)"
    others = sorted({p["release"] for p in app.programs()} - {release, standby})
    if others:
        return f"programs of {', '.join(others)} are left"
    if app.socket(release) not in (read(app.site_conf) or ""):
        return f"the site does not name {app.socket(release)}"
    return probe(app, Supervisor(), release, spec.get("processes") or [], {**spec["check"], "release": release})


def present(module: AnsibleModule, app: App, result: dict) -> None:
    params = module.params
    if params["check_daemons"] and result["current"]:
        result["daemons_started"] = check_daemons(module, app)
    check_port(module, app)
    if module.check_mode:
        return
    lock = Lock(app)
    owner = dict(params["owner"])
    try:
        taken = lock.take(owner, wait=params["wait"], break_lock=params["break_lock"],
                          dead_token=params["dead_token"])
    except LockHeld as held:
        module.fail_json(msg=f"{str(owner.get('action', 'deploy')).capitalize()} of {app.name} release "
                             f"{owner.get('release') or '?'} refused: {held.describe(app.name)} Nothing was changed.",
                         holder={**held.holder, "state": held.state}, **result)
    for dead in taken["recovered"]:
        record(app, {"action": dead.get("action", "deploy"), "release": dead.get("release", ""),
                     "result": "interrupted", "user": dead.get("user", ""),
                     "controller": dead.get("controller", ""), "started_at": dead.get("started_at", ""),
                     "finished_at": now_utc(),
                     "reason": f"recovered by the {owner.get('action', 'deploy')} of {owner.get('release') or '?'}"
                               f": {dead.get('why', '')}"})
    if taken["broken"] is not None:
        broken = {k: taken["broken"].get(k, "") for k in ("action", "release", "user", "controller", "started_at")}
        record(app, {**broken, "result": "interrupted", "finished_at": now_utc(),
                     "reason": "lock broken with deploy_break_lock"})
    result.update(token=taken["token"], recovered=taken["recovered"], broken=taken["broken"], noop=False)
    spec = params["noop_if_serving"]
    if spec and not taken["recovered"] and taken["broken"] is None:
        result["noop_why"] = serving_as_left(app, result["release"], spec)
        if not result["noop_why"]:
            record(app, {"action": "deploy", "release": result["release"], "from_release": result["release"],
                         "result": "noop", "reason": "", **{k: owner.get(k, "") for k in ("user", "controller")},
                         "started_at": owner.get("started_at", ""), "finished_at": now_utc(),
                         "duration_s": round(time.time() - float(spec.get("started") or time.time()), 1),
                         "shipped_bytes": 0})
            lock.release(taken["token"])
            result.update(noop=True, token="")


def absent(module: AnsibleModule, app: App, result: dict) -> None:
    params = module.params
    spec = params["prune"]
    if spec is not None and (module.check_mode or Lock(app).held_by(params["token"])):
        try:
            result["removed"] = prune(app, int(spec.get("keep", 5)), list(spec.get("protect") or []),
                                      module.check_mode)
        except (OSError, ValueError) as error:
            result.update(removed=[], prune_error=f"old releases of {app.name} not removed: {error}")
            module.warn(result["prune_error"])
        result["changed"] = bool(result["removed"])
    if module.check_mode:
        return
    if params["history_entry"] is not None:
        record(app, params["history_entry"])
    result["released"] = Lock(app).release(params["token"]) if params["token"] else False


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app_name": {"type": "str", "required": True},
            "app_root": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "owner": {"type": "dict", "default": {}},
            "token": {"type": "str", "default": "", "no_log": False},
            "break_lock": {"type": "bool", "default": False},
            "dead_token": {"type": "str", "default": "", "no_log": False},
            "wait": {"type": "float", "default": 30},
            "release": {"type": "str", "default": ""},
            "rollback_to": {"type": "str"},
            "check_daemons": {"type": "bool", "default": True},
            "start_daemons": {"type": "bool", "default": False},
            "preview_port": {"type": "int", "default": 0},
            "history_entry": {"type": "dict"},
            "prune": {"type": "dict"},
            "noop_if_serving": {"type": "dict"},
        },
        supports_check_mode=True,
    )
    try:
        app = App(module.params["app_name"], module.params["app_root"])
    except LayoutError as error:
        module.fail_json(msg=str(error))
    current, previous = app.serving()
    release = module.params["release"]
    if module.params["rollback_to"] is not None:
        release = previous if module.params["rollback_to"] == "previous" else module.params["rollback_to"]
        module.params["owner"] = {**module.params["owner"], "release": release}
    window = (load_state(app) or {}) if os.path.isfile(app.standby_state) else {}
    standby = window.get("standby", "")
    # The window's site without its backup is not in place yet: the standby is still the backup.
    in_site = bool(standby and window.get("site_drained") and read(app.site_conf) != window["site_drained"])
    result = {"changed": False, "current": current, "previous": previous, "standby": standby,
              "standby_in_site": in_site, "release": release,
              "release_complete": valid_release(release) and app.complete(release)}
    if module.params["state"] == "present":
        present(module, app, result)
    else:
        absent(module, app, result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
