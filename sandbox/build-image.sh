#!/usr/bin/env bash
# Build the offline sandbox base image (Debian 12 or 13 + systemd + nginx + supervisor,
# and every nginx build of the suite in apt's cache, for the nginx binary upgrade)
# without any container registry: debootstrap a rootfs and `podman import` it.
#
# Usage: sandbox/build-image.sh [--force]
#   --force   rebuild even if the image already exists
#
# Env:
#   SANDBOX_SUITE     Debian suite: bookworm (12, default) or trixie (13)
#   SANDBOX_IMAGE     image name   (default localhost/zerodowntime-sandbox:debian12, or
#                     :debian13 for trixie)
#   SANDBOX_MIRROR    Debian mirror (default http://deb.debian.org/debian)
#   SANDBOX_SECURITY_MIRROR       (default http://deb.debian.org/debian-security)
#   CONTAINERS_CONF   podman config (default: containers.conf next to this script)
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
export CONTAINERS_CONF="${CONTAINERS_CONF:-${SCRIPT_DIR}/containers.conf}"

SUITE="${SANDBOX_SUITE:-bookworm}"
case "$SUITE" in
  bookworm) RELEASE=12 ;;
  trixie) RELEASE=13 ;;
  *) echo "SANDBOX_SUITE must be bookworm or trixie, not $SUITE" >&2; exit 2 ;;
esac
IMAGE="${SANDBOX_IMAGE:-localhost/zerodowntime-sandbox:debian$RELEASE}"
MIRROR="${SANDBOX_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${SANDBOX_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"

PACKAGES=(
  systemd systemd-sysv dbus
  python3 python3-venv python3-apt
  nginx supervisor
  curl hey sudo procps iproute2 ca-certificates acl
  openssh-server
)

FORCE=0
for arg in "$@"; do
  case "$arg" in
    --force) FORCE=1 ;;
    -h|--help) sed -n '2,12p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

if [[ $EUID -ne 0 ]]; then
  echo "build-image.sh must run as root (debootstrap/chroot)" >&2
  exit 1
fi

# The image records the hash of this script and its suite: a changed recipe means a rebuild.
RECIPE="$( (sha256sum "$0"; echo "$SUITE") | sha256sum | cut -c1-16)"
if podman image exists "$IMAGE" && [[ $FORCE -eq 0 ]]; then
  built_from="$(podman image inspect --format '{{ index .Labels "zerodowntime.recipe" }}' "$IMAGE" 2>/dev/null || true)"
  if [[ "$built_from" == "$RECIPE" ]]; then
    echo "image $IMAGE is up to date (recipe $RECIPE; --force rebuilds)"
    exit 0
  fi
  echo "image $IMAGE was built from another recipe (${built_from:-unknown}): rebuilding"
fi

for tool in debootstrap podman chroot tar; do
  command -v "$tool" >/dev/null || { echo "missing tool: $tool" >&2; exit 1; }
done

START=$SECONDS
WORKDIR="$(mktemp -d "${TMPDIR:-/var/tmp}/zdt-sandbox.XXXXXX")"
ROOTFS="$WORKDIR/rootfs"

cleanup() {
  # unmount anything still mounted inside the rootfs (deepest first), then delete
  if [[ -d "$ROOTFS" ]]; then
    local m
    for m in dev/pts dev sys proc; do
      if mountpoint -q "$ROOTFS/$m" 2>/dev/null; then
        umount -l "$ROOTFS/$m" || true
      fi
    done
  fi
  rm -rf --one-file-system "$WORKDIR"
}
trap cleanup EXIT

log() { printf '==> [%4ss] %s\n' "$((SECONDS - START))" "$*"; }

in_chroot() {
  chroot "$ROOTFS" /usr/bin/env -i \
    PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive "$@"
}

log "debootstrap $SUITE (minbase) from $MIRROR into $ROOTFS"
debootstrap --variant=minbase --include=ca-certificates \
  "$SUITE" "$ROOTFS" "$MIRROR"

# Same suites as a normal Debian install (main + updates + security).
rm -f "$ROOTFS/etc/apt/sources.list"
cat > "$ROOTFS/etc/apt/sources.list.d/debian.sources" <<EOF
Types: deb
URIs: $MIRROR
Suites: $SUITE $SUITE-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $SUITE-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF

# Keep the image lean: no recommends/suggests by default.
cat > "$ROOTFS/etc/apt/apt.conf.d/90sandbox-no-recommends" <<'EOF'
APT::Install-Recommends "false";
APT::Install-Suggests "false";
EOF

# Prevent services from starting inside the build chroot.
cat > "$ROOTFS/usr/sbin/policy-rc.d" <<'EOF'
#!/bin/sh
exit 101
EOF
chmod 0755 "$ROOTFS/usr/sbin/policy-rc.d"

mount -t proc proc "$ROOTFS/proc"
mount -t sysfs sysfs "$ROOTFS/sys"
mount --bind /dev "$ROOTFS/dev"
mount --bind /dev/pts "$ROOTFS/dev/pts"

log "apt-get install: ${PACKAGES[*]}"
in_chroot apt-get update
in_chroot apt-get -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  dist-upgrade
in_chroot apt-get -y -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
  install "${PACKAGES[@]}"

log "configuring systemd units"
# Services that must come up at boot.
in_chroot systemctl enable nginx.service supervisor.service ssh.service
# Ansible reaches the sandbox over SSH on a loopback port, with a key that
# sandbox.sh mounts as root's authorized_keys (sandbox-only: no passwords).
install -d -m 0700 "$ROOTFS/root/.ssh"
cat > "$ROOTFS/etc/ssh/sshd_config.d/sandbox.conf" <<'EOF_SSHD'
PasswordAuthentication no
PermitRootLogin prohibit-password
UseDNS no
EOF_SSHD
# The image boots cleanly ("running", no failed units) without masking
# getty/logind/udev, so only the apt timers are masked: they would try to
# reach the (unreachable) mirror and could hold the dpkg lock mid-test.
in_chroot systemctl mask apt-daily.timer apt-daily-upgrade.timer
in_chroot systemctl set-default multi-user.target

# Let systemd generate a fresh machine-id per container.
: > "$ROOTFS/etc/machine-id"
rm -f "$ROOTFS/var/lib/dbus/machine-id"
# podman manages these; leave neutral defaults.
echo localhost > "$ROOTFS/etc/hostname"

log "refreshing package lists and cleaning archives"
in_chroot apt-get update
in_chroot apt-get clean
# Every build of nginx the suite's archive has (bookworm and bookworm-security each have
# one), kept in apt's cache: the nginx binary upgrade (roles/nginx_upgrade) goes from one
# to another offline, as a host with a reachable mirror would download them.
NGINX_VERSIONS="$(in_chroot apt-cache madison nginx | awk '{print $3}' | sort -u | tr '\n' ' ')"
log "caching nginx builds for the binary upgrade: $NGINX_VERSIONS"
for version in $NGINX_VERSIONS; do
  in_chroot sh -c "cd /var/cache/apt/archives && apt-get download -q nginx=$version nginx-common=$version"
done
rm -f "$ROOTFS/usr/sbin/policy-rc.d"
rm -rf "$ROOTFS"/tmp/* "$ROOTFS"/var/tmp/* "$ROOTFS"/var/log/*.log \
  "$ROOTFS"/var/cache/debconf/*-old "$ROOTFS"/var/lib/dpkg/*-old

for m in dev/pts dev sys proc; do umount "$ROOTFS/$m"; done

OLD_ID="$(podman image inspect --format '{{.Id}}' "$IMAGE" 2>/dev/null || true)"

log "podman import -> $IMAGE"
tar --numeric-owner --xattrs --acls -C "$ROOTFS" -c . |
  podman import \
    --change 'CMD ["/sbin/init"]' \
    --change 'ENV container=podman' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'STOPSIGNAL SIGRTMIN+3' \
    --change 'LABEL org.opencontainers.image.title=zerodowntime-sandbox' \
    --change "LABEL zerodowntime.recipe=$RECIPE" \
    --message "debootstrap $SUITE sandbox image" \
    - "$IMAGE" >/dev/null

NEW_ID="$(podman image inspect --format '{{.Id}}' "$IMAGE")"
if [[ -n "$OLD_ID" && "$OLD_ID" != "$NEW_ID" ]]; then
  # drop the previous build if no container still uses it
  podman rmi "$OLD_ID" >/dev/null 2>&1 || true
fi

podman image ls "$IMAGE"
echo "built $IMAGE in $((SECONDS - START)) seconds"
