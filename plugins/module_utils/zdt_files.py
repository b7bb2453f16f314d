# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""File helpers the collection's modules share: read a text file, replace one atomically."""
from __future__ import annotations

import os
import tempfile


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
        if uid is not None:
            os.chown(temporary, uid, gid if gid is not None else -1)
        os.replace(temporary, path)
    except BaseException:
        if os.path.lexists(temporary):
            os.unlink(temporary)
        raise
