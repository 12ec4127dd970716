"""Escapes through the network: a host listener on loopback, the internet, DNS, every socket
family but AF_UNIX, the host's abstract unix sockets.

One file of the adversarial suite (issue 3): hostile scripts written by someone who has read
the source, each asserting the safe outcome the issue guarantees. tests/helpers.py lists the
suite's files and holds what they share; conftest.py the fixtures fast_config and mode.
"""

import socket
import uuid

import pytest

from helpers import S, run_ok


class TestEscapes:

    def test_no_tcp_to_a_host_listener_on_loopback(self):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        srv.settimeout(0.2)
        port = srv.getsockname()[1]
        script = S('''
            import socket

            def main():
                errs = []
                for host in ("127.0.0.1", "localhost", "::1", "0.0.0.0"):
                    try:
                        socket.create_connection((host, @PORT@), timeout=2).close()
                        errs.append("connected:" + host)
                    except OSError as e:
                        errs.append(type(e).__name__)
                return errs
        ''').replace("@PORT@", str(port))
        try:
            r = run_ok(script)["result"]
            with pytest.raises(OSError):
                srv.accept()  # nobody ever connected
        finally:
            srv.close()
        assert not any(e.startswith("connected") for e in r), r

    def test_no_network_anywhere(self):
        script = S('''
            import socket

            def main():
                got = []
                for target in (("1.1.1.1", 53), ("8.8.8.8", 443), ("169.254.169.254", 80)):
                    try:
                        socket.create_connection(target, timeout=2).close()
                        got.append(target)
                    except OSError:
                        pass
                try:
                    socket.getaddrinfo("example.com", 80)
                    got.append("dns")
                except OSError:
                    pass
                try:
                    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    u.sendto(b"x", ("8.8.8.8", 53))
                    got.append("udp")
                except OSError:
                    pass
                return got
        ''')
        assert run_ok(script)["result"] == []

    def test_no_socket_family_but_unix(self):
        script = S('''
            import socket

            def main():
                made = []
                for fam, typ in (("AF_INET", "SOCK_STREAM"), ("AF_INET6", "SOCK_DGRAM"), ("AF_NETLINK", "SOCK_RAW"),
                                 ("AF_PACKET", "SOCK_RAW"), ("AF_VSOCK", "SOCK_STREAM"), ("AF_ALG", "SOCK_SEQPACKET"),
                                 ("AF_INET", "SOCK_RAW")):
                    try:
                        socket.socket(getattr(socket, fam), getattr(socket, typ)).close()
                        made.append(fam + "/" + typ)
                    except OSError:
                        pass
                socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()  # this one is fine
                return made
        ''')
        assert run_ok(script)["result"] == []

    def test_requests_cannot_reach_the_host(self):
        srv = socket.socket()
        srv.bind(("127.0.0.1", 0))
        srv.listen(8)
        srv.settimeout(0.2)
        port = srv.getsockname()[1]
        script = S('''
            import requests

            def main():
                try:
                    requests.get("http://127.0.0.1:@PORT@/", timeout=2)
                    return "reached"
                except requests.exceptions.RequestException as e:
                    return type(e).__name__
        ''').replace("@PORT@", str(port))
        try:
            r = run_ok(script)["result"]
            with pytest.raises(OSError):
                srv.accept()
        finally:
            srv.close()
        assert r != "reached"

    def test_host_abstract_unix_socket_unreachable(self):
        name = "\0pyexec-adv-" + uuid.uuid4().hex
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(name)
        srv.listen(8)
        srv.settimeout(0.2)
        script = S('''
            import socket

            def main():
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                try:
                    s.connect(@NAME@)
                    return "connected"
                except OSError as e:
                    return type(e).__name__
        ''').replace("@NAME@", repr(name))
        try:
            r = run_ok(script)["result"]
            with pytest.raises(OSError):
                srv.accept()
        finally:
            srv.close()
        assert r != "connected"
