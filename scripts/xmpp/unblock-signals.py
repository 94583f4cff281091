#!/usr/bin/env python3
"""Runs a command with no blocked signals and default SIGTERM/SIGINT/SIGHUP handling.

A server started from a thread that blocks signals (Swift's test runner, Dispatch worker threads)
inherits that signal mask, and then ignores the SIGTERM its down script sends. The up scripts
start servers through this so they always stop cleanly.
Usage: unblock-signals.py COMMAND [ARG...]
"""
import os
import signal
import sys

if len(sys.argv) < 2:
    sys.exit("usage: unblock-signals.py COMMAND [ARG...]")
signal.pthread_sigmask(signal.SIG_SETMASK, set())
for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
    signal.signal(number, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])
