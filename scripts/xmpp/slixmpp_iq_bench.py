#!/usr/bin/env python3
"""IQ round-trip benchmark through a real XMPP server with slixmpp: the baseline for Natter.

Two slixmpp clients log in: a requester (default bench-a@DOMAIN) and a responder (default
bench-b@DOMAIN) that runs in its own OS process. The requester sends IQ `set` stanzas to the
responder's FULL JID, each carrying

    <job xmlns='urn:vertebra:bench:0' seq='i'><data>xxxx...(64 x)</data></job>

and the responder answers each with an empty IQ result. After a warm-up (200 IQs, 8 in flight)
it runs N IQs sequentially (concurrency 1) and N IQs with 64 in flight (-c changes the levels),
and prints ONE JSON object per concurrency level on stdout, nothing else:

    {"client": "slixmpp", "server": "prosody", "concurrency": 1, "n": 2000, "iq_per_s": 812.4,
     "p50_ms": 1.16, "p99_ms": 3.2, "p90_ms": ..., "max_ms": ..., "errors": 0, "wall_s": ...,
     "tls": "none", "slixmpp": "1.17.0"}

Latency is per IQ, from the requester's send() to its result, as the requester sees it.
Progress and errors go to stderr. Exit status: 0 ok; 1 login failure or bad arguments;
2 --timeout reached; 3 some IQs failed or timed out.

Examples (after scripts/xmpp/prosody-up.sh "$D" 0 bench-a bench-b):
  scripts/xmpp/slixmpp_iq_bench.py --env "$D/env" -n 2000                  # plaintext
  scripts/xmpp/slixmpp_iq_bench.py --env "$D/env" -n 2000 --tls starttls   # verified with XMPP_CAFILE
  . "$D/env"; scripts/xmpp/slixmpp_iq_bench.py --host 127.0.0.1 --port "$XMPP_PORT" \\
      --domain "$XMPP_DOMAIN" --server "$XMPP_SERVER" --tls starttls --cafile "$XMPP_CAFILE"

--tls none: plaintext stream and SASL on it (server must allow it: XMPP_TLS=optional|off).
--tls starttls: STARTTLS is required; the certificate is verified against --cafile (host name =
--domain); without --cafile it is NOT verified (a warning says so). slixmpp never tries direct
TLS on the c2s port here (enable_direct_tls = False).
"""
import argparse
import asyncio
import json
import logging
import multiprocessing as mp
import os
import shlex
import signal
import ssl
import sys
import time
from pathlib import Path

try:
    import slixmpp
    from slixmpp import ClientXMPP
    from slixmpp.exceptions import IqError, IqTimeout
    from slixmpp.stanza import Iq
    from slixmpp.xmlstream import ElementBase, register_stanza_plugin
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher import MatchXPath, StanzaPath
except ImportError:
    sys.exit("slixmpp_iq_bench: slixmpp is not installed for this python3 (scripts/install-deps.sh)")

NS = "urn:vertebra:bench:0"
EXIT_LOGIN, EXIT_TIMEOUT, EXIT_IQ_ERRORS = 1, 2, 3


class Job(ElementBase):
    name = "job"
    namespace = NS
    plugin_attrib = "bench_job"
    interfaces = {"seq", "data"}
    sub_interfaces = {"data"}


register_stanza_plugin(Iq, Job)


class LoginError(Exception):
    pass


def log(msg):
    print(f"slixmpp_iq_bench: {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------ arguments
def read_env_file(path):
    """KEY=VALUE lines of an up script's DIR/env (shell-quoted values)."""
    env = {}
    for line in Path(path).read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.partition("=")
        parts = shlex.split(value) if value else [""]
        env[key] = parts[0] if parts else ""
    return env


def parse_args():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--env", metavar="FILE", help="DIR/env of an up script: defaults for --host --port "
                    "--domain --server --cafile")
    ap.add_argument("--host", help="server address (default 127.0.0.1)")
    ap.add_argument("--port", type=int, help="c2s port (required unless --env)")
    ap.add_argument("--domain", help="XMPP domain of the accounts (default localhost)")
    ap.add_argument("--server", help="label for the JSON 'server' field (default from --env, else 'xmpp')")
    ap.add_argument("--requester", default="bench-a", help="requester user name (default bench-a)")
    ap.add_argument("--responder", default="bench-b", help="responder user name (default bench-b)")
    pw = ap.add_mutually_exclusive_group()
    pw.add_argument("--password", help="password of both users (default $XMPP_PASSWORD or 'secret')")
    pw.add_argument("--password-file", help="file whose first line is the password of both users")
    ap.add_argument("--tls", choices=["none", "starttls"], default="none", help="default none")
    ap.add_argument("--cafile", help="verify the server certificate against this PEM (--tls starttls)")
    ap.add_argument("-n", type=int, default=2000, help="IQs per concurrency level (default 2000)")
    ap.add_argument("-c", "--concurrency", default="1,64", help="IQs in flight per level, comma list (default 1,64)")
    ap.add_argument("--warmup", type=int, default=200, help="warm-up IQs, 8 in flight, not reported (default 200)")
    ap.add_argument("--payload-bytes", type=int, default=64, help="length of the <data/> text (default 64)")
    ap.add_argument("--timeout", type=float, default=300, help="bound on the whole run in seconds (default 300)")
    ap.add_argument("--login-timeout", type=float, default=20, help="seconds for both logins (default 20)")
    ap.add_argument("--iq-timeout", type=float, default=10, help="seconds before one IQ counts as failed (default 10)")
    ap.add_argument("-v", "--verbose", action="store_true", help="slixmpp debug log on stderr")
    args = ap.parse_args()

    env = read_env_file(args.env) if args.env else {}
    args.host = args.host or env.get("XMPP_HOST") or "127.0.0.1"
    if args.port is None:
        if not env.get("XMPP_PORT"):
            ap.error("--port (or --env DIR/env) is required")
        args.port = int(env["XMPP_PORT"])
    args.domain = args.domain or env.get("XMPP_DOMAIN") or "localhost"
    args.server = args.server or env.get("XMPP_SERVER") or "xmpp"
    if args.cafile is None and args.tls == "starttls" and env.get("XMPP_CAFILE"):
        args.cafile = env["XMPP_CAFILE"]
    if args.cafile and not Path(args.cafile).is_file():
        ap.error(f"--cafile {args.cafile}: no such file")
    try:
        args.levels = [int(x) for x in args.concurrency.split(",") if x.strip()]
    except ValueError:
        ap.error("--concurrency must be a comma list of integers, e.g. 1,64")
    if not args.levels or min(args.levels) < 1 or args.n < 1:
        ap.error("-n and every concurrency level must be >= 1")
    if args.password_file:
        try:
            lines = Path(args.password_file).read_text().splitlines()
        except OSError as e:
            ap.error(f"--password-file: {e}")
        args.password = lines[0] if lines else ""
    elif args.password is None:
        args.password = os.environ.get("XMPP_PASSWORD", "secret")
    return args


# ------------------------------------------------------------------------------ clients
def make_client(jid, args):
    c = ClientXMPP(jid, args.password)
    c.enable_direct_tls = False  # else slixmpp first tries direct TLS on the c2s port, then falls back
    if args.tls == "none":
        c.enable_starttls = False
        c.enable_plaintext = True
        c.plugin["feature_mechanisms"].unencrypted_plain = True
        c.plugin["feature_mechanisms"].unencrypted_scram = True
    else:
        c.enable_starttls = True
        c.enable_plaintext = False  # never fall back to a plaintext stream
        if args.cafile:
            ctx = ssl.create_default_context(cafile=args.cafile)
        else:
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        c.ssl_context = ctx
    return c


async def login(c, args, timeout):
    """Connect and wait for session_start; raise LoginError with a clear reason otherwise."""
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    attempts = []

    def fail(reason):
        if not done.done():
            done.set_exception(LoginError(f"{c.boundjid.bare}: {reason}"))

    hint = ("the server must allow plaintext auth (XMPP_TLS=optional|off)" if args.tls == "none"
            else "the server must offer STARTTLS (XMPP_TLS=optional|required)")
    c.add_event_handler("session_start", lambda _: done.done() or done.set_result(None))
    c.add_event_handler("failed_auth", lambda _: attempts.append("auth"))
    c.add_event_handler("failed_all_auth", lambda _: fail(
        "SASL authentication failed (wrong password or unknown user?)" if attempts else
        f"no usable SASL mechanism offered ({hint})"))
    c.add_event_handler("connection_failed", lambda e: fail(f"cannot connect to {args.host}:{args.port}: {e}"))
    c.add_event_handler("ssl_invalid_chain", lambda e: fail(
        f"TLS certificate not valid for '{args.domain}' against --cafile {args.cafile}: {e}"))
    c.add_event_handler("stream_error", lambda e: fail(f"stream error: {e['condition']} {e['text']}".strip()))
    # A failed TLS handshake shows up as "disconnected" before "ssl_invalid_chain": let the more
    # precise reason win.
    c.add_event_handler("disconnected", lambda _: loop.call_later(
        0.2, fail, f"server closed the stream during login ({hint}?)"))
    if args.tls == "none":
        # A server with XMPP_TLS=required offers only <starttls><required/></starttls>, and
        # slixmpp would just wait; say so at once.
        def on_features(features):
            xml = features.xml
            if (xml.find("{urn:ietf:params:xml:ns:xmpp-tls}starttls/{urn:ietf:params:xml:ns:xmpp-tls}required") is not None
                    and xml.find("{urn:ietf:params:xml:ns:xmpp-sasl}mechanisms") is None):
                fail("the server requires STARTTLS (XMPP_TLS=required); use --tls starttls")
        c.register_handler(Callback("bench tls check", MatchXPath(f"{{{c.stream_ns}}}features"), on_features))
    c.connect(host=args.host, port=args.port)
    try:
        await asyncio.wait_for(done, timeout)
    except asyncio.TimeoutError:
        raise LoginError(f"{c.boundjid.bare}: no session after {timeout:.0f} s ({hint}; right port/domain?)")
    finally:
        if not done.done() or done.cancelled() or done.exception() is not None:
            c.cancel_connection_attempt()
            c.abort()


async def close(c):
    """End the stream politely (the server answers with its own </stream>), abort after 2 s."""
    try:
        await asyncio.wait_for(c.disconnect(wait=2), 3)
    except (asyncio.TimeoutError, ConnectionError):
        c.abort()


# ------------------------------------------------------------------------------ responder process
def responder_entry(args, conn, parent_end):
    """Runs in the forked responder process."""
    parent_end.close()  # so that the parent's death closes our end of the pipe
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the requester decides when we stop
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.ERROR,
                        format="responder %(levelname)s %(name)s %(message)s")
    try:
        asyncio.run(responder(args, conn))
    except Exception as e:  # noqa: BLE001 - report anything to the parent
        try:
            conn.send(("error", f"responder crashed: {e!r}"))
        except OSError:
            pass


async def responder(args, conn):
    loop = asyncio.get_running_loop()
    c = make_client(f"{args.responder}@{args.domain}/bench-responder", args)

    def on_job(iq):
        iq.reply(clear=True).send()  # empty IQ result

    c.register_handler(Callback("bench job", StanzaPath("iq@type=set/bench_job"), on_job))
    try:
        await login(c, args, args.login_timeout)
    except LoginError as e:
        conn.send(("error", str(e)))
        return
    c.send_presence()
    conn.send(("ready", str(c.boundjid)))
    stop = loop.create_future()
    loop.add_reader(conn.fileno(), lambda: stop.done() or stop.set_result(None))  # "stop" or EOF
    try:
        await asyncio.wait_for(stop, args.timeout + 30)  # never outlive the requester for long
    except asyncio.TimeoutError:
        pass
    loop.remove_reader(conn.fileno())
    await close(c)


# ------------------------------------------------------------------------------ requester
def pct(sorted_vals, p):
    """Nearest-rank percentile of an ascending list."""
    if not sorted_vals:
        return None
    k = max(0, min(len(sorted_vals) - 1, -(-p * len(sorted_vals) // 100) - 1))
    return sorted_vals[int(k)]


async def run_level(c, to, n, conc, args, payload):
    latencies = []
    errors = 0
    next_seq = 0

    async def lane():
        nonlocal next_seq, errors
        while next_seq < n:
            seq = next_seq
            next_seq += 1
            iq = c.make_iq(ito=to, itype="set")
            iq["bench_job"]["seq"] = str(seq)
            iq["bench_job"]["data"] = payload
            t0 = time.perf_counter()
            try:
                await iq.send(timeout=args.iq_timeout)
            except (IqError, IqTimeout) as e:
                errors += 1
                if errors <= 3:
                    what = e.iq["error"]["condition"] if isinstance(e, IqError) else f"no answer in {args.iq_timeout} s"
                    log(f"IQ seq={seq} failed: {what}")
                continue
            latencies.append(time.perf_counter() - t0)

    t0 = time.perf_counter()
    await asyncio.gather(*(lane() for _ in range(min(conc, n))))
    return time.perf_counter() - t0, latencies, errors


async def requester(args, conn, proc):
    loop = asyncio.get_running_loop()
    t_start = loop.time()
    remaining = lambda: max(0.1, args.timeout - (loop.time() - t_start))  # noqa: E731

    ready = loop.create_future()

    def on_message():
        try:
            msg = conn.recv()
        except (EOFError, OSError):
            msg = ("error", f"responder process exited (exit code {proc.exitcode})")
        if not ready.done():
            ready.set_result(msg)

    loop.add_reader(conn.fileno(), on_message)
    c = make_client(f"{args.requester}@{args.domain}/bench-requester", args)
    t_login = time.perf_counter()
    async def responder_ready():
        try:
            kind, detail = await asyncio.wait_for(ready, min(args.login_timeout + 5, remaining()))
        except asyncio.TimeoutError:
            raise LoginError(f"{args.responder}@{args.domain}: responder not logged in after {args.login_timeout:.0f} s")
        if kind != "ready":
            raise LoginError(detail)
        return detail

    try:  # both logins run in parallel; report the first failure
        outcome = await asyncio.gather(login(c, args, min(args.login_timeout, remaining())),
                                       responder_ready(), return_exceptions=True)
    finally:
        loop.remove_reader(conn.fileno())
    for o in outcome:
        if isinstance(o, BaseException):
            raise o
    responder_jid = outcome[1]
    mech = c.plugin["feature_mechanisms"].mech
    log(f"logged in {c.boundjid} -> {responder_jid} in {(time.perf_counter() - t_login) * 1000:.0f} ms "
        f"(server {args.server} {args.host}:{args.port}, tls {args.tls}"
        f"{'' if args.tls == 'none' else ', cert verified' if args.cafile else ', cert NOT verified'}, "
        f"SASL {mech.name if mech else '?'})")

    payload = "x" * args.payload_bytes
    exit_code = 0
    try:
        if args.warmup:
            _, _, werr = await asyncio.wait_for(
                run_level(c, responder_jid, args.warmup, 8, args, payload), remaining())
            if werr:
                log(f"warm-up: {werr} of {args.warmup} IQs failed")
        for conc in args.levels:
            wall, lat, errors = await asyncio.wait_for(
                run_level(c, responder_jid, args.n, conc, args, payload), remaining())
            lat.sort()
            ms = lambda v: None if v is None else round(v * 1000, 3)  # noqa: E731
            result = {
                "client": "slixmpp", "server": args.server, "concurrency": conc, "n": args.n,
                "iq_per_s": round(len(lat) / wall, 1) if wall > 0 else None,
                "p50_ms": ms(pct(lat, 50)), "p99_ms": ms(pct(lat, 99)),
                "p90_ms": ms(pct(lat, 90)), "max_ms": ms(lat[-1] if lat else None),
                "errors": errors, "wall_s": round(wall, 3), "tls": args.tls,
                "payload_bytes": args.payload_bytes, "slixmpp": slixmpp.__version__,
            }
            print(json.dumps(result), flush=True)
            log(f"concurrency {conc}: {len(lat)}/{args.n} ok in {wall:.2f} s, {result['iq_per_s']} IQ/s, "
                f"p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms")
            if errors:
                exit_code = EXIT_IQ_ERRORS
    finally:
        await close(c)
    return exit_code


def stop_responder(conn, proc):
    try:
        conn.send("stop")
    except OSError:
        pass
    proc.join(5)
    if proc.is_alive():
        proc.terminate()
        proc.join(2)
    if proc.is_alive():
        proc.kill()
        proc.join(1)


def main():
    args = parse_args()
    if args.tls == "starttls" and not args.cafile:
        log("WARNING: --tls starttls without --cafile: the server certificate is NOT verified")
    # Fork the responder before any event loop or thread exists in this process.
    ctx = mp.get_context("fork")
    conn, child_end = ctx.Pipe()
    proc = ctx.Process(target=responder_entry, args=(args, child_end, conn), name="bench-responder", daemon=True)
    proc.start()
    child_end.close()
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.ERROR,
                        format="requester %(levelname)s %(name)s %(message)s")
    try:
        code = asyncio.run(asyncio.wait_for(requester(args, conn, proc), args.timeout))
    except LoginError as e:
        log(f"login failed: {e}")
        code = EXIT_LOGIN
    except asyncio.TimeoutError:
        log(f"gave up: the run exceeded --timeout {args.timeout:.0f} s (raise it, or lower -n)")
        code = EXIT_TIMEOUT
    except KeyboardInterrupt:
        log("interrupted")
        code = 130
    finally:
        stop_responder(conn, proc)
    sys.exit(code)


if __name__ == "__main__":
    main()
