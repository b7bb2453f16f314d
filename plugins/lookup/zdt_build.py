# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Build a release artifact on the controller (lookup: no module round trip, clear errors)."""
from __future__ import annotations

DOCUMENTATION = r"""
name: zdt_build
short_description: Build a release artifact (wheelhouse, and the code of a source-tree app) on the controller
author: zerodowntime.web contributors (@zerodowntime)
version_added: 0.1.0
description:
  - Builds the artifact a release is created from, once, on the controller, and returns what it built. A
    lookup runs in the controller's own process, so it costs no round trip and runs in check mode too.
  - The artifact holds C(wheels/) (the app and its dependencies, so the targets need no index),
    C(zdt-requirements.txt) (what to install from it) and, for a source-tree app, the code snapshot. gunicorn
    (O(gunicorn)) is added when the app does not depend on it; O(extra_requirements) are added to every form.
  - Artifacts are cached in O(out) by the hash of the source content and of these settings.
  - A failed build raises an error that carries the last lines of what pip or git printed.
options:
  source_type:
    description: C(package) (a pyproject project built into a wheel) or C(source) (a tree with requirements).
    type: str
    default: package
  source_path:
    description: Controller path of the project.
    type: str
    default: ""
  git_repo:
    description: Git repository to snapshot instead of a path.
    type: str
    default: ""
  git_version:
    description: Git ref to snapshot.
    type: str
    default: HEAD
  package:
    description: Distribution name of a C(package) app.
    type: str
    default: ""
  requirements:
    description: Requirements file of a C(source) app, relative to its tree.
    type: str
    default: requirements.txt
  version:
    description: Version recorded for a C(source) app.
    type: str
    default: "0"
  python:
    description: Python that runs C(pip wheel).
    type: str
    required: true
  out:
    description: Cache directory.
    type: str
    required: true
  extra_requirements:
    description: More requirements to build and install.
    type: list
    elements: str
    default: []
  gunicorn:
    description: Requirement added when the app does not depend on gunicorn ("" adds none).
    type: str
    default: ""
  targets:
    description:
      - The kinds of hosts to build for, each as the C(venv_release) role reads them (C(python) full version,
        C(implementation), C(machine), C(glibc)); one artifact each, in this order. The requirements are resolved
        by uv for each target's exact Python and platform (environment markers included), binary wheels fetched
        for it, and the target is part of the cache key and content hash. Needs uv on the controller.
      - Empty builds one artifact for the controller's own Python.
    type: list
    elements: dict
    default: []
"""

EXAMPLES = r"""
- name: Build webxample
  ansible.builtin.set_fact:
    build: "{{ lookup('zerodowntime.web.zdt_build', source_path='/src/webxample', package='webxample',
                      python=ansible_playbook_python, out='~/.cache/zerodowntime/webxample') }}"
"""

RETURN = r"""
_raw:
  description: >-
    One dict per target (one for the controller without targets), C(artifact), C(version), C(content_hash),
    C(git_sha), C(type), C(added_gunicorn), C(requirements), C(target), C(changed).
  type: list
  elements: dict
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase
from ansible_collections.zerodowntime.web.plugins.plugin_utils.zdt_build import BuildError, build


class LookupModule(LookupBase):
    def run(self, terms, variables=None, **kwargs):  # noqa: ANN001, ANN201 - Ansible's signature
        self.set_options(var_options=variables, direct=kwargs)
        spec = {name: self.get_option(name) for name in ("source_type", "source_path", "git_repo", "git_version",
                                                         "package", "requirements", "version", "python", "out",
                                                         "extra_requirements", "gunicorn", "targets")}
        if not (spec["source_path"] or spec["git_repo"]):
            raise AnsibleLookupError("zdt_build: give source_path or git_repo")
        targets = spec.pop("targets") or [{}]
        try:
            return [build(dict(spec, target=target)) for target in targets]
        except BuildError as error:
            raise AnsibleLookupError(f"building the release artifact failed: {error}") from None
