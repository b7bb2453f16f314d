# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Action side of zdt_release: ship the artifact and create the release in one task.

With ``artifact_src`` (a file on the controller), ``state=present`` copies the artifact
into the task's remote temporary directory and passes its path to the module, so a
release costs one transfer and one module run. A complete release (its manifest is
there) gets no transfer: a plain `test -e` over the connection tells, without a module.
"""
from __future__ import annotations

import shlex

from ansible.plugins.action import ActionBase
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App, LayoutError


class ActionModule(ActionBase):
    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):  # noqa: ANN001, ANN201 - Ansible's signature
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        source = args.pop("artifact_src", None)
        if source and args.get("state", "present") == "present" and not self._task.check_mode:
            try:
                manifest = App(args["app_name"], args["app_root"]).manifest(args["release"])
            except (KeyError, LayoutError) as error:
                return {**result, "failed": True, "msg": f"zdt_release: {error}"}
            if self._low_level_execute_command(f"test -e {shlex.quote(manifest)}", sudoable=True)["rc"] != 0:
                remote_tmp = self._connection._shell.tmpdir or self._make_tmp_path()
                remote = self._connection._shell.join_path(remote_tmp, "artifact.tar.gz")
                self._transfer_file(source, remote)
                args["artifact"] = remote
        if source:
            args.setdefault("artifact", source)  # complete already, or check mode: the module reads nothing
        try:
            result.update(self._execute_module(module_name="zerodowntime.web.zdt_release", module_args=args,
                                               task_vars=task_vars))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        return result
