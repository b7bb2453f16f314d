# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Action side of zdt_rollback: say who asks (the user, this controller), for the lock and history."""
from __future__ import annotations

import getpass
import socket

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    def run(self, tmp=None, task_vars=None):  # noqa: ANN001, ANN201 - Ansible's signature
        result = super().run(tmp, task_vars)
        args = {**self._task.args, "who": {"user": getpass.getuser(), "controller": socket.gethostname()}}
        result.update(self._execute_module(module_name="zerodowntime.web.zdt_rollback", module_args=args,
                                           task_vars=task_vars))
        return result
