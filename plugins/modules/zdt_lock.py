#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Take or release an app's deploy lock, and read where current and previous point."""
from __future__ import annotations

DOCUMENTATION = r"""
module: zdt_lock
short_description: Take or release the deploy lock of an app, and read its release links
description:
  - C(state=present) creates the app root if needed, takes the lock with an atomic C(mkdir)
    (two deploys can never both take it), records who holds it, and returns where C(current)
    and C(previous) point and whether O(release) is a complete release on this host.
  - A lock that is held fails the task with the holder's details, unless O(break_lock) is set.
  - C(state=absent) appends O(history_entry) to O(history_path) (an audit log, not reported as a
    change) and removes the lock.
  - In check mode nothing is written; the links are still read.
options:
  app_root:
    description: Root of the application (releases/, current, previous).
    type: path
    required: true
  state:
    description: C(present) takes the lock, C(absent) releases it.
    type: str
    choices: [present, absent]
    default: present
  owner:
    description: Who takes the lock (C(action), C(user), C(controller), C(release), C(started_at)).
    type: dict
    default: {}
  break_lock:
    description: Remove a lock left by a deploy that died before taking it.
    type: bool
    default: false
  release:
    description: Release id to look for (its C(release.json) marks it complete).
    type: str
    default: ""
  history_path:
    description: File that gets one JSON line per deploy or rollback.
    type: path
  history_entry:
    description: The line to append, as a dict.
    type: dict
"""

RETURN = r"""
current:
  description: Release id C(current) points at ("" for none).
  type: str
  returned: always
previous:
  description: Release id C(previous) points at ("" for none).
  type: str
  returned: always
release_complete:
  description: Whether O(release) has its manifest on this host.
  type: bool
  returned: always
"""

import json
import os
import shutil

from ansible.module_utils.basic import AnsibleModule

LOCK = ".deploy.lock"


def link_target(path: str) -> str:
    try:
        return os.path.basename(os.readlink(path).rstrip("/"))
    except OSError:
        return ""


def state_of(root: str, release: str) -> dict:
    complete = bool(release) and os.path.isfile(os.path.join(root, "releases", release, "release.json"))
    return {"current": link_target(os.path.join(root, "current")),
            "previous": link_target(os.path.join(root, "previous")),
            "release_complete": complete}


def holder(lock: str) -> dict:
    try:
        with open(os.path.join(lock, "owner.json"), encoding="utf-8") as handle:
            return json.load(handle)
    except (OSError, ValueError):
        return {}


def take(module: AnsibleModule, root: str, result: dict) -> None:
    params = module.params
    lock = os.path.join(root, LOCK)
    if not os.path.isdir(root):
        os.makedirs(root, mode=0o755)
        result["changed"] = True
    if params["break_lock"] and os.path.lexists(lock):
        shutil.rmtree(lock)
        result["broken"] = True
    try:
        os.mkdir(lock, 0o700)
    except FileExistsError:
        owner = params["owner"]
        module.fail_json(
            msg=f"{str(owner.get('action', 'deploy')).capitalize()} of release {owner.get('release', '?')} refused: "
                f"the deploy lock {lock} is held by {json.dumps(holder(lock), sort_keys=True)}. If that deploy "
                f"is dead, run again with -e deploy_break_lock=true.", **result)
    descriptor = os.open(os.path.join(lock, "owner.json"), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(json.dumps(params["owner"], sort_keys=True) + "\n")


def release(module: AnsibleModule, root: str) -> None:
    params = module.params
    if params["history_path"] and params["history_entry"] is not None:
        descriptor = os.open(params["history_path"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        with os.fdopen(descriptor, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(params["history_entry"], sort_keys=True) + "\n")
    shutil.rmtree(os.path.join(root, LOCK), ignore_errors=True)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app_root": {"type": "path", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "owner": {"type": "dict", "default": {}},
            "break_lock": {"type": "bool", "default": False},
            "release": {"type": "str", "default": ""},
            "history_path": {"type": "path"},
            "history_entry": {"type": "dict"},
        },
        supports_check_mode=True,
    )
    root = module.params["app_root"].rstrip("/")
    result = {"changed": False, **state_of(root, module.params["release"])}
    if not module.check_mode:
        if module.params["state"] == "present":
            take(module, root, result)
        else:
            release(module, root)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
