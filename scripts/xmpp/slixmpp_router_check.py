#!/usr/bin/env python3
"""Two slixmpp clients log in to an XMPP server with a chosen SASL mechanism and exchange IQs.

Used by Tests/VertebraRouterTests to prove that a third-party client interoperates with
`vertebra router`. Client A sends XEP-0199 pings to client B's full JID (B answers them) and to
the server; prints one JSON line {"mechanism": ..., "pings": N, "ok": true} and exits 0, or
prints the failure on stderr and exits 1.

  slixmpp_router_check.py --port 5222 --cafile cert.pem --password-file pw --mechanism SCRAM-SHA-1
"""
import argparse
import asyncio
import json
import ssl
import sys

import slixmpp


def make_client(jid, password, mechanism, cafile):
    client = slixmpp.ClientXMPP(jid, password, sasl_mech=mechanism)
    client.enable_direct_tls = False
    client.enable_starttls = True
    client.enable_plaintext = False
    client.ssl_context = ssl.create_default_context(cafile=cafile)
    client.register_plugin("xep_0030")
    client.register_plugin("xep_0199")
    return client


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--domain", default="localhost")
    ap.add_argument("--cafile", required=True)
    ap.add_argument("--password-file", required=True)
    ap.add_argument("--mechanism", default="SCRAM-SHA-1")
    ap.add_argument("--count", type=int, default=20)
    args = ap.parse_args()
    password = open(args.password_file).read().splitlines()[0]

    clients = []
    for name in ("alice", "bob"):
        client = make_client(f"{name}@{args.domain}/slix", password, args.mechanism, args.cafile)
        ready = asyncio.get_running_loop().create_future()
        client.add_event_handler("session_start", lambda _e, f=ready: f.done() or f.set_result(True))
        client.add_event_handler("failed_auth", lambda _e, f=ready: f.done() or f.set_exception(RuntimeError("authentication failed")))
        client.connect(host=args.host, port=args.port)
        await asyncio.wait_for(ready, 15)
        clients.append(client)
    alice, bob = clients
    mechanism = alice.plugin["feature_mechanisms"].mech.name if alice.plugin["feature_mechanisms"].mech else "?"
    for _ in range(args.count):
        await alice.plugin["xep_0199"].ping(jid=bob.boundjid.full, timeout=10)
    await alice.plugin["xep_0199"].ping(jid=args.domain, timeout=10)
    info = await alice.plugin["xep_0030"].get_info(jid=args.domain, timeout=10)
    features = info["disco_info"]["features"]
    assert "urn:xmpp:ping" in features, features
    print(json.dumps({"mechanism": mechanism, "pings": args.count, "bound": str(bob.boundjid), "ok": True}))
    for client in clients:
        client.disconnect()
    await asyncio.sleep(0.2)


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except Exception as error:  # noqa: BLE001 - the test reads stderr
        print(f"slixmpp_router_check: {type(error).__name__}: {error}", file=sys.stderr)
        sys.exit(1)
