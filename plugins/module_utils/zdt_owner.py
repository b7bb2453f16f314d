# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""The app user, as the modules run commands for it: its ids, and a command run as it at a
lower priority, with its failure reported by its last lines of output."""
from __future__ import annotations

import grp
import os
import pwd
import subprocess


class OwnerError(Exception):
    pass


class Owner:
    def __init__(self, user: str, group: str) -> None:
        try:
            entry = pwd.getpwnam(user)
            self.gid = grp.getgrnam(group).gr_gid
        except KeyError as missing:
            raise OwnerError(f"no such user or group on this host: {missing} (the deploy creates them on a "
                             "host's first deploy, or with deploy_install_packages=true)") from None
        self.user, self.group, self.uid, self.home = user, group, entry.pw_uid, entry.pw_dir

    @staticmethod
    def group_id(name: str) -> int:
        try:
            return grp.getgrnam(name).gr_gid
        except KeyError:
            raise OwnerError(f"no such group on this host: {name}") from None

    def demote(self) -> None:
        # Building a release (venv, install, management commands) yields the CPU to the
        # release that serves meanwhile: its latency is what users see. With the
        # kernel's autogroups (Debian's and Ubuntu's default) nice only ranks the
        # processes of one session, so the build gets a session of its own, and
        # that session's group is niced too.
        os.setsid()
        try:
            with open("/proc/self/autogroup", "w", encoding="ascii") as handle:
                handle.write("10")
        except OSError:
            pass  # no autogroups on this kernel: nice alone does it
        os.nice(10)
        os.initgroups(self.user, self.gid)
        os.setgid(self.gid)
        os.setuid(self.uid)

    def env(self) -> dict:
        return {"HOME": self.home, "USER": self.user, "LOGNAME": self.user, "LANG": "C.UTF-8",
                "PATH": "/usr/local/bin:/usr/bin:/bin"}

    def run(self, module, argv: list[str], cwd: str, what: str, result: dict,  # noqa: ANN001
            env: dict | None = None) -> str:
        """Run ARGV as the app user (module.run_command cannot drop privileges or priority),
        in the user's environment plus ENV; fail the module with the command's last lines
        when it fails."""
        proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env={**self.env(), **(env or {})},
                              preexec_fn=self.demote, check=False)
        if proc.returncode != 0:
            output = (proc.stdout + proc.stderr).strip().splitlines()
            module.fail_json(msg=f"{what} failed (rc {proc.returncode}): {' '.join(output[-3:])}",
                             cmd=argv, rc=proc.returncode, stdout=proc.stdout, stderr=proc.stderr, **result)
        return proc.stdout
