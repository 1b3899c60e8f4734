"""Helpers of the vireo-img / block-library system tests: run our tools and qemu's, and a
Python model of the tagged data test_block_writer writes (so the expected disk content does
not come from either implementation)."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess

import pytest


def tools(build_dir: str) -> tuple[str, str]:
    img = os.path.join(build_dir, "src/img/vireo-img")
    writer = os.path.join(build_dir, "tests/unit/test_block_writer")
    for p in (img, writer):
        if not os.path.exists(p):
            pytest.skip(f"{p} is not built (ninja -C {build_dir})")
    for q in ("qemu-img", "qemu-io"):
        if not shutil.which(q):
            pytest.skip(f"{q} is missing (Debian package qemu-utils)")
    return img, writer


# qemu-img calibrates LUKS's PBKDF2 iteration count on its thread's CPU time and gives up with
# this message when a short calibration round measures 0 ms (tick-granular accounting on a busy
# machine): a property of the reference tool, not of what a test checks, so such a run is
# repeated (seen in 1 of 3 CI runs here, for every qemu-img LUKS create of that run).
QEMU_PBKDF_FLAKE = "Unable to get accurate CPU usage"


def run(*args, check=True, stdin=None, timeout=120) -> subprocess.CompletedProcess:
    for _ in range(5):
        p = subprocess.run([str(a) for a in args], input=stdin, capture_output=True, text=True,
                           timeout=timeout)
        if not (os.path.basename(str(args[0])) == "qemu-img" and p.returncode != 0
                and QEMU_PBKDF_FLAKE in p.stderr):
            break
    if check and p.returncode != 0:
        raise AssertionError(f"{' '.join(map(str, args))} exited {p.returncode}\n"
                             f"stdout: {p.stdout}\nstderr: {p.stderr}")
    return p


def tag_bytes(off: int, length: int, gen: int) -> bytes:
    """What test_block_writer writes: byte p holds byte p % 16 of (gen, p // 512)."""
    out = bytearray()
    first = off // 512
    last = (off + length - 1) // 512 if length else first - 1
    for s in range(first, last + 1):
        out += struct.pack("<QQ", gen, s) * 32
    start = off - first * 512
    return bytes(out[start:start + length])


def apply_ops(model: bytearray, ops: str) -> None:
    """Apply a test_block_writer script to a bytearray (discard leaves content undefined, so
    scripts given here only discard where the model is expected to read zeros)."""
    for line in ops.strip().splitlines():
        f = line.split()
        if not f:
            continue
        if f[0] in ("w", "c"):
            off, ln, gen = int(f[1]), int(f[2]), int(f[3])
            model[off:off + ln] = tag_bytes(off, ln, gen)
        elif f[0] in ("z", "d"):
            off, ln = int(f[1]), int(f[2])
            model[off:off + ln] = bytes(ln)


def to_raw_qemu(path: str, out: str, fmt: str | None = None) -> bytes:
    args = ["qemu-img", "convert"] + (["-f", fmt] if fmt else []) + ["-O", "raw", path, out]
    run(*args)
    with open(out, "rb") as f:
        return f.read()


def qemu_check_clean(path: str) -> None:
    p = run("qemu-img", "check", path, check=False)
    assert p.returncode == 0, f"qemu-img check {path}: exit {p.returncode}\n{p.stdout}{p.stderr}"
