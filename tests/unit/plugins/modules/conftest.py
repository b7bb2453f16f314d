"""Run a module's main() in-process with given arguments; its exit_json/fail_json raise."""

from __future__ import annotations

import contextlib
import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes


class Exited(Exception):
    def __init__(self, result: dict, failed: bool) -> None:
        super().__init__(result.get("msg", ""))
        self.result, self.failed = result, failed


@contextlib.contextmanager
def module_args(args: dict):
    try:  # ansible-core 2.19 and later
        from ansible.module_utils.testing import patch_module_args
    except ImportError:
        patch_module_args = None
    if patch_module_args is not None:
        with patch_module_args(args):
            yield
        return
    saved = basic._ANSIBLE_ARGS
    basic._ANSIBLE_ARGS = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    try:
        yield
    finally:
        basic._ANSIBLE_ARGS = saved


@pytest.fixture
def run_module(monkeypatch):
    def exit_json(self, **result):  # noqa: ANN001, ANN003
        raise Exited(result, False)

    def fail_json(self, **result):  # noqa: ANN001, ANN003
        raise Exited(result, True)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)

    def run(main, args: dict) -> Exited:  # noqa: ANN001
        with module_args(args), pytest.raises(Exited) as exited:
            main()
        return exited.value

    return run
