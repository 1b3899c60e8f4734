"""vireo-vmm's control socket (--control, docs/control.md) driving our test guest directly on
this host's /dev/kvm: status, stats (vCPU time, exits, virtio-blk counters), pause (the guest's
port-I/O polling and its vCPU time stop), resume, 20 malformed requests, a client leaving
mid-line, reset (the guest boots again, RESET event), powerdown (SHUTDOWN poweroff, exit 0)
and quit (exit 5, socket removed).  The client is Python, so this runs on the host only (the
KVM test box has busybox sh); vireod's kvm driver is its client in the box
(test_daemon_kvm.py)."""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
import time

import pytest

EXIT_POWEROFF, EXIT_STOPPED, EXIT_USAGE = 0, 5, 2


@pytest.fixture
def paths(build_dir):
    vmm = os.path.join(build_dir, "src/vmm/vireo-vmm")
    elf = os.path.join(build_dir, "guest/vireo-test-guest.elf")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        pytest.skip("/dev/kvm is not usable here (the control socket test runs on the host)")
    for p in (vmm, elf):
        if not os.path.exists(p):
            pytest.skip(f"{p} is not built")
    return vmm, elf


class Client:
    def __init__(self, path: str):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.settimeout(20)
        self.s.connect(path)
        self.f = self.s.makefile("rb")
        self.events: list[dict] = []
        greeting = self.line()
        assert "vireo-vmm" in greeting["QMP"]["version"], greeting

    def line(self) -> dict:
        raw = self.f.readline()
        assert raw, "the control socket closed"
        return json.loads(raw)

    def send_raw(self, data: bytes) -> dict:
        self.s.sendall(data)
        while True:
            m = self.line()
            if "event" in m:
                self.events.append(m)
                continue
            return m

    def ex(self, cmd: str, **args) -> dict:
        req = {"execute": cmd}
        if args:
            req["arguments"] = args
        r = self.send_raw(json.dumps(req).encode() + b"\n")
        assert "return" in r, f"{cmd}: {r}"
        return r["return"]

    def wait_event(self, name: str, timeout: float = 20) -> dict:
        end = time.monotonic() + timeout
        while True:
            for e in self.events:
                if e["event"] == name:
                    self.events.remove(e)
                    return e
            assert time.monotonic() < end, f"no {name} event; saw {self.events}"
            self.s.settimeout(max(0.1, end - time.monotonic()))
            self.events.append(self.line())

    def close(self):
        self.f.close()
        self.s.close()


def wait_for(path: str, text: str, count: int = 1, timeout: float = 60) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            with open(path, errors="replace") as f:
                if f.read().count(text) >= count:
                    return
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"'{text}' x{count} not in {path} after {timeout} s")


def start_vmm(vmm: str, elf: str, d: str, words: str, *extra: str) -> subprocess.Popen:
    return subprocess.Popen(
        [vmm, "--kernel", elf, "--memory", "64M", "--cpus", "2", "--cmdline",
         f"cpus=2 mem=64M {words}", "--serial", f"file:{d}/serial.log", "--control",
         f"{d}/c.sock", *extra],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def wait_socket(path: str, p: subprocess.Popen) -> None:
    for _ in range(200):
        if os.path.exists(path):
            return
        assert p.poll() is None, p.stdout.read().decode(errors="replace")
        time.sleep(0.05)
    raise AssertionError(f"{path} never appeared")


MALFORMED = [
    b"\n", b"   \n", b"x\n", b"{\n", b"}\n", b"[]\n", b"null\n", b"42\n", b"\"status\"\n",
    b"{}\n", b'{"execute":null}\n', b'{"execute":["status"]}\n', b'{"execute":"STATUS"}\n',
    b'{"execute":"status","arguments":"x"}\n', b'{"execute":"nosuch"}\n',
    b'{"execute":"status"}garbage\n', b"\xff\xfe\x00\x01\n", b'{"execute":"' + b"a" * 5000 + b'"}\n',
    b"{" * 100 + b"\n", b"x" * 70000 + b"\n",
]


def test_control_socket_drives_the_guest(paths, tmp_path):
    vmm, elf = paths
    d = str(tmp_path)
    disk = f"{d}/d.img"
    with open(disk, "wb") as f:
        f.truncate(2 << 20)
    serial, sock = f"{d}/serial.log", f"{d}/c.sock"
    p = start_vmm(vmm, elf, d, "virtio-blk powerbutton", "--disk", f"path={disk}")
    try:
        wait_socket(sock, p)
        assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
        a, b = Client(sock), Client(sock)
        st = a.ex("status")
        assert st["status"] == "running" and st["running"] is True, st
        assert st["vcpus"] == 2 and st["memory"] == 64 << 20 and st["boots"] == 1, st
        wait_for(serial, "waiting for power button")

        s = a.ex("stats")
        assert len(s["vcpus"]) == 2 and s["vcpu_time_ns"] > 0 and s["rss_bytes"] > 0, s
        vda = s["disks"][0]
        assert vda["name"] == "vda" and vda["path"] == disk, vda
        assert vda["rd_reqs"] > 0 and vda["wr_reqs"] > 0 and vda["rd_bytes"] >= 512, vda
        assert vda["wr_bytes"] >= 512 and vda["flush_reqs"] >= 0, vda

        # Paused: the guest's 1 ms port-I/O polling and its vCPU time stop.
        s = a.ex("stats")
        t_pause = time.monotonic()
        assert s["guest_clock_ns"] > 0, s
        assert a.ex("pause") == {}
        a.wait_event("PAUSED")
        b.wait_event("PAUSED")
        assert a.ex("status")["status"] == "paused"
        p1 = a.ex("stats")
        size1 = os.path.getsize(serial)
        time.sleep(0.6)
        p2 = a.ex("stats")
        assert p2["status"] == "paused"
        for v1, v2 in zip(p1["vcpus"], p2["vcpus"]):
            assert v2["exits_io"] == v1["exits_io"], (p1, p2)
            assert v2["cpu_time_ns"] - v1["cpu_time_ns"] < 20_000_000, (p1, p2)
        assert os.path.getsize(serial) == size1
        assert a.ex("pause") == {}  # already paused: fine, as QMP's stop

        t_resume = time.monotonic()
        assert a.ex("resume") == {}
        b.wait_event("RESUMED")
        # The guest's clock (kvmclock) stood still while paused, as under QEMU.
        c = a.ex("stats")["guest_clock_ns"]
        wall = (time.monotonic() - t_pause) * 1e9
        paused = (t_resume - t_pause) * 1e9
        assert c - s["guest_clock_ns"] < wall - paused * 0.8, (s, c, wall, paused)
        time.sleep(0.6)
        r = a.ex("stats")
        assert r["vcpus"][0]["exits_io"] > p2["vcpus"][0]["exits_io"] + 50, (p2, r)

        # Untrusted input: each malformed request gets an error, nothing else changes.
        for req in MALFORMED:
            if not req.strip():
                continue  # empty lines are skipped, no reply
            reply = a.send_raw(req)
            assert "error" in reply and reply["error"]["desc"], (req[:60], reply)
        assert a.send_raw(b'{"execute":"nosuch"}\n')["error"]["class"] == "CommandNotFound"
        c = Client(sock)
        c.s.sendall(b'{"execute":"pau')
        c.close()  # a client gone mid-line: nothing runs
        assert a.ex("status")["status"] == "running"

        # reset: the guest starts again; the control socket stays.
        starts = open(serial, errors="replace").read().count("test guest starting")
        assert a.ex("reset") == {}
        e = a.wait_event("RESET")
        assert e["data"]["reason"] == "host-reset", e
        wait_for(serial, "waiting for power button", count=2)
        assert open(serial, errors="replace").read().count("test guest starting") == starts + 1
        assert a.ex("status")["boots"] == 2

        # powerdown: the ACPI power button, the guest powers off.
        assert b.ex("powerdown") == {}
        assert p.wait(30) == EXIT_POWEROFF
        e = b.wait_event("SHUTDOWN")
        assert e["data"]["reason"] == "poweroff", e
        assert "power button pressed" in open(serial, errors="replace").read()
        assert not os.path.exists(sock)
        a.close()
        b.close()
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    out = p.stdout.read().decode(errors="replace")
    assert "control: paused" in out and "control: resumed" in out, out


def test_quit_and_bad_control_paths(paths, tmp_path):
    vmm, elf = paths
    d = str(tmp_path)
    sock = f"{d}/c.sock"
    p = start_vmm(vmm, elf, d, "powerbutton")
    try:
        wait_socket(sock, p)
        a = Client(sock)
        assert a.ex("quit") == {}
        assert a.wait_event("SHUTDOWN")["data"]["reason"] == "quit"
        assert p.wait(30) == EXIT_STOPPED
        assert not os.path.exists(sock)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    # A path that is not a socket is never replaced.
    with open(sock, "w") as f:
        f.write("precious")
    r = subprocess.run([vmm, "--kernel", elf, "--control", sock], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == EXIT_USAGE, r
    assert "not a socket" in r.stderr, r.stderr
    assert open(sock).read() == "precious"
