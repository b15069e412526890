"""See the documentation site as a reader does: every page in headless Chromium.

``python docs/check_layout.py`` builds the site (``mkdocs build --strict``) into a temporary
folder and opens every page in headless Chromium, served on 127.0.0.1 (``http``) and opened from
disk (``file``, as an air-gapped reader does), at 390 px (a phone), 1280 and 1920 px. It reports

- every table and code block whose content is cut: wider than its box at desktop widths (1280 px
  and up: the reader should not have to scroll), and at narrower widths wider than its box
  without that box scrolling (a phone's tables scroll inside their own box),
- every inline ``code`` in a table cell that wraps onto a second line (an id broken mid-word),
- every page wider than the window,
- every image that does not load, and every page without content,
- every request that leaves the machine (web fonts, CDN scripts, API calls),
- over ``file://``, every link to a folder (it opens a directory listing, not the page), and a
  search that finds nothing (the index must load without a server),
- in every generated chart (``images/generated/*.svg``), labels that overlap each other or a
  plotted line (measured in the browser, from the rendered text boxes).

It prints one line per problem and exits 1 if there is any, 0 otherwise. ``--site DIR`` checks an
already built site; ``--widths 390,1280`` picks the window widths; ``--schemes http,file`` how
pages are opened; ``--chromium PATH`` the browser (default: ``chromium``, Debian's package, or
``$CHROMIUM``); ``--screenshots DIR`` saves a full-page PNG of every page.

It needs nothing beyond the standard library and a Chromium binary: the browser is driven over
the Chrome DevTools protocol through a minimal WebSocket client below.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import http.server
import json
import os
import shutil
import socket
import socketserver
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
_OUTSIDE = (
    "*fonts.googleapis.com*",
    "*fonts.gstatic.com*",
    "*cdn.jsdelivr.net*",
    "*unpkg.com*",
    "*api.github.com*",
)
# A request to anything but these leaves the machine.
_LOCAL = ("file:", "data:", "blob:", "about:", "http://127.0.0.1", "chrome-extension:")
DESKTOP = 1280  # at and above this width a table must fit its column; below, it may scroll

# Runs in the page once it has loaded: waits for images and fonts, then measures. Returns a list
# of [kind, detail] problems.
MEASURE = r"""
(async (desktop) => {
  await document.fonts.ready;
  await Promise.all([...document.images].map(img => img.complete ? null :
      new Promise(resolve => { img.onload = img.onerror = resolve; })));
  const problems = [];
  const snippet = el => (el.innerText || el.textContent || "").trim().replace(/\s+/g, " ")
      .slice(0, 70);
  const article = document.querySelector("article") || document.body;
  const over = el => el.scrollWidth > el.clientWidth + 1;
  const scrolls = el => ["auto", "scroll"].includes(getComputedStyle(el).overflowX);
  // the box that shows a table: the nearest one that clips or scrolls (or the table itself)
  const holder = table => {
    for (let el = table.parentElement; el && el !== article.parentElement; el = el.parentElement) {
      if (getComputedStyle(el).overflowX !== "visible") return el;
    }
    return table;
  };
  const right = article.getBoundingClientRect().right + 1;
  for (const table of article.querySelectorAll("table")) {
    const box = table.closest(".md-typeset__scrollwrap") || table;
    // On a phone a wide table may scroll inside its own box (Material widens that box to the
    // screen's edges); on a desktop it must fit the column.
    const cut = desktop
      ? over(table) || over(box) || table.getBoundingClientRect().right > right
      : (over(holder(table)) && !scrolls(holder(table)))
        || box.getBoundingClientRect().right > window.innerWidth + 1;
    if (cut) {
      problems.push(["table cut off", `${box.scrollWidth}px in ${box.clientWidth}px: `
          + snippet(table.querySelector("tr") || table)]);
    }
  }
  for (const code of article.querySelectorAll("pre > code, pre")) {
    if (code.tagName === "PRE" && code.querySelector(":scope > code")) continue;
    // a phone may scroll a command's output in its own box (its columns stay aligned)
    if (over(code) && (desktop || !scrolls(code))) {
      const lines = (code.textContent || "").split("\n");
      const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), "");
      problems.push(["code cut off", `${code.scrollWidth}px in ${code.clientWidth}px: `
          + longest.trim().slice(0, 70)]);
    }
  }
  for (const nav of article.querySelectorAll(".md-code__nav")) {
    const box = nav.getBoundingClientRect();
    const code = nav.parentElement.querySelector("code");
    if (!code || box.width === 0) continue;
    const walker = document.createTreeWalker(code, NodeFilter.SHOW_TEXT);
    const range = document.createRange();
    let hidden = null;
    const hits = r => r.width > 0 && r.right > box.left && r.left < box.right &&
        r.bottom > box.top && r.top < box.bottom;
    for (let node = walker.nextNode(); node && !hidden; node = walker.nextNode()) {
      if (!node.textContent.trim()) continue;
      range.selectNodeContents(node);
      if (![...range.getClientRects()].some(hits)) continue;
      // a character by character look, so that a space hanging at a wrapped line's end
      // (invisible) does not count
      const text = node.textContent;
      for (let i = 0; i < text.length && !hidden; i++) {
        if (!text[i].trim()) continue;
        range.setStart(node, i);
        range.setEnd(node, i + 1);
        if ([...range.getClientRects()].some(hits)) hidden = text.trim().slice(0, 40);
      }
    }
    if (hidden) problems.push(["code under the copy button", hidden]);
  }
  for (const code of article.querySelectorAll("td code, th code")) {
    const lineHeight = parseFloat(getComputedStyle(code).lineHeight) || 20;
    if (code.getClientRects().length > 1 || code.getBoundingClientRect().height >
        1.6 * lineHeight) {
      problems.push(["code wrapped in a table cell", snippet(code)]);
    }
  }
  for (const img of article.querySelectorAll("img")) {
    if (!img.complete || img.naturalWidth === 0) {
      problems.push(["broken image", img.getAttribute("src") || "(no src)"]);
    }
  }
  if (document.documentElement.scrollWidth > window.innerWidth + 1) {
    problems.push(["page wider than the window",
        `${document.documentElement.scrollWidth}px > ${window.innerWidth}px`]);
  }
  if (location.protocol === "file:") {
    for (const link of document.querySelectorAll("a[href]")) {
      const url = new URL(link.href, location.href);
      if (url.protocol === "file:" && url.pathname.endsWith("/")) {
        problems.push(["link to a folder (a directory listing from disk)",
            link.getAttribute("href")]);
      }
    }
  }
  const body = article.cloneNode(true);
  body.querySelectorAll("h1, .md-source-file, .md-content__button").forEach(e => e.remove());
  const text = (body.textContent || "").trim();
  if (text.length < 80 && !article.querySelector("img, svg, table")) {
    problems.push(["empty page", JSON.stringify(text.slice(0, 60))]);
  }
  return problems;
})(DESKTOP)
"""

# Types a word into the search box and returns how many results show (Material's search runs in
# a Web Worker that reads the index; from file:// the offline plugin's inlined index and the
# bundled Worker shim make that work).
SEARCH = r"""
(async (word) => {
  const input = document.querySelector("[data-md-component=search-query]");
  if (!input) return -1;
  const toggle = document.querySelector("[data-md-toggle=search]");
  if (toggle) { toggle.checked = true; toggle.dispatchEvent(new Event("change")); }
  input.focus();
  for (let i = 0; i < 100; i++) {
    input.value = word;
    input.dispatchEvent(new Event("input", {bubbles: true}));
    input.dispatchEvent(new KeyboardEvent("keyup", {bubbles: true, key: "e"}));
    await new Promise(resolve => setTimeout(resolve, 100));
    const found = document.querySelectorAll(".md-search-result__item").length;
    if (found) return found;
  }
  return 0;
})("WORD")
"""

# In a chart opened on its own: every text's box against every other's and against the plotted
# lines (paths without fill), sampled along their length. Returns [kind, detail] problems.
LABELS = r"""
(() => {
  const svg = document.querySelector("svg");
  if (!svg) return [["not an SVG", location.href]];
  const shrink = (r, d) => ({left: r.left + d, right: r.right - d, top: r.top + d,
      bottom: r.bottom - d});
  // a text's own words, not its <title> tooltip
  const words = t => [...t.childNodes].filter(n => n.nodeType === Node.TEXT_NODE)
      .map(n => n.textContent).join("").trim();
  const texts = [...svg.querySelectorAll("text")].filter(t => words(t))
      .map(t => ({t, r: shrink(t.getBoundingClientRect(), 0.5)}));
  const meets = (a, b) => a.left < b.right && b.left < a.right && a.top < b.bottom
      && b.top < a.bottom;
  const name = t => words(t).slice(0, 40);
  const problems = [];
  for (let i = 0; i < texts.length; i++) {
    for (let j = i + 1; j < texts.length; j++) {
      if (meets(texts[i].r, texts[j].r)) {
        problems.push(["labels overlap", `${name(texts[i].t)} / ${name(texts[j].t)}`]);
      }
    }
  }
  const matrix = svg.getScreenCTM();
  for (const path of svg.querySelectorAll("path[fill=none], polyline")) {
    const length = path.getTotalLength();
    const points = [];
    for (let d = 0; d <= length; d += 1) {
      const p = path.getPointAtLength(d).matrixTransform(path.getScreenCTM() || matrix);
      points.push(p);
    }
    for (const {t, r} of texts) {
      if (points.some(p => p.x > r.left && p.x < r.right && p.y > r.top && p.y < r.bottom)) {
        problems.push(["label on a line", name(t)]);
      }
    }
  }
  return problems;
})()
"""


class WebSocket:
    """The client side of RFC 6455, just enough for the DevTools protocol (text frames)."""

    def __init__(self, url: str, timeout: float = 60.0) -> None:
        if not url.startswith("ws://"):
            raise ValueError(f"not a ws:// URL: {url}")
        host_port, _, path = url[len("ws://") :].partition("/")
        host, _, port = host_port.partition(":")
        self.sock = socket.create_connection((host, int(port or 80)), timeout=timeout)
        key = base64.b64encode(os.urandom(16)).decode()
        request = (
            f"GET /{path} HTTP/1.1\r\nHost: {host_port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        self.sock.sendall(request.encode())
        response = b""
        while b"\r\n\r\n" not in response:
            chunk = self.sock.recv(4096)
            if not chunk:
                raise ConnectionError("the browser closed the WebSocket handshake")
            response += chunk
        head, _, self.buffer = response.partition(b"\r\n\r\n")
        if b" 101 " not in head.split(b"\r\n", 1)[0]:
            raise ConnectionError(f"WebSocket handshake refused: {head.decode(errors='replace')}")

    def _read(self, n: int) -> bytes:
        while len(self.buffer) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buffer)))
            if not chunk:
                raise ConnectionError("the browser closed the connection")
            self.buffer += chunk
        data, self.buffer = self.buffer[:n], self.buffer[n:]
        return data

    def send(self, text: str) -> None:
        payload = text.encode()
        header = bytes([0x81])  # FIN + text
        n = len(payload)
        if n < 126:
            header += bytes([0x80 | n])
        elif n < 1 << 16:
            header += bytes([0x80 | 126]) + struct.pack("!H", n)
        else:
            header += bytes([0x80 | 127]) + struct.pack("!Q", n)
        mask = os.urandom(4)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(header + mask + masked)

    def receive(self) -> str:
        message = b""
        while True:
            first, second = self._read(2)
            opcode, n = first & 0x0F, second & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", self._read(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", self._read(8))
            payload = self._read(n)
            if opcode == 0x8:
                raise ConnectionError("the browser closed the WebSocket")
            if opcode in (0x9, 0xA):  # ping / pong: the browser does not send them; skip
                continue
            message += payload
            if first & 0x80:
                return message.decode()

    def close(self) -> None:
        self.sock.close()


class DevTools:
    """One page target of a headless Chromium, driven by DevTools protocol commands."""

    def __init__(self, chromium: str, width: int, height: int = 1000) -> None:
        self.profile = tempfile.mkdtemp(prefix="check-layout-")
        self.process = subprocess.Popen(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                "--no-first-run",
                "--mute-audio",
                "--remote-debugging-port=0",
                f"--user-data-dir={self.profile}",
                f"--window-size={width},{height}",
                "about:blank",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = Path(self.profile) / "DevToolsActivePort"
        deadline = time.monotonic() + 60
        while not port_file.exists() or not port_file.read_text().strip():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{chromium} did not start (exit {self.process.poll()})")
            time.sleep(0.1)
        port = port_file.read_text().split()[0]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=30) as r:
            targets = json.load(r)
        page = next(t for t in targets if t["type"] == "page")
        self.ws = WebSocket(page["webSocketDebuggerUrl"])
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        self.requests: list[str] = []  # every URL the page asked for since the last open()
        self.call("Page.enable")
        # The site's only outside requests are web fonts and CDN scripts; offline they would hang
        # each page until a timeout, so fail them at once (the page then uses its fallback font).
        self.call("Network.enable")
        self.call("Network.setBlockedURLs", urls=list(_OUTSIDE))
        self.call(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < DESKTOP // 2,  # a phone's viewport (meta viewport honoured)
        )

    def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.receive())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                result: dict[str, Any] = message.get("result", {})
                return result
            self._event(message)

    def _event(self, message: dict[str, Any]) -> None:
        if message.get("method") == "Network.requestWillBeSent":
            self.requests.append(message["params"]["request"]["url"])
        self.events.append(message)

    def wait_for(self, event: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not any(e.get("method") == event for e in self.events):
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {event} within {timeout:.0f} s")
            self._event(json.loads(self.ws.receive()))
        self.events.clear()

    def open(self, url: str) -> None:
        self.events.clear()
        self.requests.clear()
        self.call("Page.navigate", url=url)
        self.wait_for("Page.loadEventFired")

    def evaluate(self, script: str) -> Any:
        result = self.call(
            "Runtime.evaluate", expression=script, awaitPromise=True, returnByValue=True
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"the check script failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def screenshot(self, path: Path) -> None:
        data = self.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        path.write_bytes(base64.b64decode(data["data"]))

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.call("Browser.close")
        self.ws.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
        shutil.rmtree(self.profile, ignore_errors=True)


@contextlib.contextmanager
def serve(site: Path) -> Iterator[str]:
    """Serve ``site`` on a free port of 127.0.0.1 (pages need http:// for their scripts)."""
    handler = functools.partial(_QuietHandler, directory=str(site))
    with socketserver.TCPServer(("127.0.0.1", 0), handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/"
        finally:
            server.shutdown()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def pages(site: Path) -> list[str]:
    """Every page of the site, as paths relative to its root (``zoo.html``,
    ``api/models.html``; ``zoo/index.html`` in a site built with directory URLs)."""
    return sorted(
        p.relative_to(site).as_posix() for p in site.rglob("*.html") if p.name != "404.html"
    )


def outside(urls: list[str]) -> list[str]:
    """The URLs among ``urls`` that leave the machine."""
    return sorted({u for u in urls if not u.startswith(_LOCAL)})


def _check_search(browser: DevTools, url: str, word: str = "quantize") -> list[str]:
    browser.open(url)
    found = browser.evaluate(SEARCH.replace("WORD", word))
    if found == -1:
        return []  # a site without a search box (the checker's own test pages)
    return [] if found > 0 else [f"search for {word!r} finds nothing"]


def check_charts(site: Path, chromium: str) -> list[str]:
    """Labels overlapping each other or a plotted line, in every generated SVG picture."""
    charts = sorted((site / "images" / "generated").glob("*.svg"))
    if not charts:
        return []
    problems = []
    browser = DevTools(chromium, 1000)
    try:
        for chart in charts:
            browser.open(chart.resolve().as_uri())
            for kind, detail in browser.evaluate(LABELS):
                problems.append(f"{chart.relative_to(site).as_posix()}: {kind}: {detail}")
    finally:
        browser.close()
    return problems


def check(
    site: Path,
    widths: list[int],
    chromium: str,
    shots: Path | None,
    schemes: tuple[str, ...] = ("http",),
) -> list[str]:
    """Every page at every width, opened the ``schemes`` ways (``http``, ``file``)."""
    problems = []
    with serve(site) as served:
        for scheme in schemes:
            base = served if scheme == "http" else site.resolve().as_uri() + "/"
            for width in widths:
                measure = MEASURE.replace("DESKTOP", "true" if width >= DESKTOP else "false")
                browser = DevTools(chromium, width)
                where = f"{scheme} {width}px"
                try:
                    for page in pages(site):
                        browser.open(base + page)
                        for kind, detail in browser.evaluate(measure):
                            problems.append(f"{where} /{page}: {kind}: {detail}")
                        for url in outside(browser.requests):
                            problems.append(f"{where} /{page}: request leaves the machine: {url}")
                        if shots is not None:
                            name = page.removesuffix(".html").replace("/", "_")
                            browser.screenshot(shots / f"{name}_{scheme}_{width}.png")
                    if pages(site):
                        first = "index.html" if (site / "index.html").is_file() else pages(site)[0]
                        for problem in _check_search(browser, base + first):
                            problems.append(f"{where} /{first}: {problem}")
                finally:
                    browser.close()
    return problems + check_charts(site, chromium)


def build(site: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        check=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--site", type=Path, help="a built site (default: build one)")
    parser.add_argument("--widths", default="390,1280,1920", help="window widths, px")
    parser.add_argument(
        "--schemes", default="http,file", help="how pages are opened: http (served), file (disk)"
    )
    parser.add_argument("--chromium", default=os.environ.get("CHROMIUM", "chromium"))
    parser.add_argument("--screenshots", type=Path, help="save a full-page PNG of every page")
    args = parser.parse_args(argv)
    chromium = shutil.which(args.chromium)
    if chromium is None:
        parser.error(f"no Chromium at {args.chromium!r}: apt-get install chromium, or --chromium")
    try:
        widths = [int(w) for w in args.widths.split(",")]
    except ValueError:
        parser.error(f"--widths takes window widths in px separated by commas, got {args.widths!r}")
    if not widths or min(widths) < 320:
        parser.error(f"--widths: each width must be at least 320 px, got {args.widths!r}")
    schemes = tuple(args.schemes.split(","))
    if not schemes or not set(schemes) <= {"http", "file"}:
        parser.error(f"--schemes takes http and/or file, separated by commas, got {args.schemes!r}")
    if args.site is not None and not (args.site / "index.html").is_file():
        parser.error(
            f"--site {args.site} holds no built site (no index.html); omit --site to build"
        )
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mnaszoo-site-") as tmp:
        site = args.site
        if site is None:
            site = Path(tmp) / "site"
            build(site)
        count = len(pages(site))
        problems = check(site, widths, chromium, args.screenshots, schemes)
    for line in problems:
        print(line)
    print(
        f"checked {count} pages at {', '.join(f'{w}px' for w in widths)} over"
        f" {' and '.join(f'{s}://' for s in schemes)}, and the generated charts:"
        f" {len(problems)} problem(s)"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
