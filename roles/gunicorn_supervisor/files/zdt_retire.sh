#!/bin/sh
# Stop a release's program once its instant-rollback window is over.
# usage: zdt_retire.sh APP_ROOT RELEASE PROGRAM PROGRAM_CONF SOCKET
# Run by a systemd timer the deploy role schedules. It takes the deploy lock (the
# same atomic mkdir as a deploy), waits while a deploy holds it, and never stops
# the release `current` points at (a rollback brought it back).
set -eu
root=$1 release=$2 program=$3 conf=$4 socket=$5
lock="$root/.deploy.lock"

tries=0
until mkdir -m 0700 "$lock" 2>/dev/null; do
    tries=$((tries + 1))
    if [ "$tries" -gt 360 ]; then
        echo "deploy lock $lock held for 30 minutes; leaving $program running" >&2
        exit 1
    fi
    sleep 5
done
trap 'rm -rf "$lock"' EXIT
printf '{"action": "retire", "user": "%s", "controller": "%s", "release": "%s", "started_at": "%s"}\n' \
    "$(id -un)" "$(hostname)" "$release" "$(date -u +%Y-%m-%dT%H:%M:%SZ)" >"$lock/owner.json"

if [ "$(readlink "$root/current" || true)" = "releases/$release" ]; then
    echo "$release is current again; $program keeps running"
    exit 0
fi
supervisorctl stop "$program" || true
rm -f "$conf"
supervisorctl update "$program" || true
rm -f "$socket"
echo "$program stopped: its instant-rollback window is over"
