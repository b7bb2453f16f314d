"""The load balancer's helpers: its files from its state, /proc/net/tcp, the access log's counts."""

from __future__ import annotations

import socket
import sys

import pytest
from ansible_collections.zerodowntime.web.plugins.module_utils import zdt_lb
from ansible_collections.zerodowntime.web.plugins.module_utils.zdt_layout import App, LayoutError, Lb, apps_on_host


def site(**more) -> dict:
    state = {"name": "shop", "backends": zdt_lb.backends([{"host": "web1", "address": "10.0.0.11"},
                                                          {"host": "web2", "port": 8080, "weight": 2},
                                                          {"host": "web3", "address": "fd00::13"}]),
             "down": [], "listen": 80, "server_names": ["shop.example.com", "www.shop.example.com"], "max_fails": 3,
             "fail_timeout": 10, "keepalive": 16, "next_upstream": "error timeout", "request_timeout": 60,
             "health_path": "/health", "health_host": "shop.example.com"}
    return {**state, **more}


def test_backends_default_to_their_host_port_80_and_weight_1():
    assert zdt_lb.backends([{"host": "web1"}]) == [{"host": "web1", "address": "web1", "port": 80, "weight": 1}]


def test_a_load_balancer_never_shares_a_file_or_an_nginx_name_with_an_app():
    lb, app = Lb("shop"), App("shop")
    assert {lb.upstream_conf, lb.server_conf, lb.access_log}.isdisjoint({app.site_conf, app.preview_conf,
                                                                         app.access_log})
    names = {App(n).upstream for n in ("lb-x", "lb_x", "x")} | {App(n).log_format for n in ("lb-x", "lb_x", "x")}
    assert {Lb(n).upstream for n in ("dx", "x", "lb-x")}.isdisjoint(names)
    assert Lb("a-b").upstream != Lb("a_b").upstream


def test_the_state_directory_is_not_taken_for_an_app(tmp_path):
    state_dir = Lb("shop", state_dir=str(tmp_path / "lb.d")).state_dir
    (tmp_path / "lb.d").mkdir()
    (tmp_path / "shop").mkdir()
    assert state_dir.endswith("/lb.d") and apps_on_host(str(tmp_path)) == ["shop"]


@pytest.mark.parametrize("name", ["Shop", "a.b", "a b", "", "x" * 33, None])
def test_bad_load_balancer_names_are_refused(name):
    with pytest.raises(LayoutError):
        Lb(name)


def test_the_upstream_lists_every_member_with_its_options_and_marks_the_drained_down():
    text = zdt_lb.render_upstream(Lb("shop"), site(down=["web2"]))
    assert "upstream zdtlb_shop {" in text and "zone zdtlb_shop 64k;" in text
    assert "server 10.0.0.11:80 weight=1 max_fails=3 fail_timeout=10s;  # web1\n" in text
    assert "server web2:8080 weight=2 max_fails=3 fail_timeout=10s down;  # web2 (drained)\n" in text
    assert "server [fd00::13]:80 weight=1" in text
    assert "keepalive 16;" in text
    assert "keepalive" not in zdt_lb.render_upstream(Lb("shop"), site(keepalive=0))


def test_the_server_passes_host_and_forwarded_headers_and_keeps_connections_alive():
    text = zdt_lb.render_server(Lb("shop"), site())
    for line in ("listen 80;", "listen [::]:80;", "server_name shop.example.com www.shop.example.com;",
                 "access_log /var/log/nginx/shop.lb.access.log zdtlb_shop;", "proxy_set_header Host $host;",
                 "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
                 "proxy_set_header X-Forwarded-Proto $scheme;", "proxy_http_version 1.1;",
                 'proxy_set_header Connection "";', "proxy_read_timeout 60s;", "proxy_next_upstream error timeout;",
                 "proxy_pass http://zdtlb_shop;"):
        assert f"    {line}\n" in text, line
    assert f"log_format zdtlb_shop '{zdt_lb.LOG_FORMAT}';" in text
    assert "proxy_http_version" not in zdt_lb.render_server(Lb("shop"), site(keepalive=0))


def test_a_good_site_has_no_problems():
    assert zdt_lb.problems(site()) == []


@pytest.mark.parametrize("change,named", [
    ({"backends": []}, "backends"),
    ({"backends": [{"host": "web1", "address": "a b", "port": 80, "weight": 1}]}, "backends: address"),
    ({"backends": [{"host": "web1", "address": "web1", "port": 0, "weight": 1}]}, "backends: port"),
    ({"backends": [{"host": "web 1", "address": "web1", "port": 80, "weight": 1}]}, "backends: host"),
    ({"backends": [{"host": "w", "address": "x", "port": 80, "weight": 1}] * 2}, "listed twice"),
    ({"backends": [{"host": "w1", "address": "x", "port": 80, "weight": 1},
                   {"host": "w2", "address": "x", "port": 80, "weight": 1}]}, "share an address"),
    ({"server_names": []}, "server_names"),
    ({"server_names": ["a;b"]}, "server_names"),
    ({"next_upstream": "error http_999"}, "next_upstream"),
    ({"next_upstream": "off error"}, "next_upstream"),
    ({"health_path": "health"}, "health_path"),
    ({"health_host": ""}, "health_host"),
    ({"fail_timeout": 0}, "fail_timeout"),
    ({"keepalive": -1}, "keepalive"),
    ({"listen": 70000}, "listen"),
])
def test_a_bad_site_is_refused_naming_the_option(change, named):
    assert any(p.startswith(named) or named in p for p in zdt_lb.problems(site(**change)))


def words(ip: str) -> str:
    """An address as /proc/net/tcp{,6} shows it on this host."""
    raw = socket.inet_pton(socket.AF_INET6 if ":" in ip else socket.AF_INET, ip)
    if sys.byteorder == "little":
        raw = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    return raw.hex().upper()


TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 1 1 0 100 0 0 10 0
   1: {lb}:9A3C {web1}:0050 01 00000000:00000000 00:00000000 00000000    33        0 2 1 0 20 4 30 10 -1
   2: {lb}:9A3D {web1}:0050 01 00000000:00000000 00:00000000 00000000    33        0 3 1 0 20 4 30 10 -1
   3: {lb}:9A3E {web1}:0050 06 00000000:00000000 03:00000F5C 00000000     0        0 0 3 0
   4: {lb}:9A3F {web2}:1F90 01 00000000:00000000 00:00000000 00000000    33        0 4 1 0 20 4 30 10 -1
"""
TCP6 = """  sl  local_address                         remote_address                        st tx_queue rx_queue
   0: {lb}:C350 {web3}:0050 01 00000000:00000000 00:00000000 00000000    33        0 5 1 0 20 4 30 10 -1
   1: {lb}:C351 {mapped}:0050 01 00000000:00000000 00:00000000 00000000    33        0 6 1 0 20 4 30 10 -1
"""


def test_proc_net_tcp_is_read_in_the_hosts_byte_order():
    text = TCP.format(lb=words("10.0.0.2"), web1=words("10.0.0.11"), web2=words("10.0.0.12"))
    sockets = zdt_lb.parse_proc_net_tcp(text)
    assert sockets[1] == ("10.0.0.2", 0x9A3C, "10.0.0.11", 80, "01")
    assert sockets[0][:2] == ("0.0.0.0", 80) and sockets[0][4] == "0A"


def test_only_established_connections_to_the_members_address_and_port_are_counted(tmp_path):
    tcp, tcp6 = tmp_path / "tcp", tmp_path / "tcp6"
    tcp.write_text(TCP.format(lb=words("10.0.0.2"), web1=words("10.0.0.11"), web2=words("10.0.0.12")))
    tcp6.write_text(TCP6.format(lb=words("fd00::2"), web3=words("fd00::13"), mapped=words("::ffff:10.0.0.11")))
    counts = zdt_lb.established({"web1": ({"10.0.0.11"}, 80), "web2": ({"10.0.0.12"}, 80),
                                 "web3": ({"fd00::13"}, 80)}, (str(tcp), str(tcp6)))
    # web1: two established over IPv4 and one IPv4-mapped over IPv6 (the TIME_WAIT one is not);
    # web2: its connection is to another port.
    assert counts == {"web1": 3, "web2": 0, "web3": 1}


def test_a_name_resolves_to_its_addresses():
    assert zdt_lb.resolve("127.0.0.1", 80) == {"127.0.0.1"}
    assert zdt_lb.resolve("::ffff:127.0.0.1", 80) == {"127.0.0.1"}
    assert zdt_lb.resolve("no-such-host.invalid", 80) == set()


def line(msec: float, status: int, addr: str, ustatus: str, uheader: str) -> str:
    return (f'{msec:.3f} {status} 0.004 "{addr}" "{ustatus}" "{uheader}" 10.0.0.9 "shop.example.com" '
            '"GET / HTTP/1.1" 612 "hey/0.0.1"')


BY_ADDR = {"10.0.0.11:80": "web1", "10.0.0.12:80": "web2", "[fd00::13]:80": "web3"}
LOG = [
    line(99.999, 200, "10.0.0.11:80", "200", "0.003"),  # before since
    line(100.0, 200, "10.0.0.11:80", "200", "0.003"),
    line(100.1, 500, "10.0.0.12:80", "500", "0.010"),  # web2's own 500
    line(100.2, 200, "10.0.0.11:80, 10.0.0.12:80", "502, 200", "-, 0.002"),  # web1 refused, web2 answered
    line(100.3, 504, "10.0.0.12:80", "504", "-"),  # web2 timed out: the LB's 504
    line(100.4, 502, "10.0.0.12:80", "502", "0.001"),  # web2's nginx answered 502 itself
    line(100.5, 502, "zdtlb_shop", "502", "-"),  # no live member
    line(100.6, 200, "[fd00::13]:80", "200", "0.004"),
    line(100.7, 400, "-", "-", "-"),  # the LB refused the request itself
    "a line of another format",
]


def test_the_log_counts_each_attempt_per_member_and_each_request_in_the_totals():
    counted = zdt_lb.tally(LOG, 100.0, BY_ADDR, ["web1", "web2", "web3"])
    assert counted["members"] == {
        "web1": {"requests": 2, "status_5xx": 0, "lb_errors": 1, "retried": 1},
        "web2": {"requests": 4, "status_5xx": 2, "lb_errors": 1, "retried": 1},
        "web3": {"requests": 1, "status_5xx": 0, "lb_errors": 0, "retried": 0},
    }
    assert counted["totals"] == {"requests": 8, "status_5xx": 4, "lb_errors": 2, "retried": 1}
    assert (counted["first"], counted["last"]) == (100.0, 100.7)


def test_only_the_members_asked_for_are_counted_and_nothing_before_since():
    counted = zdt_lb.tally(LOG, 100.55, BY_ADDR, ["web3"])
    assert counted["members"] == {"web3": {"requests": 1, "status_5xx": 0, "lb_errors": 0, "retried": 0}}
    assert counted["totals"]["requests"] == 2


def test_internal_redirects_are_attempts_too():
    entry = zdt_lb.parse_line(line(1.0, 200, "10.0.0.11:80 : 10.0.0.12:80", "404 : 200", "0.001 : 0.002"))
    assert [a["addr"] for a in entry["attempts"]] == ["10.0.0.11:80", "10.0.0.12:80"] and not entry["retried"]


def test_the_log_is_read_from_the_end_back_to_since_with_the_rotated_file_when_needed(tmp_path):
    log = tmp_path / "shop.lb.access.log"
    old = [line(1000.0 + i, 200, "10.0.0.11:80", "200", "0.001") for i in range(3000)]
    (tmp_path / "shop.lb.access.log.1").write_text("\n".join(old[:2000]) + "\n")
    log.write_text("\n".join(old[2000:]) + "\n")
    recent = zdt_lb.lines_since(str(log), 3990.0, slack=5)
    assert recent[0].startswith("3985.000") and recent[-1].startswith("3999.000")
    across = zdt_lb.lines_since(str(log), 2990.0, slack=5)
    assert across[0].startswith("2985.000") and len(across) == 1015
    assert zdt_lb.lines_since(str(tmp_path / "none.log"), 0) == []
