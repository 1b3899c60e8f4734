"""vireo-img resize against qemu-img: shrinking (refused without --shrink, with qemu-img's
message; with it the clusters past the new end freed and the file's tail cut), images shrunk
by either tool checked by the other, and resizes under internal snapshots."""

from __future__ import annotations

import json

import pytest

from imgtools import apply_ops, qemu_check_clean, run, tag_bytes, tools

MiB = 1 << 20
SIZE = 12 * MiB
NEW = 5 * MiB + 3072  # not cluster-aligned: the cluster holding the end keeps its head

# Data before, across and after the cut, compressed clusters on both sides, zeroes after.
SCRIPT = f"""
w 0 300000 1
c 1048576 262144 2
w {5 * MiB - 70000} 200000 3
w {7 * MiB} {2 * MiB} 4
c {10 * MiB} 262144 5
z {11 * MiB} 65536
f
"""


def expected(backing: bytes | None, size: int) -> bytes:
    model = bytearray(backing if backing else bytes(SIZE))
    apply_ops(model, SCRIPT)
    return bytes(model[:size])


def file_size(path) -> int:
    return path.stat().st_size


@pytest.mark.parametrize("opts,backed", [
    ("cluster_size=64k", False),
    ("cluster_size=4k,refcount_bits=2", False),
    ("cluster_size=512", False),
    ("extended_l2=on,cluster_size=32k", True),
    ("compat=0.10,cluster_size=16k", True),
    ("compression_type=zstd,lazy_refcounts=on", False),
])
def test_shrink_ours_and_qemus(build_dir, tmp_path, opts, backed):
    """The same image shrunk by both tools: both pass both checks, hold the expected
    content, and our file is no bigger than qemu's."""
    img, writer = tools(build_dir)
    base_data = None
    args = [img, "create", "-q", "-f", "qcow2", "-o", opts]
    if backed:
        base_data = b"".join(tag_bytes(s * 512, 512, 1 << 40) for s in range(SIZE // 512))
        (tmp_path / "base.raw").write_bytes(base_data)
        args += ["-b", "base.raw", "-F", "raw"]
    ours, theirs = tmp_path / "ours.qcow2", tmp_path / "theirs.qcow2"
    run(*args, ours, str(SIZE))
    run(writer, ours, "qcow2", stdin=SCRIPT)
    theirs.write_bytes(ours.read_bytes())
    want = tmp_path / "want.raw"
    want.write_bytes(expected(base_data, NEW))

    p = run(img, "resize", ours, str(NEW), check=False)
    assert p.returncode == 1
    assert "Use the --shrink option to perform a shrink operation." in p.stderr
    run(img, "resize", "--shrink", ours, str(NEW))
    run("qemu-img", "resize", "--shrink", theirs, str(NEW))
    for path in (ours, theirs):
        qemu_check_clean(path)
        assert run(img, "check", path, check=False).returncode == 0, path
        assert json.loads(run("qemu-img", "info", "--output=json", path).stdout)[
            "virtual-size"] == NEW
        run("qemu-img", "compare", "-f", "qcow2", "-F", "raw", path, want)
        assert run(img, "compare", "-F", "raw", path, want).returncode == 0
    assert file_size(ours) <= file_size(theirs)

    # grown again, everything past the cut reads as zeros (not as the backing file, nor as
    # what the cut cluster held)
    run(img, "resize", ours, str(SIZE))
    qemu_check_clean(ours)
    want.write_bytes(expected(base_data, NEW) + bytes(SIZE - NEW))
    run("qemu-img", "compare", "-f", "qcow2", "-F", "raw", ours, want)


def test_shrink_whole_l2_tables_and_refcount_blocks(build_dir, tmp_path):
    """Small clusters: the cut frees whole L2 tables and leaves refcount blocks counting
    nothing; the file ends where qemu-img's does."""
    img, writer = tools(build_dir)
    ours, theirs = tmp_path / "ours.qcow2", tmp_path / "theirs.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", theirs, "64M")
    run("qemu-io", "-c", "write -P 1 0 4M", "-c", "write -P 2 40M 8M",
        "-c", "write -c -P 3 60M 64k", "-c", "write -P 4 10M 4k", theirs)
    ours.write_bytes(theirs.read_bytes())
    run(img, "resize", "--shrink", ours, "10M")
    run("qemu-img", "resize", "--shrink", theirs, "10M")
    qemu_check_clean(ours)
    assert file_size(ours) == file_size(theirs)
    run("qemu-img", "compare", ours, theirs)
    # qemu's shrunk image: we read it, check it clean, write past the old data
    assert run(img, "check", theirs, check=False).returncode == 0
    assert run(img, "compare", ours, theirs).returncode == 0
    run(img, "resize", theirs, "64M")
    run(writer, theirs, "qcow2", stdin="w 41943040 65536 9\nf\n")
    qemu_check_clean(theirs)
    run("qemu-io", "-c", "read -P 0 10M 30M", "-c", "read -P 0 50M 14M", theirs)


def test_shrink_raw_and_relative_sizes(build_dir, tmp_path):
    img, _ = tools(build_dir)
    raw = tmp_path / "r.raw"
    raw.write_bytes(b"\x05" * (4 * MiB))
    p = run(img, "resize", "-f", "raw", raw, "-1M", check=False)
    assert p.returncode == 1 and "--shrink" in p.stderr
    assert file_size(raw) == 4 * MiB
    run(img, "resize", "-f", "raw", "--shrink", raw, "-1M")
    assert file_size(raw) == 3 * MiB
    run(img, "resize", "-q", "-f", "raw", raw, "+1M")
    assert raw.read_bytes() == b"\x05" * (3 * MiB) + bytes(MiB)
    p = run(img, "resize", "-f", "raw", "--shrink", raw, "-5M", check=False)
    assert p.returncode == 1 and "Invalid image size" in p.stderr
    for mode in ("falloc", "full"):
        raw.write_bytes(b"\x05" * MiB)
        run(img, "resize", "-q", "-f", "raw", f"--preallocation={mode}", raw, "3M")
        assert raw.stat().st_blocks * 512 >= 3 * MiB, mode
        assert raw.read_bytes() == b"\x05" * MiB + bytes(2 * MiB)
    p = run(img, "resize", "-f", "raw", "--preallocation=full", "--shrink", raw, "1M",
            check=False)
    assert p.returncode == 1 and "Preallocation can only be used for growing" in p.stderr
    p = run(img, "resize", "-f", "raw", "--preallocation=bogus", raw, "8M", check=False)
    assert p.returncode == 1 and "--preallocation=bogus" in p.stderr


def test_amend_size_shrinks_as_qemu_img(build_dir, tmp_path):
    img, _ = tools(build_dir)
    ours, theirs = tmp_path / "o.qcow2", tmp_path / "t.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", theirs, "4M")
    run("qemu-io", "-c", "write -P 1 0 4M", theirs)
    ours.write_bytes(theirs.read_bytes())
    run("qemu-img", "amend", "-o", "size=2M", theirs)
    run(img, "amend", "-o", "size=2M", ours)
    qemu_check_clean(ours)
    run("qemu-img", "compare", "-s", ours, theirs)
    assert ours.stat().st_size == theirs.stat().st_size


def test_resize_under_snapshots(build_dir, tmp_path):
    """Version 3 images resize under internal snapshots (each records its own disk size),
    version 2 ones are refused, as qemu-img does; applying a snapshot brings its size back."""
    img, writer = tools(build_dir)
    v2 = tmp_path / "v2.qcow2"
    run(img, "create", "-q", "-f", "qcow2", "-o", "compat=0.10", v2, "4M")
    run(img, "snapshot", "-c", "s", v2)
    for args in (["--shrink", v2, "2M"], [v2, "8M"]):
        p = run(img, "resize", *args, check=False)
        assert p.returncode == 1 and "snapshots" in p.stderr
    path = tmp_path / "s.qcow2"
    run(img, "create", "-q", "-f", "qcow2", path, "8M")
    run(writer, path, "qcow2", stdin="w 0 8388608 1\nf\n")
    run(img, "snapshot", "-c", "full", path)
    run(img, "resize", "--shrink", path, "2M")
    qemu_check_clean(path)
    run(img, "resize", path, "300M")
    run(writer, path, "qcow2", stdin="w 209715200 1048576 2\nf\n")
    run("qemu-img", "snapshot", "-c", "big", path)
    qemu_check_clean(path)
    run(img, "snapshot", "-a", "full", path)
    qemu_check_clean(path)
    info = json.loads(run("qemu-img", "info", "--output=json", path).stdout)
    assert info["virtual-size"] == 8 * MiB
    out = tmp_path / "o.raw"
    run("qemu-img", "convert", "-O", "raw", path, out)
    assert out.read_bytes() == tag_bytes(0, 8 * MiB, 1)
    run(img, "snapshot", "-a", "big", path)
    qemu_check_clean(path)
    run("qemu-img", "convert", "-O", "raw", path, out)
    data = out.read_bytes()
    assert len(data) == 300 * MiB
    assert data[:2 * MiB] == tag_bytes(0, 2 * MiB, 1)
    assert data[200 * MiB:201 * MiB] == tag_bytes(200 * MiB, MiB, 2)
    assert data[2 * MiB:200 * MiB].count(0) == 198 * MiB


@pytest.mark.parametrize("tool", ["vireo-img", "qemu-img"])
def test_shrink_whole_tables_a_snapshot_shares(build_dir, tmp_path, tool):
    """Small clusters: the cut unhooks whole L2 tables a snapshot shares; the active tree's
    share of their clusters is given back (no leak), the snapshot reads as it was, and
    applying it brings back its size and content (both tools shrink, we apply)."""
    img, _ = tools(build_dir)
    path = tmp_path / "s.qcow2"
    run(img, "create", "-q", "-f", "qcow2", "-o", "cluster_size=4k", path, "8M")
    run("qemu-io", "-c", "write -c -P 2 6M 1M", "-c", "write -P 1 0 6M", "-c", "write -P 1 7M 1M",
        path)
    run(img, "snapshot", "-c", "s", path)
    run("qemu-io", "-c", "write -P 3 512k 64k", path)
    run(img if tool == "vireo-img" else "qemu-img", "resize", "-q", "--shrink", path, "1M")
    qemu_check_clean(path)
    assert run(img, "check", path, check=False).returncode == 0
    run(img, "snapshot", "-a", "s", path)
    qemu_check_clean(path)
    run("qemu-io", "-c", "read -P 1 0 6M", "-c", "read -P 2 6M 1M", "-c", "read -P 1 7M 1M",
        path)


def test_shrink_killed_at_any_instant(build_dir, tmp_path):
    """A shrink killed part way leaves an image both checkers find without corruption (leaks
    allowed), the data before the cut intact, and a second shrink completes it."""
    import random
    import signal
    import subprocess
    import time

    img, writer = tools(build_dir)
    full = tmp_path / "full.qcow2"
    run(img, "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", full, "16M")
    run(writer, full, "qcow2", stdin="w 0 16777216 1\nf\n")
    head = tag_bytes(0, 2 * MiB, 1)
    rng = random.Random(7)
    path = tmp_path / "k.qcow2"
    t = time.monotonic()
    path.write_bytes(full.read_bytes())
    run(img, "resize", "--shrink", path, "2M")
    span = time.monotonic() - t
    killed = 0
    for i in range(10):
        path.write_bytes(full.read_bytes())
        p = subprocess.Popen([img, "resize", "-q", "--shrink", str(path), "2M"])
        time.sleep(rng.uniform(0, span))
        p.send_signal(signal.SIGKILL)
        killed += p.wait() == -signal.SIGKILL
        theirs = run("qemu-img", "check", path, check=False)
        assert theirs.returncode in (0, 3), f"kill {i}: {theirs.stdout}"
        ours = run(img, "check", "-q", path, check=False)
        assert ours.returncode in (0, 3), f"kill {i}: vireo-img check {ours.returncode}"
        out = tmp_path / "o.raw"
        run("qemu-img", "convert", "-O", "raw", path, out)
        assert out.read_bytes()[:2 * MiB] == head, f"kill {i}"
        run(img, "resize", "-q", "--shrink", path, "2M")
        run(img, "check", "-q", "-r", "leaks", path)
        qemu_check_clean(path)
        run("qemu-img", "convert", "-O", "raw", path, out)
        assert out.read_bytes() == head
    assert killed >= 5, f"only {killed} of 10 shrinks were killed before they finished"
