#!/usr/bin/python
# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""Create a release directory (virtualenv, app, shared links, env), or remove one."""
from __future__ import annotations

DOCUMENTATION = r"""
module: zdt_release
short_description: Create a release of an app (virtualenv, app, shared links, env file), or remove one
author: zerodowntime.web contributors (@zerodowntime)
description:
  - C(state=present) creates C(APP_ROOT/releases/RELEASE) from an artifact unless the release is complete (has
    its C(release.json)). It creates the app's layout when missing (root, C(releases/), C(shared/) and the
    shared paths, the media directory readable by nginx's group), removes what an interrupted deploy left in
    the release directory, unpacks the artifact, creates the virtualenv and installs it as the app user (at
    nice 10, in a session of its own, so the serving release keeps the CPU), then the shared links, the 0600
    env file and the C(with-env) wrapper. It does not run management commands (see M(zerodowntime.web.zdt_manage)).
  - With O(installer=uv), C(uv venv) makes the virtualenv (no pip in it) and C(uv pip install) fills it, with uv's
    cache in C(APP_ROOT/.cache/uv) (the app user's, kept across releases; files hard-linked from it) and bytecode
    compiled as pip does. The uv binary is C(APP_ROOT/.zdt/uv-VERSION) (root's, 0755); when missing, the one
    shipped (O(uv)) is copied there and renamed into place, and other versions there are removed.
  - When O(pip_args) name the app's wheelhouse C(APP_ROOT/.zdt/wheelhouse) (root's), it is first made to hold the
    release's C(wheels/) and nothing else; a wheel whose content did not change is left as it was, so uv's cache
    serves it without unpacking it again. What uv cached of a distribution whose wheel was replaced (an app's own
    wheel changes without a new version) or removed goes first (C(uv cache clean)). With O(installer=pip), when
    O(pip_args) name the release's C(wheels/), the app's wheelhouse is made to hold them the same way (pip installs
    from the release's own), so that the next release ships only the wheels it lacks, as with uv.
  - C(state=absent) removes the release directory; it refuses the release C(current) or C(previous) points at.
  - The action plugin of the same name ships O(artifact_src) from the controller in the same task, only when the
    release is not already complete, and O(uv_src) only when the release is not complete and the host lacks that uv
    version; one command over the connection tells both, and lists the wheels the app's wheelhouse holds
    (C(APP_ROOT/.zdt/wheelhouse.sha256), which this module writes); a wheel already there with the same sha256 is left
    out of the artifact it ships (O(wheelhouse_wheels)), so a code-only change ships the app's own wheel. It returns
    C(shipped), what it transferred, and C(shipped_bytes).
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
    description: Release id.
    type: str
    required: true
  state:
    description: Whether the release exists.
    type: str
    choices: [present, absent]
    default: present
  user:
    description: Unprivileged user that owns the release and runs its commands.
    type: str
    default: ""
  group:
    description: Group of the release's files.
    type: str
    default: ""
  artifact:
    description: (present) The artifact (.tar.gz) on the host.
    type: path
  artifact_src:
    description: (present) The artifact on the controller; the action plugin ships it and sets O(artifact).
    type: path
  python:
    description: (present) Python that creates the virtualenv.
    type: path
    default: /usr/bin/python3
  installer:
    description: >-
      (present) What makes the virtualenv and installs into it: C(pip) (C(python -m venv), then the virtualenv's
      pip) or C(uv) (C(uv venv), then C(uv pip install --python VENV/bin/python)).
    type: str
    choices: [pip, uv]
    default: pip
  pip_args:
    description: (present) Arguments of C(pip install), or of C(uv pip install) after its C(--python) (after C(install)).
    type: list
    elements: str
    default: []
  uv:
    description: (present, O(installer=uv)) A uv binary on the host, put in place when that version is missing there.
    type: path
  uv_src:
    description: >-
      (present, O(installer=uv)) The uv binary on the controller; the action plugin ships it and sets O(uv) when the
      release is not complete and the host lacks this version.
    type: path
  uv_version:
    description: (present, O(installer=uv)) Version of that uv (C(uv --version)); names its place on the host.
    type: str
  wheelhouse_wheels:
    description:
      - (present) Wheels of the release that the artifact leaves out, to be taken from the app's wheelhouse
        C(APP_ROOT/.zdt/wheelhouse) (file name -> sha256); their content is checked before they are copied into the
        release's C(wheels/). The action plugin sets it from the wheelhouse's index C(APP_ROOT/.zdt/wheelhouse.sha256).
    type: dict
    default: {}
  shared_dirs:
    description: (present) Directories under C(shared/) linked into the release.
    type: list
    elements: str
    default: []
  shared_files:
    description: (present) Files under C(shared/) linked into the release (created empty when missing).
    type: list
    elements: str
    default: []
  media_dir:
    description: >-
      (present) Directory under C(shared/) for uploaded media, linked into the release like O(shared_dirs): owned
      by the app user, group O(media_group), mode 2750, so nginx reads it and only the app writes it ("" for none).
    type: str
    default: ""
  media_group:
    description: (present) Group of the media directory (nginx's).
    type: str
    default: www-data
  env_content:
    description: (present) Content of the release's C(.env) (mode 0600, never logged).
    type: str
    default: ""
  wrapper_content:
    description: (present) Content of the C(with-env) wrapper.
    type: str
    default: ""
  lock_token:
    description: Token of the deploy lock; the lock's record then names this release.
    type: str
    default: ""
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
- name: Create release 2.0.0-3f2a9c1d of webxample from an artifact built on the controller
  zerodowntime.web.zdt_release:
    app_name: webxample
    app_root: /srv/webxample
    release: 2.0.0-3f2a9c1d
    user: webxample
    group: webxample
    artifact_src: ~/.cache/zerodowntime/webxample/0123456789abcdef/artifact.tar.gz
    installer: uv
    uv_src: /usr/local/bin/uv
    uv_version: 0.13.9
    pip_args: [--offline, --no-index, --find-links, /srv/webxample/releases/2.0.0-3f2a9c1d/wheels, webxample==2.0.0]
    shared_dirs: [var]
    media_dir: media
    env_content: "DJANGO_SECRET_KEY='...'\n"
    wrapper_content: "#!/bin/sh\nset -a; . ./.env; set +a; exec \"$@\"\n"
"""

RETURN = r"""
created:
  description: Whether this call created the release.
  type: bool
  returned: when state is present
  sample: true
installer:
  description: The installer, C(pip) or C(uv).
  type: str
  returned: when state is present
  sample: uv
timings:
  description: Seconds of each part (unpack, venv, install; uv when this call put uv in place).
  type: dict
  returned: when the release was created
  sample: {unpack: 0.21, venv: 0.05, install: 1.2}
shipped:
  description: What the action plugin transferred to the host (C(artifact), C(uv)).
  type: list
  elements: str
  returned: when state is present
  sample: [artifact]
shipped_bytes:
  description: Bytes the action plugin transferred (the artifact, or only its wheels the host's wheelhouse lacks, and uv).
  type: int
  returned: when state is present
  sample: 18944
reused_wheels:
  description: How many of the release's wheels came from the host's wheelhouse instead of the wire.
  type: int
  returned: when state is present
  sample: 7
"""

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_files import directory, link_atomic, write_atomic
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App, LayoutError
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_lock import Lock
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_owner import Owner, OwnerError


def uv_env(app: App) -> dict:
    """uv's environment: its cache kept in the app root, files hard-linked from it (the
    releases are on the same filesystem), bytecode compiled as pip does, no configuration
    file of the host or the user, never a download of a Python."""
    return {"UV_CACHE_DIR": app.uv_cache, "UV_LINK_MODE": "hardlink", "UV_COMPILE_BYTECODE": "1",
            "UV_NO_CONFIG": "1", "UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1"}


def root_dir(path: str, parent: int | None = None) -> int:
    """A descriptor of directory PATH (relative to the directory PARENT, or absolute), made
    root's, 0755, opened without following a symlink: the app user owns the app root and
    could have put a link there; a link is removed."""
    with contextlib.suppress(FileNotFoundError):
        if stat.S_ISLNK(os.lstat(path, dir_fd=parent).st_mode):
            os.unlink(path, dir_fd=parent)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, 0o755, dir_fd=parent)
    folder = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=parent)
    os.fchown(folder, 0, 0)
    os.fchmod(folder, 0o755)
    return folder


def copy_into(folder: int, name: str, source: int, mode: int) -> None:
    """Replace NAME in FOLDER with the content of the open file SOURCE: written beside it, then
    renamed over (a reader never sees half a file), root's, MODE."""
    temporary = f".{name}.zdt-tmp"
    with contextlib.suppress(FileNotFoundError):
        os.unlink(temporary, dir_fd=folder)
    out = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600, dir_fd=folder)
    with os.fdopen(out, "wb") as handle, os.fdopen(os.dup(source), "rb") as data:
        data.seek(0)
        shutil.copyfileobj(data, handle, 1 << 20)
        handle.flush()
        os.fchown(handle.fileno(), 0, 0)
        os.fchmod(handle.fileno(), mode)
        os.fsync(handle.fileno())
    os.rename(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)


def sha256_of(folder: int, name: str) -> str:
    """The sha256 of NAME in FOLDER, read without following a link."""
    digest = hashlib.sha256()
    handle = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=folder)
    with os.fdopen(handle, "rb") as data:
        for block in iter(lambda: data.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_index(app: App, house: int, names: list[str]) -> None:
    """APP's wheelhouse index: "sha256  name" of each wheel of the wheelhouse (root's, 0644,
    renamed into place), which the action plugin reads to ship only the wheels not there."""
    lines = "".join(f"{sha256_of(house, name)}  {name}\n" for name in names).encode()
    tools = root_dir(app.tools)
    try:
        with tempfile.TemporaryFile() as data:
            data.write(lines)
            data.flush()
            copy_into(tools, os.path.basename(app.wheelhouse_index), data.fileno(), 0o644)
    finally:
        os.close(tools)


def fill_from_wheelhouse(module: AnsibleModule, app: App, wheels: str, wanted: dict, result: dict) -> None:
    """Put into the release's WHEELS directory the wheels the controller did not ship
    (WANTED: name -> sha256), copied from the app's wheelhouse after checking their content.
    A wheel that is not there as the index said: the index goes (the next deploy ships
    every wheel) and the release fails, naming it."""
    if not wanted:
        return
    bad = [name for name in wanted if "/" in name or name.startswith(".") or not name.endswith(".whl")]
    if bad:
        module.fail_json(msg=f"wheelhouse_wheels: {bad[0]!r} is not a wheel's file name", **result)
    with contextlib.suppress(FileExistsError):
        os.mkdir(wheels, 0o755)
    # Written as root into the release (the app user's): nothing there is followed.
    into = os.open(wheels, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    house = None
    try:
        house = os.open(app.wheelhouse, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
        for name, digest in sorted(wanted.items()):
            if sha256_of(house, name) != digest:
                raise ValueError(f"{name} in {app.wheelhouse} is not the wheel of sha256 {digest}")
            source = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=house)
            out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644, dir_fd=into)
            with os.fdopen(source, "rb") as data, os.fdopen(out, "wb") as copy:
                shutil.copyfileobj(data, copy, 1 << 20)
    except (OSError, ValueError) as error:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(app.wheelhouse_index)
        module.fail_json(msg=f"the release's wheels were to come from the host's wheelhouse, but {error}; its index "
                             "is removed: deploy again to ship every wheel", **result)
    finally:
        os.close(into)
        if house is not None:
            os.close(house)


def same_content(first: int, second: int) -> bool:
    if os.fstat(first).st_size != os.fstat(second).st_size:
        return False
    os.lseek(first, 0, os.SEEK_SET)
    os.lseek(second, 0, os.SEEK_SET)
    while True:
        one, two = os.read(first, 1 << 20), os.read(second, 1 << 20)
        if one != two:
            return False
        if not one:
            return True


def put_uv(module: AnsibleModule, app: App, result: dict) -> str:
    """The path of uv (this version) on the host, put in place from the shipped binary when
    missing (root's, 0755, renamed into place). Other versions there are removed."""
    params = module.params
    target = app.uv(params["uv_version"])
    if os.path.isfile(target) and os.access(target, os.X_OK):
        return target
    if not params["uv"]:
        module.fail_json(msg=f"uv {params['uv_version']} is not on the host ({target}) and none was shipped "
                             "(give uv_src)", **result)
    started = time.monotonic()
    name = os.path.basename(target)
    folder = root_dir(app.tools)
    try:
        shipped = os.open(params["uv"], os.O_RDONLY)
        try:
            copy_into(folder, name, shipped, 0o755)
        finally:
            os.close(shipped)
        for other in os.listdir(folder):
            if other.startswith("uv-") and other != name:
                os.unlink(other, dir_fd=folder)
    finally:
        os.close(folder)
    result["timings"]["uv"] = round(time.monotonic() - started, 2)
    return target


def sync_wheelhouse(app: App, wheels: str) -> list[str]:
    """Make the app's wheelhouse hold the wheels of WHEELS (the release's) and nothing else. A
    wheel there with the same content is left as it is: uv links its files from the cache
    without unpacking it again. uv takes a wheel of an index for immutable (its name, version
    and tags say what it holds), but an app's own wheel changes without a new version: the
    distributions whose wheel was replaced or removed are returned, for their cache entries to
    go. The release's files belong to the app user: they are read without following a link."""
    changed: set[str] = set()
    tools = root_dir(app.tools)
    try:
        house = root_dir(os.path.basename(app.wheelhouse), tools)
    finally:
        os.close(tools)
    source = os.open(wheels, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        wanted = sorted(n for n in os.listdir(source) if n.endswith(".whl") and not n.startswith("."))
        for name in os.listdir(house):
            if name not in wanted:
                os.unlink(name, dir_fd=house)
                if not name.startswith("."):
                    changed.add(name.split("-")[0])
        for name in wanted:
            new = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=source)
            try:
                try:
                    old = os.open(name, os.O_RDONLY | os.O_NOFOLLOW, dir_fd=house)
                except FileNotFoundError:
                    old = None
                if old is not None:
                    try:
                        if same_content(old, new):
                            continue
                    finally:
                        os.close(old)
                    changed.add(name.split("-")[0])
                copy_into(house, name, new, 0o644)
            finally:
                os.close(new)
        write_index(app, house, wanted)
    finally:
        os.close(source)
        os.close(house)
    return sorted(changed)


def create(module: AnsibleModule, app: App, owner: Owner, result: dict) -> None:
    params, release = module.params, module.params["release"]
    path = app.release(release)
    timings = result["timings"]
    uid, gid = owner.uid, owner.gid
    directory(app.root, 0o755, uid, gid)
    uv = put_uv(module, app, result) if params["installer"] == "uv" else ""
    directory(app.releases, 0o755, uid, gid)
    # Others may traverse shared/ (nginx reaches the media directory), not list it.
    directory(app.shared, 0o751, uid, gid)
    shared_dirs = params["shared_dirs"] + [os.path.dirname(f) for f in params["shared_files"] if os.path.dirname(f)]
    for each in shared_dirs:
        directory(f"{app.shared}/{each}", 0o750, uid, gid)
    if params["media_dir"]:
        try:
            media_gid = owner.group_id(params["media_group"])
        except OwnerError as error:
            module.fail_json(msg=str(error))
        directory(f"{app.shared}/{params['media_dir']}", 0o2750, uid, media_gid)
    for each in params["shared_files"]:
        shared = f"{app.shared}/{each}"
        if not os.path.lexists(shared):
            write_atomic(shared, "", 0o640, uid, gid)
    # A release directory without its manifest is what an interrupted deploy left.
    if os.path.lexists(path):
        shutil.rmtree(path)
    directory(path, 0o755, uid, gid)
    started = time.monotonic()
    # As root (the artifact may sit in the connection user's private temporary
    # directory), then every file is handed to the app user.
    rc, _out, err = module.run_command(["tar", "-x", "-z", "--no-same-owner", "-f", params["artifact"], "-C", path])
    if rc != 0:
        module.fail_json(msg=f"unpacking the artifact failed: {err.strip()}", **result)
    fill_from_wheelhouse(module, app, f"{path}/wheels", params["wheelhouse_wheels"], result)
    for directory_path, dirs, files in os.walk(path):
        for name in dirs + files:
            os.lchown(os.path.join(directory_path, name), uid, gid)
    timings["unpack"] = round(time.monotonic() - started, 2)
    if uv:
        env = uv_env(app)
        # uv's cache: the app user's home is the app root, so this is also where uv would look.
        directory(os.path.dirname(app.uv_cache), 0o700, uid, gid)
        directory(app.uv_cache, 0o700, uid, gid)
        started = time.monotonic()
        owner.run(module, [uv, "venv", "--quiet", "--no-project", "--python", params["python"], f"{path}/venv"],
                  path, "creating the virtualenv (uv venv)", result, env)
        timings["venv"] = round(time.monotonic() - started, 2)
        started = time.monotonic()
        # From the app's wheelhouse when the arguments name it (not from an index). What uv
        # cached of a replaced or removed wheel goes first (the venvs keep their links).
        stale = sync_wheelhouse(app, f"{path}/wheels") if app.wheelhouse in params["pip_args"] else []
        if stale:
            owner.run(module, [uv, "cache", "clean", "--quiet", *stale], path, "uv cache clean", result, env)
        owner.run(module, [uv, "pip", "install", "--python", f"{path}/venv/bin/python", *params["pip_args"]], path,
                  "uv pip install", result, env)
    else:
        started = time.monotonic()
        owner.run(module, [params["python"], "-m", "venv", f"{path}/venv"], path, "creating the virtualenv", result)
        timings["venv"] = round(time.monotonic() - started, 2)
        started = time.monotonic()
        # pip installs from the release's own wheels/; the app's wheelhouse keeps a copy of
        # them, for the next release to ship only the wheels it does not hold.
        if f"{path}/wheels" in params["pip_args"]:
            sync_wheelhouse(app, f"{path}/wheels")
        owner.run(module, [f"{path}/venv/bin/pip", "install", *params["pip_args"]], path, "pip install", result)
    timings["install"] = round(time.monotonic() - started, 2)
    linked = params["shared_dirs"] + params["shared_files"] + ([params["media_dir"]] if params["media_dir"] else [])
    for each in linked:
        inside = f"{path}/{each}"
        if os.path.isdir(inside) and not os.path.islink(inside):
            shutil.rmtree(inside)
        if os.path.dirname(each):
            directory(os.path.dirname(inside), 0o755, uid, gid)
        link_atomic(f"{app.shared}/{each}", inside, uid, gid)
    write_atomic(f"{path}/.env", params["env_content"], 0o600, uid, gid)
    write_atomic(f"{path}/with-env", params["wrapper_content"], 0o755, uid, gid)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "app_name": {"type": "str", "required": True},
            "app_root": {"type": "path", "required": True},
            "release": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "user": {"type": "str", "default": ""},
            "group": {"type": "str", "default": ""},
            "artifact": {"type": "path"},
            "artifact_src": {"type": "path"},
            "python": {"type": "path", "default": "/usr/bin/python3"},
            "installer": {"type": "str", "choices": ["pip", "uv"], "default": "pip"},
            "pip_args": {"type": "list", "elements": "str", "default": []},
            "uv": {"type": "path"},
            "uv_src": {"type": "path"},
            "uv_version": {"type": "str"},
            "wheelhouse_wheels": {"type": "dict", "default": {}},
            "shared_dirs": {"type": "list", "elements": "str", "default": []},
            "shared_files": {"type": "list", "elements": "str", "default": []},
            "media_dir": {"type": "str", "default": ""},
            "media_group": {"type": "str", "default": "www-data"},
            "env_content": {"type": "str", "default": "", "no_log": True},
            "wrapper_content": {"type": "str", "default": ""},
            "lock_token": {"type": "str", "default": "", "no_log": False},
        },
        required_if=[("state", "present", ("artifact", "user", "group")), ("installer", "uv", ("uv_version",))],
        supports_check_mode=True,
    )
    params = module.params
    try:
        app = App(params["app_name"], params["app_root"])
        path = app.release(params["release"])
        if params["installer"] == "uv" and params["state"] == "present":
            app.uv(params["uv_version"])
    except LayoutError as error:
        module.fail_json(msg=str(error))
    result = {"changed": False, "timings": {}}
    if params["state"] == "absent":
        if params["release"] in app.serving():
            module.fail_json(msg=f"release {params['release']} is current or previous: not removed")
        result["changed"] = os.path.lexists(path)
        if result["changed"] and not module.check_mode:
            shutil.rmtree(path)
        module.exit_json(**result)
    result["installer"] = params["installer"]
    result["created"] = not app.complete(params["release"])
    result["changed"] = result["created"]
    if not result["created"] or module.check_mode:
        module.exit_json(**result)
    lock = Lock(app)
    lock.hold_work()  # wait for a module of a dead deploy that may still run here
    if params["lock_token"]:
        lock.update(params["lock_token"], release=params["release"])
    if app.complete(params["release"]):  # the run we waited for completed it
        result.update(created=False, changed=False)
        module.exit_json(**result)
    try:
        owner = Owner(params["user"], params["group"])
    except OwnerError as error:
        module.fail_json(msg=str(error))
    create(module, app, owner, result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
