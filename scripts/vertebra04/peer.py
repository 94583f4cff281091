#!/usr/bin/env python3
"""An independent Vertebra 0.4 peer (performer, requester, raw poker) on slixmpp.

It is an interop peer for the Swift tests: it speaks the wire protocol of DESIGN §4 and prints one
JSON object per event on stdout (flushed), so a test can drive it and read what happened.

  peer.py perform --jid perf@D/p --port N --cafile CA              serve /test/* until SIGTERM
  peer.py request --jid req@D/r --port N --cafile CA --to perf@D/p --op /test/upcase text=hello
  peer.py poke    --jid req@D/x --port N --cafile CA --to JID --xml "<cancel token='..'/>"

Protocol summary (namespace NS below; every IQ carries exactly one child from it; every IQ set
is answered by a result with the same id, errors are XMPP stanza errors):
  requester -> performer  <op type='/path' token='A' [scope=direct|single|all]>named args</op>
  performer answers       <op token='A:B'/> in the IQ result
  performer -> requester  <ack token='A:B'/>, <data token='A:B'>named values</data>*, <final/>
                          or <nack><string name='reason'/></nack>
                          or <error type='error|fatal|cancel'><string name='message'/></error>
  requester -> performer  <cancel token='A:B'/>  (the performer ends with error type='cancel')

Exit status: 0 done (request: final received; poke: result), 1 login/usage failure,
2 failed (error, nack, IQ error), 3 timeout, 4 the other side broke the protocol.
"""

import argparse
import asyncio
import base64
import binascii
import ipaddress
import json
import logging
import os
import re
import secrets
import signal
import ssl
import sys
import xml.etree.ElementTree as ET
from collections import OrderedDict

try:
    from slixmpp import JID, ClientXMPP
    from slixmpp.exceptions import IqError, IqTimeout
    from slixmpp.stanza import Iq
    from slixmpp.xmlstream.handler import Callback
    from slixmpp.xmlstream.matcher.base import MatcherBase
except ImportError:  # pragma: no cover
    sys.exit("peer.py: slixmpp is not installed for this python3 (scripts/install-deps.sh)")

NS = "http://xmlschema.engineyard.com/agent/api"
EXIT_OK, EXIT_LOGIN, EXIT_FAILED, EXIT_TIMEOUT, EXIT_PROTOCOL = 0, 1, 2, 3, 4
TOKEN_A = re.compile(r"^[0-9A-Fa-f]{32}$")
SCOPES = ("direct", "single", "all")
INT_TYPES = {"i4": (-2**31, 2**31 - 1), "i8": (-2**63, 2**63 - 1),
             "int": (-2**63, 2**63 - 1), "integer": (-2**63, 2**63 - 1)}
SCALAR_TYPES = set(INT_TYPES) | {"string", "boolean", "double", "res", "nil", "base64",
                                 "dateTime.iso8601"}


def emit(event, **fields):
    """One JSON line per event on stdout, flushed at once (tests read it line by line)."""
    print(json.dumps({"event": event, **fields}), flush=True)


def log(msg):
    print(f"peer.py: {msg}", file=sys.stderr, flush=True)


def q(tag):
    return f"{{{NS}}}{tag}"


def local(el):
    """Local name of an element in NS, or None for a foreign element."""
    if isinstance(el.tag, str) and el.tag.startswith("{" + NS + "}"):
        return el.tag[len(NS) + 2:]
    return None


# ---------------------------------------------------------------------------------------------
# Typed values
# ---------------------------------------------------------------------------------------------

class BadValue(Exception):
    """A typed value (or a named-values body) is malformed; the text goes into bad-request."""


def decode_value(el):
    """Decode one typed-value element into (type, JSON-able python value)."""
    t = local(el)
    if t is None:
        raise BadValue(f"foreign element {el.tag} where a typed value was expected")
    text = el.text or ""
    children = list(el)
    if t not in ("list", "struct"):
        if children:
            raise BadValue(f"<{t}> must not have child elements")
    if t in INT_TYPES:
        try:
            v = int(text.strip(), 10)
        except ValueError:
            raise BadValue(f"<{t}> is not an integer: {text!r}") from None
        lo, hi = INT_TYPES[t]
        if not lo <= v <= hi:
            raise BadValue(f"<{t}> out of range: {v}")
        return t, v
    if t == "string":
        return t, text
    if t == "boolean":
        s = text.strip()
        if s in ("1", "true"):
            return t, True
        if s in ("0", "false"):
            return t, False
        raise BadValue(f"<boolean> must be 1 or 0: {text!r}")
    if t == "double":
        try:
            return t, float(text.strip())
        except ValueError:
            raise BadValue(f"<double> is not a number: {text!r}") from None
    if t == "res":
        if not text.startswith("/"):
            raise BadValue(f"<res> must be a /path: {text!r}")
        return t, text
    if t == "nil":
        if text.strip():
            raise BadValue("<nil> must be empty")
        return t, None
    if t == "base64":
        s = re.sub(r"\s+", "", text)
        try:
            base64.b64decode(s, validate=True)
        except binascii.Error:
            raise BadValue(f"<base64> is not valid base64: {text!r}") from None
        return t, s
    if t == "dateTime.iso8601":
        if not text.strip():
            raise BadValue("<dateTime.iso8601> is empty")
        return t, text.strip()
    if t == "list":
        out = []
        for c in children:
            if c.get("name") is not None:
                raise BadValue("children of <list> must not be named")
            out.append(decode_value(c)[1])
        return t, out
    if t == "struct":
        return t, {k: v for k, (_, v) in decode_named(el).items()}
    raise BadValue(f"unknown value type <{t}>")


def decode_named(parent):
    """Children of parent as OrderedDict name -> (type, value); every child must be named, once."""
    out = OrderedDict()
    for c in parent:
        name = c.get("name")
        if name is None:
            raise BadValue(f"unnamed <{local(c) or c.tag}> where a named value was expected")
        if name in out:
            raise BadValue(f"value named {name!r} appears twice")
        out[name] = decode_value(c)
    return out


def value_el(t, text, name=None):
    """Build a scalar typed-value element."""
    el = ET.Element(q(t))
    if name is not None:
        el.set("name", name)
    if text is not None:
        el.text = text
    return el


def parse_cli_arg(spec):
    """`name=type:value` (type in SCALAR_TYPES) or `name=value` (string) -> element."""
    if "=" not in spec:
        raise argparse.ArgumentTypeError(f"argument {spec!r} is not name=[type:]value")
    name, rest = spec.split("=", 1)
    if not name:
        raise argparse.ArgumentTypeError(f"argument {spec!r} has an empty name")
    t, value = "string", rest
    if ":" in rest and rest.split(":", 1)[0] in SCALAR_TYPES:
        t, value = rest.split(":", 1)
    if t in INT_TYPES:
        try:
            value = str(int(value, 10))
        except ValueError:
            raise argparse.ArgumentTypeError(f"{name}: {value!r} is not an integer") from None
    elif t == "double":
        value = repr(float(value))
    elif t == "boolean":
        if value not in ("1", "0", "true", "false"):
            raise argparse.ArgumentTypeError(f"{name}: boolean must be 1|0|true|false")
        value = "1" if value in ("1", "true") else "0"
    elif t == "nil":
        value = None
    # string, res, base64, dateTime go out as given (a peer may test the other side's checks)
    return value_el(t, value, name)


# ---------------------------------------------------------------------------------------------
# Connection
# ---------------------------------------------------------------------------------------------

class VertebraIqSet(MatcherBase):
    """Matches an incoming IQ get/set that has at least one child in NS."""

    def __init__(self):
        super().__init__(None)

    def match(self, stanza):
        return (isinstance(stanza, Iq) and stanza["type"] in ("get", "set")
                and any(local(c) is not None for c in stanza.xml))


class ReplyTo(MatcherBase):
    """Matches the result/error of the IQ with this id (we run our own, so that a repeated op
    can see both answers and everything is handled synchronously, in stream order)."""

    def __init__(self, iq_id):
        super().__init__(iq_id)

    def match(self, stanza):
        return (isinstance(stanza, Iq) and stanza["type"] in ("result", "error")
                and stanza["id"] == self._criteria)


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def vertebra_child(iq):
    """The one NS child of an IQ; raises BadValue if there are several."""
    kids = [c for c in iq.xml if local(c) is not None]
    if len(kids) != 1:
        raise BadValue(f"an IQ must carry exactly one {NS} child, this one has {len(kids)}")
    return kids[0]


def reply_error(iq, condition, text=None, etype=None):
    """Answer an IQ with a stanza error (payload cleared)."""
    if etype is None:
        etype = {"bad-request": "modify", "unexpected-request": "modify",
                 "item-not-found": "cancel", "feature-not-implemented": "cancel"}.get(condition, "cancel")
    r = iq.reply(clear=True)
    r["type"] = "error"
    r["error"]["type"] = etype
    r["error"]["condition"] = condition
    if text:
        r["error"]["text"] = text
    r.send()


def iq_error_fields(err_iq):
    e = err_iq["error"]
    return {"condition": e["condition"], "error_type": e["type"], "text": e["text"] or ""}


async def login(args):
    """Connect and wait for session_start. Returns the client or exits 1 with a reason."""
    password = os.environ.get("PEER_PASSWORD")
    if args.password_file:
        with open(args.password_file, encoding="utf-8") as f:
            password = f.read().rstrip("\r\n")
    if password is None:
        log("no password: give --password-file FILE or set PEER_PASSWORD")
        sys.exit(EXIT_LOGIN)
    c = ClientXMPP(args.jid, password)
    c.enable_direct_tls = False     # slixmpp would first try direct TLS on the c2s port
    c.enable_starttls = True        # use STARTTLS whenever the server offers it
    c.enable_plaintext = args.plaintext_ok
    c.plugin["feature_mechanisms"].unencrypted_plain = args.plaintext_ok
    c.plugin["feature_mechanisms"].unencrypted_scram = args.plaintext_ok
    ctx = ssl.create_default_context(cafile=args.cafile) if args.cafile else ssl.create_default_context()
    c.ssl_context = ctx             # verified: hostname = the JID's domain
    loop = asyncio.get_running_loop()
    done = loop.create_future()

    def fail(why):
        if not done.done():
            done.set_exception(RuntimeError(why))

    def started(_):
        if "starttls" not in c.features and not args.plaintext_ok:
            fail("the stream is not encrypted (no STARTTLS offered); use --plaintext-ok on loopback")
        elif not done.done():
            done.set_result(None)

    c.add_event_handler("session_start", started)
    def auth_failed(_):
        if "starttls" not in c.features and not args.plaintext_ok:
            fail("the server offered no STARTTLS, and a plaintext login needs --plaintext-ok (loopback only)")
        else:
            fail("authentication failed (wrong password or no usable SASL mechanism)")
    c.add_event_handler("failed_all_auth", auth_failed)
    c.add_event_handler("connection_failed", lambda e: fail(f"cannot connect to {args.host}:{args.port}: {e}"))
    c.add_event_handler("ssl_invalid_chain", lambda e: fail(f"TLS certificate not valid: {e}"))
    def dropped(_):  # a failed TLS handshake shows as "disconnected" first: let a precise reason win
        loop.call_later(0.3, fail, "disconnected during login")
    c.add_event_handler("disconnected", dropped)
    c.connect(host=args.host, port=args.port)
    try:
        await asyncio.wait_for(done, args.login_timeout)
    except (RuntimeError, asyncio.TimeoutError) as e:
        log(f"login as {args.jid} failed: {e or 'timeout'}")
        c.cancel_connection_attempt()
        c.abort()
        sys.exit(EXIT_LOGIN)
    c.del_event_handler("disconnected", dropped)
    c.send_presence()
    return c


async def logout(c):
    try:
        await asyncio.wait_for(c.disconnect(wait=2), 3)
    except (asyncio.TimeoutError, ConnectionError):
        c.abort()


# ---------------------------------------------------------------------------------------------
# Performer
# ---------------------------------------------------------------------------------------------

class Cancelled(Exception):
    pass


class Attempt:
    def __init__(self, token, requester, optype, args):
        self.token, self.requester, self.optype, self.args = token, requester, optype, args
        self.cancel = asyncio.Event()
        self.finished = False


class Performer:
    MAX_COUNT = 100000

    def __init__(self, c, args):
        self.c, self.iq_timeout = c, args.iq_timeout
        self.answers = OrderedDict()   # (from full JID, IQ id) -> ("result", token) | ("error", cond, text)
        self.attempts = {}             # token A:B -> Attempt
        self.tasks = set()
        c.register_handler(Callback("vertebra performer", VertebraIqSet(), self.on_iq))

    def on_iq(self, iq):
        try:
            el = vertebra_child(iq)
        except BadValue as e:
            return reply_error(iq, "bad-request", str(e))
        if iq["type"] != "set":
            return reply_error(iq, "bad-request", "Vertebra IQs are of type set")
        kind = local(el)
        if kind == "op":
            return self.on_op(iq, el)
        if kind == "cancel":
            return self.on_cancel(iq, el)
        # ack/data/final/... are for requesters; this peer never requests while performing
        emit("unexpected", kind=kind, token=el.get("token"), **{"from": iq["from"].full})
        reply_error(iq, "item-not-found", f"no attempt here for <{kind}>")

    def on_op(self, iq, el):
        key = (iq["from"].full, iq["id"])
        if key in self.answers:        # a repeated op IQ: same answer, never run twice
            ans = self.answers[key]
            emit("op-repeat", id=iq["id"], token=ans[1] if ans[0] == "result" else None,
                 **{"from": iq["from"].full})
            return self.send_answer(iq, ans)
        ans, start = self.check_op(iq, el)
        self.answers[key] = ans
        while len(self.answers) > 10000:
            self.answers.popitem(last=False)
        self.send_answer(iq, ans)
        if start:                      # after the result is queued: the ack follows it on the wire
            t = asyncio.ensure_future(self.run(start))
            self.tasks.add(t)
            t.add_done_callback(self.tasks.discard)

    def send_answer(self, iq, ans):
        if ans[0] == "result":
            r = iq.reply(clear=True)
            r.xml.append(ET.Element(q("op"), token=ans[1]))
            r.send()
        else:
            reply_error(iq, ans[1], ans[2])

    def check_op(self, iq, el):
        """Validate an op; returns (answer, Attempt or None)."""
        optype, token, scope = el.get("type"), el.get("token"), el.get("scope")
        frm = iq["from"].full

        def refuse(cond, text):
            emit("op-refused", type=optype, token=token, condition=cond, text=text, **{"from": frm})
            return ("error", cond, text), None

        if not token or not TOKEN_A.match(token):
            return refuse("bad-request", "op token must be 32 hex characters")
        if scope is not None and scope not in SCOPES:
            return refuse("bad-request", f"scope must be one of {'|'.join(SCOPES)}")
        if not optype or not optype.startswith("/"):
            return refuse("bad-request", "op type must be an operation /path")
        try:
            named = decode_named(el)
        except BadValue as e:
            return refuse("bad-request", str(e))
        args = {}
        if optype == "/test/upcase":
            t, v = named.get("text", (None, None))
            if t != "string":
                return refuse("bad-request", "/test/upcase needs <string name='text'>")
            args["text"] = v
        elif optype == "/test/count":
            t, v = named.get("n", (None, None))
            if t not in INT_TYPES or not 0 <= v <= self.MAX_COUNT:
                return refuse("bad-request", f"/test/count needs <i4 name='n'> in 0...{self.MAX_COUNT}")
            args["n"] = v
            t, v = named.get("delay_ms", ("i4", 0))   # extension: pause before each chunk
            if t not in INT_TYPES or not 0 <= v <= 60000:
                return refuse("bad-request", "delay_ms must be an integer in 0...60000")
            args["delay_ms"] = v
        elif optype == "/test/fail":
            pass
        else:
            return refuse("feature-not-implemented", f"no operation {optype}")
        full = f"{token}:{secrets.token_hex(16)}"
        att = Attempt(full, iq["from"], optype, args)
        self.attempts[full] = att
        emit("op", type=optype, token=full, scope=scope, id=iq["id"],
             args={k: v for k, (_, v) in named.items()}, **{"from": frm})
        return ("result", full), att

    def on_cancel(self, iq, el):
        token = el.get("token")
        att = self.attempts.get(token)
        if att is None or att.finished or att.requester != iq["from"]:
            emit("cancel-refused", token=token, **{"from": iq["from"].full})
            return reply_error(iq, "item-not-found", "no running attempt with this token for you")
        iq.reply(clear=True).send()
        emit("cancel", token=token)
        att.cancel.set()

    async def send(self, att, kind, *children, **attrs):
        """One IQ set to the requester; waits for its result. Raises Cancelled when asked to."""
        iq = self.c.make_iq_set(ito=att.requester)
        el = ET.SubElement(iq.xml, q(kind), token=att.token, **attrs)
        el.extend(children)
        await iq.send(timeout=self.iq_timeout)
        extra = {"values": {k: v for k, (_, v) in decode_named(el).items()}} if children else {}
        emit(kind, token=att.token, **attrs, **extra)   # printed once the requester answered

    async def pause(self, att, seconds):
        """Sleep, but wake up (and raise Cancelled) on a cancel."""
        if seconds > 0:
            try:
                await asyncio.wait_for(att.cancel.wait(), seconds)
            except asyncio.TimeoutError:
                pass
        if att.cancel.is_set():
            raise Cancelled()

    async def run(self, att):
        try:
            try:
                await self.send(att, "ack")
                if att.optype == "/test/upcase":
                    await self.pause(att, 0)
                    await self.send(att, "data", value_el("string", att.args["text"].upper(), "response"))
                elif att.optype == "/test/count":
                    for k in range(att.args["n"]):
                        await self.pause(att, att.args["delay_ms"] / 1000)
                        await self.send(att, "data", value_el("i4", str(k), "index"))
                elif att.optype == "/test/fail":
                    await self.pause(att, 0)
                    await self.send(att, "error", value_el("string", "failed on purpose", "message"),
                                    type="fatal")
                    return
                await self.pause(att, 0)
                await self.send(att, "final")
            except Cancelled:
                await self.send(att, "error", value_el("string", "cancelled by the requester", "message"),
                                type="cancel")
        except IqError as e:
            emit("iq-failed", token=att.token, **iq_error_fields(e.iq))
        except IqTimeout:
            emit("iq-failed", token=att.token, condition="timeout", text=f"no answer in {self.iq_timeout} s")
        finally:
            att.finished = True


async def perform(args):
    c = await login(args)
    perf = Performer(c, args)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    lost = asyncio.Event()     # no reconnect: a performer that lost its stream exits (status 1)
    c.add_event_handler("disconnected", lambda _: lost.set())
    emit("ready", jid=c.boundjid.full, tls="starttls" in c.features)
    await asyncio.wait([asyncio.ensure_future(stop.wait()), asyncio.ensure_future(lost.wait())],
                       return_when=asyncio.FIRST_COMPLETED)
    for t in list(perf.tasks):
        t.cancel()
    if lost.is_set():
        emit("disconnected")
        return EXIT_LOGIN
    await logout(c)
    emit("stopped")
    return EXIT_OK


# ---------------------------------------------------------------------------------------------
# Requester
# ---------------------------------------------------------------------------------------------

class Requester:
    def __init__(self, c, args):
        self.c, self.args = c, args
        self.to = JID(args.to)
        self.a = secrets.token_hex(16)
        self.token = None          # A:B once the op result came
        self.state = "sent"        # sent -> accepted -> acked -> done|failed
        self.summary = {}
        self.data = []
        self.answers_expected = 2 if args.repeat_op else 1
        self.answers = 0
        self.violations = []
        self.ended = asyncio.get_running_loop().create_future()
        self.cancel_sent = False
        c.register_handler(Callback("vertebra requester", VertebraIqSet(), self.on_iq))

    def start(self):
        iq = self.c.make_iq_set(ito=self.to)
        op = ET.SubElement(iq.xml, q("op"), type=self.args.op, token=self.a)
        if self.args.scope:
            op.set("scope", self.args.scope)
        op.extend(self.args.values)
        self.c.register_handler(Callback("vertebra op answer", ReplyTo(iq["id"]), self.on_answer))
        emit("op", to=self.to.full, type=self.args.op, token=self.a, id=iq["id"])
        self.c.send(iq)
        if self.args.repeat_op:    # the very same stanza (same id) again: a retransmission
            self.c.send(iq)

    def violation(self, text):
        self.violations.append(text)
        emit("protocol-error", text=text)

    def end(self, state, **fields):
        if self.state in ("done", "failed"):
            return
        self.state = state
        self.summary.update(fields)
        self.maybe_finish()

    def maybe_finish(self):
        if self.state in ("done", "failed") and (self.answers >= self.answers_expected or "condition" in self.summary):
            if not self.ended.done():
                self.ended.set_result(None)

    def on_answer(self, iq):
        self.answers += 1
        frm = iq["from"]
        if iq["type"] == "error":
            f = iq_error_fields(iq)
            emit("error", kind="iq", **f, **{"from": frm.full})
            if self.token is None:
                return self.end("failed", **f)
            return self.violation("an IQ error on a repeated op that had been accepted")
        if frm != self.to:
            return self.violation(f"op result from {frm.full}, not from {self.to.full}")
        kids = [c for c in iq.xml if local(c) == "op"]
        tok = kids[0].get("token") if len(kids) == 1 else None
        if not tok or not tok.startswith(self.a + ":") or len(tok) == len(self.a) + 1:
            self.violation(f"op result without a token A:B for A={self.a}: {tok!r}")
            return self.end("failed", reason="bad op result")
        if self.token is None:
            self.token = tok
            if self.state == "sent":
                self.state = "accepted"
            emit("accepted", token=tok)
        else:
            emit("accepted", token=tok, repeat=True)
            if tok != self.token:
                self.violation(f"the repeated op got another token {tok} (first {self.token})")
        self.maybe_finish()

    def on_iq(self, iq):
        frm = iq["from"]
        try:
            el = vertebra_child(iq)
        except BadValue as e:
            return reply_error(iq, "bad-request", str(e))
        kind, tok = local(el), el.get("token")
        if iq["type"] != "set":
            return reply_error(iq, "bad-request", "Vertebra IQs are of type set")
        if frm != self.to or self.token is None or tok != self.token:
            emit("rejected", kind=kind, token=tok, **{"from": frm.full})
            return reply_error(iq, "item-not-found", "no attempt with this token from you")
        if self.state in ("done", "failed"):
            self.violation(f"<{kind}> after the attempt ended")
            return reply_error(iq, "unexpected-request", "the attempt has ended")
        if kind == "ack":
            if self.state != "accepted":
                self.violation("a second <ack>")
                return reply_error(iq, "unexpected-request", "already acknowledged")
            iq.reply(clear=True).send()
            self.state = "acked"
            emit("ack", token=tok)
            if self.args.cancel_after == 0:
                self.send_cancel()
        elif kind in ("data", "final"):
            if self.state != "acked":
                self.violation(f"<{kind}> before <ack>")
                return reply_error(iq, "unexpected-request", f"<{kind}> before <ack>")
            if kind == "final":
                iq.reply(clear=True).send()
                emit("final", token=tok)
                return self.end("done")
            try:
                named = decode_named(el)
            except BadValue as e:
                self.violation(f"bad <data>: {e}")
                return reply_error(iq, "bad-request", str(e))
            iq.reply(clear=True).send()
            values = {k: v for k, (_, v) in named.items()}
            self.data.append(values)
            emit("data", token=tok, values=values, types={k: t for k, (t, _) in named.items()})
            if self.args.cancel_after is not None and len(self.data) == self.args.cancel_after:
                self.send_cancel()
        elif kind == "nack":
            if self.state != "accepted":
                self.violation("<nack> after <ack>")
                return reply_error(iq, "unexpected-request", "<nack> after <ack>")
            try:
                reason = decode_named(el).get("reason", (None, None))[1]
            except BadValue as e:
                return reply_error(iq, "bad-request", str(e))
            iq.reply(clear=True).send()
            emit("nack", token=tok, reason=reason)
            self.end("failed", nack=reason)
        elif kind == "error":
            etype = el.get("type")
            if etype not in ("error", "fatal", "cancel"):
                self.violation(f"<error> type {etype!r}")
                return reply_error(iq, "bad-request", "error type must be error|fatal|cancel")
            try:
                message = decode_named(el).get("message", (None, None))[1]
            except BadValue as e:
                return reply_error(iq, "bad-request", str(e))
            iq.reply(clear=True).send()
            emit("error", kind="attempt", token=tok, type=etype, message=message)
            if etype == "cancel" and not self.cancel_sent:
                self.violation("error type='cancel' although this requester did not cancel")
            self.end("failed", error={"type": etype, "message": message})
        else:
            emit("rejected", kind=kind, token=tok, **{"from": frm.full})
            reply_error(iq, "feature-not-implemented", f"a requester does not take <{kind}>")

    def send_cancel(self):
        self.cancel_sent = True
        iq = self.c.make_iq_set(ito=self.to)
        ET.SubElement(iq.xml, q("cancel"), token=self.token)
        emit("cancel", token=self.token)

        def answered(fut):
            if fut.cancelled():
                return
            e = fut.exception()
            if e is None:
                emit("cancel-accepted", token=self.token)
            elif isinstance(e, IqError):
                emit("cancel-refused", token=self.token, **iq_error_fields(e.iq))
            else:
                emit("cancel-refused", token=self.token, condition="timeout")
        iq.send(timeout=self.args.timeout).add_done_callback(answered)


async def request(args):
    loop = asyncio.get_running_loop()
    deadline = loop.time() + args.timeout
    c = await login(args)
    r = Requester(c, args)
    emit("ready", jid=c.boundjid.full, tls="starttls" in c.features)

    def lost(_):               # the stream dropped before the attempt ended: fail now (exit 2)
        if not r.ended.done():
            emit("disconnected")
            r.state, r.summary["reason"] = "failed", "disconnected"
            r.ended.set_result(None)
    c.add_event_handler("disconnected", lost)
    r.start()
    try:
        await asyncio.wait_for(r.ended, max(0.1, deadline - loop.time()))
    except asyncio.TimeoutError:
        emit("timeout", seconds=args.timeout, state=r.state)
        r.state, r.summary["reason"] = "failed", "timeout"
        code = EXIT_TIMEOUT
    else:
        code = EXIT_OK if r.state == "done" else EXIT_FAILED
    if r.violations:
        code, r.summary["violations"] = EXIT_PROTOCOL, r.violations
        r.state = "failed"
    emit("done", state=r.state, token=r.token, data=r.data, **r.summary)
    await logout(c)
    return code


# ---------------------------------------------------------------------------------------------
# Poke: one raw IQ set, print the answer
# ---------------------------------------------------------------------------------------------

async def poke(args):
    try:   # children of a wrapper in NS: unprefixed elements land in NS, several are allowed
        kids = list(ET.fromstring(f"<wrap xmlns='{NS}'>{args.xml}</wrap>"))
    except ET.ParseError as e:
        log(f"--xml does not parse: {e}")
        return EXIT_LOGIN
    c = await login(args)
    iq = c.make_iq_set(ito=JID(args.to))
    if args.id:
        iq["id"] = args.id
    iq.xml.extend(kids)
    code = EXIT_OK
    try:
        res = await iq.send(timeout=args.timeout)
        kids = [{"ns": k.tag[1:].split("}")[0] if k.tag.startswith("{") else "",
                 "name": k.tag.split("}")[-1], "attrs": dict(k.attrib)} for k in res.xml]
        emit("answer", type="result", id=iq["id"], children=kids,
             payload=[ET.tostring(k, encoding="unicode") for k in res.xml])
    except IqError as e:
        emit("answer", type="error", id=iq["id"], **iq_error_fields(e.iq))
        code = EXIT_FAILED
    except IqTimeout:
        emit("timeout", seconds=args.timeout)
        code = EXIT_TIMEOUT
    await logout(c)
    return code


# ---------------------------------------------------------------------------------------------

def main():
    # The common flags may come before or after the subcommand: the subparsers' copies default
    # to SUPPRESS so they do not overwrite a value given before the subcommand.
    def add_common(p, sub):
        d = (lambda v: argparse.SUPPRESS) if sub else (lambda v: v)
        p.add_argument("--host", default=d("127.0.0.1"))
        p.add_argument("--port", type=int, default=d(5222))
        p.add_argument("--jid", default=d(None), help="user@domain/resource (required)")
        p.add_argument("--password-file", default=d(None), help="password (first line); else $PEER_PASSWORD")
        p.add_argument("--cafile", default=d(None), help="PEM to verify the server certificate with")
        p.add_argument("--plaintext-ok", action="store_true", default=d(False),
                       help="allow an unencrypted stream (loopback --host only)")
        p.add_argument("--login-timeout", type=float, default=d(20))
        p.add_argument("-v", "--verbose", action="store_true", default=d(False),
                       help="slixmpp debug log on stderr")
        return p
    common = add_common(argparse.ArgumentParser(add_help=False), True)
    ap = add_common(argparse.ArgumentParser(description=__doc__.split("\n\n")[0]), False)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("perform", parents=[common], help="serve /test/upcase, /test/count, /test/fail")
    p.add_argument("--iq-timeout", type=float, default=30, help="per IQ sent to a requester (s)")
    p = sub.add_parser("request", parents=[common], help="send one op, follow the attempt")
    p.add_argument("--to", required=True, help="the performer's full JID")
    p.add_argument("--op", required=True, help="operation path, e.g. /test/upcase")
    p.add_argument("--scope", choices=SCOPES)
    p.add_argument("--timeout", type=float, default=30, help="whole run, seconds (default 30)")
    p.add_argument("--cancel-after", type=int, metavar="N",
                   help="send <cancel> after the N-th data (0: right after the ack)")
    p.add_argument("--repeat-op", action="store_true",
                   help="send the op IQ twice with the same id (the performer must answer both alike)")
    p.add_argument("values", nargs="*", type=parse_cli_arg, metavar="name=[type:]value")
    p = sub.add_parser("poke", parents=[common], help="send one raw IQ set, print the answer")
    p.add_argument("--to", required=True)
    p.add_argument("--xml", required=True, help="payload; unprefixed elements are in the Vertebra NS")
    p.add_argument("--id", help="IQ id (default: fresh)")
    p.add_argument("--timeout", type=float, default=10)
    args = ap.parse_args()
    if not args.jid:
        ap.error("--jid user@domain/resource is required")
    if args.plaintext_ok and not is_loopback(args.host):
        ap.error("--plaintext-ok is only allowed with a loopback --host")
    if args.cafile and not os.path.isfile(args.cafile):
        ap.error(f"--cafile {args.cafile}: no such file")
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.CRITICAL,
                        format="%(levelname)s %(name)s: %(message)s")
    run = {"perform": perform, "request": request, "poke": poke}[args.cmd]
    sys.exit(asyncio.run(run(args)))


if __name__ == "__main__":
    main()
