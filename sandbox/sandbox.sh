#!/usr/bin/env bash
# Manage systemd-booted sandbox containers built by build-image.sh.
#
# Usage: sandbox/sandbox.sh key          # make the sandbox SSH key if missing
#        sandbox/sandbox.sh start NAME   # run (or restart) container NAME, detached
#        sandbox/sandbox.sh stop NAME    # remove container NAME (podman rm -f)
#        sandbox/sandbox.sh wait NAME    # wait (<=60s) for systemd + nginx + supervisor
#
# Env: SANDBOX_IMAGE (default localhost/zerodowntime-sandbox:debian12),
#      SANDBOX_WAIT_TIMEOUT (default 60), CONTAINERS_CONF (default ./containers.conf),
#      SANDBOX_SSH_PORT (default 2222: sshd published on 127.0.0.1 only),
#      SANDBOX_KEY (default ~/.ssh/zerodowntime-sandbox_ed25519: root's key in the sandbox)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-${SCRIPT_DIR}/containers.conf}"
IMAGE="${SANDBOX_IMAGE:-localhost/zerodowntime-sandbox:debian12}"
TIMEOUT="${SANDBOX_WAIT_TIMEOUT:-60}"
SSH_PORT="${SANDBOX_SSH_PORT:-2222}"
KEY="${SANDBOX_KEY:-$HOME/.ssh/zerodowntime-sandbox_ed25519}"

ensure_key() {
  if [[ ! -f "$KEY" ]]; then
    mkdir -p "$(dirname "$KEY")"
    ssh-keygen -q -t ed25519 -N "" -C zerodowntime-sandbox -f "$KEY"
  fi
}

usage() { sed -n '2,13p' "$0" >&2; exit 2; }

[[ $# -ge 1 ]] || usage
cmd="$1" name="${2:-}"
[[ "$cmd" == key || -n "$name" ]] || usage

case "$cmd" in
  key)
    ensure_key
    echo "$KEY"
    ;;
  start)
    if podman container exists "$name"; then
      state="$(podman container inspect --format '{{.State.Running}}' "$name")"
      if [[ "$state" == "true" ]]; then
        echo "$name already running"
      else
        podman start "$name" >/dev/null
        echo "$name started (existing container)"
      fi
    else
      ensure_key
      podman run -d \
        --name "$name" --hostname "$name" \
        --publish "127.0.0.1:${SSH_PORT}:22" \
        --volume "${KEY}.pub:/root/.ssh/authorized_keys:ro" \
        --systemd=always \
        --ulimit nofile=20000:20000 --ulimit nproc=32768:32768 \
        "$IMAGE" /sbin/init >/dev/null
      echo "$name created from $IMAGE"
    fi
    ;;
  stop)
    podman rm -f "$name" >/dev/null 2>&1 || true
    echo "$name removed"
    ;;
  wait)
    deadline=$((SECONDS + TIMEOUT))
    state=""
    while (( SECONDS < deadline )); do
      state="$(podman exec "$name" systemctl is-system-running 2>/dev/null || true)"
      if [[ "$state" == running || "$state" == degraded ]] &&
         podman exec "$name" systemctl is-active --quiet nginx supervisor ssh 2>/dev/null; then
        echo "$name ready (system: $state)"
        exit 0
      fi
      sleep 1
    done
    echo "timeout after ${TIMEOUT}s waiting for $name (system: ${state:-unknown})" >&2
    podman exec "$name" systemctl --failed --no-pager >&2 2>/dev/null || true
    exit 1
    ;;
  *) usage ;;
esac
