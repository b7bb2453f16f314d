#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Keep an app's newest releases, remove the older and the incomplete ones."""
from __future__ import annotations

DOCUMENTATION = r"""
module: zdt_prune
short_description: Keep an app's newest complete releases; remove older and incomplete ones
author: zerodowntime.web contributors (@zerodowntime)
description:
  - Keeps the O(keep) newest complete releases (by the time their manifest was written) and removes the others
    and every incomplete release directory (one without C(release.json), left by an interrupted deploy).
  - Never removes the release C(current) or C(previous) points at, one with a program on the host (the standby),
    or one listed in O(protect).
  - A removed release leaves C(releases/) at once (renamed into C(APP_ROOT/.zdt/trash)); an rm at nice 19 in a
    session of its own deletes it there after the module returned, with anything an earlier run left there.
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
  keep:
    description: Complete releases to keep.
    type: int
    default: 5
  protect:
    description: More releases never to remove.
    type: list
    elements: str
    default: []
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
- name: Keep the five newest releases of webxample
  zerodowntime.web.zdt_prune:
    app_name: webxample
    app_root: /srv/webxample
    keep: 5
"""

RETURN = r"""
removed:
  description: Release ids removed.
  type: list
  returned: always
  sample: [0.8.0-77aa01b2]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_host import prune
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App, LayoutError


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app_name": {"type": "str", "required": True},
            "app_root": {"type": "path", "required": True},
            "keep": {"type": "int", "default": 5},
            "protect": {"type": "list", "elements": "str", "default": []},
        },
        supports_check_mode=True,
    )
    params = module.params
    try:
        app = App(params["app_name"], params["app_root"])
    except LayoutError as error:
        module.fail_json(msg=str(error))
    removed = prune(app, params["keep"], params["protect"], module.check_mode)
    module.exit_json(changed=bool(removed), removed=removed)


if __name__ == "__main__":
    main()
