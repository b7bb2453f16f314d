#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Roll an app back to the release standing by in its standby window, in one run."""
from __future__ import annotations

DOCUMENTATION = r"""
module: zdt_rollback
short_description: Roll an app back to the release standing by, in one run on the host (inside the standby window)
author: zerodowntime.web contributors (@zerodowntime)
description:
  - Inside the standby window a deploy opened (see M(zerodowntime.web.zdt_handover)), the release that served before
    still runs. Going back to it is what the window's own helper does when the serving release dies, and this module
    does the same when asked, in one run on the host, under the app's lock; history.jsonl gets the line (action
    C(rollback), the user and controller who asked).
  - The steps, each checked, are those of the helper and of a deploy's rescue; the standby's web program must be
    running, and the database must have no migration the standby does not know (else C(refused), nothing changed);
    then the nginx site as it was before the switch (C(nginx -t), reload, the standby's health and release id
    checked through nginx), C(current) on the standby and C(previous) on the release rolled back from, whose other
    programs are parked and the standby's started again, and a new window in which the release rolled back from
    stands by (O(standby_seconds)).
  - The migration check asks the window's warm check when it answers (the standby's code, loaded once by the
    window's helper as the window opened, asks the database each time), which spares a Django start-up; else a
    management command of the standby.
  - When this does not apply, it changes nothing and says why (RV(why)) so the caller can go the long way, the
    health-gated switch of a deploy; no window is open, the target O(release) is not the one standing by, the
    standby's web program is not running, the database has migrations it does not know (O(migrations)), the app
    changed since the window opened, or the lock is held.
  - Unlike the long way, nothing is previewed before the switch and nothing watched after it in this run (the
    standby served until the deploy and its program still runs; nginx checks it right after the reload, and the
    new window's helper watches it).
  - The action plugin of the same name adds who asks (the user and the controller), as M(zerodowntime.web.zdt_lock)
    does. When the window's helper on the host is the same code as the controller's collection, the action asks
    it directly (one command, the same function; no module is built on the controller, none imported on the
    host); otherwise, and in check mode, this module runs (RV(via)).
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
    description: The release to go back to (C(previous), or empty, is the one C(previous) points at); it must be the one standing by.
    type: str
    default: previous
  migrations:
    description:
      - C(refuse) (a database with migrations the standby does not know is not rolled back here, and RV(why) names
        them; the long way refuses with its message), or C(ignore) (not checked).
    type: str
    choices: [refuse, ignore]
    default: refuse
  standby_seconds:
    description:
      - How long the release rolled back from stands by afterwards, its web program running (the requests it still
        serves finish; rolling forward again is instant), in a standby window of its own; its other programs are
        parked. C(0) does not apply here (that release must drain before it stops; the long way does).
    type: float
    default: 600
  who:
    description: Who asks, for the lock and history (C(user), C(controller)); the action plugin sets it.
    type: dict
    default: {}
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: In check mode it says whether it would roll back, and changes nothing.
  diff_mode:
    support: none
  platform:
    platforms: debian
"""

EXAMPLES = r"""
- name: Roll back to the release standing by, if a window is open
  zerodowntime.web.zdt_rollback:
    app_name: webxample
    app_root: /srv/webxample
  register: fast

- name: Otherwise the long way
  ansible.builtin.include_role:
    name: zerodowntime.web.deploy
    tasks_from: rollback
  when: not fast.rolled_back
"""

RETURN = r"""
rolled_back:
  description: Whether the app went back to the release standing by.
  type: bool
  returned: always
  sample: true
why:
  description: Why this run did not roll back (the caller goes the long way); empty when it did.
  type: str
  returned: always
  sample: no standby window is open
migrations_checked:
  description:
    - Who answered whether the database has migrations the standby does not know; C(window) is the standby window's
      warm check (the standby's code loaded once when the window opened, the database asked now), C(django) a
      management command started for it (when the warm check does not answer), empty when not asked.
  type: str
  returned: always
  sample: window
via:
  description: Who did the job, C(helper) (the window's helper on the host, asked by the action plugin) or C(module).
  type: str
  returned: always
  sample: helper
entry:
  description: The history line recorded (result C(rolled_back)), when it rolled back.
  type: dict
  returned: when rolled back
  sample: {action: rollback, release: 1.0.0-c6f69bf9, from_release: 2.0.0-b767491c, result: rolled_back}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_host import standby_rollback
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App, LayoutError


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app_name": {"type": "str", "required": True},
            "app_root": {"type": "path", "required": True},
            "release": {"type": "str", "default": "previous"},
            "migrations": {"type": "str", "choices": ["refuse", "ignore"], "default": "refuse"},
            "standby_seconds": {"type": "float", "default": 600},
            "who": {"type": "dict", "default": {}},
        },
        supports_check_mode=True,
    )
    try:
        app = App(module.params["app_name"], module.params["app_root"])
    except LayoutError as error:
        module.fail_json(msg=str(error))
    result = standby_rollback(app, module.params, module.check_mode)
    if result.pop("failed", False):
        module.fail_json(**result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
