"""vireo-img convert -c's two ways of reading a raw source: through a read-only mapping of
the file (the default for a raw image in a regular file) and by reads into a buffer (anything
else, or VIREO_IMG_NO_MMAP=1).  Both give the same image, correct against the source,
whatever the holes and however the disk ends (not on a cluster or a page); uncompressed
converts (always read) are checked on the same sources."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from imgtools import qemu_check_clean, run, to_raw_qemu, tools

KiB = 1 << 10


def sparse_source(path) -> bytes:
    """Data, holes and zeros written as data, with boundaries inside clusters and pages, and
    a size that is neither a multiple of 64 KiB nor of 4 KiB."""
    size = 3 * (1 << 20) + 9 * 512
    data = bytearray(size)
    with open(path, "wb") as f:
        f.truncate(size)
        for off, n in ((0, 4 * KiB), (68 * KiB, 200 * KiB), (512 * KiB, 64 * KiB),
                       (1024 * KiB + 512, 3000), (2 * (1 << 20) - 8 * KiB, 16 * KiB),
                       (size - 70 * KiB, 70 * KiB)):
            chunk = os.urandom(n // 2) + b"vireo " * (n // 12) + bytes(n - n // 2 - n // 12 * 6)
            f.seek(off)
            f.write(chunk)
            data[off:off + n] = chunk
        f.seek(800 * KiB)
        f.write(bytes(128 * KiB))  # zeros stored as data: detected, not written
    return bytes(data)


@pytest.mark.parametrize("opts", [[], ["-c"], ["-c", "-o", "compression_type=zstd"],
                                  ["-o", "cluster_size=4k"], ["-c", "-o", "cluster_size=2M"]])
def test_mapped_and_read_sources_give_the_same_image(build_dir, tmp_path, opts):
    img, _ = tools(build_dir)
    src = tmp_path / "src.raw"
    data = sparse_source(src)
    outs = []
    for mode in ("mapped", "read"):
        out = tmp_path / f"{mode}.qcow2"
        env = dict(os.environ)
        env.pop("VIREO_IMG_NO_MMAP", None)
        if mode == "read":
            env["VIREO_IMG_NO_MMAP"] = "1"
        p = subprocess.run([img, "convert", "-O", "qcow2", *opts, str(src), str(out)],
                           env=env, capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        qemu_check_clean(out)
        assert to_raw_qemu(out, tmp_path / "q.raw") == data
        outs.append(out.read_bytes())
    assert outs[0] == outs[1], "the mapped and the read source gave different images"
    # the 128 KiB of zeros written as data take no cluster (the 2M cluster holds data too)
    if "cluster_size=2M" not in opts:
        ext = json.loads(run("qemu-img", "map", "--output=json", tmp_path / "mapped.qcow2").stdout)
        lo, hi = 832 * KiB, 896 * KiB
        assert not [e for e in ext if e["data"] and e["start"] < hi and e["start"] + e["length"] > lo]

def test_raw_to_raw_sparse_source(build_dir, tmp_path):
    img, _ = tools(build_dir)
    src = tmp_path / "src.raw"
    data = sparse_source(src)
    run(img, "convert", "-f", "raw", "-O", "raw", src, tmp_path / "o.raw")
    assert (tmp_path / "o.raw").read_bytes() == data


def test_source_truncated_while_mapped_is_an_error_not_a_crash(build_dir, tmp_path):
    """Another program shortens the source during a convert: the mapped pages past the new
    end fault (SIGBUS); vireo-img must say so and exit 1, not die of the signal."""
    img, _ = tools(build_dir)
    src = tmp_path / "src.raw"
    with open(src, "wb") as f:
        for _ in range(256):
            f.write(os.urandom(64 * KiB) + b"text that deflate works on " * 2427)
    size = os.path.getsize(src)
    for attempt in range(5):
        out = tmp_path / "out.qcow2"
        if out.exists():
            out.unlink()
        p = subprocess.Popen([img, "convert", "-c", "-O", "qcow2", str(src), str(out)],
                             stderr=subprocess.PIPE, text=True)
        time.sleep(0.05 * (attempt + 1))
        os.truncate(src, 4 * KiB)
        _, err = p.communicate(timeout=120)
        assert p.returncode != -signal.SIGBUS, "vireo-img died of SIGBUS"
        if p.returncode != 0:
            assert p.returncode == 1 and "became shorter while it was being read" in err, err
            return
        os.truncate(src, size)  # finished first: restore the content and try later
        with open(src, "r+b") as f:
            for _ in range(256):
                f.write(os.urandom(64 * KiB) + b"text that deflate works on " * 2427)
    pytest.skip("the convert finished before the truncation in 5 tries (fast machine)")


@pytest.mark.parametrize("cluster", ["64k", "4k"])
@pytest.mark.parametrize("mode", ["mapped", "read"])
def test_compressed_runs_of_incompressible_clusters(build_dir, tmp_path, cluster, mode):
    """Clusters that do not shrink are stored in runs with one write; compressed ones between
    them one by one; with 4 KiB clusters the ring of clusters in flight wraps many times."""
    img, _ = tools(build_dir)
    src = tmp_path / "src.raw"
    text = b"".join(b"line %06d of some text\n" % i for i in range(50000))
    data = (os.urandom(2 << 20) + text[:1 << 20] + bytes(1 << 20) + os.urandom(1 << 20)
            + b"end" * 100)
    src.write_bytes(data)
    env = dict(os.environ)
    env.pop("VIREO_IMG_NO_MMAP", None)
    if mode == "read":
        env["VIREO_IMG_NO_MMAP"] = "1"
        env["VIREO_IMG_WORKERS"] = "1"  # and the main thread compressing beside one worker
    out = tmp_path / "c.qcow2"
    p = subprocess.run([img, "convert", "-c", "-O", "qcow2", "-o", f"cluster_size={cluster}",
                        str(src), str(out)], env=env, capture_output=True, text=True,
                       timeout=120)
    assert p.returncode == 0, p.stderr
    qemu_check_clean(out)
    data += bytes(-len(data) % 512)
    assert to_raw_qemu(out, tmp_path / "q.raw") == data
    info = json.loads(run("qemu-img", "check", "--output=json", out).stdout)
    cs = 65536 if cluster == "64k" else 4096
    assert info["compressed-clusters"] >= (1 << 20) // cs  # the text
    # 3 MiB of random data, the text and the tail; the 1 MiB of zeros not stored
    assert info["allocated-clusters"] == (4 << 20) // cs + 1


@pytest.mark.parametrize("opts", [[], ["-c"]])
def test_block_device_source_and_target(build_dir, tmp_path, opts):
    """A block device's size comes from the device (its st_size is 0): a loop device converts
    to qcow2 in full, plain and compressed, and an image converts into it with -n."""
    import shutil
    if os.geteuid() != 0 or not shutil.which("losetup"):
        pytest.skip("needs root and losetup (util-linux) for a loop device")
    img, _ = tools(build_dir)
    backing = tmp_path / "loop.img"
    data = sparse_source(backing)
    with open(backing, "r+b") as f:  # a loop device's size is whole sectors
        f.truncate(len(data) // 512 * 512)
    data = data[:len(data) // 512 * 512]
    p = subprocess.run(["losetup", "-f", "--show", str(backing)], capture_output=True,
                       text=True)
    if p.returncode != 0:
        pytest.skip(f"no loop device here: {p.stderr.strip()}")
    dev = p.stdout.strip()
    try:
        info = json.loads(run(img, "info", "-f", "raw", "--output=json", dev).stdout)
        assert info["virtual-size"] == len(data)
        out = tmp_path / "dev.qcow2"
        run(img, "convert", "-f", "raw", "-O", "qcow2", *opts, dev, out)
        qemu_check_clean(out)
        assert to_raw_qemu(out, tmp_path / "q.raw") == data
        # and back into the device (-n: the target exists), after zeroing it
        with open(dev, "r+b") as f:
            f.write(bytes(len(data)))
        run(img, "convert", "-n", "-f", "qcow2", "-O", "raw", out, dev)
        with open(dev, "rb") as f:
            assert f.read(len(data)) == data
    finally:
        subprocess.run(["losetup", "-d", dev])
