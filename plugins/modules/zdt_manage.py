#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Run a release's management commands and mark it complete."""
from __future__ import annotations

DOCUMENTATION = r"""
module: zdt_manage
short_description: Run a release's management commands (migrate, once-per-app commands, collectstatic, more), then mark it complete
author: zerodowntime.web contributors (@zerodowntime)
description:
  - Runs, through the release's C(with-env) and as the app user (at nice 10), C(migrate) when O(migrate) is set,
    then each of O(once_commands) that never ran for this app on this host (recorded in
    C(/var/lib/zerodowntime/APP/once.json), so each runs once per app, not once per release), then
    C(collectstatic) when O(collectstatic) is set, then O(build_commands); then writes O(manifest) as
    C(release.json), which marks the release complete.
  - A failing command fails the task with its last lines of output.
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
    description: Release id.
    type: str
    required: true
  user:
    description: User the commands run as.
    type: str
    required: true
  group:
    description: Group of the manifest.
    type: str
    required: true
  manage_command:
    description: Management command, relative to the release (split like a shell would).
    type: str
    required: true
  migrate:
    description: Run C(migrate --noinput).
    type: bool
    default: true
  collectstatic:
    description: Run C(collectstatic --noinput).
    type: bool
    default: true
  once_commands:
    description: Management commands (split like a shell would) run once per app, after C(migrate).
    type: list
    elements: str
    default: []
  build_commands:
    description: Management commands run after C(collectstatic), each a change.
    type: list
    elements: str
    default: []
  manifest:
    description: The manifest written last, as C(release.json).
    type: dict
    required: true
  lock_token:
    description: Token of the deploy lock (the module refuses to run without holding it when given).
    type: str
    default: ""
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: In check mode nothing runs.
  diff_mode:
    support: none
  platform:
    platforms: debian
"""

EXAMPLES = r"""
- name: Migrate, load the initial data once, collect static files, mark the release complete
  zerodowntime.web.zdt_manage:
    app_name: webxample
    app_root: /srv/webxample
    release: 2.0.0-3f2a9c1d
    user: webxample
    group: webxample
    manage_command: venv/bin/python manage.py
    once_commands: [loaddata initial_pages]
    manifest: {release_id: 2.0.0-3f2a9c1d, version: 2.0.0}
"""

RETURN = r"""
outputs:
  description: What each command printed, by its first word.
  type: dict
  returned: success
migrations_applied:
  description: Migrations C(migrate) applied.
  type: list
  returned: success
  sample: [pages.0003_job]
once_ran:
  description: The once-per-app commands that ran this time.
  type: list
  returned: success
timings:
  description: Seconds of each command.
  type: dict
  returned: success
  sample: {migrate: 0.41, collectstatic: 0.38}
"""

import json
import re
import shlex
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_files import read, write_atomic
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_host import now_utc
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App, LayoutError
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_lock import Lock
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_owner import Owner, OwnerError


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app_name": {"type": "str", "required": True},
            "app_root": {"type": "path", "required": True},
            "release": {"type": "str", "required": True},
            "user": {"type": "str", "required": True},
            "group": {"type": "str", "required": True},
            "manage_command": {"type": "str", "required": True},
            "migrate": {"type": "bool", "default": True},
            "collectstatic": {"type": "bool", "default": True},
            "once_commands": {"type": "list", "elements": "str", "default": []},
            "build_commands": {"type": "list", "elements": "str", "default": []},
            "manifest": {"type": "dict", "required": True},
            "lock_token": {"type": "str", "default": "", "no_log": False},
        },
        supports_check_mode=True,
    )
    params = module.params
    result = {"changed": True, "timings": {}, "outputs": {}, "migrations_applied": [], "once_ran": []}
    if module.check_mode:
        module.exit_json(**result)
    try:
        app = App(params["app_name"], params["app_root"])
        path = app.release(params["release"])
        owner = Owner(params["user"], params["group"])
    except (LayoutError, OwnerError) as error:
        module.fail_json(msg=str(error))
    lock = Lock(app)
    if params["lock_token"] and not lock.held_by(params["lock_token"]):
        module.fail_json(msg=f"the deploy lock of {app.name} is no longer this deploy's: nothing was run")
    lock.hold_work()
    manage = shlex.split(params["manage_command"])

    def run(args: list[str]) -> str:
        started = time.monotonic()
        output = owner.run(module, ["./with-env", *manage, *args], path, f"`{' '.join(args)}`", result)
        result["timings"][args[0]] = round(time.monotonic() - started, 2)
        result["outputs"][args[0]] = output
        return output

    if params["migrate"]:
        output = run(["migrate", "--noinput", "--no-color"])
        result["migrations_applied"] = re.findall(r"^\s*Applying (\S+)\.\.\.", output, re.MULTILINE)
    if params["once_commands"]:
        try:
            record = json.loads(read(app.once) or "{}")
        except ValueError:
            record = {}
        done = record.setdefault("done", [])
        for command in params["once_commands"]:
            if any(entry.get("command") == command for entry in done):
                continue
            run(shlex.split(command))
            done.append({"command": command, "release": params["release"], "at": now_utc()})
            write_atomic(app.once, json.dumps(record, indent=2, sort_keys=True) + "\n", 0o600, 0, 0)
            result["once_ran"].append(command)
    if params["collectstatic"]:
        run(["collectstatic", "--noinput", "--no-color"])
    for command in params["build_commands"]:
        run(shlex.split(command))
    manifest = {**params["manifest"], "migrations_applied": result["migrations_applied"]}
    write_atomic(app.manifest(params["release"]), json.dumps(manifest, indent=4, sort_keys=True) + "\n", 0o644,
                 owner.uid, owner.gid)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
