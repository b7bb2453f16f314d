# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""File helpers the collection's modules and its host-side helper share: read a text
file, replace a file or a symlink atomically, make a directory with its owner and mode,
remove a tree without waiting for it."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import tempfile
import uuid


def read(path: str) -> str | None:
    """PATH's text, or None when it does not exist."""
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def write_atomic(path: str, content: str, mode: int, uid: int | None = None, gid: int | None = None) -> None:
    """Replace PATH with CONTENT by renaming a temporary file over it. The temporary name
    (.zdt-*.tmp) matches no include glob of nginx or supervisor (*.conf)."""
    handle, temporary = tempfile.mkstemp(prefix=".zdt-", suffix=".tmp", dir=os.path.dirname(path))
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(content)
        os.chmod(temporary, mode)
        if uid is not None or gid is not None:
            os.chown(temporary, -1 if uid is None else uid, -1 if gid is None else gid)
        os.replace(temporary, path)
    except BaseException:
        if os.path.lexists(temporary):
            os.unlink(temporary)
        raise


def link_atomic(target: str, path: str, uid: int | None = None, gid: int | None = None) -> None:
    """Point the symlink PATH at TARGET by renaming a new symlink over it (atomic)."""
    temporary = f"{path}.zdt-tmp"
    if os.path.lexists(temporary):
        os.unlink(temporary)
    os.symlink(target, temporary)
    if uid is not None or gid is not None:
        os.lchown(temporary, -1 if uid is None else uid, -1 if gid is None else gid)
    os.replace(temporary, path)


def directory(path: str, mode: int, uid: int | None = None, gid: int | None = None) -> bool:
    """Make PATH a directory with this owner and mode; True when anything changed."""
    changed = False
    if not os.path.isdir(path):
        os.makedirs(path, mode)
        changed = True
    st = os.stat(path)
    if st.st_mode & 0o7777 != mode:
        os.chmod(path, mode)
        changed = True
    if (uid is not None and st.st_uid != uid) or (gid is not None and st.st_gid != gid):
        os.chown(path, -1 if uid is None else uid, -1 if gid is None else gid)
        changed = True
    return changed


def discard(paths: list[str], trash: str) -> None:
    """Remove the trees PATHS without waiting for them: each renamed into the directory TRASH
    at once (same filesystem), then all removed, with whatever an earlier call left there, by
    one rm of its own session at nice 19 that outlives the caller. A release's virtualenv is
    thousands of files: removing it in place took 2-3 s of a deploy. A path that cannot be
    renamed there (TRASH on another filesystem) is removed here."""
    directory(trash, 0o700)
    for path in paths:
        try:
            os.rename(path, os.path.join(trash, f"{os.path.basename(path)}.{uuid.uuid4().hex[:8]}"))
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            shutil.rmtree(path)
    doomed = [os.path.join(trash, name) for name in sorted(os.listdir(trash))]
    if doomed:
        subprocess.Popen(["nice", "-n", "19", "rm", "-rf", "--", *doomed], stdin=subprocess.DEVNULL,  # noqa: S603, S607
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, close_fds=True)


def tail(path: str, lines: int = 15, max_bytes: int = 16384) -> list[str]:
    """The last LINES lines of a (log) file, [] when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            data = handle.read().decode("utf-8", "replace")
    except OSError:
        return []
    return [line for line in data.splitlines() if line.strip()][-lines:]
