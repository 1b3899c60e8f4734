"""Crash torture of the block library's qcow2 writes: a writer doing random writes (some
compressed), zeroes and flushes is killed with SIGKILL at random instants, over and over (on
the same images).  After every kill both our check and `qemu-img check` must find no
corruption (leaks are allowed), and every sector must read back as the last
flush-acknowledged content or as one of the writes issued after that flush (nothing
acknowledged is lost).

An image with lazy refcounts is left dirty by a kill (its refcounts on disk may lag behind
its L2 tables): it is repaired before the checks, by turns by our writable open (which
repairs dirty images), by `vireo-img check -r all` and by `qemu-img check -r all`."""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time

from imgtools import run, tag_bytes, tools

KILLS = 250
SIZE = 16 << 20
SECTORS = SIZE // 512
ZERO = 0


class Model:
    def __init__(self, content: bytes):
        self.expected = bytearray(content)
        self.pending: dict[int, set[int]] = {}
        self.last: dict[int, int] = {}

    def feed(self, lines: list[str]) -> None:
        for line in lines:
            f = line.split()
            if f[0] == "w" and len(f) == 4:
                off, ln, gen = int(f[1]), int(f[2]), int(f[3])
                for s in range(off // 512, (off + ln) // 512):
                    self.pending.setdefault(s, set()).add(gen)
                    self.last[s] = gen
            elif f[0] == "z" and len(f) == 3:
                off, ln = int(f[1]), int(f[2])
                for s in range(off // 512, (off + ln) // 512):
                    self.pending.setdefault(s, set()).add(ZERO)
                    self.last[s] = ZERO
            elif f[0] == "f" and len(f) == 2:
                for s, v in self.last.items():
                    self.expected[s * 512:(s + 1) * 512] = (
                        bytes(512) if v == ZERO else tag_bytes(s * 512, 512, v))
                self.pending.clear()
                self.last.clear()

    def verify(self, data: bytes, what: str) -> None:
        assert len(data) == SIZE, f"{what}: read {len(data)} bytes"
        for s, allowed in self.pending.items():
            got = data[s * 512:(s + 1) * 512]
            ok = got == self.expected[s * 512:(s + 1) * 512]
            for v in allowed:
                if ok:
                    break
                ok = got == (bytes(512) if v == ZERO else tag_bytes(s * 512, 512, v))
            assert ok, f"{what}: sector {s} holds neither the flushed data nor a later write"
            self.expected[s * 512:(s + 1) * 512] = got
        self.pending.clear()
        self.last.clear()
        if data != bytes(self.expected):
            bad = next(i for i in range(SIZE) if data[i] != self.expected[i])
            raise AssertionError(f"{what}: flush-acknowledged data lost at byte {bad}")


def test_sigkill_torture(build_dir, tmp_path):
    img, writer = tools(build_dir)
    base = tmp_path / "base.raw"
    base_data = b"".join(tag_bytes(s * 512, 512, 1 << 40) for s in range(SECTORS))
    base.write_bytes(base_data)
    images = []
    for name, opts, backing in (
        ("plain.qcow2", "cluster_size=64k", None),
        ("small.qcow2", "cluster_size=4k,refcount_bits=2", None),
        ("extl2.qcow2", "extended_l2=on,cluster_size=32k", "base.raw"),
        ("v2.qcow2", "compat=0.10,cluster_size=16k", "base.raw"),
        ("lazy.qcow2", "lazy_refcounts=on,cluster_size=4k", None),
    ):
        path = tmp_path / name
        args = [img, "create", "-q", "-f", "qcow2", "-o", opts]
        if backing:
            args += ["-b", backing, "-F", "raw"]
        run(*args, path, str(SIZE))
        images.append((path, Model(base_data if backing else bytes(SIZE))))
    rng = random.Random(1234)
    start = time.monotonic()
    repairs = stale = 0
    for i in range(KILLS):
        path, model = images[i % len(images)]
        p = subprocess.Popen([writer, str(path), "qcow2", "--torture", str(i + 1)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        delay = rng.uniform(0.002, 0.05)
        # (a lazy writer killed before its first allocation is not dirty: give it time)
        time.sleep(delay + (0.03 if "lazy" in path.name else 0))
        p.send_signal(signal.SIGKILL)
        out, err = p.communicate()
        assert p.returncode == -signal.SIGKILL, f"writer exited {p.returncode}: {err}"
        lines = out.splitlines()
        if out and not out.endswith("\n"):
            lines = lines[:-1]  # a line cut by the kill: the write may not have started
        model.feed(lines)
        what = f"kill {i} of {path.name}"
        if "lazy" in path.name:
            info = json.loads(run(img, "info", "--output=json", path).stdout)
            repairs += info["dirty-flag"]
            # refcounts behind the L2 tables show that the ordering writes were skipped
            stale += run("qemu-img", "check", path, check=False).returncode == 2
            how = (i // len(images)) % 3
            if how == 0:
                run(writer, path, "qcow2", stdin="")  # a writable open repairs
            elif how == 1:
                r = run(img, "check", "-q", "-r", "all", path, check=False)
                assert r.returncode in (0, 3), f"{what}: vireo-img check -r all: {r.stderr}"
            else:
                r = run("qemu-img", "check", "-q", "-r", "all", path, check=False)
                assert r.returncode in (0, 3), f"{what}: qemu-img check -r all: {r.stdout}"
            info = json.loads(run("qemu-img", "info", "--output=json", path).stdout)
            assert info["dirty-flag"] is False, f"{what}: still dirty after the repair"
        ours = run(img, "check", "-q", path, check=False)
        assert ours.returncode in (0, 3), f"{what}: vireo-img check exit {ours.returncode}"
        theirs = run("qemu-img", "check", path, check=False)
        assert theirs.returncode in (0, 3), f"{what}: qemu-img check: {theirs.stdout}"
        raw = tmp_path / "out.raw"
        run("qemu-img", "convert", "-O", "raw", path, raw)
        model.verify(raw.read_bytes(), what)
    assert stale > 0, "lazy refcounts: the refcounts on disk never lagged behind"
    assert repairs > 0, "no lazy-refcounts writer was ever killed with the dirty bit set"
    assert time.monotonic() - start < 150


def test_lazy_refcounts_dirty_bit(build_dir, tmp_path):
    """A lazy-refcounts writer sets the dirty bit before its first allocation and clears it on
    a clean close; an image without the feature never gets it."""
    img, writer = tools(build_dir)
    for opts, lazy in (("lazy_refcounts=on", True), ("lazy_refcounts=off", False)):
        path = tmp_path / "l.qcow2"
        run(img, "create", "-q", "-f", "qcow2", "-o", opts, path, "64M")
        p = subprocess.Popen([writer, str(path), "qcow2"], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
        p.stdin.write("w 0 1048576 1\nf\n")
        p.stdin.flush()
        assert p.stdout.readline().strip() == "flushed"
        info = json.loads(run("qemu-img", "info", "--output=json", "-U", path).stdout)
        assert info["dirty-flag"] is lazy
        p.stdin.write("w 33554432 1048576 2\n")
        p.stdin.close()
        assert p.wait() == 0
        info = json.loads(run("qemu-img", "info", "--output=json", path).stdout)
        assert info["dirty-flag"] is False
        assert run("qemu-img", "check", path, check=False).returncode == 0
        raw = tmp_path / "o.raw"
        run("qemu-img", "convert", "-O", "raw", path, raw)
        data = raw.read_bytes()
        assert data[:1 << 20] == tag_bytes(0, 1 << 20, 1)
        assert data[32 << 20:33 << 20] == tag_bytes(32 << 20, 1 << 20, 2)
