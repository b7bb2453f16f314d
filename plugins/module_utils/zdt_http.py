# -*- coding: utf-8 -*-
# MIT License (see LICENSE)
"""The HTTP checks of a release: on its own socket (health before it takes traffic), and
through nginx (preview, verification, the watch after the switch, the standby helper).

Every request sends the Host the site serves (its first server name) and the
X-Forwarded-Proto the site would send, never follows a redirect, and returns what was
answered, so a failure can say why (a 400 is ALLOWED_HOSTS, a steady 301 is an HTTPS
redirect). Pure standard library: the host-side helper imports it too.
"""
from __future__ import annotations

import http.client
import json
import re
import socket
import ssl
import time
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

OK_STATUS = (200, 201, 204, 301, 302, 303, 304, 307, 308)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class Answer:
    def __init__(self, status: int, headers: dict, body: str, error: str = "", refused: bool = False) -> None:
        self.status, self.headers, self.body, self.error = status, headers, body, error
        # Nothing listened there (the server is stopped or restarting), as opposed to a timeout.
        self.refused = refused

    def header(self, name: str) -> str:
        return self.headers.get(name.lower(), "")

    def describe(self) -> str:
        if not self.status:
            return f"no answer ({self.error})"
        text = f"{self.status}"
        if 300 <= self.status < 400 and self.header("location"):
            text += f" redirecting to {self.header('location')}"
        return text


def _request(connection: http.client.HTTPConnection, path: str, headers: dict, limit: int) -> Answer:
    try:
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        body = response.read(limit).decode("utf-8", "replace")
        return Answer(response.status, {k.lower(): v for k, v in response.getheaders()}, body)
    except (OSError, http.client.HTTPException) as error:
        return Answer(0, {}, "", str(error) or type(error).__name__, refused=isinstance(error, ConnectionRefusedError))
    finally:
        connection.close()


def get_unix(socket_path: str, path: str, host: str, proto: str = "http", timeout: float = 5,
             limit: int = 65536) -> Answer:
    """GET PATH from a gunicorn on its unix socket, as nginx would send it."""
    headers = {"Host": host, "X-Forwarded-Proto": proto}
    return _request(_UnixConnection(socket_path, timeout), path, headers, limit)


def get_tcp(address: str, port: int, path: str, host: str, *, tls: bool = False, headers: dict | None = None,
            timeout: float = 10, limit: int = 1048576) -> Answer:
    """GET PATH from nginx on ADDRESS:PORT (IPv6 addresses bare, e.g. ::1)."""
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # the host's own certificate, asked on loopback
        connection: http.client.HTTPConnection = http.client.HTTPSConnection(address, port, timeout=timeout,
                                                                             context=context)
    else:
        connection = http.client.HTTPConnection(address, port, timeout=timeout)
    return _request(connection, path, {"Host": host, **(headers or {})}, limit)


def release_in_health(answer: Answer) -> str:
    """The release a health answer names (JSON with a "release" key), '' when it names none."""
    if not answer.body.lstrip().startswith("{"):
        return ""
    try:
        value = json.loads(answer.body)
    except ValueError:
        return ""
    return str(value.get("release", "")) if isinstance(value, dict) else ""


class _Assets(HTMLParser):
    ATTRS = {"link": "href", "script": "src", "img": "src", "source": "src"}

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list) -> None:
        wanted = self.ATTRS.get(tag)
        values = dict(attrs)
        if tag == "link" and "stylesheet" not in (values.get("rel") or "") and "icon" not in (values.get("rel") or ""):
            return
        if wanted and values.get(wanted):
            self.found.append(values[wanted])


def static_assets(html: str, page: str, static_url: str, host: str) -> list[str]:
    """Paths of the stylesheets, scripts and images under STATIC_URL that HTML (page PAGE) references."""
    parser = _Assets()
    try:
        parser.feed(html)
    except Exception:  # noqa: BLE001 - a page that is not HTML has no assets to check
        return []
    paths = []
    for ref in parser.found:
        url = urlsplit(urljoin(f"http://{host}{page}", ref))
        if url.netloc not in (host, "") or not url.path.startswith(static_url):
            continue
        path = url.path + (f"?{url.query}" if url.query else "")
        if path not in paths:
            paths.append(path)
    return paths


def wait_until(deadline: float, pause: float, attempt):  # noqa: ANN001, ANN201 - a small loop helper
    """Call ATTEMPT until it returns a true value or DEADLINE passes; return its last value."""
    while True:
        result = attempt()
        if result or time.monotonic() >= deadline:
            return result
        time.sleep(pause)


def redirect_hint(answer: Answer) -> str:
    if 300 <= answer.status < 400 and re.match(r"https://", answer.header("location")):
        return (" The app redirects to HTTPS (Django's SECURE_SSL_REDIRECT): serve the site over TLS "
                "(the X-Forwarded-Proto it sends is then https) or exempt the health path.")
    return ""
