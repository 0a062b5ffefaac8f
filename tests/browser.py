"""Headless Chromium as a test handle: screenshots, and the layout a real browser computes for a page.

``layout(url_dir, page, selectors)`` serves ``url_dir`` on a free 127.0.0.1 port, opens a probe page that loads
``page`` in a same-origin frame and measures each selector with ``getBoundingClientRect`` after layout; the
probe writes the measures into its DOM, which ``chromium --dump-dom`` prints. The report itself has no script.
"""

from __future__ import annotations

import functools
import html
import json
import re
import shutil
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import SimpleHTTPRequestHandler
from pathlib import Path

from conftest import require_service
from test_connectors_base import QuietHTTPServer

FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars"]


def chromium() -> str:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    require_service("Chromium", "no chromium on PATH (apt-get install -y chromium; .ci/run installs it)")
    raise AssertionError("unreachable")


def _run(args: list[str], timeout: int = 120) -> str:
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run([chromium(), *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def screenshot(url: str, out: Path, width: int = 1400, height: int = 900, budget_ms: int = 5000) -> Path:
    _run([f"--screenshot={out}", f"--window-size={width},{height}", f"--virtual-time-budget={budget_ms}", url],
         timeout=180)
    assert out.exists() and out.stat().st_size > 10_000, f"screenshot {out} missing or blank"
    return out


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    handler = functools.partial(_Quiet, directory=str(folder))
    server = QuietHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:  # keep test output clean
        pass


_PROBE = """<!DOCTYPE html><html><body><pre id="result">pending</pre>
<iframe id="f" src="{page}" style="width:{width}px;height:{height}px;border:0"></iframe>
<script>
document.getElementById("f").addEventListener("load", function () {{
  var doc = this.contentDocument, out = {{}};
  {selectors}.forEach(function (sel) {{
    var els = doc.querySelectorAll(sel);
    out[sel] = Array.prototype.map.call(els, function (e) {{
      var r = e.getBoundingClientRect(); return [Math.round(r.width), Math.round(r.height)]; }});
  }});
  out["__viewport"] = [doc.documentElement.clientWidth, doc.documentElement.scrollHeight];
  document.getElementById("result").textContent = JSON.stringify(out);
}});
</script></body></html>"""


def layout(folder: Path, page: str, selectors: list[str], width: int = 1400, height: int = 900
           ) -> dict[str, list[list[int]]]:
    """Widths and heights Chromium lays out for every element matching each selector (in page order)."""
    probe = folder / "_probe.html"
    probe.write_text(_PROBE.format(page=html.escape(page), width=width, height=height,
                                   selectors=json.dumps(selectors)), encoding="utf-8")
    with serve(folder) as base:
        dom = _run(["--dump-dom", "--virtual-time-budget=10000", f"--window-size={width + 40},{height}",
                    f"{base}/_probe.html"], timeout=180)
    m = re.search(r'<pre id="result">(.*?)</pre>', dom, re.S)
    assert m and m.group(1) != "pending", dom[:2000]
    return json.loads(html.unescape(m.group(1)))
