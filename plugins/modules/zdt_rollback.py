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
    does.
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
entry:
  description: The history line recorded (result C(rolled_back)), when it rolled back.
  type: dict
  returned: when rolled back
  sample: {action: rollback, release: 1.0.0-c6f69bf9, from_release: 2.0.0-b767491c, result: rolled_back}
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_django import DjangoError
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_host import load_state, rollback, standby_unknown_migrations
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App, LayoutError
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_supervisor import Supervisor, SupervisorError


def not_applicable(app: App, state: dict | None, params: dict, checked: dict) -> str:
    """Why going back to the standby does not apply here, or ''. CHECKED['by']: who answered
    the migration check ('window': the window's warm check; 'django': a command started for it)."""
    if params["standby_seconds"] <= 0:
        return "standby_seconds is 0: the release rolled back from must drain first"
    if not state:
        return "no standby window is open"
    current, previous = app.serving()
    release = previous if params["release"] in ("", "previous") else params["release"]
    if release != state["standby"]:
        return f"release {release or '(none)'} is not the one standing by ({state['standby']})"
    if current != state["serving"]:
        return f"release {state['serving']} no longer serves"
    try:
        web = Supervisor().state(app.program(state["standby"]))
    except SupervisorError as error:
        return str(error)
    if web != "RUNNING":
        return f"the standby's program {app.program(state['standby'])} is {web or 'gone'}"
    manage = state.get("manage")
    if manage and params["migrations"] == "refuse":
        try:
            unknown, checked["by"] = standby_unknown_migrations(app, state)
        except DjangoError as error:
            return f"could not ask release {state['standby']} which migrations it knows: {error}"
        if unknown:
            return f"the database has migrations release {state['standby']} does not know: {', '.join(unknown)}"
    return ""


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
    params = module.params
    try:
        app = App(params["app_name"], params["app_root"])
    except LayoutError as error:
        module.fail_json(msg=str(error))
    state = load_state(app)
    checked = {"by": ""}
    why = not_applicable(app, state, params, checked)
    if why or module.check_mode:
        module.exit_json(changed=not why, rolled_back=False, why=why or "check mode", migrations_checked=checked["by"])
    who = {key: str(params["who"].get(key, "")) for key in ("user", "controller")}
    said: list[str] = []
    # The migrations were asked about above (a Django start-up is most of this run's time).
    entry = rollback(app, state, "rollback to the release standing by (one step, in the window)", said.append,
                     who=who, wait=0, migrations="ignore", standby_seconds=params["standby_seconds"],
                     checked=checked["by"])
    if entry is None:
        module.exit_json(changed=False, rolled_back=False, why="; ".join(said) or "the app changed")
    if entry["result"] == "refused":  # its program stopped since the check above
        module.fail_json(msg=f"Rollback of {app.name} to {state['standby']} refused: {entry['reason']}. Nothing was "
                             "changed.", entry=entry, rolled_back=False)
    if entry["result"] != "rolled_back":
        module.fail_json(msg=f"Rollback of {app.name} to {state['standby']} did not complete: {entry['reason']}",
                         entry=entry, rolled_back=False)
    module.exit_json(changed=True, rolled_back=True, why="", entry=entry, migrations_checked=checked["by"])


if __name__ == "__main__":
    main()
