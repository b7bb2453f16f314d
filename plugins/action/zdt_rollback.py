# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Action side of zdt_rollback: say who asks (the user, this controller), for the lock and history.

Inside a standby window the host already holds this collection's rollback: the window's
helper (installed by zdt_handover). When the helper on the host is this controller's code
(the same helper_digest), the action asks it directly, one command and no module: no
AnsiballZ to build here and no module_utils.basic to import there. Otherwise (no helper, an
older one, check mode) the module runs, with the same code.
"""
from __future__ import annotations

import base64
import getpass
import json
import shlex
import socket

from ansible.plugins.action import ActionBase
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_host import LAUNCHER, helper_digest
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App, LayoutError

# The launcher's exit codes that mean "not this way": no such file, not executable, and
# argparse's usage error (a helper older than the rollback command).
_NOT_THIS_WAY = {2, 126, 127}


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):  # noqa: ANN001, ANN201 - Ansible's signature
        result = super().run(tmp, task_vars)
        args = {**self._task.args, "who": {"user": getpass.getuser(), "controller": socket.gethostname()}}
        if not self._play_context.check_mode:
            asked = self._ask_helper(args)
            if asked is not None:
                result.update(asked)
                return result
        result.update(self._execute_module(module_name="zerodowntime.web.zdt_rollback", module_args=args,
                                           task_vars=task_vars))
        result["via"] = "module"
        return result

    def _ask_helper(self, args: dict) -> dict | None:
        """The helper's result, or None when the module is to run instead (input the module
        refuses with its own message, no helper or one of other code on the host)."""
        if not args.get("app_name") or not args.get("app_root"):
            return None
        try:
            app = App(str(args["app_name"]), str(args["app_root"]))
            params = {"release": str(args.get("release", "previous") or ""),
                      "migrations": str(args.get("migrations", "refuse")),
                      "standby_seconds": float(args.get("standby_seconds", 600)), "who": args["who"]}
        except (LayoutError, TypeError, ValueError):
            return None
        if params["migrations"] not in ("refuse", "ignore") or set(args) - {*params, "app_name", "app_root"}:
            return None
        encoded = base64.b64encode(json.dumps(params).encode("utf-8")).decode("ascii")
        command = (f"/usr/bin/python3 -I {LAUNCHER} rollback --app {shlex.quote(app.name)} "
                   f"--root {shlex.quote(app.root)} --digest {helper_digest()} --params {encoded}")
        answer = self._low_level_execute_command(command, sudoable=True)
        if answer["rc"] in _NOT_THIS_WAY:
            return None
        try:
            done = json.loads(answer["stdout"].strip().splitlines()[-1])
        except (IndexError, ValueError):
            done = None
        if answer["rc"] != 0 or not isinstance(done, dict):
            return {"failed": True, "rolled_back": False, "via": "helper",
                    "msg": f"zdt_rollback: the host's helper failed (rc {answer['rc']}): "
                           f"{(answer['stderr'] or answer['stdout']).strip()[-2000:]}"}
        if done.get("stale"):
            return None
        return {**done, "via": "helper"}
