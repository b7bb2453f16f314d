#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Create, activate and prune releases: one round trip per step."""
from __future__ import annotations

DOCUMENTATION = r"""
module: zdt_release
short_description: Create a release (virtualenv, app, links, env, build commands), activate it, prune old ones
description:
  - C(step=files) creates the release from the artifact when the release has no manifest yet. That is the
    layout (root, releases/, shared/ and the shared paths), a fresh release directory, the unpacked artifact,
    the virtualenv and the pip install (as the app user), the shared links, the 0600 env file and the with-env
    wrapper. It returns O(timings), so the seconds of pip are known.
  - C(step=build) runs the management commands through the release's with-env, as the app user, then writes
    the manifest that marks the release complete.
  - C(step=activate) points C(previous) at the release C(current) points at, then C(current) at O(path),
    each by renaming a new symlink over the old one (atomic).
  - C(step=prune) keeps the newest O(keep) complete releases, never the one C(current) or C(previous)
    points at or O(path), and removes incomplete ones.
  - One task per step instead of a dozen. Each task costs a round trip, and a deploy runs them all.
options:
  step:
    description: What to do.
    type: str
    required: true
    choices: [files, build, activate, prune]
  path:
    description: The release directory (app_root/releases/ID).
    type: path
    required: true
  app_root:
    description: Root of the application.
    type: path
    required: true
  user:
    description: Unprivileged user that owns the release and runs its commands.
    type: str
    required: true
  group:
    description: Group of the release's files.
    type: str
    required: true
  artifact:
    description: (files) The artifact (.tar.gz) on the host.
    type: path
  artifact_src:
    description: >-
      (files) The artifact on the controller: the action plugin ships it to the task's remote temporary
      directory and sets O(artifact).
    type: path
  python:
    description: (files) Python that creates the virtualenv.
    type: path
    default: /usr/bin/python3
  pip_args:
    description: (files) Arguments of C(pip install).
    type: list
    elements: str
    default: []
  shared_dirs:
    description: (files) Directories under shared/ linked into the release.
    type: list
    elements: str
    default: []
  shared_files:
    description: (files) Files under shared/ linked into the release (created empty when missing).
    type: list
    elements: str
    default: []
  env_content:
    description: (files) Content of the release's .env (mode 0600, never logged).
    type: str
    default: ""
  wrapper_content:
    description: (files) Content of the with-env wrapper.
    type: str
    default: ""
  manage_command:
    description: (build) Management command, relative to the release (split like a shell would).
    type: str
    default: ""
  commands:
    description: >-
      (build) Each C(args) (list) run as C(./with-env MANAGE_COMMAND ARGS); C(unchanged) is a regular
      expression of the output that means nothing changed.
    type: list
    elements: dict
    default: []
  build_commands:
    description: (build) More management commands (split like a shell would), run after O(commands); each is a change.
    type: list
    elements: str
    default: []
  manifest:
    description: (build) The manifest written last, as release.json.
    type: dict
  keep:
    description: (prune) Complete releases to keep.
    type: int
    default: 5
"""

RETURN = r"""
created:
  description: (files) Whether the release was created by this call.
  type: bool
  returned: when step is files
timings:
  description: Seconds of each part (unpack, venv, pip, and each command).
  type: dict
  returned: when something ran
removed:
  description: (prune) Release directories removed.
  type: list
  returned: when step is prune
"""

import fcntl
import grp
import json
import os
import pwd
import re
import shlex
import shutil
import subprocess
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_files import write_atomic


class Owner:
    def __init__(self, user: str, group: str) -> None:
        self.user, self.group = user, group
        self.uid = pwd.getpwnam(user).pw_uid
        self.gid = grp.getgrnam(group).gr_gid
        self.home = pwd.getpwnam(user).pw_dir

    def chown(self, path: str) -> None:
        os.lchown(path, self.uid, self.gid)

    def demote(self) -> None:
        # Building a release (venv, pip, management commands) yields the CPU to the
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


def run_as(module: AnsibleModule, owner: Owner, argv: list[str], cwd: str, what: str) -> str:
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, env=owner.env(), preexec_fn=owner.demote)
    if proc.returncode != 0:
        output = (proc.stdout + proc.stderr).strip().splitlines()
        module.fail_json(msg=f"{what} failed (rc {proc.returncode}): {' '.join(output[-2:])}",
                         cmd=argv, rc=proc.returncode, stdout=proc.stdout, stderr=proc.stderr)
    return proc.stdout


def directory(path: str, owner: Owner, mode: int) -> None:
    if not os.path.isdir(path):
        os.makedirs(path, mode)
    os.chmod(path, mode)
    owner.chown(path)


def link(target: str, path: str, owner: Owner) -> None:
    """Point PATH at TARGET by renaming a new symlink over it (atomic)."""
    temporary = path + ".zdt-tmp"
    if os.path.lexists(temporary):
        os.unlink(temporary)
    os.symlink(target, temporary)
    owner.chown(temporary)
    os.replace(temporary, path)


def hold_releases(root: str) -> int:
    """Lock releases/ for this process's lifetime: a run of a killed deploy may still be
    installing on the host (its controller died, not its module); wait for it to end."""
    descriptor = os.open(os.path.join(root, "releases"), os.O_RDONLY)
    fcntl.flock(descriptor, fcntl.LOCK_EX)
    return descriptor


def step_files(module: AnsibleModule, owner: Owner | None, result: dict) -> None:
    params, path, root = module.params, module.params["path"], module.params["app_root"]
    if module.check_mode:
        return
    timings = result["timings"]
    shared_dirs = params["shared_dirs"] + [os.path.dirname(f) for f in params["shared_files"] if os.path.dirname(f)]
    for each, mode in ((root, 0o755), (os.path.join(root, "releases"), 0o755), (os.path.join(root, "shared"), 0o750)):
        directory(each, owner, mode)
    for each in shared_dirs:
        directory(os.path.join(root, "shared", each), owner, 0o750)
    for each in params["shared_files"]:
        shared = os.path.join(root, "shared", each)
        if not os.path.lexists(shared):
            write_atomic(shared, "", 0o640, owner.uid, owner.gid)
    hold_releases(root)
    # A release directory without its manifest is what an interrupted deploy left.
    if os.path.isfile(os.path.join(path, "release.json")):
        result.update(created=False, changed=False)  # the run we waited for completed it
        return
    if os.path.lexists(path):
        shutil.rmtree(path)
    directory(path, owner, 0o755)
    started = time.monotonic()
    # As root (the artifact may sit in the connection user's private temporary
    # directory), then every file is handed to the app user.
    proc = subprocess.run(["tar", "-x", "-z", "--no-same-owner", "-f", params["artifact"], "-C", path],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        module.fail_json(msg=f"unpacking the artifact failed: {proc.stderr.strip()}", stderr=proc.stderr)
    for directory_path, dirs, files in os.walk(path):
        for name in dirs + files:
            owner.chown(os.path.join(directory_path, name))
    timings["unpack"] = round(time.monotonic() - started, 2)
    started = time.monotonic()
    run_as(module, owner, [params["python"], "-m", "venv", os.path.join(path, "venv")], path, "creating the virtualenv")
    timings["venv"] = round(time.monotonic() - started, 2)
    started = time.monotonic()
    run_as(module, owner, [os.path.join(path, "venv/bin/pip"), "install", *params["pip_args"]], path,
           "pip install")
    timings["pip"] = round(time.monotonic() - started, 2)
    for each in params["shared_dirs"] + params["shared_files"]:
        inside = os.path.join(path, each)
        if os.path.isdir(inside) and not os.path.islink(inside):
            shutil.rmtree(inside)
        directory(os.path.dirname(inside), owner, 0o755)
        link(os.path.join(root, "shared", each), inside, owner)
    write_atomic(os.path.join(path, ".env"), params["env_content"], 0o600, owner.uid, owner.gid)
    write_atomic(os.path.join(path, "with-env"), params["wrapper_content"], 0o755, owner.uid, owner.gid)


def step_build(module: AnsibleModule, owner: Owner | None, result: dict) -> None:
    params, path = module.params, module.params["path"]
    if module.check_mode:
        return
    hold_releases(params["app_root"])
    manage = shlex.split(params["manage_command"])
    changed = False
    outputs = {}
    extra = [{"args": shlex.split(c)} for c in params["build_commands"]]
    for command in params["commands"] + extra:
        args = [str(a) for a in command["args"]]
        started = time.monotonic()
        output = run_as(module, owner, ["./with-env", *manage, *args], path, f"`{' '.join(args)}`")
        result["timings"][args[0]] = round(time.monotonic() - started, 2)
        outputs[args[0]] = output
        unchanged = command.get("unchanged")
        changed = changed or not (unchanged and re.search(unchanged, output, re.MULTILINE))
    result["outputs"] = outputs
    if params["manifest"] is not None:
        manifest = json.dumps(params["manifest"], indent=4) + "\n"
        write_atomic(os.path.join(path, "release.json"), manifest, 0o644, owner.uid, owner.gid)
        changed = True
    result["changed"] = changed


def step_activate(module: AnsibleModule, owner: Owner | None, result: dict) -> None:
    root = module.params["app_root"]
    target = os.path.join("releases", os.path.basename(module.params["path"]))
    current_link = os.path.join(root, "current")
    try:
        current = os.readlink(current_link)
    except OSError:
        current = ""
    result["replaced"] = os.path.basename(current.rstrip("/"))
    if current == target:
        return
    result["changed"] = True
    if module.check_mode:
        return
    if current:
        link(current, os.path.join(root, "previous"), owner)
    link(target, current_link, owner)


def step_prune(module: AnsibleModule, owner: Owner | None, result: dict) -> None:  # noqa: ARG001
    root, keep = module.params["app_root"], module.params["keep"]
    releases = os.path.join(root, "releases")
    protected = {os.path.realpath(module.params["path"])}
    for name in ("current", "previous"):
        if os.path.islink(os.path.join(root, name)):
            protected.add(os.path.realpath(os.path.join(root, name)))
    dirs = [os.path.join(releases, n) for n in os.listdir(releases) if os.path.isdir(os.path.join(releases, n))]
    manifests = {d: os.path.join(d, "release.json") for d in dirs}
    complete = sorted((d for d in dirs if os.path.isfile(manifests[d])),
                      key=lambda d: os.stat(manifests[d]).st_mtime, reverse=True)
    doomed = complete[keep:] + [d for d in dirs if d not in complete]
    removed = [d for d in doomed if os.path.realpath(d) not in protected]
    result.update(removed=removed, changed=bool(removed))
    if not module.check_mode:
        for each in removed:
            shutil.rmtree(each)


STEPS = {"files": step_files, "build": step_build, "activate": step_activate, "prune": step_prune}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "step": {"type": "str", "required": True, "choices": list(STEPS)},
            "path": {"type": "path", "required": True},
            "app_root": {"type": "path", "required": True},
            "user": {"type": "str", "required": True},
            "group": {"type": "str", "required": True},
            "artifact": {"type": "path"},
            "python": {"type": "path", "default": "/usr/bin/python3"},
            "pip_args": {"type": "list", "elements": "str", "default": []},
            "shared_dirs": {"type": "list", "elements": "str", "default": []},
            "shared_files": {"type": "list", "elements": "str", "default": []},
            "env_content": {"type": "str", "default": "", "no_log": True},
            "wrapper_content": {"type": "str", "default": ""},
            "manage_command": {"type": "str", "default": ""},
            "commands": {"type": "list", "elements": "dict", "default": []},
            "build_commands": {"type": "list", "elements": "str", "default": []},
            "manifest": {"type": "dict"},
            "keep": {"type": "int", "default": 5},
        },
        required_if=[("step", "files", ("artifact",))],
        supports_check_mode=True,
    )
    params = module.params
    params["app_root"] = params["app_root"].rstrip("/")
    result = {"changed": False, "timings": {}}
    step = params["step"]
    if step == "files":
        result["created"] = not os.path.isfile(os.path.join(params["path"], "release.json"))
        result["changed"] = result["created"]
        if not result["created"]:
            module.exit_json(**result)
    if step == "prune" and not os.path.isdir(os.path.join(params["app_root"], "releases")):
        module.exit_json(**result)
    try:
        owner = Owner(params["user"], params["group"])
    except KeyError:
        if not module.check_mode:
            module.fail_json(msg=f"user {params['user']} or group {params['group']} does not exist on this host")
        owner = None  # a first run in check mode: the app user does not exist yet; nothing is written
    STEPS[step](module, owner, result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
