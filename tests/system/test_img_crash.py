"""Crash torture of the block library's qcow2 writes: a writer doing random writes (some
compressed), zeroes and flushes is killed with SIGKILL at random instants, over and over (on
the same images).  After every kill both our check and `qemu-img check` must find no
corruption (leaks are allowed), and every sector must read back as the last
flush-acknowledged content or as one of the writes issued after that flush (nothing
acknowledged is lost)."""

from __future__ import annotations

import random
import signal
import subprocess
import time

from imgtools import run, tag_bytes, tools

KILLS = 210
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
    ):
        path = tmp_path / name
        args = [img, "create", "-q", "-f", "qcow2", "-o", opts]
        if backing:
            args += ["-b", backing, "-F", "raw"]
        run(*args, path, str(SIZE))
        images.append((path, Model(base_data if backing else bytes(SIZE))))
    rng = random.Random(1234)
    start = time.monotonic()
    for i in range(KILLS):
        path, model = images[i % len(images)]
        p = subprocess.Popen([writer, str(path), "qcow2", "--torture", str(i + 1)],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(rng.uniform(0.002, 0.05))
        p.send_signal(signal.SIGKILL)
        out, err = p.communicate()
        assert p.returncode == -signal.SIGKILL, f"writer exited {p.returncode}: {err}"
        lines = out.splitlines()
        if out and not out.endswith("\n"):
            lines = lines[:-1]  # a line cut by the kill: the write may not have started
        model.feed(lines)
        what = f"kill {i} of {path.name}"
        ours = run(img, "check", "-q", path, check=False)
        assert ours.returncode in (0, 3), f"{what}: vireo-img check exit {ours.returncode}"
        theirs = run("qemu-img", "check", path, check=False)
        assert theirs.returncode in (0, 3), f"{what}: qemu-img check: {theirs.stdout}"
        raw = tmp_path / "out.raw"
        run("qemu-img", "convert", "-O", "raw", path, raw)
        model.verify(raw.read_bytes(), what)
    assert time.monotonic() - start < 150
