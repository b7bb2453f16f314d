#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Watch a release that was just switched to, for a while."""
from __future__ import annotations

DOCUMENTATION = r"""
module: zdt_watch
short_description: Watch a release after the switch (programs, health through nginx, its 5xx) for a while
author: zerodowntime.web contributors (@zerodowntime)
description:
  - For O(seconds), every O(interval), checks that the release's programs run (supervisor), that it answers its
    health check through nginx, and how many of its answers in the site's access log since the watch began
    were 5xx. It fails as soon as O(failures) checks in a row failed, or when more than O(max_5xx_ratio) of the
    release's answers (at least O(min_5xx)) were 5xx, saying why; the deploy then rolls back.
  - The standby helper runs the same checks after the deploy, for the whole standby window
    (see M(zerodowntime.web.zdt_handover)).
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
  release:
    description: The release to watch.
    type: str
    required: true
  processes:
    description: The release's programs besides the web program (they must keep running too).
    type: list
    elements: str
    default: []
  check:
    description: The health check through nginx (C(address), C(port), C(tls), C(host), C(release), C(header), C(health_path)).
    type: dict
    required: true
  seconds:
    description: How long to watch, from O(since) when set (then at least one check, whenever this runs).
    type: float
    default: 5
  since:
    description:
      - When the watch began, in the host's time (seconds since the epoch); the switch's reload (RV(zerodowntime.web.zdt_nginx_site#module:reloaded_at)),
        so that the seconds between the switch and this run count. C(0) is now.
    type: float
    default: 0
  access_offset:
    description: Where the release's answers start in the site's access log (its size at the switch); the end of it when omitted.
    type: int
  interval:
    description: Seconds between two checks.
    type: float
    default: 0.5
  failures:
    description: Checks in a row that must fail before the release counts as failed.
    type: int
    default: 3
  max_5xx_ratio:
    description: Share of the release's answers that may be 5xx.
    type: float
    default: 0.2
  min_5xx:
    description: 5xx answers below this count never fail the watch.
    type: int
    default: 10
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: In check mode nothing is watched.
  diff_mode:
    support: none
  platform:
    platforms: debian
"""

EXAMPLES = r"""
- name: Watch 2.0.0-3f2a9c1d for 10 seconds after the switch
  zerodowntime.web.zdt_watch:
    app_name: webxample
    app_root: /srv/webxample
    release: 2.0.0-3f2a9c1d
    processes: [worker]
    check: {port: 80, host: www.example.com, release: 2.0.0-3f2a9c1d, health_path: /health}
    seconds: 10
"""

RETURN = r"""
checks:
  description: How many checks ran.
  type: int
  returned: success
answers:
  description: The release's answers in the access log during the watch, and how many were 5xx.
  type: dict
  returned: success
  sample: {answers: 812, errors: 0}
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_host import AccessLog, probe
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App, LayoutError
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_supervisor import Supervisor


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app_name": {"type": "str", "required": True},
            "app_root": {"type": "path", "required": True},
            "release": {"type": "str", "required": True},
            "processes": {"type": "list", "elements": "str", "default": []},
            "check": {"type": "dict", "required": True},
            "seconds": {"type": "float", "default": 5},
            "since": {"type": "float", "default": 0},
            "access_offset": {"type": "int"},
            "interval": {"type": "float", "default": 0.5},
            "failures": {"type": "int", "default": 3},
            "max_5xx_ratio": {"type": "float", "default": 0.2},
            "min_5xx": {"type": "int", "default": 10},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        app = App(params["app_name"], params["app_root"])
        socket_path = app.socket(params["release"])
    except LayoutError as error:
        module.fail_json(msg=str(error))
    if module.check_mode:
        module.exit_json(changed=False, checks=0)
    supervisor = Supervisor()
    access = AccessLog(app.access_log, socket_path, params["access_offset"])
    # The watch's seconds count from the switch: the steps since (current, hooks) were watched too.
    elapsed = max(0.0, time.time() - params["since"]) if params["since"] > 0 else 0.0
    deadline = time.monotonic() + params["seconds"] - elapsed
    checks = failed = 0
    why = ""
    while True:
        checks += 1
        why = probe(app, supervisor, params["release"], params["processes"], params["check"])
        access.read()
        if why == "":
            why = access.failing(params["max_5xx_ratio"], params["min_5xx"])
        # None: not judged now (supervisor or nginx restarting), neither a failure nor the end of a run.
        if why is not None:
            failed = failed + 1 if why else 0
        if failed >= params["failures"] or time.monotonic() >= deadline:
            break
        time.sleep(params["interval"])
    answers = {"answers": access.answers, "errors": access.errors}
    if failed >= params["failures"]:
        module.fail_json(msg=f"release {params['release']} failed the watch after the switch: {why}",
                         checks=checks, answers=answers)
    module.exit_json(changed=False, checks=checks, answers=answers)


if __name__ == "__main__":
    main()
