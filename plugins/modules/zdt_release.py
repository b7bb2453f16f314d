#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Create a release directory (virtualenv, app, shared links, env), or remove one."""
from __future__ import annotations

DOCUMENTATION = r"""
module: zdt_release
short_description: Create a release of an app (virtualenv, app, shared links, env file), or remove one
author: zerodowntime.web contributors (@zerodowntime)
description:
  - C(state=present) creates C(APP_ROOT/releases/RELEASE) from an artifact unless the release is complete (has
    its C(release.json)). It creates the app's layout when missing (root, C(releases/), C(shared/) and the
    shared paths, the media directory readable by nginx's group), removes what an interrupted deploy left in
    the release directory, unpacks the artifact, creates the virtualenv and installs it as the app user (at
    nice 10, in a session of its own, so the serving release keeps the CPU), then the shared links, the 0600
    env file and the C(with-env) wrapper. It does not run management commands (see M(zerodowntime.web.zdt_manage)).
  - C(state=absent) removes the release directory; it refuses the release C(current) or C(previous) points at.
  - The action plugin of the same name ships O(artifact_src) from the controller in the same task, only when the
    release is not already complete.
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
  state:
    description: Whether the release exists.
    type: str
    choices: [present, absent]
    default: present
  user:
    description: Unprivileged user that owns the release and runs its commands.
    type: str
    default: ""
  group:
    description: Group of the release's files.
    type: str
    default: ""
  artifact:
    description: (present) The artifact (.tar.gz) on the host.
    type: path
  artifact_src:
    description: (present) The artifact on the controller; the action plugin ships it and sets O(artifact).
    type: path
  python:
    description: (present) Python that creates the virtualenv.
    type: path
    default: /usr/bin/python3
  pip_args:
    description: (present) Arguments of C(pip install) (after C(install)).
    type: list
    elements: str
    default: []
  shared_dirs:
    description: (present) Directories under C(shared/) linked into the release.
    type: list
    elements: str
    default: []
  shared_files:
    description: (present) Files under C(shared/) linked into the release (created empty when missing).
    type: list
    elements: str
    default: []
  media_dir:
    description: >-
      (present) Directory under C(shared/) for uploaded media, linked into the release like O(shared_dirs): owned
      by the app user, group O(media_group), mode 2750, so nginx reads it and only the app writes it ("" for none).
    type: str
    default: ""
  media_group:
    description: (present) Group of the media directory (nginx's).
    type: str
    default: www-data
  env_content:
    description: (present) Content of the release's C(.env) (mode 0600, never logged).
    type: str
    default: ""
  wrapper_content:
    description: (present) Content of the C(with-env) wrapper.
    type: str
    default: ""
  lock_token:
    description: Token of the deploy lock; the lock's record then names this release.
    type: str
    default: ""
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: none
  platform:
    platforms: debian
"""

EXAMPLES = r"""
- name: Create release 2.0.0-3f2a9c1d of webxample from an artifact built on the controller
  zerodowntime.web.zdt_release:
    app_name: webxample
    app_root: /srv/webxample
    release: 2.0.0-3f2a9c1d
    user: webxample
    group: webxample
    artifact_src: ~/.cache/zerodowntime/webxample/0123456789abcdef/artifact.tar.gz
    pip_args: [--no-index, --find-links, /srv/webxample/releases/2.0.0-3f2a9c1d/wheels, webxample==2.0.0]
    shared_dirs: [var]
    media_dir: media
    env_content: "DJANGO_SECRET_KEY='...'\n"
    wrapper_content: "#!/bin/sh\nset -a; . ./.env; set +a; exec \"$@\"\n"
"""

RETURN = r"""
created:
  description: Whether this call created the release.
  type: bool
  returned: when state is present
  sample: true
timings:
  description: Seconds of each part (unpack, venv, pip).
  type: dict
  returned: when the release was created
  sample: {unpack: 0.21, venv: 2.1, pip: 5.8}
"""

import os
import shutil
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_files import directory, link_atomic, write_atomic
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App, LayoutError
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_lock import Lock
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_owner import Owner, OwnerError


def create(module: AnsibleModule, app: App, owner: Owner, result: dict) -> None:
    params, release = module.params, module.params["release"]
    path = app.release(release)
    timings = result["timings"]
    uid, gid = owner.uid, owner.gid
    directory(app.root, 0o755, uid, gid)
    directory(app.releases, 0o755, uid, gid)
    # Others may traverse shared/ (nginx reaches the media directory), not list it.
    directory(app.shared, 0o751, uid, gid)
    shared_dirs = params["shared_dirs"] + [os.path.dirname(f) for f in params["shared_files"] if os.path.dirname(f)]
    for each in shared_dirs:
        directory(f"{app.shared}/{each}", 0o750, uid, gid)
    if params["media_dir"]:
        try:
            media_gid = owner.group_id(params["media_group"])
        except OwnerError as error:
            module.fail_json(msg=str(error))
        directory(f"{app.shared}/{params['media_dir']}", 0o2750, uid, media_gid)
    for each in params["shared_files"]:
        shared = f"{app.shared}/{each}"
        if not os.path.lexists(shared):
            write_atomic(shared, "", 0o640, uid, gid)
    # A release directory without its manifest is what an interrupted deploy left.
    if os.path.lexists(path):
        shutil.rmtree(path)
    directory(path, 0o755, uid, gid)
    started = time.monotonic()
    # As root (the artifact may sit in the connection user's private temporary
    # directory), then every file is handed to the app user.
    rc, _out, err = module.run_command(["tar", "-x", "-z", "--no-same-owner", "-f", params["artifact"], "-C", path])
    if rc != 0:
        module.fail_json(msg=f"unpacking the artifact failed: {err.strip()}", **result)
    for directory_path, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(directory_path, name), uid, gid)
    timings["unpack"] = round(time.monotonic() - started, 2)
    started = time.monotonic()
    owner.run(module, [params["python"], "-m", "venv", f"{path}/venv"], path, "creating the virtualenv", result)
    timings["venv"] = round(time.monotonic() - started, 2)
    started = time.monotonic()
    owner.run(module, [f"{path}/venv/bin/pip", "install", *params["pip_args"]], path, "pip install", result)
    timings["pip"] = round(time.monotonic() - started, 2)
    linked = params["shared_dirs"] + params["shared_files"] + ([params["media_dir"]] if params["media_dir"] else [])
    for each in linked:
        inside = f"{path}/{each}"
        if os.path.isdir(inside) and not os.path.islink(inside):
            shutil.rmtree(inside)
        if os.path.dirname(each):
            directory(os.path.dirname(inside), 0o755, uid, gid)
        link_atomic(f"{app.shared}/{each}", inside, uid, gid)
    write_atomic(f"{path}/.env", params["env_content"], 0o600, uid, gid)
    write_atomic(f"{path}/with-env", params["wrapper_content"], 0o755, uid, gid)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app_name": {"type": "str", "required": True},
            "app_root": {"type": "path", "required": True},
            "release": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "user": {"type": "str", "default": ""},
            "group": {"type": "str", "default": ""},
            "artifact": {"type": "path"},
            "artifact_src": {"type": "path"},
            "python": {"type": "path", "default": "/usr/bin/python3"},
            "pip_args": {"type": "list", "elements": "str", "default": []},
            "shared_dirs": {"type": "list", "elements": "str", "default": []},
            "shared_files": {"type": "list", "elements": "str", "default": []},
            "media_dir": {"type": "str", "default": ""},
            "media_group": {"type": "str", "default": "www-data"},
            "env_content": {"type": "str", "default": "", "no_log": True},
            "wrapper_content": {"type": "str", "default": ""},
            "lock_token": {"type": "str", "default": "", "no_log": False},
        },
        required_if=[("state", "present", ("artifact", "user", "group"))],
        supports_check_mode=True,
    )
    params = module.params
    try:
        app = App(params["app_name"], params["app_root"])
        path = app.release(params["release"])
    except LayoutError as error:
        module.fail_json(msg=str(error))
    result = {"changed": False, "timings": {}}
    if params["state"] == "absent":
        if params["release"] in app.serving():
            module.fail_json(msg=f"release {params['release']} is current or previous: not removed")
        result["changed"] = os.path.lexists(path)
        if result["changed"] and not module.check_mode:
            shutil.rmtree(path)
        module.exit_json(**result)
    result["created"] = not app.complete(params["release"])
    result["changed"] = result["created"]
    if not result["created"] or module.check_mode:
        module.exit_json(**result)
    lock = Lock(app)
    lock.hold_work()  # wait for a module of a dead deploy that may still run here
    if params["lock_token"]:
        lock.update(params["lock_token"], release=params["release"])
    if app.complete(params["release"]):  # the run we waited for completed it
        result.update(created=False, changed=False)
        module.exit_json(**result)
    try:
        owner = Owner(params["user"], params["group"])
    except OwnerError as error:
        module.fail_json(msg=str(error))
    create(module, app, owner, result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
