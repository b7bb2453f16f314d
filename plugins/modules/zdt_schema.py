#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Before a rollback: the migrations the database has that the target release does not know."""
from __future__ import annotations

DOCUMENTATION = r"""
module: zdt_schema
short_description: Before a rollback, find the applied migrations the target release does not know
author: zerodowntime.web contributors (@zerodowntime)
description:
  - Asks Django, in the rollback target (its own code and C(with-env), as the app user), which migrations the
    database has applied that the target has no file for (a squashed migration the target has counts for the
    ones it replaces).
  - O(mode=refuse) fails, naming them, before anything changes. O(mode=ignore) goes on; the target then runs
    on a schema it does not know (a column it does not fill that is NOT NULL fails its inserts).
    O(mode=unapply) unapplies them with the code of O(serving) (the release that has their files,
    C(migrate APP TARGET_LEAF) per app; an app the target does not have goes to C(zero)). The deploy role runs
    it right after a rollback's switch, so the release that serves then is the target, and O(serving) names
    the release rolled back from.
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
  target:
    description: The rollback target.
    type: str
    required: true
  serving:
    description: The release whose code has the migrations' files (O(mode=unapply)).
    type: str
    default: ""
  manage_command:
    description: Management command, relative to a release.
    type: str
    required: true
  user:
    description: User the commands run as.
    type: str
    required: true
  mode:
    description: What to do about migrations the target does not know.
    type: str
    choices: [refuse, ignore, unapply]
    default: refuse
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: In check mode the migrations are looked up, nothing is unapplied.
  diff_mode:
    support: none
  platform:
    platforms: debian
"""

EXAMPLES = r"""
- name: Refuse a rollback across migrations 1.0.0 does not know
  zerodowntime.web.zdt_schema:
    app_name: webxample
    app_root: /srv/webxample
    target: 1.0.0-4491536f
    serving: 2.0.0-3f2a9c1d
    manage_command: venv/bin/python manage.py
    user: webxample
"""

RETURN = r"""
unknown:
  description: Applied migrations the target does not know.
  type: list
  returned: always
  sample: [pages.0003_job_priority]
unapplied:
  description: The migrate commands run (O(mode=unapply)).
  type: list
  returned: always
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_django import DjangoError, unapply, unknown_migrations
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App, LayoutError


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app_name": {"type": "str", "required": True},
            "app_root": {"type": "path", "required": True},
            "target": {"type": "str", "required": True},
            "serving": {"type": "str", "default": ""},
            "manage_command": {"type": "str", "required": True},
            "user": {"type": "str", "required": True},
            "mode": {"type": "str", "choices": ["refuse", "ignore", "unapply"], "default": "refuse"},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        app = App(params["app_name"], params["app_root"])
        target = app.release(params["target"])
        serving = app.release(params["serving"]) if params["serving"] else ""
    except LayoutError as error:
        module.fail_json(msg=str(error))
    result = {"changed": False, "unknown": [], "unapplied": []}
    try:
        unknown, leaves = unknown_migrations(target, params["manage_command"], params["user"])
    except DjangoError as error:
        module.fail_json(msg=f"could not ask release {params['target']} which migrations it knows: {error}", **result)
    result["unknown"] = unknown
    if not unknown or params["mode"] == "ignore":
        module.exit_json(**result)
    if params["mode"] == "refuse":
        module.fail_json(msg=f"the database has migrations that release {params['target']} does not know: "
                             f"{', '.join(unknown)} (applied by a later release). Rolling back would run "
                             f"{params['target']} on a schema it does not know. Nothing was changed. To go on "
                             "anyway: -e deploy_rollback_migrations=ignore; to unapply them (with the code of the release "
                             "rolled back from, right after the switch): -e deploy_rollback_migrations=unapply (see "
                             "the deploy role's README).",
                         **result)
    if not serving:
        module.fail_json(msg="mode=unapply needs the serving release", **result)
    result["changed"] = True
    if not module.check_mode:
        try:
            result["unapplied"] = unapply(serving, params["manage_command"], params["user"], unknown, leaves)
        except DjangoError as error:
            module.fail_json(msg=f"unapplying {', '.join(unknown)} failed: {error}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
