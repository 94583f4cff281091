#!/usr/bin/env python3
"""Idle memory per connected client of an XMPP server (the router's issue asks for < 50 KiB).

Opens COUNT plaintext client connections to 127.0.0.1:PORT, logs each in with SASL PLAIN (the
server must allow plaintext on loopback, as router-up.sh does) and binds a resource, then reads
the server's resident memory (VmRSS of --pid) before and after, holds the connections a moment,
closes them, and prints one JSON line:
  {"server": ..., "clients": N, "rss_before_kib": ..., "rss_after_kib": ..., "kib_per_client": ...}
Usage: idle_clients.py --port P --pid SERVER_PID --user U --password PW [--count 1000] [--domain D]
"""
import argparse
import base64
import json
import socket
import sys
import time


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise SystemExit(f"no VmRSS for pid {pid}")


def read_until(sock, marker, limit=65536):
    data = b""
    while marker not in data:
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError(f"closed while waiting for {marker!r}: {data[-200:]!r}")
        data += chunk
        if len(data) > limit:
            raise ConnectionError("too much data")
    return data


def login(port, domain, user, password, index):
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    header = (f"<?xml version='1.0'?><stream:stream xmlns='jabber:client' "
              f"xmlns:stream='http://etherx.jabber.org/streams' to='{domain}' version='1.0'>").encode()
    sock.sendall(header)
    read_until(sock, b"</stream:features>")
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode()
    sock.sendall(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{token}</auth>".encode())
    answer = read_until(sock, b">", 4096)
    if b"success" not in answer:
        raise SystemExit(f"login of {user} refused: {answer[:200]!r}")
    sock.sendall(header)
    read_until(sock, b"</stream:features>")
    sock.sendall(f"<iq type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                 f"<resource>idle{index}</resource></bind></iq>".encode())
    read_until(sock, b"</iq>")
    return sock


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--domain", default="localhost")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--server", default="router")
    args = parser.parse_args()
    warm = [login(args.port, args.domain, args.user, args.password, -i - 1) for i in range(20)]
    time.sleep(1)
    before = rss_kib(args.pid)
    sockets = [login(args.port, args.domain, args.user, args.password, i) for i in range(args.count)]
    time.sleep(2)
    after = rss_kib(args.pid)
    for sock in sockets + warm:
        sock.close()
    print(json.dumps({"server": args.server, "clients": args.count, "rss_before_kib": before,
                      "rss_after_kib": after, "kib_per_client": round((after - before) / args.count, 1)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
