#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Undo a failed deploy or rollback, every step even when one fails."""
from __future__ import annotations

DOCUMENTATION = r"""
module: zdt_rescue
short_description: Undo what a failed deploy or rollback did, each step even when an earlier one fails
author: zerodowntime.web contributors (@zerodowntime)
description:
  - Before the switch (O(switched) false) the public site was never touched; the preview server goes (and nginx
    reloads if it was loaded), then the failed release's programs and, when this deploy created it, its
    directory.
  - After the switch, the site file as it was before the switch is put back (tested with C(nginx -t), reloaded,
    and the release that served is checked through nginx), C(current) and C(previous) point where they pointed,
    then the failed release's programs go.
  - Every step runs even when one before it failed; the result lists what was undone and what could not be, and
    the task fails only when a step could not be done.
  - The same steps (module_utils C(zdt_host.go_back)) are what the standby helper runs when a release dies after
    the deploy.
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
    description: The failed release.
    type: str
    required: true
  switched:
    description: Whether the public site was switched to it.
    type: bool
    default: false
  links:
    description: Where C(current) and C(previous) pointed before (C(current), C(previous)).
    type: dict
    default: {}
  check:
    description: The check through nginx of the release that served (see M(zerodowntime.web.zdt_nginx_site)).
    type: dict
  remove_release:
    description: Remove the failed release's directory (this deploy created it).
    type: bool
    default: false
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: none
  diff_mode:
    support: none
  platform:
    platforms: debian
"""

EXAMPLES = r"""
- name: Undo the switch to 2.0.0-3f2a9c1d
  zerodowntime.web.zdt_rescue:
    app_name: webxample
    app_root: /srv/webxample
    release: 2.0.0-3f2a9c1d
    switched: true
    links: {current: 1.0.0-4491536f, previous: 0.9.0-0b2e6c11}
    check: {port: 80, host: www.example.com, release: 1.0.0-4491536f, health_path: /health}
"""

RETURN = r"""
done:
  description: The undo steps done.
  type: list
  returned: always
  sample: ["nginx site back on release 1.0.0-4491536f (reloaded in 0.05 s, checked through nginx)"]
not_done:
  description: The undo steps that could not be done, with why.
  type: list
  returned: always
"""

import os
import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.zerodowntime.web.plugins.module_utils import zdt_nginx
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_files import read
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_host import go_back, load_state, owner_of, systemctl
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App, LayoutError
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_supervisor import Supervisor


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app_name": {"type": "str", "required": True},
            "app_root": {"type": "path", "required": True},
            "release": {"type": "str", "required": True},
            "switched": {"type": "bool", "default": False},
            "links": {"type": "dict", "default": {}},
            "check": {"type": "dict"},
            "remove_release": {"type": "bool", "default": False},
        },
        supports_check_mode=False,
    )
    params = module.params
    try:
        app = App(params["app_name"], params["app_root"])
        path = app.release(params["release"])
    except LayoutError as error:
        module.fail_json(msg=str(error))
    done, errors = [], []
    if not params["switched"] and os.path.lexists(app.preview_conf):
        try:
            os.unlink(app.preview_conf)
            zdt_nginx.reload()
            done.append("preview server removed")
        except (OSError, zdt_nginx.NginxError) as error:
            errors.append(f"preview server: {error}")
    site = read(app.site_before) if params["switched"] else None
    if params["switched"] and site is None:
        errors.append(f"nginx site: {app.site_before} is missing, the site still points at {params['release']}")
    uid, gid = owner_of(app.root) if os.path.isdir(app.root) else (0, 0)
    more_done, more_errors = go_back(app, Supervisor(), params["release"],
                                     params["links"] if params["switched"] else {}, site,
                                     params["check"], (uid, gid))
    done += more_done
    errors += more_errors
    state = load_state(app)
    if state and state.get("standby") == params["release"]:
        systemctl("stop", app.standby_unit)
        os.unlink(app.standby_state)
        done.append("standby window of the failed release closed")
    if params["remove_release"] and params["release"] not in app.serving() and os.path.lexists(path):
        try:
            shutil.rmtree(path)
            done.append(f"release directory {path} removed")
        except OSError as error:
            errors.append(f"release directory: {error}")
    if errors:
        module.fail_json(msg="; ".join(errors), done=done, not_done=errors, changed=bool(done))
    module.exit_json(changed=bool(done), done=done, not_done=[])


if __name__ == "__main__":
    main()
