# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Action side of zdt_release: ship the artifact (and uv) and create the release in one task.

With ``artifact_src`` (a file on the controller), ``state=present`` copies the artifact
into the task's remote temporary directory and passes its path to the module, so a
release costs one transfer and one module run. A complete release (its manifest is
there) gets no transfer. With ``installer=uv``, the controller's uv (``uv_src``) is
shipped the same way, only when the release is not complete and the host lacks that
version of uv (``APP_ROOT/.zdt/uv-VERSION``): one plain shell command over the connection
tells both, without a module, and prints the index of the app's wheelhouse: the wheels
already there with the same sha256 are left out of the artifact shipped (a slimmer copy
written on the controller for this transfer), and the module takes them from there. A
code-only change ships the app's own wheel, kilobytes instead of the whole wheelhouse. ``uv_src`` and ``uv_version`` default to the controller's
uv as the build finds it (beside ansible-playbook's Python, else on PATH).
"""
from __future__ import annotations

import hashlib
import io
import os
import shlex
import tarfile
import tempfile

from ansible.plugins.action import ActionBase
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App, LayoutError
from ansible_collections.zerodowntime.web.plugins.plugin_utils.zdt_build import uv_binary

COMPLETE = "zdt-release-complete"
HAS_UV = "zdt-uv-present"
INDEX = "zdt-wheelhouse-index"


def probe_command(manifest: str, uv: str | None, index: str | None = None) -> str:
    """One command that prints COMPLETE when the release is complete, HAS_UV when uv is there
    and, after INDEX, the lines of the wheelhouse's index (what it holds)."""
    command = f"test -e {shlex.quote(manifest)} && echo {COMPLETE}"
    if uv:
        command += f"; test -f {shlex.quote(uv)} && test -x {shlex.quote(uv)} && echo {HAS_UV}"
    if index:
        command += f"; echo {INDEX}; cat {shlex.quote(index)} 2>/dev/null"
    return command + "; true"


def host_wheels(stdout: str) -> dict[str, str]:
    """The wheelhouse's index from the probe's output: file name -> sha256."""
    if INDEX not in stdout:
        return {}
    found = {}
    for line in stdout.split(INDEX, 1)[1].splitlines():
        digest, _sep, name = line.strip().partition("  ")
        if len(digest) == 64 and name.endswith(".whl") and "/" not in name:
            found[name] = digest
    return found


def slim_artifact(source: str, there: dict[str, str], dest: str) -> dict[str, str]:
    """Write to DEST the artifact SOURCE without the wheels THERE holds with the same sha256;
    return those (name -> sha256). Nothing in common: nothing is written, SOURCE is shipped."""
    if not there:
        return {}
    left_out: dict[str, str] = {}
    with tarfile.open(source, "r:gz") as artifact, tarfile.open(dest, "w:gz", compresslevel=6) as slim:
        for member in artifact:
            data = artifact.extractfile(member).read() if member.isfile() else None
            folder, _sep, name = member.name.partition("/")
            if data is not None and folder == "wheels" and there.get(name) == hashlib.sha256(data).hexdigest():
                left_out[name] = there[name]
                continue
            slim.addfile(member, io.BytesIO(data) if data is not None else None)
    return left_out


def to_ship(stdout: str, uv: str | None) -> list[str]:
    """What the host lacks, from the probe's output: the artifact unless the release is complete,
    and uv too when the release is not complete and uv is missing."""
    said = stdout.split()
    if COMPLETE in said:
        return []
    return ["artifact"] + (["uv"] if uv and HAS_UV not in said else [])


class ActionModule(ActionBase):
    TRANSFERS_FILES = True

    def run(self, tmp=None, task_vars=None):  # noqa: ANN001, ANN201 - Ansible's signature
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        source = args.pop("artifact_src", None)
        uv_source = args.pop("uv_src", None)
        present = args.get("state", "present") == "present"
        shipped: list[str] = []
        shipped_bytes = reused = 0
        if present and args.get("installer") == "uv" and not (uv_source and args.get("uv_version")):
            found = uv_binary((task_vars or {}).get("ansible_playbook_python") or "python3")
            if not found:
                return {**result, "failed": True, "msg": "zdt_release: installer uv, but the controller has no uv "
                        "(beside ansible-playbook's Python or on PATH) and no uv_src was given"}
            uv_source = uv_source or found["path"]
            args.setdefault("uv_version", found["version"])
        if source and present and not self._task.check_mode:
            try:
                app = App(args["app_name"], args["app_root"])
                manifest = app.manifest(args["release"])
                uv = app.uv(args["uv_version"]) if args.get("installer") == "uv" else None
            except (KeyError, LayoutError) as error:
                return {**result, "failed": True, "msg": f"zdt_release: {error}"}
            probe = self._low_level_execute_command(probe_command(manifest, uv, app.wheelhouse_index),
                                                    sudoable=True)
            if probe["rc"] != 0:
                return {**result, "failed": True, "msg": "zdt_release: could not check the release and uv on the "
                        f"host (rc {probe['rc']}): {probe.get('stderr', '').strip()}"}
            shipped = to_ship(probe["stdout"], uv)
            if shipped:
                remote_tmp = self._connection._shell.tmpdir or self._make_tmp_path()
                remote = self._connection._shell.join_path(remote_tmp, "artifact.tar.gz")
                with tempfile.TemporaryDirectory(prefix="zdt-slim-") as work:
                    slim = os.path.join(work, "artifact.tar.gz")
                    left_out = slim_artifact(source, host_wheels(probe["stdout"]), slim)
                    local = slim if left_out else source
                    self._transfer_file(local, remote)
                    shipped_bytes += os.path.getsize(local)
                args["artifact"] = remote
                args["wheelhouse_wheels"] = left_out
                reused = len(left_out)
            if "uv" in shipped:
                remote = self._connection._shell.join_path(self._connection._shell.tmpdir, "uv")
                self._transfer_file(uv_source, remote)
                shipped_bytes += os.path.getsize(uv_source)
                args["uv"] = remote
        if source:
            args.setdefault("artifact", source)  # complete already, or check mode: the module reads nothing
        try:
            result.update(self._execute_module(module_name="zerodowntime.web.zdt_release", module_args=args,
                                               task_vars=task_vars))
        finally:
            self._remove_tmp_path(self._connection._shell.tmpdir)
        if present:
            result.update(shipped=shipped, shipped_bytes=shipped_bytes, reused_wheels=reused)
        return result
