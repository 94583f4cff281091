#!/usr/bin/env python3
"""Drives the web view in headless Chromium over the DevTools protocol (websocket-client).

Usage: web-browser-test.py --url http://127.0.0.1:PORT --screenshots DIR -- COMMAND...

Loads /jobs, checks the live updates connect, runs COMMAND (which must create a new job and
print its id) and waits for its row to appear without a reload, opens that job, filters by
state, opens the workers and charts pages, and saves a PNG of each page in DIR (jobs.png,
job.png, jobs-done.png, workers.png, charts.png), checked not to be blank. With --account,
--password-env and --long-job (a JSON list: a command that starts a long job and prints its
id), it also signs in, cancels that job with its button and waits for it to show cancelled
(job-cancelled.png). Prints one line per check and exits 1 on the first failure.
"""
import argparse, json, os, shutil, struct, subprocess, sys, tempfile, time, urllib.request, zlib, base64

import websocket  # websocket-client


def fail(message):
    print(f"FAIL: {message}", flush=True)
    sys.exit(1)


class Browser:
    def __init__(self, binary):
        self.profile = tempfile.mkdtemp(prefix="vertebra-chromium-")
        self.process = subprocess.Popen(
            [binary, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-extensions",
             "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1", f"--user-data-dir={self.profile}",
             "--window-size=1280,900", "about:blank"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        port_file = os.path.join(self.profile, "DevToolsActivePort")
        for _ in range(300):
            if os.path.exists(port_file) and open(port_file).read().strip():
                break
            time.sleep(0.1)
        else:
            self.close()
            fail("Chromium did not open its DevTools port")
        port = open(port_file).read().split()[0]
        targets = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list"))
        page = next((t for t in targets if t.get("type") == "page"), None)
        if page is None:
            request = urllib.request.Request(f"http://127.0.0.1:{port}/json/new?about:blank", method="PUT")
            page = json.load(urllib.request.urlopen(request))
        self.socket = websocket.create_connection(page["webSocketDebuggerUrl"], timeout=30)
        self.next_id = 0
        self.call("Page.enable")
        self.call("Runtime.enable")

    def call(self, method, **params):
        self.next_id += 1
        self.socket.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.socket.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    fail(f"{method}: {message['error']}")
                return message.get("result", {})

    def evaluate(self, expression):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in result:
            fail(f"script error in {expression!r}: {result['exceptionDetails']}")
        return result.get("result", {}).get("value")

    def open(self, url):
        self.call("Page.navigate", url=url)
        self.wait_for("document.readyState === 'complete' && location.href === " + json.dumps(url), f"{url} to load")

    def wait_for(self, expression, what, timeout=20):
        end = time.time() + timeout
        while time.time() < end:
            if self.evaluate(expression):
                return
            time.sleep(0.1)
        fail(f"timed out waiting for {what}")

    def screenshot(self, path):
        data = base64.b64decode(self.call("Page.captureScreenshot", format="png")["data"])
        with open(path, "wb") as file:
            file.write(data)
        if not looks_drawn(data):
            fail(f"{path} is blank")
        print(f"ok: screenshot {path} ({len(data)} bytes)", flush=True)

    def close(self):
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


def looks_drawn(png):
    """A PNG with real content: its pixel data takes many distinct byte values."""
    if png[:8] != b"\x89PNG\r\n\x1a\n":
        return False
    position, idat = 8, b""
    while position < len(png):
        length, kind = struct.unpack(">I4s", png[position:position + 8])
        if kind == b"IDAT":
            idat += png[position + 8:position + 8 + length]
        position += 12 + length
    return len(set(zlib.decompress(idat))) > 20


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--screenshots", required=True)
    parser.add_argument("--chromium", default=shutil.which("chromium") or shutil.which("chromium-browser") or "chromium")
    parser.add_argument("--account")
    parser.add_argument("--password-env")
    parser.add_argument("--long-job")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    arguments = parser.parse_args()
    command = arguments.command[1:] if arguments.command[:1] == ["--"] else arguments.command
    if not command:
        fail("give the command that creates a new job after --")
    os.makedirs(arguments.screenshots, exist_ok=True)
    base = arguments.url.rstrip("/")
    browser = Browser(arguments.chromium)
    try:
        browser.open(base + "/jobs")
        browser.wait_for("window.vertebraLive && window.vertebraLive.connected", "the live updates to connect")
        before = browser.evaluate("document.querySelectorAll('#jobs tbody tr').length")
        browser.evaluate("window.notReloaded = true")
        print(f"ok: /jobs shows {before} jobs and is live", flush=True)
        created = subprocess.run(command, capture_output=True, text=True, timeout=120)
        if created.returncode != 0:
            fail(f"the command failed: {created.stderr.strip()}")
        new_id = created.stdout.strip().splitlines()[-1] if created.stdout.strip() else ""
        browser.wait_for(f"document.getElementById('job-{new_id}') !== null", f"the row of job {new_id} to appear", timeout=30)
        browser.wait_for(f"document.getElementById('job-{new_id}').dataset.state === 'done'", f"job {new_id} to show done", timeout=30)
        if not browser.evaluate("window.notReloaded === true"):
            fail("the page reloaded instead of updating")
        print(f"ok: job {new_id} appeared and finished live, without a reload", flush=True)
        browser.screenshot(os.path.join(arguments.screenshots, "jobs.png"))
        browser.evaluate(f"document.querySelector('#job-{new_id} a').click()")
        browser.wait_for(f"location.pathname === '/jobs/{new_id}' && document.readyState === 'complete'", "the job page")
        if "Timeline" not in browser.evaluate("document.body.innerText"):
            fail("the job page has no timeline")
        print("ok: the job page opens from its row", flush=True)
        browser.screenshot(os.path.join(arguments.screenshots, "job.png"))
        browser.open(base + "/jobs?state=done")
        states = browser.evaluate("[...document.querySelectorAll('#jobs tbody tr')].map(r => r.dataset.state)")
        if not states or any(state != "done" for state in states):
            fail(f"filtering by state done shows {states}")
        print(f"ok: the state filter shows {len(states)} done jobs only", flush=True)
        browser.screenshot(os.path.join(arguments.screenshots, "jobs-done.png"))
        browser.open(base + "/workers")
        if browser.evaluate("document.querySelectorAll('#workers tr').length") < 2:
            fail("the workers page lists no worker")
        browser.screenshot(os.path.join(arguments.screenshots, "workers.png"))
        browser.open(base + "/charts")
        if browser.evaluate("document.querySelectorAll('svg.chart').length") < 2:
            fail("the charts page has no charts")
        browser.screenshot(os.path.join(arguments.screenshots, "charts.png"))
        print("ok: all pages", flush=True)
        if arguments.account:
            cancel_through_the_page(browser, base, arguments)
    finally:
        browser.close()


def cancel_through_the_page(browser, base, arguments):
    """Signs in, starts a long job, cancels it with its button, waits for it to end cancelled."""
    password = os.environ.get(arguments.password_env or "", "")
    browser.open(base + "/signin")
    browser.evaluate(
        f"document.querySelector('input[name=account]').value = {json.dumps(arguments.account)};"
        f"document.querySelector('input[name=password]').value = {json.dumps(password)};"
        "document.querySelector('form[action=\"/signin\"]').submit()")
    browser.wait_for("location.pathname === '/jobs' && document.readyState === 'complete'", "the sign-in to finish")
    if arguments.account.split("@")[0] not in browser.evaluate("document.querySelector('header').innerText"):
        fail("the header does not show the signed-in account")
    print(f"ok: signed in as {arguments.account}", flush=True)
    started = subprocess.run(json.loads(arguments.long_job), capture_output=True, text=True, timeout=120)
    if started.returncode != 0:
        fail(f"the long job did not start: {started.stderr.strip()}")
    job = started.stdout.strip().splitlines()[-1]
    browser.open(f"{base}/jobs/{job}")
    browser.wait_for("document.getElementById('cancel') !== null", "the cancel button")
    browser.evaluate("document.getElementById('cancel').click()")
    browser.wait_for("document.getElementById('note') !== null && document.readyState === 'complete'", "the cancel's answer")
    note = browser.evaluate("document.getElementById('note').innerText")
    if not note.startswith("Cancelling"):
        fail(f"the cancel was answered: {note}")
    end = time.time() + 30
    while time.time() < end:
        browser.open(f"{base}/jobs/{job}")
        if browser.evaluate("document.querySelector('.state').innerText") == "cancelled":
            break
        time.sleep(0.5)
    else:
        fail(f"job {job} did not end cancelled")
    print(f"ok: job {job} cancelled from its page", flush=True)
    browser.screenshot(os.path.join(arguments.screenshots, "job-cancelled.png"))


if __name__ == "__main__":
    main()
