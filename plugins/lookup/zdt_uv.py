# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""The controller's uv, as the installer ships it to the hosts (lookup: no round trip)."""
from __future__ import annotations

DOCUMENTATION = r"""
name: zdt_uv
short_description: The controller's uv (the one the build uses) - path, version and the machine it runs on
author: zerodowntime.web contributors (@zerodowntime)
version_added: 0.1.0
description:
  - Finds uv as the build (P(zerodowntime.web.zdt_build#lookup)) does, beside O(python) (C(pip install uv)), else on
    C(PATH), and returns one dict, C(path), C(version) (C(uv --version)) and C(machine) (the machine its ELF header
    names, as C(platform.machine()) names it, e.g. C(x86_64) or C(aarch64); empty when it is no Linux program). The
    C(venv_release) role ships this binary to each host once per version (C(venv_release_installer=uv)).
  - Returns an empty dict when the controller has no uv.
options:
  python:
    description: The controller's Python whose directory is searched first (the build's).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Know the controller's uv
  ansible.builtin.debug:
    msg: "{{ lookup('zerodowntime.web.zdt_uv', python=ansible_playbook_python) }}"
"""

RETURN = r"""
_raw:
  description: One dict, C(path), C(version), C(machine); empty when the controller has no uv.
  type: list
  elements: dict
"""

from ansible.plugins.lookup import LookupBase
from ansible_collections.zerodowntime.web.plugins.plugin_utils.zdt_build import uv_binary


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):  # noqa: ANN001, ANN201 - Ansible's signature
        self.set_options(var_options=variables, direct=kwargs)
        return [uv_binary(self.get_option("python"))]
