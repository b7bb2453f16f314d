# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Action side of zdt_release: ship the artifact and create the release in one task.

With ``artifact_src`` (a file on the controller), step ``files`` copies the artifact
into the task's remote temporary directory and passes its path to the module, so a
release costs one transfer and one module run instead of a stat task and a copy task
(a remote stat plus a copy module) before it. A complete release (its manifest is
there) gets no transfer: a plain `test -e` over the connection tells, without a module.
"""
from __future__ import annotations

import shlex

from ansible.plugins.action import ActionBase


class ActionModule(ActionBase):
    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):  # noqa: ANN001, ANN201 - Ansible's signature
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        source = args.pop("artifact_src", None)
        if source and args.get("step") == "files" and not self._task.check_mode and not self._complete(args):
            remote_tmp = self._connection._shell.tmpdir or self._make_tmp_path()
            remote = self._connection._shell.join_path(remote_tmp, "artifact.tar.gz")
            self._transfer_file(source, remote)
            args["artifact"] = remote
        elif source:
            args.setdefault("artifact", source)  # check mode: the module reads nothing
        try:
            result.update(self._execute_module(module_name="zerodowntime.web.zdt_release", module_args=args, task_vars=task_vars))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result

    def _complete(self, args: dict) -> bool:
        manifest = self._connection._shell.join_path(str(args.get("path", "")), "release.json")
        return self._low_level_execute_command(f"test -e {shlex.quote(manifest)}", sudoable=True)["rc"] == 0
