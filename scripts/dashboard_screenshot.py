"""Screenshot the dashboard of a home's world (the picture in the README).

Serves the home with the daemon's own app on a free loopback port (in this process, the
trusted backend: nothing runs), opens the page in Debian's chromium with an operator token
made for the purpose (revoked after), waits for every chart, and saves a full-page PNG.

Usage: python scripts/dashboard_screenshot.py HOME OUT.png [--width 1400]
  e.g. kernel --home /tmp/w world example --agents 16 --seed 2 && kernel --home /tmp/w world run --ticks 40
       python scripts/dashboard_screenshot.py /tmp/w docs/dashboard.png
"""

import argparse
import shutil
import socket
import sys
import threading
import time
from pathlib import Path

import uvicorn
from playwright.sync_api import sync_playwright

from kernel.api import Kernel
from kernel.sandbox.trusted import TrustedPython
from kernel.service import tokens
from kernel.service.app import create_app
from kernel.settings import Settings

ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("home", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--width", type=int, default=1400)
    args = parser.parse_args()
    chromium = shutil.which("chromium")
    if chromium is None:
        sys.exit("chromium is not on PATH: run `make browser`.")
    k = Kernel(Settings(home=args.home, audit_common_corpus=[]), sandbox=TrustedPython(), image="trusted")
    made = tokens.create(k.db, None, True, "screenshot")
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(k), log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, headless=True, args=ARGS)
            page = browser.new_page(viewport={"width": args.width, "height": 900})
            page.goto(f"http://127.0.0.1:{sock.getsockname()[1]}/#token={made['token']}")
            page.wait_for_selector("#live[data-state='live']", timeout=60_000)
            for chart in ("chart-graph", "chart-lindy", "chart-survival", "chart-velocity"):
                page.wait_for_function(f"() => Number(document.getElementById('{chart}').dataset.points) > 0")
            time.sleep(1.0)  # let Plotly finish its transitions
            args.out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(args.out), full_page=True)
            browser.close()
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        tokens.revoke(k.db, made["id"])
        k.close()
    print(f"saved {args.out}")


if __name__ == "__main__":
    main()
