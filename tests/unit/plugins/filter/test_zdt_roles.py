"""The variables set for the roles the deploy includes, checked once against their specs."""

from __future__ import annotations

from pathlib import Path

from ansible_collections.zerodowntime.web.plugins.filter.zdt_roles import zdt_role_problems

ROLES = str(Path(__file__).resolve().parents[4] / "roles")


def test_fine_variables_have_no_problem():
    assert zdt_role_problems({"gunicorn_supervisor_threads": 4, "nginx_upstream_verify_enabled": "yes",
                              "venv_release_python": "python3.11", "nginx_lb_not_an_option": object()}, ROLES) == []


def test_each_problem_names_its_variable_and_role():
    found = zdt_role_problems({"gunicorn_supervisor_threads": "four", "nginx_upstream_verify_timeout": [1]}, ROLES)
    assert len(found) == 2, found
    assert any("gunicorn_supervisor_threads" in p and "the gunicorn_supervisor role" in p for p in found), found
    assert any("nginx_upstream_verify_timeout" in p and "the nginx_upstream role" in p for p in found), found


def test_an_option_of_another_entry_point_counts_and_none_is_required():
    # gunicorn_supervisor_window belongs to the `handover` entry point only; nothing is missing.
    assert zdt_role_problems({"gunicorn_supervisor_window": "open"}, ROLES) != []
    assert zdt_role_problems({}, ROLES) == []
