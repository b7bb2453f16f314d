#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Point an app's current (and previous) links at releases, atomically."""
from __future__ import annotations

DOCUMENTATION = r"""
module: zdt_current
short_description: Point C(current) at a release and C(previous) at the one it replaces, atomically
author: zerodowntime.web contributors (@zerodowntime)
description:
  - Points C(APP_ROOT/current) at O(release) by renaming a new symlink over the old one (atomic), and
    C(previous) at the release C(current) pointed at before; nothing changes when C(current) already points
    at O(release).
  - With O(previous) set, C(previous) is set to it instead ("" removes it); the deploy's rescue puts both
    links back as they were.
  - Refuses a release that is not complete (no C(release.json)).
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
    description: Release C(current) points at.
    type: str
    required: true
  previous:
    description: Release C(previous) points at ("" removes the link); by default the one C(current) replaces.
    type: str
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
  diff_mode:
    support: full
  platform:
    platforms: debian
"""

EXAMPLES = r"""
- name: Point current at 2.0.0-3f2a9c1d
  zerodowntime.web.zdt_current:
    app_name: webxample
    app_root: /srv/webxample
    release: 2.0.0-3f2a9c1d
"""

RETURN = r"""
before:
  description: Where C(current) and C(previous) pointed before.
  type: dict
  returned: always
  sample: {current: 1.0.0-4491536f, previous: 0.9.0-0b2e6c11}
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_files import link_atomic
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App, LayoutError


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app_name": {"type": "str", "required": True},
            "app_root": {"type": "path", "required": True},
            "release": {"type": "str", "required": True},
            "previous": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        app = App(params["app_name"], params["app_root"])
        app.release(params["release"])
        if params["previous"]:
            app.release(params["previous"])
    except LayoutError as error:
        module.fail_json(msg=str(error))
    current, previous = app.serving()
    wanted_current = params["release"]
    wanted_previous = params["previous"] if params["previous"] is not None else (
        current if current and current != wanted_current else previous)
    result = {"changed": (current, previous) != (wanted_current, wanted_previous),
              "before": {"current": current, "previous": previous}}
    if module._diff:
        result["diff"] = {"before": f"current -> {current}\nprevious -> {previous}\n",
                          "after": f"current -> {wanted_current}\nprevious -> {wanted_previous}\n",
                          "before_header": app.current, "after_header": app.current}
    if not app.complete(wanted_current) and not module.check_mode:
        module.fail_json(msg=f"release {wanted_current} is not a complete release of {app.name}: current unchanged",
                         **result)
    if result["changed"] and not module.check_mode:
        st = os.stat(app.root)
        if wanted_previous:
            link_atomic(app.link_value(wanted_previous), app.previous, st.st_uid, st.st_gid)
        elif os.path.lexists(app.previous):
            os.unlink(app.previous)
        link_atomic(app.link_value(wanted_current), app.current, st.st_uid, st.st_gid)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
