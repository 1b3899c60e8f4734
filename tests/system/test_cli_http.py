"""The vireo CLI's HTTP transport (src/cli/client.c: requests written by us, replies parsed by
http-parser) against a scripted server on a unix socket: what it sends (bodies by length, a
pipe's by chunks), replies by length, chunked or until close, error replies and their exit
codes, broken and oversized replies, a download streamed to its file, the event stream; and
that vireo loads no more than a handful of shared libraries (its start-up is most of a `vireo
list`)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import threading

import pytest


class FakeDaemon:
    """Answers each connection with reply(request) -> raw bytes, then closes it."""

    def __init__(self, path: str, reply):
        self.path, self.reply, self.requests = path, reply, []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen(8)
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            with c:
                c.settimeout(20)
                try:
                    req = self.read_request(c)
                except (EOFError, OSError):
                    self.requests.append(None)  # the client gave up mid-request
                    continue
                self.requests.append(req)
                data = self.reply(req)
                try:
                    c.sendall(data)
                except OSError:
                    pass

    @staticmethod
    def read_request(c) -> dict:
        def recv(n: int = 65536) -> bytes:
            data = c.recv(n)
            if not data:
                raise EOFError
            return data

        buf = b""
        while b"\r\n\r\n" not in buf:
            buf += recv()
        head, _, rest = buf.partition(b"\r\n\r\n")
        lines = head.decode().split("\r\n")
        method, path, _ = lines[0].split(" ")
        hdrs = {k.lower(): v.strip() for k, v in (h.split(":", 1) for h in lines[1:])}
        body = rest
        if "content-length" in hdrs:
            n = int(hdrs["content-length"])
            while len(body) < n:
                body += recv(n - len(body))
        elif hdrs.get("transfer-encoding") == "chunked":
            raw, body = rest, b""
            while True:
                while b"\r\n" not in raw:
                    raw += recv()
                size, _, raw = raw.partition(b"\r\n")
                n = int(size, 16)
                while len(raw) < n + 2:
                    raw += recv()
                body, raw = body + raw[:n], raw[n + 2:]
                if n == 0:
                    break
        return {"method": method, "path": path, "headers": hdrs, "body": body}

    def close(self):
        # shutdown() wakes the accept() blocked in the thread; close() alone does not.
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.thread.join(10)
        self.sock.close()


def reply(status: int, body: bytes, extra: str = "") -> bytes:
    return (f"HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


def chunked(status: int, parts: list[bytes], end: bool = True) -> bytes:
    out = f"HTTP/1.1 {status} X\r\nTransfer-Encoding: chunked\r\n\r\n".encode()
    for p in parts:
        out += f"{len(p):x}\r\n".encode() + p + b"\r\n"
    return out + (b"0\r\n\r\n" if end else b"")


@pytest.fixture
def cli(build_dir):
    exe = os.path.join(build_dir, "src/cli/vireo")
    if not os.access(exe, os.X_OK):
        pytest.skip(f"{exe} is not built")
    return exe


@pytest.fixture
def sock(tmp_path):
    # Short: unix socket paths are limited to 107 bytes.
    return str(tmp_path / "s")


def run(cli, sock, *args, stdin=None):
    r = subprocess.run([cli, "-c", sock, *args], capture_output=True, timeout=60, stdin=stdin)
    return r.returncode, r.stdout.decode(errors="replace"), r.stderr.decode(errors="replace")


def serve(sock, fn):
    return FakeDaemon(sock, fn)


def test_requests_and_replies(cli, sock, tmp_path):
    doms = [{"name": "a", "state": "running", "pid": 7, "type": "qemu", "autostart": True},
            {"name": "b", "state": "shut off", "type": "qemu", "autostart": False}]
    text = json.dumps(doms).encode()
    replies = iter([reply(200, text),
                    chunked(200, [text[:10], text[10:]]),
                    # No length, not chunked: the body ends with the connection.
                    b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n" + text,
                    reply(200, b'{"name":"n1","state":"shut off"}')])
    fake = serve(sock, lambda req: next(replies))
    try:
        for _ in range(3):
            rc, out, err = run(cli, sock, "list", "--all")
            assert rc == 0 and " a " in out and " b " in out, err
        xml = tmp_path / "n1.xml"
        xml.write_text("<domain><name>n1</name></domain>")
        rc, out, err = run(cli, sock, "define", str(xml))
        assert rc == 0 and "Domain 'n1' defined" in out, err
        assert fake.requests[0]["method"] == "GET" and fake.requests[0]["path"] == "/v1/domains"
        assert fake.requests[0]["headers"]["host"] == "localhost"
        r = fake.requests[3]
        assert r["method"] == "POST" and r["path"] == "/v1/domains"
        assert r["headers"]["content-type"] == "application/json"
        assert json.loads(r["body"]) == {"xml": xml.read_text()}
    finally:
        fake.close()


def test_error_replies_and_exit_codes(cli, sock):
    replies = iter([
        reply(404, b'{"error":{"code":404,"message":"domain \'x\' not found"}}'),
        reply(409, b'{"error":{"code":409,"message":"domain \'x\' is already running"}}'),
        reply(500, b"<html>not json</html>"),
    ])
    fake = serve(sock, lambda req: next(replies))
    try:
        rc, _, err = run(cli, sock, "dominfo", "x")
        assert rc == 4 and "vireo: domain 'x' not found" in err
        rc, _, err = run(cli, sock, "start", "x")
        assert rc == 1 and "vireo: domain 'x' is already running" in err
        assert fake.requests[1]["method"] == "POST"
        assert fake.requests[1]["path"] == "/v1/domains/x/start"
        rc, _, err = run(cli, sock, "dominfo", "x")
        assert rc == 1 and "not JSON (HTTP 500)" in err
    finally:
        fake.close()


def test_broken_replies_are_unreachable(cli, sock):
    rc, _, err = run(cli, sock, "list")
    assert rc == 3 and f"cannot talk to vireod at {sock}" in err and "is vireod running" in err
    replies = iter([b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
                    reply(200, b'{"a":1}')[:-3],
                    b"",
                    chunked(200, [b"[]"], end=False)])
    fake = serve(sock, lambda req: next(replies))
    try:
        rc, _, err = run(cli, sock, "list")
        assert rc == 3 and "bad HTTP reply" in err, err
        rc, _, err = run(cli, sock, "list")
        assert rc == 3 and "closed before the reply ended" in err, err
        rc, _, err = run(cli, sock, "list")
        assert rc == 3 and "closed without a reply" in err, err
        rc, _, err = run(cli, sock, "list")
        assert rc == 3 and "closed before the reply ended" in err, err
    finally:
        fake.close()


def test_oversized_reply_is_refused(cli, sock):
    big = b"[" + b" " * (65 << 20) + b"]"
    fake = serve(sock, lambda req: reply(200, big))
    try:
        rc, _, err = run(cli, sock, "list")
        assert rc == 1 and "reply larger than" in err
    finally:
        fake.close()


def test_upload_by_length_and_from_a_pipe(cli, sock, tmp_path):
    data = os.urandom(3 << 20)
    f = tmp_path / "up.bin"
    f.write_bytes(data)
    fake = serve(sock, lambda req: reply(200, b'{"name":"v","capacity":1}'))
    try:
        rc, out, err = run(cli, sock, "vol-upload", "v", str(f), "--pool", "p")
        assert rc == 0, err
        r = fake.requests[-1]
        assert r["method"] == "PUT" and r["path"] == "/v1/pools/p/volumes/v/data"
        assert r["headers"]["content-length"] == str(len(data)) and r["body"] == data
        # A pipe has no size: the body goes in chunks.
        p = subprocess.Popen(["cat", str(f)], stdout=subprocess.PIPE)
        rc, out, err = run(cli, sock, "vol-upload", "v", "/dev/stdin", "--pool", "p",
                           stdin=p.stdout)
        p.wait()
        assert rc == 0, err
        r = fake.requests[-1]
        assert r["headers"]["transfer-encoding"] == "chunked" and r["body"] == data
        # A file that fails mid-way is named; the daemon gets a cut body (and drops it).
        rc, _, err = run(cli, sock, "vol-upload", "v", str(tmp_path), "--pool", "p")
        assert rc == 1 and f"{tmp_path}: Is a directory" in err
    finally:
        fake.close()
    rc, _, err = run(cli, sock, "vol-upload", "v", str(tmp_path / "nope"), "--pool", "p")
    assert rc == 1 and "nope: No such file or directory" in err


def test_download_streams_to_the_file(cli, sock, tmp_path):
    parts = [os.urandom(1 << 20) for _ in range(5)]
    replies = iter([chunked(200, parts),
                    reply(404, b'{"error":{"code":404,"message":"no volume \'v\' in pool \'p\'"}}'),
                    chunked(200, parts[:2], end=False)])
    fake = serve(sock, lambda req: next(replies))
    out = tmp_path / "down.bin"
    try:
        rc, _, err = run(cli, sock, "vol-download", "v", str(out), "--pool", "p")
        assert rc == 0, err
        assert out.read_bytes() == b"".join(parts)
        out.unlink()
        rc, _, err = run(cli, sock, "vol-download", "v", str(out), "--pool", "p")
        assert rc == 4 and "no volume 'v' in pool 'p' (HTTP 404)" in err
        # A transfer cut short leaves neither the file nor its .part.
        rc, _, err = run(cli, sock, "vol-download", "v", str(out), "--pool", "p")
        assert rc == 3, err
        assert not out.exists() and not (tmp_path / "down.bin.part").exists()
    finally:
        fake.close()


def test_event_stream(cli, sock):
    ev = [{"time": 1, "domain": "a", "event": "started", "detail": "qemu"},
          {"time": 2, "domain": "a", "event": "stopped", "detail": "destroyed"}]
    sse = [f"data: {json.dumps(e)}\n\n".encode() for e in ev]
    # An event split across chunks, and a comment line that is not data.
    parts = [b": keep-alive\n\n", sse[0][:7], sse[0][7:], sse[1]]
    fake = serve(sock, lambda req: chunked(200, parts))
    try:
        rc, out, err = run(cli, sock, "--json", "events")
        assert rc == 0, err
        assert [json.loads(line) for line in out.splitlines()] == ev
        assert fake.requests[0]["path"] == "/v1/events"
    finally:
        fake.close()


def test_few_shared_libraries(cli):
    """libcurl's ~30 libraries cost ~7 ms of every vireo run; the CLI needs libc, json-c and
    http-parser."""
    out = subprocess.run(["ldd", cli], capture_output=True, text=True, check=True).stdout
    libs = [line.split()[0] for line in out.splitlines() if "=>" in line]
    assert not any("curl" in lib for lib in libs), libs
    # Sanitizer builds add their runtimes and what those need.
    runtime = ("libc.", "libm.", "libasan.", "libubsan.", "libgcc_s.", "libstdc++.", "libdl.",
               "librt.", "libpthread.")
    own = sorted(lib.split(".so")[0] for lib in libs if not lib.startswith(runtime))
    assert own == ["libhttp_parser", "libjson-c"], libs
