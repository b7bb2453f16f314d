#!/usr/bin/env bash
# Usage: stage_release.sh VERSION DEST
#
# Copy examples/webxample to DEST (without build artefacts) and set
# __version__ in DEST/webxample/__init__.py to VERSION. Used by tests to
# produce distinct releases (v1, v2, ...) from the same source tree.
set -euo pipefail

if [[ $# -ne 2 ]]; then
    echo "usage: $0 VERSION DEST" >&2
    exit 2
fi

version=$1
dest=$2
src="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/webxample"

if [[ ! "$version" =~ ^[0-9A-Za-z][0-9A-Za-z.+_-]*$ ]]; then
    echo "error: invalid version: $version" >&2
    exit 2
fi
if [[ ! -f "$src/webxample/__init__.py" ]]; then
    echo "error: source not found: $src" >&2
    exit 1
fi

mkdir -p "$dest"
dest="$(cd "$dest" && pwd)"
if [[ "$dest" == "$src" ]]; then
    echo "error: DEST must differ from the source directory" >&2
    exit 1
fi

# tar is available everywhere (rsync is not); exclude build artefacts and caches.
tar -C "$src" \
    --exclude='./build' --exclude='./dist' --exclude='*.egg-info' \
    --exclude='__pycache__' --exclude='*.py[co]' \
    --exclude='.ruff_cache' --exclude='.pytest_cache' \
    -cf - . | tar -C "$dest" -xf -

init="$dest/webxample/__init__.py"
sed -i -E "s/^__version__ = .*/__version__ = \"${version}\"/" "$init"
if ! grep -qx "__version__ = \"${version}\"" "$init"; then
    echo "error: failed to set __version__ in $init" >&2
    exit 1
fi
echo "staged webxample ${version} in ${dest}"
