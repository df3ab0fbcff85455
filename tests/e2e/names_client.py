#!/usr/bin/env python3
"""Clients and servers for the names end-to-end test (tests/e2e/tests/names.rs).

Each mode prints one JSON line with its pid and what it did, so the test
can find its flows. Bounded: every socket has a timeout.

  tls NAME PORT            resolve NAME (libc), connect, TLS with SNI NAME
  tcpdns SERVER NAME PORT  ask SERVER for NAME over TCP DNS, connect to it
  resolver SOCKET          a caching resolver on a Unix socket (like nscd)
  via SOCKET NAME PORT     resolve NAME through the resolver, connect
  bare ADDR PORT           connect to ADDR without resolving anything
  udpdns SERVER NAME PORT FALLBACK
                           ask SERVER for NAME over UDP DNS, connect to it
  hostile ADDR TARGET      a DNS server on ADDR:53 that answers with garbage,
                           and names TARGET with a hostile name ("evil")
  quic ADDR NAME           send a QUIC Initial (aioquic) for NAME to ADDR:443
"""
import json
import os
import random
import socket
import ssl
import struct
import sys


def done(**kw):
    kw["pid"] = os.getpid()
    print(json.dumps(kw), flush=True)


def query(name, qid=0x4242, qtype=1):
    q = struct.pack(">HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    for label in name.split("."):
        q += bytes([len(label)]) + label.encode()
    return q + b"\x00" + struct.pack(">HH", qtype, 1)


def first_a(msg):
    """The first A record of an answer (enough for these tests)."""
    i = 12
    while msg[i]:
        i += msg[i] + 1
    i += 5
    an = struct.unpack(">H", msg[6:8])[0]
    for _ in range(an):
        if msg[i] & 0xC0 == 0xC0:
            i += 2
        else:
            while msg[i]:
                i += msg[i] + 1
            i += 1
        ty, _cls, _ttl, n = struct.unpack(">HHIH", msg[i:i + 10])
        i += 10
        if ty == 1:
            return socket.inet_ntoa(msg[i:i + 4])
        i += n
    raise SystemExit("no A record")


def connect(addr, port, payload=b"hello\n"):
    s = socket.create_connection((addr, int(port)), timeout=5)
    s.sendall(payload)
    try:
        s.recv(100)
    except OSError:
        pass
    lport = s.getsockname()[1]
    s.close()
    return lport


def main():
    mode, args = sys.argv[1], sys.argv[2:]
    if mode == "tls":
        name, port = args
        addr = socket.getaddrinfo(name, int(port), socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        raw = socket.create_connection((addr, int(port)), timeout=5)
        lport = raw.getsockname()[1]
        with ctx.wrap_socket(raw, server_hostname=name) as s:
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            try:
                s.recv(100)
            except OSError:
                pass
        done(addr=addr, lport=lport)
    elif mode == "tcpdns":
        server, name, port = args
        q = query(name)
        d = socket.create_connection((server, 53), timeout=5)
        d.sendall(struct.pack(">H", len(q)) + q)
        buf = b""
        while len(buf) < 2 or len(buf) < 2 + struct.unpack(">H", buf[:2])[0]:
            chunk = d.recv(4096)
            if not chunk:
                break
            buf += chunk
        d.close()
        addr = first_a(buf[2:])
        done(addr=addr, lport=connect(addr, port))
    elif mode == "udpdns":
        # SERVER NAME PORT [FALLBACK]: reads up to 3 answers (a hostile
        # server sends several), connects to the first A record's address,
        # or to FALLBACK if none had one
        server, name, port = args[:3]
        d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        d.settimeout(2)
        d.sendto(query(name), (server, 53))
        addr = None
        for _ in range(3):
            try:
                msg, _ = d.recvfrom(4096)
            except socket.timeout:
                break
            try:
                addr = first_a(msg)
                break
            except (SystemExit, IndexError, struct.error):
                continue
        d.close()
        addr = addr or args[3]
        done(addr=addr, lport=connect(addr, port))
    elif mode == "resolver":
        (path,) = args
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(8)
        done(ready=True)
        for _ in range(32):
            c, _ = srv.accept()
            with c:
                name = c.recv(256).decode().strip()
                if name == "quit":
                    break
                try:
                    addr = socket.getaddrinfo(name, 0, socket.AF_INET, socket.SOCK_STREAM)[0][4][0]
                except OSError:
                    addr = ""
                c.sendall(addr.encode())
    elif mode == "via":
        path, name, port = args
        c = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        c.settimeout(5)
        c.connect(path)
        c.sendall(name.encode())
        addr = c.recv(64).decode()
        c.close()
        done(addr=addr, lport=connect(addr, port))
    elif mode == "bare":
        addr, port = args
        done(addr=addr, lport=connect(addr, port))
    elif mode == "hostile":
        addr, target = args
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((addr, 53))
        s.settimeout(30)
        rng = random.Random(7)
        done(ready=True)
        n = 0
        while True:
            try:
                q, peer = s.recvfrom(512)
            except socket.timeout:
                return
            qid = q[:2]
            n += 1
            if q[12:] == query("quit")[12:]:
                return
            if b"evil" in q[12:]:
                # a valid answer whose name holds an escape sequence and a newline
                name = b""
                for label in (b"x\x1b[31mred\nline", b"example"):
                    name += bytes([len(label)]) + label
                name += b"\x00"
                ans = (qid + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + name + b"\x00\x01\x00\x01"
                       + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04" + socket.inet_aton(target))
                s.sendto(ans, peer)
                continue
            # garbage: a compression loop, counts that lie, random bytes
            for g in (
                qid + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00\xc0\x0c\x00\x01\x00\x01",
                qid + b"\x81\x80\x00\x01\xff\xff\xff\xff\xff\xff" + q[12:],
                qid + b"\x81\x80" + bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400))),
            ):
                s.sendto(g, peer)
    elif mode == "quic":
        addr, name = args
        from aioquic.quic.configuration import QuicConfiguration
        from aioquic.quic.connection import QuicConnection
        cfg = QuicConfiguration(is_client=True, server_name=name, alpn_protocols=["h3"])
        conn = QuicConnection(configuration=cfg)
        conn.connect((addr, 443), now=0.0)
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for data, _ in conn.datagrams_to_send(now=0.0):
            s.sendto(data, (addr, 443))
        lport = s.getsockname()[1]
        s.close()
        done(addr=addr, lport=lport)
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
