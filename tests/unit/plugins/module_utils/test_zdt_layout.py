"""The on-host layout: every name unambiguous, ownership by marker and exact path."""

from __future__ import annotations

import os

import pytest
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import (
    App,
    LayoutError,
    nginx_ident,
    parse_program,
    valid_app,
    valid_release,
)


@pytest.fixture
def conf_dir(tmp_path):
    return str(tmp_path)


def test_prefix_sharing_apps_never_share_a_program_name():
    shop, admin = App("shop"), App("shop-admin")
    # The case a prefix glob got wrong: app shop, release admin-1.0-abc vs app shop-admin, release 1.0-abc.
    assert shop.program("admin-1.0-abc") != admin.program("1.0-abc")
    assert parse_program(shop.program("admin-1.0-abc")) == ("shop", "admin-1.0-abc", "web")
    assert parse_program(admin.program("1.0-abc")) == ("shop-admin", "1.0-abc", "web")


@pytest.mark.parametrize("app,release,process", [
    ("shop", "1.0.0-3f2a9c1d", "web"), ("a-b", "1.web.x", "worker"), ("a_b", "2.0", "beat_2"),
])
def test_program_names_read_back_to_what_made_them(app, release, process):
    assert parse_program(App(app).program(release, process)) == (app, release, process)


@pytest.mark.parametrize("name", ["shop", "shop-1.0.web", "x@1.0", "x@1.0.Worker", "X@1.0.web", "x@..web"])
def test_names_this_layout_did_not_make_are_not_read_as_programs(name):
    assert parse_program(name) is None


def test_nginx_identifiers_are_injective():
    assert nginx_ident("a-b") != nginx_ident("a_b")
    assert App("a-b").upstream != App("a_b").upstream
    assert App("a-b").release_var != App("a_b").release_var
    # No app's upstream is another app's preview upstream.
    names = ["foo", "foo_preview", "foo-preview", "foo__preview"]
    upstreams = [App(n).upstream for n in names] + [App(n).preview_upstream for n in names]
    assert len(upstreams) == len(set(upstreams))
    assert all(set(App(n).release_var) <= set("abcdefghijklmnopqrstuvwxyz0123456789_") for n in names)


def test_an_apps_preview_file_is_never_another_apps_site_file():
    files = {App(n).site_conf for n in ("foo", "foo-preview", "foo.preview")[:2]}
    files |= {App(n).preview_conf for n in ("foo", "foo-preview")}
    assert len(files) == 4
    assert App("foo").preview_conf != App("foo-preview").site_conf


@pytest.mark.parametrize("name", ["redapp\n", "Shop", "1shop", "shop.x", "a" * 33, "", None])
def test_bad_app_names_are_refused(name):
    assert not valid_app(name)
    with pytest.raises(LayoutError):
        App(name)


@pytest.mark.parametrize("release", ["2.0.0\n", "../etc", "a/b", "a b", "", ".hidden", "a..b", "x" * 65])
def test_bad_release_ids_are_refused(release):
    assert not valid_release(release)
    with pytest.raises(LayoutError):
        App("shop").release(release)


@pytest.mark.parametrize("root", ["relative", "/srv/../etc", "/srv/a b", "/srv/./x", "/"])
def test_bad_roots_are_refused(root):
    with pytest.raises(LayoutError):
        App("shop", root)


def write(path, text):
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(text)


def test_ownership_is_the_marker_and_the_exact_path(conf_dir):
    shop, admin = App("shop", conf_dir=conf_dir), App("shop-admin", conf_dir=conf_dir)
    mine = shop.program_conf("1.0-abc")
    write(mine, shop.marker("1.0-abc") + "\n[program:x]\n")
    write(admin.program_conf("1.0-abc"), admin.marker("1.0-abc") + "\n")
    write(os.path.join(conf_dir, "shop-handmade.conf"), "[program:shop-handmade]\ncommand=sleep 1\n")
    write(os.path.join(conf_dir, "shop@copied.conf"), shop.marker("1.0-abc") + "\n")  # marker, wrong path
    other_root = App("shop", "/opt/shop", conf_dir=conf_dir)
    write(other_root.program_conf("9.9-abc"), other_root.marker("9.9-abc") + "\n")
    found = shop.programs()
    assert [(p["path"], p["release"], p["process"]) for p in found] == [(mine, "1.0-abc", "web")]
    assert [p["app"] for p in admin.programs()] == ["shop-admin"]
    assert shop.owns(os.path.join(conf_dir, "shop-handmade.conf"), "[program:shop-handmade]\n") is None


def test_links_are_read_back_only_when_they_point_at_this_apps_releases(tmp_path):
    app = App("shop", str(tmp_path / "shop"))
    os.makedirs(app.releases)
    os.symlink("releases/1.0-abc", app.current)
    os.symlink("/etc", app.previous)
    assert app.serving() == ("1.0-abc", "")
    assert app.link_value("1.0-abc") == "releases/1.0-abc"


def test_uv_lives_in_the_app_root_once_per_version_and_its_cache_beside_it():
    app = App("shop", "/srv/shop")
    assert app.uv("0.13.9") == "/srv/shop/.zdt/uv-0.13.9"
    assert app.uv_cache == "/srv/shop/.cache/uv"
    assert {"tools", "uv_cache"} <= set(app.as_dict())


@pytest.mark.parametrize("version", ["", "0.13.9/../x", "../1", "1 2", "v1", "1..2", None])
def test_a_uv_version_that_is_no_version_is_refused(version):
    with pytest.raises(LayoutError, match="uv version"):
        App("shop").uv(version)
