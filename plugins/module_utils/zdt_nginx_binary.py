# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""nginx's binary, upgraded while it serves (nginx's own procedure, see
https://nginx.org/en/docs/control.html#upgrade): the new binary is tested against the live
configuration, put in place, USR2 starts a new master with it beside the old one, the sites
are checked, WINCH stops the old workers, the sites are watched for a bake time while the
old master still exists, and QUIT ends the old master. Any failure before QUIT goes back:
the old binary in place, HUP brings the old workers back, QUIT ends the new master.

The package database is changed only once the new binary serves alone (its maintainer
scripts are kept from restarting nginx), so it ends consistent with the binary on disk
whichever way the upgrade ends. Pure standard library.
"""
from __future__ import annotations

import hashlib
import os
import re
import signal
import subprocess
import tarfile
import time

from ansible_collections.zerodowntime.web.plugins.module_utils import zdt_nginx
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_files import read, write_atomic
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_http import wait_until
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import (
    NGINX_BINARY,
    NGINX_BINARY_STAGED,
)

APT_ARCHIVES = "/var/cache/apt/archives"
POLICY_RC = "/usr/sbin/policy-rc.d"
VERSION_PATTERN = r"([0-9]+:)?[0-9][A-Za-z0-9.+~-]*"
_VERSION = re.compile(VERSION_PATTERN)
_INST = re.compile(r"^Inst (\S+) (?:\[[^\]]*\] )?\((\S+)")
MASTER_TITLE = "nginx: master process"
WORKER_TITLE = "nginx: worker process"


class UpgradeError(Exception):
    """A step of the upgrade failed; ``phase`` names it."""

    def __init__(self, phase: str, why: str) -> None:
        super().__init__(why)
        self.phase, self.why = phase, why


# --- packages --------------------------------------------------------------------------

def valid_version(version: object) -> bool:
    return isinstance(version, str) and bool(_VERSION.fullmatch(version))


def deb_name(package: str, version: str, arch: str) -> str:
    """The file name apt gives a package in its cache (an epoch's ':' is written %3a)."""
    return f"{package}_{version.replace(':', '%3a')}_{arch}.deb"


def parse_simulation(output: str) -> dict[str, str]:
    """Package -> version that `apt-get -s install` would install."""
    found = {}
    for line in output.splitlines():
        match = _INST.match(line)
        if match:
            found[match.group(1)] = match.group(2)
    return found


def _run(args: list[str], env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, capture_output=True, text=True, check=False,
                          env={**os.environ, "LC_ALL": "C", **(env or {})})


def owning_package(path: str = NGINX_BINARY) -> str:
    """The package that ships PATH ('' when none does)."""
    proc = _run(["dpkg-query", "-S", path])
    return proc.stdout.split(":", 1)[0].strip() if proc.returncode == 0 else ""


def installed_versions() -> dict[str, str]:
    """Installed package -> version, for every package built from nginx's source."""
    proc = _run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev}|${Package}|${Version}|${source:Package}\n"])
    found = {}
    for line in proc.stdout.splitlines():
        status, package, version, source = (line.split("|") + ["", "", "", ""])[:4]
        if status.startswith("ii") and (source == "nginx" or package == "nginx"):
            found[package] = version
    return found


def sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class Packages:
    """The distribution's packages of nginx at one version."""

    def __init__(self, version: str) -> None:
        self.version = version
        self.installed = installed_versions()
        self.binary_package = owning_package()
        # The binary's package and nginx-common move together (exact version dependency).
        self.names = [p for p in (self.binary_package, "nginx-common") if p and p in self.installed]
        self.modules = sorted(p for p in self.installed if p.startswith("libnginx-mod-"))

    def current(self) -> str:
        return self.installed.get(self.binary_package, "")

    def _apt(self, *args: str) -> subprocess.CompletedProcess:
        wanted = [f"{p}={self.version}" for p in self.names]
        return _run(["apt-get", "-q", "-y", "--allow-downgrades", "--no-install-recommends",
                     "-o", "Dpkg::Options::=--force-confdef", "-o", "Dpkg::Options::=--force-confold",
                     *args, "install", *wanted], env={"DEBIAN_FRONTEND": "noninteractive"})

    def fetch(self) -> str:
        """Check that apt can install exactly these packages at the version, download them
        (or find them in apt's cache); returns the .deb of the binary."""
        if not self.binary_package:
            raise UpgradeError("package", f"no package owns {NGINX_BINARY}: install nginx from the distribution "
                                          "first, or give a binary (nginx_upgrade_binary)")
        if self.modules:
            raise UpgradeError("package", f"dynamic modules are installed ({', '.join(self.modules)}): the new "
                                          "binary would load the old modules; this upgrade does not move them yet")
        simulated = self._apt("-s")
        if simulated.returncode != 0:
            raise UpgradeError("package", f"apt cannot install nginx {self.version}: "
                                          f"{(simulated.stderr or simulated.stdout).strip()[-600:]}")
        moving = parse_simulation(simulated.stdout)
        others = sorted(set(moving) - set(self.names))
        if others:
            raise UpgradeError("package", f"nginx {self.version} needs other packages changed too ("
                                          f"{', '.join(f'{p} {moving[p]}' for p in others)}): upgrade those first")
        fetched = self._apt("--download-only")
        if fetched.returncode != 0:
            raise UpgradeError("package", f"apt could not download nginx {self.version}: "
                                          f"{(fetched.stderr or fetched.stdout).strip()[-600:]}")
        arch = _run(["dpkg", "--print-architecture"]).stdout.strip()
        deb = f"{APT_ARCHIVES}/{deb_name(self.binary_package, self.version, arch)}"
        if not os.path.isfile(deb):
            raise UpgradeError("package", f"{deb} is missing after apt's download")
        return deb

    def install(self) -> None:
        """Record the packages as installed (the binary already serves): their maintainer
        scripts may not start, restart or upgrade nginx (policy-rc.d), and the cached
        .debs are used (nothing downloaded)."""
        saved = f"{POLICY_RC}.zdt-saved"
        if os.path.lexists(POLICY_RC):  # the host's own policy, put back afterwards
            os.rename(POLICY_RC, saved)
        try:
            write_atomic(POLICY_RC, "#!/bin/sh\n# zerodowntime.web nginx upgrade: no service actions\nexit 101\n",
                         0o755)
            proc = self._apt("--no-download")
        finally:
            if os.path.lexists(saved):
                os.replace(saved, POLICY_RC)
            elif os.path.lexists(POLICY_RC):
                os.unlink(POLICY_RC)
        if proc.returncode != 0:
            raise UpgradeError("package", f"apt-get install of nginx {self.version} failed: "
                                          f"{(proc.stderr or proc.stdout).strip()[-600:]}")


def extract_binary(deb: str, dest: str = NGINX_BINARY_STAGED) -> None:
    """Write the nginx binary a .deb ships to DEST (mode 0755)."""
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", deb], stdout=subprocess.PIPE)
    try:
        with tarfile.open(fileobj=proc.stdout, mode="r|") as archive:
            for member in archive:
                if member.name.lstrip("./") == NGINX_BINARY.lstrip("/") and member.isfile():
                    source = archive.extractfile(member)
                    with open(dest, "wb") as out:
                        out.write(source.read())
                    os.chmod(dest, 0o755)
                    return
    finally:
        proc.stdout.close()
        proc.wait()
    raise UpgradeError("package", f"{deb} has no {NGINX_BINARY}")


def stage_file(source: str, dest: str = NGINX_BINARY_STAGED) -> None:
    with open(source, "rb") as handle, open(dest, "wb") as out:
        out.write(handle.read())
    os.chmod(dest, 0o755)


def version_line(binary: str) -> str:
    """What `BINARY -v` says (nginx writes it to stderr)."""
    try:
        proc = _run([binary, "-v"])
    except OSError as error:
        return str(error)
    lines = (proc.stderr or proc.stdout).strip().splitlines()
    return lines[-1] if lines else ""


def test_binary(binary: str, main_conf: str = zdt_nginx.MAIN_CONF) -> str:
    """'' when BINARY accepts the live configuration (nginx -t), else what it said."""
    try:
        proc = _run([binary, "-t", "-q", "-c", main_conf])
    except OSError as error:
        return str(error)
    return "" if proc.returncode == 0 else (proc.stderr or proc.stdout).strip()[-800:] or f"exit {proc.returncode}"


# --- the running nginx -----------------------------------------------------------------

def _processes() -> list[tuple[int, int, str]]:
    """(pid, parent pid, title) of every process."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:  # a process may exit meanwhile (ENOENT, or ESRCH while it is reaped)
            with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                stat = handle.read()
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                cmdline = handle.read().rstrip(b"\0").decode("utf-8", "replace")
        except OSError:
            continue
        found.append((int(entry), int(stat.rsplit(")", 1)[-1].split()[1]), cmdline))
    return found


def masters() -> list[int]:
    return sorted(pid for pid, _parent, title in _processes() if title.startswith(MASTER_TITLE))


def workers(master: int) -> list[int]:
    """The workers of MASTER that accept connections (not those shutting down)."""
    return [pid for pid, parent, title in _processes() if parent == master and title == WORKER_TITLE]


def alive(pid: int | None) -> bool:
    return bool(pid) and (read(f"/proc/{pid}/cmdline") or "").startswith(MASTER_TITLE)


def runs_file(pid: int, path: str) -> bool:
    """Whether process PID runs the binary at PATH: the same file, or the same bytes (apt
    unpacks a new file even when its content is what already runs; an older, deleted
    binary differs)."""
    try:
        running, on_disk = os.stat(f"/proc/{pid}/exe"), os.stat(path)
        if (running.st_dev, running.st_ino) == (on_disk.st_dev, on_disk.st_ino):
            return True
        return sha256(f"/proc/{pid}/exe") == sha256(path)
    except OSError:
        return False


def pid_file(suffix: str = "") -> int | None:
    text = (read(zdt_nginx.PID_FILE + suffix) or "").strip()
    return int(text) if text.isdigit() else None


def wait(predicate, seconds: float, pause: float = 0.05):  # noqa: ANN001, ANN201 - a small loop helper
    """PREDICATE's first true value within SECONDS, else its last value."""
    return wait_until(time.monotonic() + seconds, pause, predicate)


def signal_master(pid: int, name: str) -> None:
    os.kill(pid, getattr(signal, f"SIG{name}"))


def log_since(path: str, offset: int) -> list[str]:
    """The lines a log file got after it was OFFSET bytes long."""
    try:
        with open(path, "rb") as handle:
            handle.seek(offset)
            return [line for line in handle.read(65536).decode("utf-8", "replace").splitlines() if line.strip()]
    except OSError:
        return []


def systemd_main_pid(unit: str = "nginx.service") -> int | None:
    proc = _run(["systemctl", "show", "-p", "MainPID", "--value", unit])
    text = proc.stdout.strip()
    return int(text) if proc.returncode == 0 and text.isdigit() else None
