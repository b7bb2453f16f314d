# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Action side of zdt_lock: say who takes the lock, and tell the host when its holder is dead.

The module records who holds the lock. Only the controller knows who that is (the user,
this machine, the pid of ansible-playbook), and only the controller can tell whether a
holder that ran here is still alive: when the lock is held by a deploy from this machine
whose ansible-playbook is gone (it was killed), the module is asked once more with that
holder's token, so the host recovers the lock instead of asking for deploy_break_lock.
"""
from __future__ import annotations

import getpass
import os
import socket

from ansible.plugins.action import ActionBase


def _alive(pid: object) -> bool:
    try:
        pid = int(pid)
        os.kill(pid, 0)
    except (TypeError, ValueError, ProcessLookupError):
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            return b"ansible" in handle.read()
    except OSError:
        return True  # no /proc here: a process with that pid exists


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):  # noqa: ANN001, ANN201 - Ansible's signature
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        who = {"user": getpass.getuser(), "controller": socket.gethostname()}
        if args.get("state", "present") == "present":
            # The forked worker's parent is ansible-playbook itself.
            args["owner"] = {**(args.get("owner") or {}), **who, "controller_pid": os.getppid()}
        elif args.get("history_entry"):
            args["history_entry"] = {**args["history_entry"], **who}
        answer = self._execute_module(module_name="zerodowntime.web.zdt_lock", module_args=args, task_vars=task_vars)
        holder = answer.get("holder") or {}
        here = holder.get("controller") == socket.gethostname()
        if answer.get("failed") and holder.get("state") == "unknown" and holder.get("token") and here:
            if _alive(holder.get("controller_pid")):
                answer["msg"] = (f"{args.get('owner', {}).get('action', 'deploy').capitalize()} refused: the deploy "
                                 f"lock is held by the {holder.get('action', 'deploy')} of release "
                                 f"{holder.get('release') or '(not named yet)'} started at {holder.get('started_at')}"
                                 f" by {holder.get('user')} on this controller, whose ansible-playbook (pid "
                                 f"{holder.get('controller_pid')}) is still running. Wait for it to finish. "
                                 "Nothing was changed.")
                # ansible-core 2.19 also reports a module's failure from its own error summary
                # ("Module failed: ..."), which would still offer deploy_break_lock.
                answer.pop("exception", None)
            else:
                # Its ansible-playbook is gone: the host may recover the lock, after waiting
                # for a module of it that is still running there.
                args.update(dead_token=holder["token"], wait=max(float(args.get("wait", 30)), 600))
                answer = self._execute_module(module_name="zerodowntime.web.zdt_lock", module_args=args,
                                              task_vars=task_vars)
        result.update(answer)
        return result
