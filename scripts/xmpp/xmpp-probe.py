#!/usr/bin/env python3
"""Check that an XMPP server accepts a client: stream, STARTTLS, SASL PLAIN, bind, ping.

Standard library only (socket, ssl), so it runs before slixmpp is installed. Prints what it
sees on stderr and one JSON summary line on stdout; exits 0 only if every requested step worked.

  xmpp-probe.py --port P [--domain localhost] [--user U --password PW]
                [--tls starttls|none] [--cafile DIR/certs/DOMAIN.crt] [--show-features]

  --tls starttls  (default) STARTTLS first; the certificate is verified against --cafile with
                  host name = --domain, or not verified at all without --cafile.
  --tls none      stay on plaintext (the server must allow it: XMPP_TLS=optional|off).
  Without --user: only opens the stream (and TLS) and reports the features offered.

Typical use after an up script:   . DIR/env
  scripts/xmpp/xmpp-probe.py --port $XMPP_PORT --domain $XMPP_DOMAIN --cafile $XMPP_CAFILE --user bench-a
"""
import argparse
import base64
import json
import re
import socket
import ssl
import sys
import time

STREAM_HEADER = ("<?xml version='1.0'?><stream:stream to='{}' version='1.0' xmlns='jabber:client' "
                 "xmlns:stream='http://etherx.jabber.org/streams'>")


class ProbeError(Exception):
    pass


class Conn:
    def __init__(self, sock, timeout):
        self.sock = sock
        self.sock.settimeout(timeout)
        self.buf = b""

    def send(self, text):
        self.sock.sendall(text.encode())

    def read_until(self, pattern):
        """Read until regex `pattern` (bytes) matches the buffer; return and consume up to the match end."""
        rx = re.compile(pattern, re.S)
        while True:
            m = rx.search(self.buf)
            if m:
                out, self.buf = self.buf[:m.end()], self.buf[m.end():]
                return out.decode("utf-8", "replace")
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise ProbeError(f"timed out waiting for {pattern!r}; got {self.buf[-300:]!r}")
            if not chunk:
                raise ProbeError(f"connection closed while waiting for {pattern!r}; got {self.buf[-300:]!r}")
            self.buf += chunk


def open_stream(conn, domain):
    conn.send(STREAM_HEADER.format(domain))
    feats = conn.read_until(rb"<stream:features\s*/>|</stream:features>|</stream:stream>")
    if "<stream:error" in feats:
        raise ProbeError("stream error: " + feats[feats.find("<stream:error"):])
    return feats[feats.find("<stream:features"):]


def mechanisms(feats):
    return re.findall(r"<mechanism>([^<]+)</mechanism>", feats)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--domain", default="localhost")
    ap.add_argument("--user")
    ap.add_argument("--password", default="secret")
    ap.add_argument("--tls", choices=["starttls", "none"], default="starttls")
    ap.add_argument("--cafile")
    ap.add_argument("--timeout", type=float, default=10.0, help="seconds per network wait (default 10)")
    ap.add_argument("--show-features", action="store_true", help="print the raw <stream:features> elements")
    a = ap.parse_args()

    summary = {"host": a.host, "port": a.port, "domain": a.domain, "ok": False}
    t0 = time.perf_counter()
    try:
        try:
            sock = socket.create_connection((a.host, a.port), timeout=a.timeout)
        except OSError as e:
            raise ProbeError(f"cannot connect to {a.host}:{a.port}: {e}")
        conn = Conn(sock, a.timeout)
        feats = open_stream(conn, a.domain)
        starttls = "urn:ietf:params:xml:ns:xmpp-tls" in feats
        summary["starttls_offered"] = starttls
        summary["starttls_required"] = bool(re.search(r"<starttls[^>]*>\s*<required", feats))
        summary["mechanisms_plain"] = mechanisms(feats)
        if a.show_features:
            print("features (plaintext):", feats, file=sys.stderr)
        if a.tls == "starttls":
            if not starttls:
                raise ProbeError("server does not offer STARTTLS (XMPP_TLS=off?); use --tls none")
            conn.send("<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>")
            r = conn.read_until(rb"<proceed[^>]*/>|<failure[^>]*/>|</failure>")
            if "<proceed" not in r:
                raise ProbeError("STARTTLS refused: " + r)
            if a.cafile:
                ctx = ssl.create_default_context(cafile=a.cafile)
            else:
                ctx = ssl.create_default_context()
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            try:
                conn.sock = ctx.wrap_socket(conn.sock, server_hostname=a.domain)
            except ssl.SSLError as e:
                raise ProbeError(f"TLS handshake failed: {e}")
            summary["tls"] = {"version": conn.sock.version(), "cipher": conn.sock.cipher()[0],
                              "verified": bool(a.cafile)}
            feats = open_stream(conn, a.domain)
            summary["mechanisms_tls"] = mechanisms(feats)
            if a.show_features:
                print("features (after STARTTLS):", feats, file=sys.stderr)
        if a.user:
            if "PLAIN" not in mechanisms(feats):
                raise ProbeError(f"server offers no SASL PLAIN here (offered: {mechanisms(feats)})")
            cred = base64.b64encode(b"\0" + a.user.encode() + b"\0" + a.password.encode()).decode()
            conn.send(f"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>{cred}</auth>")
            r = conn.read_until(rb"<success[^>]*/>|</success>|<failure.*?</failure>")
            if "<success" not in r:
                raise ProbeError(f"SASL PLAIN as {a.user} failed: {r}")
            feats = open_stream(conn, a.domain)
            if a.show_features:
                print("features (after auth):", feats, file=sys.stderr)
            summary["sm"] = "urn:xmpp:sm:3" in feats
            conn.send("<iq type='set' id='b1'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'>"
                      "<resource>probe</resource></bind></iq>")
            r = conn.read_until(rb"<iq[^>]*id=['\"]b1['\"].*?</iq>|<iq[^>]*id=['\"]b1['\"][^>]*/>")
            m = re.search(r"<jid>([^<]+)</jid>", r)
            if "type='result'" not in r.replace('"', "'") or not m:
                raise ProbeError("resource bind failed: " + r)
            summary["jid"] = m.group(1)
            t1 = time.perf_counter()
            conn.send(f"<iq type='get' id='p1' to='{a.domain}'><ping xmlns='urn:xmpp:ping'/></iq>")
            r = conn.read_until(rb"<iq[^>]*id=['\"]p1['\"].*?(/>|</iq>)")
            if "type='result'" not in r.replace('"', "'"):
                raise ProbeError("server ping failed: " + r)
            summary["ping_ms"] = round((time.perf_counter() - t1) * 1000, 3)
            conn.send("</stream:stream>")
        summary["ok"] = True
    except ProbeError as e:
        summary["error"] = str(e)
        print(f"xmpp-probe: FAILED: {e}", file=sys.stderr)
    summary["elapsed_ms"] = round((time.perf_counter() - t0) * 1000, 1)
    print(json.dumps(summary))
    sys.exit(0 if summary["ok"] else 1)


if __name__ == "__main__":
    main()
