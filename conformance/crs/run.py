#!/usr/bin/env python3
"""Replays OWASP CRS v4's regression tests against `bext run`, as CRS's go-ftw runs them.

    python3 conformance/crs/run.py [--tests FILE] [--crs DIR] [--only PREFIX] [--docs]

bext serves one route with `waf crs { import crs DIR paranoia 4 … mode detect }` in front of a
small origin started here (200 to everything). CRS's test settings (what its test setup puts
in crs-setup.conf: `crs_validate_utf8_encoding=1`, `max_num_args=255`, …) go in a rules file
next to the imported ones. Each entry is sent on its own connection between two marker
requests (`X-CRS-Test` header, logged by a native rule), as go-ftw brackets a test with
markers: the rule ids bext logs between the two markers (its `waf crs: … rules=ID,…` lines on
stderr) are what the test fired. An entry passes when the ids it expects fired and the ones
it forbids did not; status-only entries (the server's request-line parser) are not counted.

Writes conformance/crs/out/results.json and the per-file table; with --docs, replaces the
table between the `crs-conformance` markers in docs/waf.md. Needs a built bext (BEXT, else
target/release/bext, else target/debug/bext).
"""

import argparse
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
CORPORA = ROOT.parent / "shared" / "corpora"
if not CORPORA.is_dir():
    CORPORA = Path("/work/shared/corpora")

# CRS's regression-test settings (tests/regression/README and its crs-setup for go-ftw).
TEST_SETTINGS = {
    "crs_validate_utf8_encoding": "1",
    "arg_name_length": "100",
    "arg_length": "400",
    "total_arg_length": "64000",
    "max_num_args": "255",
    "max_file_size": "64100",
    "combined_file_sizes": "65535",
}
# Native rules are numbered from here (modules/waf/src/stage.rs, NATIVE_BASE).
NATIVE_BASE = 9_000_001


class Origin(BaseHTTPRequestHandler):
    """Answers 200 with a short body to every method, then closes the connection."""

    protocol_version = "HTTP/1.1"

    def handle_one_request(self):
        try:
            super().handle_one_request()
        except ConnectionError:
            self.close_connection = True

    def _answer(self):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        body = b"ok\n"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        # A body this origin did not read (chunked, say) must not poison a reused connection.
        self.send_header("Connection", "close")
        self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def __getattr__(self, name):
        if name.startswith("do_"):
            return self._answer
        raise AttributeError(name)

    def log_message(self, *args):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request_bytes(e):
    """The bytes go-ftw would send for entry `e`."""
    if e.get("raw"):
        return e["raw"].encode("utf-8")
    method = e.get("method") or "GET"
    uri = e.get("uri") or "/"
    version = e.get("version") or "HTTP/1.1"
    headers = [(h[0], h[1]) for h in e.get("headers") or []]
    body = (e.get("body") or "").encode("utf-8")
    if e.get("autocomplete_headers", True):
        has = lambda n: any(k.lower() == n for k, _ in headers)
        if body and not has("content-length"):
            headers.append(("Content-Length", str(len(body))))
        if body and not has("content-type"):
            headers.append(("Content-Type", "application/x-www-form-urlencoded"))
        if not has("connection"):
            headers.append(("Connection", "close"))
    head = f"{method} {uri} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in headers)
    return head.encode("utf-8") + b"\r\n" + body


def exchange(addr, data, timeout=5.0):
    """Sends `data`, reads until the server closes (or the timeout); the status or None."""
    with socket.create_connection(addr, timeout=timeout) as s:
        try:
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        except OSError:
            pass
        got = b""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except (socket.timeout, OSError):
                break
            if not chunk:
                break
            got += chunk
        m = re.match(rb"HTTP/1\.[01] (\d{3})", got)
        return int(m.group(1)) if m else None


class Log:
    """bext's stderr, line by line, readable while it grows."""

    def __init__(self, stream):
        self.lines = []
        self.cv = threading.Condition()
        threading.Thread(target=self._read, args=(stream,), daemon=True).start()

    def _read(self, stream):
        for raw in stream:
            with self.cv:
                self.lines.append(raw.decode("utf-8", "replace").rstrip("\n"))
                self.cv.notify_all()

    def wait_for(self, needle, start, timeout=3.0):
        deadline = time.monotonic() + timeout
        with self.cv:
            while True:
                for i in range(start, len(self.lines)):
                    if needle in self.lines[i]:
                        return i
                left = deadline - time.monotonic()
                if left <= 0:
                    return None
                self.cv.wait(left)


def fired_between(lines):
    ids = []
    for line in lines:
        m = re.search(r"^waf crs: .* rules=([0-9,]+)$", line)
        if not m:
            continue
        for i in m.group(1).split(","):
            i = int(i)
            if i < NATIVE_BASE and i not in ids:
                ids.append(i)
    return ids


def passes(e, fired):
    expect = e.get("expect")
    basis = e.get("expect_basis")
    if basis == "log_regex":
        key = "log_match_regex" if expect == "match" else "log_no_match_regex"
        m = re.search(r'id "(\d+)"', e.get(key) or "")
        if expect == "match":
            return (int(m.group(1)) if m else e["rule_id"]) in fired
        if m:
            return int(m.group(1)) not in fired
        return all(949000 <= i < 990000 for i in fired)
    if expect == "match":
        return all(i in fired for i in e.get("expect_ids") or []) and not any(
            i in fired for i in e.get("no_expect_ids") or []
        )
    return not any(i in fired for i in e.get("no_expect_ids") or [])


def bext_binary():
    if os.environ.get("BEXT"):
        return os.environ["BEXT"]
    target = Path(os.environ.get("CARGO_TARGET_DIR", ROOT / "target"))
    for b in (target / "release" / "bext", target / "debug" / "bext"):
        if b.is_file():
            return str(b)
    sys.exit("build bext first (cargo build --release), or set BEXT")


def write_docs(table):
    doc = ROOT / "docs" / "waf.md"
    text = doc.read_text()
    start, end = "<!-- crs-conformance:start -->", "<!-- crs-conformance:end -->"
    if start not in text or end not in text:
        sys.exit("docs/waf.md has no crs-conformance markers")
    head, rest = text.split(start, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(head + start + "\n" + table + end + tail)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tests", default=str(CORPORA / "crs-v4" / "crs-tests.json"))
    ap.add_argument("--crs", default=str(CORPORA / "crs-v4" / "crs-data"))
    ap.add_argument("--only", help="run the entries whose id starts with this")
    ap.add_argument("--docs", action="store_true", help="write the table into docs/waf.md")
    args = ap.parse_args()

    entries = json.loads(Path(args.tests).read_text())
    crs = Path(args.crs).resolve()
    work = Path(tempfile.mkdtemp(prefix="bext-crs-"))
    rules = work / "rules"
    rules.mkdir()
    for f in crs.iterdir():
        if f.suffix in (".conf", ".data"):
            (rules / f.name).symlink_to(f)
    settings = ",".join(f"setvar:tx.{k}={v}" for k, v in TEST_SETTINGS.items())
    (rules / "REQUEST-900-TEST-SETTINGS.conf").write_text(
        f'SecAction "id:900990,phase:1,pass,nolog,{settings}"\n'
    )

    origin_port, bext_port = free_port(), free_port()
    origin = ThreadingHTTPServer(("127.0.0.1", origin_port), Origin)
    threading.Thread(target=origin.serve_forever, daemon=True).start()
    config = work / "crs.bext"
    config.write_text(
        f"""listen 127.0.0.1:{bext_port}

upstream origin {{
    server 127.0.0.1:{origin_port}
}}

waf crs {{
    import crs "{rules}" paranoia 4 skip_unsupported
    rule ftw-marker when header x-crs-test present => log
    mode detect
}}

site * {{
    route /* {{
        waf crs
        proxy origin
    }}
}}
"""
    )
    bext = subprocess.Popen(
        [bext_binary(), "run", str(config), "--workers", "1"],
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    log = Log(bext.stderr)
    addr = ("127.0.0.1", bext_port)
    try:
        for _ in range(200):
            try:
                socket.create_connection(addr, timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        results, per_file = [], {}
        for n, e in enumerate(entries):
            if args.only and not e["id"].startswith(args.only):
                continue
            if e.get("expect") is None:
                continue
            marks = [f"/__crs_test/{n}/{which}" for which in ("start", "end")]
            mark = lambda path, which: (
                f"GET {path} HTTP/1.1\r\nHost: localhost\r\nX-CRS-Test: {e['id']}-{which}\r\n"
                "Connection: close\r\n\r\n"
            ).encode()
            from_line = len(log.lines)
            exchange(addr, mark(marks[0], "start"))
            a = log.wait_for(f" GET {marks[0]} ", from_line)
            status = exchange(addr, request_bytes(e))
            exchange(addr, mark(marks[1], "end"))
            b = log.wait_for(f" GET {marks[1]} ", a + 1 if a is not None else from_line)
            lines = log.lines[(a or from_line) + 1 : b if b is not None else len(log.lines)]
            fired = fired_between(lines)
            ok = passes(e, fired)
            file = e["file"].split("/")[-2]
            p, t = per_file.get(file, (0, 0))
            per_file[file] = (p + ok, t + 1)
            results.append({"id": e["id"], "status": status, "fired": fired, "pass": ok})
    finally:
        bext.terminate()
        bext.wait()
        origin.shutdown()

    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "results.json").write_text(json.dumps(results, indent=0))
    passed = sum(r["pass"] for r in results)
    table = "| rule file | pass |\n|---|---|\n"
    for f in sorted(per_file):
        p, t = per_file[f]
        table += f"| {f} | {p}/{t} {100 * p / t:.1f} % |\n"
    total = len(results)
    table += f"| **total** | **{passed}/{total} {100 * passed / max(total, 1):.1f} %** |\n"
    print(table, end="")
    if args.docs and not args.only:
        write_docs(table)


if __name__ == "__main__":
    main()
