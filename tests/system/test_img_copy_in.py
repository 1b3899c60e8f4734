"""vireo-img convert of a raw source into a new image: data goes file to file in the kernel
(copy_file_range into clusters allocated, and reserved with fallocate, a run at a time), zeros
are found on a mapping of the source.  Where the kernel cannot copy (a source on another file
system: EXDEV) the data is read and written; the output is the same either way, and allocates
the same clusters as qemu-img's."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import pytest

from imgtools import qemu_check_clean, run, to_raw_qemu, tools

KiB = 1 << 10
MiB = 1 << 20


def write_source(path, size: int) -> bytes:
    """Holes, data, zeros stored as data (whole clusters and pieces of them), runs that start
    and end inside clusters, and a size that ends inside a cluster and a page."""
    data = bytearray(size)
    with open(path, "wb") as f:
        f.truncate(size)
        for off, n in ((0, 3 * MiB), (3 * MiB + 4 * KiB, 100 * KiB), (4 * MiB, 2 * MiB),
                       (7 * MiB - 6 * KiB, 70 * KiB), (size - 200 * KiB - 512, 200 * KiB + 512)):
            chunk = bytearray(os.urandom(n))
            # zeros as data: one whole 64 KiB cluster and a 4 KiB piece of another
            if n >= MiB:
                chunk[256 * KiB:320 * KiB] = bytes(64 * KiB)
                chunk[400 * KiB:404 * KiB] = bytes(4 * KiB)
            f.seek(off)
            f.write(chunk)
            data[off:off + n] = chunk
    return bytes(data)


def strace_calls(cmd: list, calls: str) -> str:
    if not shutil.which("strace"):
        pytest.skip("strace is not installed (needed to see which system calls copy)")
    p = subprocess.run(["strace", "-f", "-e", "trace=" + calls, *map(str, cmd)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    return p.stderr


def allocation(path) -> list:
    """qemu-img map of an image: which guest ranges are data and which zero (not where)."""
    m = json.loads(run("qemu-img", "map", "--output=json", path).stdout)
    out = []
    for e in m:
        key = (e["data"], e["zero"])
        if out and out[-1][2] == key and out[-1][0] + out[-1][1] == e["start"]:
            out[-1][1] += e["length"]
        else:
            out.append([e["start"], e["length"], key])
    return out


def test_raw_to_qcow2_copies_in_the_kernel(build_dir, tmp_path):
    img, _ = tools(build_dir)
    src = tmp_path / "src.raw"
    data = write_source(src, 9 * MiB + 3 * KiB + 512)
    out = tmp_path / "o.qcow2"
    trace = strace_calls([img, "convert", "-f", "raw", "-O", "qcow2", src, out],
                         "copy_file_range,fallocate")
    copied = [line for line in trace.splitlines()
              if "copy_file_range(" in line and "= -1" not in line]
    assert copied, "raw->qcow2 did not copy in the kernel:\n" + trace
    assert "fallocate(" in trace, "the clusters of a run were not reserved:\n" + trace
    qemu_check_clean(out)
    assert to_raw_qemu(out, tmp_path / "back.raw") == data


def test_source_on_another_file_system_is_read_and_written(build_dir, tmp_path):
    img, _ = tools(build_dir)
    shm = "/dev/shm"
    if not os.path.isdir(shm) or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no /dev/shm on another file system than the test's directory")
    src = os.path.join(shm, f"vireo-copy-in-{os.getpid()}.raw")
    try:
        data = write_source(src, 8 * MiB + 4 * KiB)
        out = tmp_path / "o.qcow2"
        if shutil.which("strace"):
            trace = strace_calls([img, "convert", "-f", "raw", "-O", "qcow2", src, out],
                                 "copy_file_range")
            refused = [line for line in trace.splitlines() if "EXDEV" in line]
            # refused once, then read and written without asking the kernel again
            assert len(refused) <= 1, trace
        else:
            run(img, "convert", "-f", "raw", "-O", "qcow2", src, out)
        qemu_check_clean(out)
        assert to_raw_qemu(out, tmp_path / "back.raw") == data
        # raw output takes the same fallback
        raw = tmp_path / "o.raw"
        run(img, "convert", "-f", "raw", "-O", "raw", src, raw)
        assert raw.read_bytes() == data
    finally:
        os.unlink(src)


@pytest.mark.parametrize("opts", [[], ["-o", "cluster_size=4k"], ["-o", "cluster_size=2M"],
                                  ["-S", "64k"], ["-o", "extended_l2=on"]])
def test_same_clusters_as_qemu_img(build_dir, tmp_path, opts):
    img, _ = tools(build_dir)
    src = tmp_path / "src.raw"
    data = write_source(src, 9 * MiB + 3 * KiB + 512)
    ours, theirs = tmp_path / "ours.qcow2", tmp_path / "theirs.qcow2"
    run(img, "convert", "-f", "raw", "-O", "qcow2", *opts, src, ours)
    run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", *opts, src, theirs)
    qemu_check_clean(ours)
    assert to_raw_qemu(ours, tmp_path / "back.raw") == data
    assert allocation(ours) == allocation(theirs)


def test_raw_to_raw_keeps_holes(build_dir, tmp_path):
    img, _ = tools(build_dir)
    src = tmp_path / "src.raw"
    data = write_source(src, 9 * MiB + 3 * KiB + 512)
    out = tmp_path / "o.raw"
    run(img, "convert", "-f", "raw", "-O", "raw", src, out)
    assert out.read_bytes() == data
    # the zero cluster stored as data in the source is a hole in the output
    assert os.stat(out).st_blocks * 512 < os.stat(src).st_blocks * 512
