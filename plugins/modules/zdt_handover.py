#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Hand an app's programs to the serving release: stop the others, keep a standby, start singletons."""
from __future__ import annotations

DOCUMENTATION = r"""
module: zdt_handover
short_description: Hand an app's background programs to the serving release, keep one release standing by
author: zerodowntime.web contributors (@zerodowntime)
description:
  - Runs after a release is switched to and verified. The C(singleton) programs of every other release stop
    first (gracefully, each with its stop signal and stop wait), then the serving release's singletons start;
    the seconds between are returned as C(singleton_gap).
  - Then the workers of every other release stop (gracefully, all at once), and every program of a release that
    neither serves nor stands by is removed. The standby keeps its web program running (a rollback to it is an
    nginx switch) with its workers and singletons parked (stopped, not started at boot).
  - With O(window), it opens the standby window. The state the host-side helper needs goes to
    C(/var/lib/zerodowntime/APP/standby.json), the helper is installed or updated, and
    C(zdt-standby-APP.service) (enabled, so a reboot resumes it) is restarted. The helper watches the serving
    release until the window ends, goes back to the standby if the serving release dies, and removes the
    standby's programs when the window ends. Without a standby the service is stopped and the state removed.
  - Only programs whose file and marker are this app's are touched.
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
  serving:
    description: The release that serves.
    type: str
    required: true
  standby:
    description: The release that stands by ("" for none).
    type: str
    default: ""
  window:
    description: >-
      Open a standby window for O(standby) with this state: C(seconds), C(watch) (C(interval), C(failures),
      C(max_5xx_ratio), C(min_5xx)), C(check_serving) and C(check_standby) (health through nginx),
      C(links) (current and previous to go back to), C(manage) (C(command), C(user): the migration check),
      C(processes) (the serving release's programs besides web). Omit to keep the window as it is.
      The site without its backup that the switch kept (C(site.drained.conf) in the state directory) goes
      into the state too: the helper puts it in place when the window ends, before the standby's programs stop,
      and waits up to C(drain_timeout) seconds for the nginx workers of the configuration before to exit. The
      same wait comes before a web program of a release that neither serves nor stands by is removed (the
      standby of the window replaced, which the configuration before the switch had as its backup).
    type: dict
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: debian
"""

EXAMPLES = r"""
- name: 2.0.0 serves; 1.0.0 stands by for 10 minutes, watched
  zerodowntime.web.zdt_handover:
    app_name: webxample
    app_root: /srv/webxample
    serving: 2.0.0-3f2a9c1d
    standby: 1.0.0-4491536f
    window:
      seconds: 600
      check_serving: {port: 80, host: www.example.com, release: 2.0.0-3f2a9c1d, health_path: /health}
      check_standby: {port: 80, host: www.example.com, release: 1.0.0-4491536f, health_path: /health}
      links: {current: 1.0.0-4491536f, previous: 0.9.0-0b2e6c11}
"""

RETURN = r"""
stopped:
  description: Programs stopped and removed.
  type: list
  returned: always
parked:
  description: Programs of the standby stopped and kept for a rollback.
  type: list
  returned: always
started:
  description: Programs of the serving release started (its singletons).
  type: list
  returned: always
singleton_gap:
  description: Seconds between the last old singleton stopping and the first new one starting (null when none moved).
  type: float
  returned: always
  sample: 0.35
drained:
  description: Whether the nginx workers of older configurations had exited before a removed web program stopped.
  type: bool
  returned: when a web program of a release that neither serves nor stands by was removed and O(window) has C(drain_timeout)
window:
  description: The standby window's service when one is open ("" for none) and when it ends.
  type: dict
  returned: always
"""

import json
import os
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.zerodowntime.web.plugins.module_utils import zdt_nginx
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_files import read, write_atomic
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_host import install_helper, load_state, now_utc, systemctl
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import WEB, App, LayoutError, valid_release
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_supervisor import (
    Supervisor,
    SupervisorError,
    is_active,
    remove_programs,
    set_active,
)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app_name": {"type": "str", "required": True},
            "app_root": {"type": "path", "required": True},
            "serving": {"type": "str", "required": True},
            "standby": {"type": "str", "default": ""},
            "window": {"type": "dict"},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        app = App(params["app_name"], params["app_root"])
        app.release(params["serving"])
    except LayoutError as error:
        module.fail_json(msg=str(error))
    serving, standby, window = params["serving"], params["standby"], params["window"]
    if standby and (not valid_release(standby) or standby == serving):
        standby = ""
    programs = app.programs()
    kind = {p["program"]: p["kind"] for p in programs}
    doomed = [p for p in programs if p["release"] not in (serving, standby)]
    parking = [p for p in programs if p["release"] == standby and p["process"] != WEB and is_active(p["text"])]
    starting = [p for p in programs if p["release"] == serving and p["kind"] == "singleton" and not is_active(p["text"])]
    result = {"stopped": [p["program"] for p in doomed], "parked": [p["program"] for p in parking],
              "started": [p["program"] for p in starting], "singleton_gap": None,
              "window": {"unit": app.standby_unit if standby and window else "", "until": None}}
    previous = load_state(app)
    closing = not standby and (previous is not None or os.path.isfile(app.standby_state))
    result["changed"] = bool(doomed or parking or starting or (standby and window) or closing)
    if module.check_mode:
        module.exit_json(**result)
    try:
        supervisor = Supervisor()
        # Singletons first: at most one runs at a time, and the gap is short.
        old_singletons = [p for p in doomed + parking if kind[p["program"]] == "singleton"]
        if old_singletons:
            supervisor.stop([p["program"] for p in old_singletons])
        stopped_at = time.monotonic()
        for program in starting:
            set_active(app, supervisor, program, True)
        if starting and old_singletons:
            result["singleton_gap"] = round(time.monotonic() - stopped_at, 2)
        # Then the rest, all at once: old workers and web programs drain in parallel. A web
        # program that was the backup of an open window may still be asked by nginx workers
        # of the configuration before the switch: they finish first.
        for program in parking:
            set_active(app, supervisor, program, False)
        drain_timeout = float((window or {}).get("drain_timeout") or 0)
        if drain_timeout > 0 and any(p["process"] == WEB for p in doomed):
            result["drained"] = zdt_nginx.drain(drain_timeout)
        remove_programs(app, supervisor, doomed)
    except SupervisorError as error:
        module.fail_json(msg=str(error), **result)
    if standby and window:
        until = time.time() + float(window.get("seconds", 600))
        if previous and previous.get("serving") == standby and previous.get("site_drained"):
            # The window this deploy replaced had its standby as nginx's backup, and that
            # release is gone now: going back to the new standby is to its site without it.
            write_atomic(app.site_before, previous["site_drained"], 0o600, 0, 0)
        state = {"serving": serving, "standby": standby, "until": until, "opened_at": now_utc(),
                 "watch": window.get("watch") or {}, "check_serving": window.get("check_serving"),
                 "check_standby": window.get("check_standby"), "links": window.get("links") or {},
                 "manage": window.get("manage"), "processes": window.get("processes") or [],
                 # The backup stays in the site until the window ends; then the helper drains.
                 "site_drained": read(app.site_drained), "drain_timeout": drain_timeout}
        install_helper(app)
        write_atomic(app.standby_state, json.dumps(state, indent=2, sort_keys=True) + "\n", 0o600, 0, 0)
        proc = systemctl("restart", app.standby_unit)
        if proc.returncode != 0:
            module.fail_json(msg=f"systemctl restart {app.standby_unit} failed: {proc.stderr.strip()}", **result)
        result["window"]["until"] = until
    elif closing:
        systemctl("stop", app.standby_unit)
        if os.path.isfile(app.standby_state):
            os.unlink(app.standby_state)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
