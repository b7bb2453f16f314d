"""supervisor program files, nginx main config and includes, the access-log counter, assets."""

from __future__ import annotations

from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_host import AccessLog
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_http import static_assets
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_nginx import _rewrite, with_shutdown_timeout
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_supervisor import is_active, render, with_active


def spec(**more) -> dict:
    return {"process": "worker", "kind": "worker", "command": "/srv/shop/releases/1.0/with-env date +%s",
            "user": "shop", **more}


def test_a_program_file_starts_with_its_marker_and_escapes_percent():
    app = App("shop")
    text = render(app, "1.0", spec(), active=True)
    assert text.startswith(app.marker("1.0", "worker", "worker"))
    assert app.owns(app.program_conf("1.0", "worker"), text)["process"] == "worker"
    assert "command=/srv/shop/releases/1.0/with-env date +%%s" in text
    assert "[program:shop@1.0.worker]" in text and "stdout_logfile=/var/log/supervisor/%(program_name)s.log" in text


def test_several_processes_get_their_own_names_and_logs():
    text = render(App("shop"), "1.0", spec(numprocs=2), active=True)
    assert "process_name=%(program_name)s_%(process_num)02d" in text
    assert "%(program_name)s_%(process_num)02d.log" in text


def test_parking_and_activating_flip_autostart_only():
    text = render(App("shop"), "1.0", spec(), active=True)
    parked = with_active(text, False)
    assert not is_active(parked) and is_active(with_active(parked, True))
    assert with_active(parked, True) == text


def test_worker_shutdown_timeout_is_raised_never_lowered():
    base = "user www-data;\npid /run/nginx.pid;\nevents {}\n"
    raised = with_shutdown_timeout(base, 70)
    assert "pid /run/nginx.pid;\nworker_shutdown_timeout 70s;\n" in raised
    assert with_shutdown_timeout(raised, 30) == raised
    assert "worker_shutdown_timeout 90s;" in with_shutdown_timeout(raised, 90)


def test_a_candidate_replaces_the_file_inside_the_glob_that_includes_it(tmp_path):
    conf = tmp_path / "conf.d"
    conf.mkdir()
    (conf / "a.conf").write_text("")
    (conf / "shop.conf").write_text("")
    main = f"http {{\n    include {conf}/*.conf;\n}}\n"
    text = _rewrite(main, str(tmp_path), "/tmp/candidate", str(conf / "shop.conf"))
    assert f"include {conf}/a.conf;" in text and "include /tmp/candidate;" in text
    assert f"include {conf}/shop.conf;" not in text
    # A new file the glob would pick up is tested too.
    text = _rewrite(main, str(tmp_path), "/tmp/candidate", str(conf / "shop.preview.conf"))
    assert "include /tmp/candidate;" in text and f"include {conf}/shop.conf;" in text


def test_the_access_log_counts_a_releases_own_answers_and_5xx(tmp_path):
    log = tmp_path / "access.log"
    log.write_text("")
    counter = AccessLog(str(log), "/srv/shop/run/2.0.sock")
    new, old = "unix:/srv/shop/run/2.0.sock", "unix:/srv/shop/run/1.0.sock"
    lines = [
        f'1.2.3.4 - - [x] "GET / HTTP/1.1" 200 5 "-" "hey" rt=0.01 us=200 ua={new}',
        f'1.2.3.4 - - [x] "GET / HTTP/1.1" 200 5 "-" "hey" rt=0.01 us=502, 200 ua={new}, {old}',
        f'1.2.3.4 - - [x] "GET / HTTP/1.1" 500 5 "-" "hey" rt=0.01 us=500 ua={new}',
        f'1.2.3.4 - - [x] "GET / HTTP/1.1" 200 5 "-" "hey" rt=0.01 us=200 ua={old}',
        '1.2.3.4 - - [x] "GET /static/a.css HTTP/1.1" 200 5 "-" "hey" rt=0.00 us=- ua=-',
    ]
    log.write_text("\n".join(lines) + "\n")
    counter.read()
    assert (counter.answers, counter.errors) == (3, 2)
    assert counter.failing(0.5, 2) and not counter.failing(0.9, 2) and not counter.failing(0.1, 3)


def test_the_access_log_is_read_from_an_offset_or_from_its_start_after_a_rotation(tmp_path):
    log = tmp_path / "access.log"
    line = '1.2.3.4 - - [x] "GET / HTTP/1.1" 500 5 "-" "hey" rt=0.01 us=500 ua=unix:/srv/shop/run/2.0.sock\n'
    log.write_text(line * 3)
    # From the switch's offset: the answers logged since count, not those before.
    since = AccessLog(str(log), "/srv/shop/run/2.0.sock", len(line))
    since.read()
    assert since.answers == 2
    # An offset beyond the end: the log was rotated since the switch.
    rotated = AccessLog(str(log), "/srv/shop/run/2.0.sock", len(line) * 10)
    rotated.read()
    assert rotated.answers == 3


def test_assets_under_the_static_url_are_found_in_a_page():
    page = ('<link rel="stylesheet" href="/static/site.css"><link rel="canonical" href="/static/no.css">'
            '<script src="/static/app.js?v=2"></script><img src="https://cdn.example/static/x.png">'
            '<img src="/media/photo.jpg"><link rel="icon" href="/static/favicon.ico">')
    assert static_assets(page, "/", "/static/", "shop.example.test") == [
        "/static/site.css", "/static/app.js?v=2", "/static/favicon.ico"]


def _serve(family: int, address: str, port: int, release: str):
    import http.server
    import threading

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("X-Release", release)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    class Server(http.server.ThreadingHTTPServer):
        address_family = family

    try:
        server = Server((address, port), Handler)
    except OSError:
        return None
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_a_release_is_checked_over_every_address_family_the_site_serves():
    import socket

    import pytest
    from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_nginx import check_release

    v4 = _serve(socket.AF_INET, "127.0.0.1", 0, "r1")
    port = v4.server_address[1]
    v6 = _serve(socket.AF_INET6, "::1", port, "r0")  # e.g. another site answering on IPv6
    if v6 is None:
        v4.shutdown()
        pytest.skip("no IPv6 loopback here")
    try:
        spec = {"port": port, "release": "r1", "paths": ["/"], "timeout": 0.2, "delay": 0.05}
        checked, error = check_release(dict(spec, addresses=["127.0.0.1"]))
        assert error == "" and [c["url"] for c in checked] == [f"http://127.0.0.1:{port}/health",
                                                               f"http://127.0.0.1:{port}/"]
        checked, error = check_release(dict(spec, addresses=["127.0.0.1", "::1"]))
        assert f"http://[::1]:{port}/health answered 200 from release r0, expected 200 from r1" in error
    finally:
        v4.shutdown()
        v6.shutdown()
