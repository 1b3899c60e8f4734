"""vireo-img and the block library against qemu-img/qemu-io, both ways: images we create and
write pass `qemu-img check` and read back byte-identical through qemu; images qemu creates
(compressed, with snapshots, backing chains, extended L2, ...) we read byte-identical, check
clean, and write with `qemu-img check` staying clean."""

from __future__ import annotations

import json
import os
import struct

import pytest

from imgtools import apply_ops, qemu_check_clean, run, to_raw_qemu, tools

MiB = 1 << 20

# Partial sectors, partial clusters, cluster-crossing writes, zeroes and a discard.
SCRIPT = """
w 1000 5000 7
w 65000 140000 8
z 262144 65536
w 300000 1000 9
z 301000 70000
w 3000000 70000 10
w 3000512 512 11
d 6291456 131072
f
"""

CREATE_MATRIX = [
    "compat=0.10",
    "compat=1.1",
    "cluster_size=512",
    "cluster_size=2M",
    "refcount_bits=1",
    "refcount_bits=64",
    "extended_l2=on",
    "lazy_refcounts=on",
    "compression_type=zstd",
    "preallocation=metadata",
]


@pytest.mark.parametrize("opts", CREATE_MATRIX)
def test_we_create_and_write_qemu_reads(build_dir, tmp_path, opts):
    img, writer = tools(build_dir)
    path = tmp_path / "a.qcow2"
    run(img, "create", "-q", "-f", "qcow2", "-o", opts, path, "8M")
    run(writer, path, "qcow2", stdin=SCRIPT)
    qemu_check_clean(path)
    assert run(img, "check", "-q", path, check=False).returncode == 0
    model = bytearray(8 * MiB)
    apply_ops(model, SCRIPT)
    assert to_raw_qemu(path, tmp_path / "q.raw") == bytes(model)
    run("qemu-io", "-c", "read -P 0 302080 65536", path)
    # qemu writes to our image, we read it back identically to qemu
    run("qemu-io", "-c", "write -P 0x5a 100000 300000", "-c", "write -z 0 4096", path)
    qemu_check_clean(path)
    run(img, "convert", "-O", "raw", path, tmp_path / "v.raw")
    assert (tmp_path / "v.raw").read_bytes() == to_raw_qemu(path, tmp_path / "q.raw")


@pytest.mark.parametrize("opts", ["", "compression_type=zstd", "cluster_size=4k",
                                  "extended_l2=on,cluster_size=32k", "refcount_bits=2"])
def test_convert_compressed_qemu_reads(build_dir, tmp_path, opts):
    img, _ = tools(build_dir)
    src = tmp_path / "src.raw"
    data = bytearray()
    for i in range(48):
        if i % 3 == 0:
            data += bytes(65536)
        elif i % 6 == 1:
            data += os.urandom(65536)
        elif i % 3 == 1:
            data += os.urandom(8192) * 8  # matches 8 KiB back: beyond a 4 KiB window
        else:
            data += (b"vireo %05d " % i) * 5461 + bytes(65536 - 12 * 5461)
    data += b"tail" * 100  # a last cluster shorter than the others
    src.write_bytes(data)
    args = [img, "convert", "-c", "-O", "qcow2"] + (["-o", opts] if opts else [])
    run(*args, src, tmp_path / "c.qcow2")
    qemu_check_clean(tmp_path / "c.qcow2")
    data += bytes(-len(data) % 512)  # qcow2 sizes are whole sectors
    assert to_raw_qemu(tmp_path / "c.qcow2", tmp_path / "q.raw") == bytes(data)
    info = json.loads(run("qemu-img", "check", "--output=json", tmp_path / "c.qcow2").stdout)
    assert info.get("compressed-clusters", 0) >= 16


QEMU_MATRIX = [
    "compression_type=zlib",
    "compression_type=zstd",
    "compat=0.10",
    "cluster_size=512",
    "cluster_size=2M",
    "extended_l2=on",
    "extended_l2=on,cluster_size=16k",
    "refcount_bits=1",
    "refcount_bits=64",
]


@pytest.mark.asan
@pytest.mark.parametrize("opts", QEMU_MATRIX)
def test_qemu_creates_we_read_and_write(build_dir, tmp_path, opts):
    img, writer = tools(build_dir)
    src = tmp_path / "src.raw"
    data = bytearray()
    for i in range(256):
        data += bytes(32768) if i % 3 == 0 else (b"%07d " % i) * 4096
    src.write_bytes(data)
    q = tmp_path / "q.qcow2"
    run("qemu-img", "convert", "-c", "-O", "qcow2", "-o", opts, src, q)
    snap = "refcount_bits=1" not in opts  # one-bit refcounts cannot share clusters
    if snap:
        run("qemu-img", "snapshot", "-c", "before", q)
    run("qemu-io", "-c", "write -P 0x11 4096 8192", "-c", "write -z 200000 300000",
        "-c", "discard 1048576 65536", "-c", "write -P 0x22 2000000 100000", q)
    p = run(img, "check", q, check=False)
    assert p.returncode == 0, p.stdout + p.stderr
    assert json.loads(run(img, "map", "--output=json", q).stdout) == json.loads(
        run("qemu-img", "map", "--output=json", q).stdout)
    run(img, "convert", "-O", "raw", q, tmp_path / "v.raw")
    assert (tmp_path / "v.raw").read_bytes() == to_raw_qemu(q, tmp_path / "q.raw")
    run(writer, q, "qcow2", stdin=SCRIPT)
    qemu_check_clean(q)
    assert run(img, "check", "-q", q, check=False).returncode == 0
    expect = bytearray(to_raw_qemu(q, tmp_path / "q.raw"))
    run(img, "convert", "-O", "raw", q, tmp_path / "v.raw")
    assert (tmp_path / "v.raw").read_bytes() == bytes(expect)
    model = bytearray(expect)
    apply_ops(model, SCRIPT.replace("d 6291456 131072", ""))
    assert bytes(model[:6 * MiB]) == bytes(expect[:6 * MiB])
    if snap:
        # The snapshot still holds the data from before our writes.
        run("qemu-img", "convert", "-l", "before", "-O", "raw", q, tmp_path / "s.raw")
        assert (tmp_path / "s.raw").read_bytes() == bytes(data)


def test_backing_chain_depth_3(build_dir, tmp_path):
    img, writer = tools(build_dir)
    base = tmp_path / "base.raw"
    base.write_bytes(bytes(range(256)) * (16 * 4096))  # 16 MiB
    mid = tmp_path / "mid.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw", mid)
    run("qemu-io", "-c", "write -P 0x33 1M 1M", "-c", "write -z 5M 64k", mid)
    top = tmp_path / "top.qcow2"
    run(img, "create", "-q", "-f", "qcow2", "-o", "extended_l2=on", "-b", "mid.qcow2",
        "-F", "qcow2", top)
    run(writer, top, "qcow2", stdin=SCRIPT)
    qemu_check_clean(top)
    qemu_check_clean(mid)
    expect = bytearray(base.read_bytes())
    expect[1 * MiB:2 * MiB] = b"\x33" * MiB
    expect[5 * MiB:5 * MiB + 65536] = bytes(65536)
    apply_ops(expect, SCRIPT.replace("d 6291456 131072", ""))
    got = to_raw_qemu(top, tmp_path / "q.raw")
    assert got[:6 * MiB] == bytes(expect[:6 * MiB])
    run(img, "convert", "-O", "raw", top, tmp_path / "v.raw")
    assert (tmp_path / "v.raw").read_bytes() == got
    # a third level made by qemu on top of ours, read by us
    top2 = tmp_path / "top2.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "top.qcow2", "-F", "qcow2", top2)
    run("qemu-io", "-c", "write -P 0x44 7M 4k", top2)
    run(img, "convert", "-O", "raw", top2, tmp_path / "v2.raw")
    assert (tmp_path / "v2.raw").read_bytes() == to_raw_qemu(top2, tmp_path / "q2.raw")
    ours = json.loads(run(img, "map", "--output=json", top2).stdout)
    theirs = json.loads(run("qemu-img", "map", "--output=json", top2).stdout)
    assert [(e["start"], e["length"], e["depth"], e["zero"], e["data"]) for e in ours if
            e["data"]] == [(e["start"], e["length"], e["depth"], e["zero"], e["data"])
                           for e in theirs if e["data"]]


def test_info_json_matches_qemu(build_dir, tmp_path):
    img, _ = tools(build_dir)
    run("qemu-img", "create", "-q", "-f", "qcow2", tmp_path / "b.qcow2", "64M")
    run(img, "create", "-q", "-f", "qcow2", "-o", "extended_l2=on,compression_type=zstd",
        "-b", "b.qcow2", "-F", "qcow2", tmp_path / "a.qcow2")
    run("qemu-img", "snapshot", "-c", "s1", tmp_path / "a.qcow2")
    for name in ("a.qcow2", "b.qcow2"):
        path = str(tmp_path / name)
        ours = json.loads(run(img, "info", "--output=json", path).stdout)
        theirs = json.loads(run("qemu-img", "info", "--output=json", path).stdout)
        for d in (ours, theirs):
            d.pop("actual-size")
            for s in d.get("snapshots", []):
                s.pop("date-sec"), s.pop("date-nsec")
        assert ours == theirs
    chain = [json.loads(run(tool, "info", "--backing-chain", "--output=json",
                            tmp_path / "a.qcow2").stdout) for tool in (img, "qemu-img")]
    assert [d["filename"] for d in chain[0]] == [d["filename"] for d in chain[1]]
    assert [d["format"] for d in chain[0]] == ["qcow2", "qcow2"]


def test_check_exit_codes_and_repair(build_dir, tmp_path):
    img, _ = tools(build_dir)
    path = tmp_path / "l.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", path, "1M")
    with open(path, "r+b") as f:  # header cluster refcount 1 -> 2: a leak
        f.seek(0x20000)
        f.write(struct.pack(">H", 2))
    p = run(img, "check", "--output=json", path, check=False)
    assert p.returncode == 3
    assert json.loads(p.stdout)["leaks"] == 1
    assert run(img, "check", "-r", "leaks", path, check=False).returncode == 0
    qemu_check_clean(path)
    with open(path, "r+b") as f:  # L1 table cluster refcount 1 -> 0: a corruption
        f.seek(0x20000 + 2 * 3)
        f.write(struct.pack(">H", 0))
    p = run(img, "check", "--output=json", path, check=False)
    assert p.returncode == 2, p.stdout + p.stderr
    assert json.loads(p.stdout)["corruptions"] >= 1
    assert run(img, "check", "-r", "leaks", path, check=False).returncode == 2
    assert run(img, "check", "-r", "all", path, check=False).returncode == 0
    qemu_check_clean(path)
    run("qemu-img", "create", "-q", "-f", "raw", tmp_path / "r.raw", "1M")
    assert run(img, "check", "-f", "raw", tmp_path / "r.raw", check=False).returncode == 63


def test_chain_errors_name_the_files(build_dir, tmp_path):
    img, _ = tools(build_dir)
    run("qemu-img", "create", "-q", "-f", "qcow2", tmp_path / "a.qcow2", "1M")
    run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2",
        tmp_path / "b.qcow2")
    run("qemu-img", "rebase", "-u", "-f", "qcow2", "-b", "b.qcow2", "-F", "qcow2",
        tmp_path / "a.qcow2")
    p = run(img, "convert", "-O", "raw", tmp_path / "b.qcow2", tmp_path / "o.raw", check=False)
    assert p.returncode == 1 and "loop" in p.stderr and "a.qcow2" in p.stderr, p.stderr
    run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "gone.qcow2", "-F", "qcow2", "-u",
        tmp_path / "c.qcow2", "1M")
    p = run(img, "convert", "-O", "raw", tmp_path / "c.qcow2", tmp_path / "o.raw", check=False)
    assert p.returncode == 1 and "gone.qcow2" in p.stderr and "c.qcow2" in p.stderr


def test_probing_never_guesses_raw_for_writes(build_dir, tmp_path):
    img, _ = tools(build_dir)
    raw = tmp_path / "r.img"
    raw.write_bytes(bytes(MiB))
    p = run(img, "resize", raw, "2M", check=False)
    assert p.returncode == 1 and "refusing to guess raw" in p.stderr
    run(img, "resize", "-f", "raw", raw, "2M")
    assert raw.stat().st_size == 2 * MiB


def test_corrupt_bit_refuses_writes(build_dir, tmp_path):
    img, writer = tools(build_dir)
    path = tmp_path / "c.qcow2"
    run(img, "create", "-q", "-f", "qcow2", path, "1M")
    with open(path, "r+b") as f:
        f.seek(72)
        f.write(struct.pack(">Q", 2))
    p = run(writer, path, "qcow2", stdin="w 0 512 1\n", check=False)
    assert p.returncode == 1 and "marked corrupt" in p.stderr
    run(img, "convert", "-O", "raw", path, tmp_path / "o.raw")  # reading still works
    assert json.loads(run(img, "info", "--output=json", path).stdout)[
        "format-specific"]["data"]["corrupt"] is True
    run(img, "check", "-r", "all", path)
    qemu_check_clean(path)
    run(writer, path, "qcow2", stdin="w 0 512 1\n")


def test_resize_and_compare(build_dir, tmp_path):
    img, writer = tools(build_dir)
    path = tmp_path / "r.qcow2"
    run(img, "create", "-q", "-f", "qcow2", "-o", "cluster_size=512", path, "1M")
    run(writer, path, "qcow2", stdin="w 0 100000 1\n")
    run(img, "resize", path, "+3G")
    qemu_check_clean(path)
    info = json.loads(run("qemu-img", "info", "--output=json", path).stdout)
    assert info["virtual-size"] == MiB + 3 * (1 << 30)
    run("qemu-io", "-c", "write -P 7 3G 4k", path)
    qemu_check_clean(path)
    run("qemu-img", "convert", "-O", "qcow2", path, tmp_path / "copy.qcow2")
    assert run(img, "compare", path, tmp_path / "copy.qcow2").returncode == 0
    run("qemu-io", "-c", "write -P 8 4096 1", tmp_path / "copy.qcow2")
    p = run(img, "compare", path, tmp_path / "copy.qcow2", check=False)
    assert p.returncode == 1 and "4096" in p.stdout


@pytest.mark.asan
@pytest.mark.parametrize("opts", ["compat=1.1", "compat=0.10", "extended_l2=on",
                                  "refcount_bits=8,cluster_size=4k"])
def test_snapshots_both_ways(build_dir, tmp_path, opts):
    img, writer = tools(build_dir)
    path = tmp_path / "s.qcow2"
    run(img, "create", "-q", "-f", "qcow2", "-o", opts, path, "4M")
    run(writer, path, "qcow2", stdin="w 0 1000000 1\nc 2097152 131072 2\nf\n")
    first = to_raw_qemu(path, tmp_path / "first.raw")
    run(img, "snapshot", "-c", "ours", path)
    qemu_check_clean(path)
    run(writer, path, "qcow2", stdin="w 500000 1000000 3\nz 2097152 65536\nf\n")
    qemu_check_clean(path)
    second = to_raw_qemu(path, tmp_path / "second.raw")
    assert second != first
    # qemu reads our snapshot; qemu makes one we list, apply and delete
    run("qemu-img", "convert", "-l", "ours", "-O", "raw", path, tmp_path / "s.raw")
    assert (tmp_path / "s.raw").read_bytes() == first
    run("qemu-img", "snapshot", "-c", "theirs", path)
    ours = run(img, "snapshot", "-l", path).stdout.splitlines()
    theirs = run("qemu-img", "snapshot", "-l", path).stdout.splitlines()
    assert [line[:30] for line in ours] == [line[:30] for line in theirs]
    run(img, "snapshot", "-a", "ours", path)
    qemu_check_clean(path)
    assert to_raw_qemu(path, tmp_path / "now.raw") == first
    run(img, "snapshot", "-d", "ours", path)
    qemu_check_clean(path)
    assert run(img, "check", "-q", path, check=False).returncode == 0
    run(img, "snapshot", "-a", "theirs", path)
    assert to_raw_qemu(path, tmp_path / "now.raw") == second
    run(img, "snapshot", "-d", "theirs", path)
    qemu_check_clean(path)
    assert run("qemu-img", "snapshot", "-l", path).stdout == ""
    p = run(img, "snapshot", "-d", "nope", path, check=False)
    assert p.returncode == 1 and "nope" in p.stderr


def test_dirty_image_repaired_on_writable_open(build_dir, tmp_path):
    """A lazy-refcounts writer that died leaves the dirty bit and stale refcounts: a writable
    open rebuilds the refcounts before allocating anything, then clears the bit."""
    img, writer = tools(build_dir)
    path = tmp_path / "d.qcow2"
    run(img, "create", "-q", "-f", "qcow2", "-o", "lazy_refcounts=on", path, "4M")
    run("qemu-io", "-c", "write -P 9 0 1M", path)
    with open(path, "r+b") as f:
        f.seek(72)
        f.write(struct.pack(">Q", 1))  # dirty
        f.seek(0x20000 + 2 * 5)  # the refcount of a data cluster lost
        f.write(struct.pack(">H", 0))
    info = json.loads(run(img, "info", "--output=json", path).stdout)
    assert info["dirty-flag"] is True
    run(writer, path, "qcow2", stdin="w 2097152 65536 4\nf\n")
    qemu_check_clean(path)
    info = json.loads(run("qemu-img", "info", "--output=json", path).stdout)
    assert info["dirty-flag"] is False
    data = to_raw_qemu(path, tmp_path / "o.raw")
    assert data[:MiB] == b"\x09" * MiB


def test_rebase_and_commit(build_dir, tmp_path):
    img, writer = tools(build_dir)
    for name, pattern in (("a.qcow2", 0x11), ("b.qcow2", 0x22)):
        run("qemu-img", "create", "-q", "-f", "qcow2", tmp_path / name, "4M")
        run("qemu-io", "-c", f"write -P {pattern} 0 2M", tmp_path / name)
    top = tmp_path / "top.qcow2"
    run(img, "create", "-q", "-f", "qcow2", "-b", "a.qcow2", "-F", "qcow2", top)
    run(writer, top, "qcow2", stdin="w 1048576 65536 3\nf\n")
    before = to_raw_qemu(top, tmp_path / "before.raw")
    # unsafe rebase only changes the name; safe rebase keeps the content
    run(img, "rebase", "-u", "-b", "b.qcow2", "-F", "qcow2", top)
    assert to_raw_qemu(top, tmp_path / "u.raw")[:65536] == b"\x22" * 65536
    run(img, "rebase", "-u", "-b", "a.qcow2", "-F", "qcow2", top)
    run(img, "rebase", "-b", "b.qcow2", "-F", "qcow2", top)
    qemu_check_clean(top)
    info = json.loads(run("qemu-img", "info", "--output=json", top).stdout)
    assert info["backing-filename"] == "b.qcow2"
    assert info["backing-filename-format"] == "qcow2"
    assert to_raw_qemu(top, tmp_path / "after.raw") == before
    # commit into the backing file, then the top is empty
    expect = to_raw_qemu(top, tmp_path / "e.raw")
    assert run(img, "commit", top).stdout.strip() == "Image committed."
    qemu_check_clean(top)
    qemu_check_clean(tmp_path / "b.qcow2")
    assert to_raw_qemu(tmp_path / "b.qcow2", tmp_path / "b.raw") == expect
    assert to_raw_qemu(top, tmp_path / "t.raw") == expect
    m = json.loads(run("qemu-img", "map", "--output=json", top).stdout)
    assert all(e["depth"] > 0 for e in m)
    # no backing at all: the data moves into the image
    run(img, "rebase", "-b", "", top)
    assert "backing-filename" not in json.loads(
        run("qemu-img", "info", "--output=json", top).stdout)
    assert to_raw_qemu(top, tmp_path / "n.raw") == expect
    qemu_check_clean(top)


def test_amend(build_dir, tmp_path):
    img, writer = tools(build_dir)
    path = tmp_path / "m.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", "-o", "compat=0.10", path, "4M")
    run("qemu-io", "-c", "write -P 5 0 1M", path)
    run(img, "amend", "-o", "compat=1.1,lazy_refcounts=on", path)
    qemu_check_clean(path)
    data = json.loads(run("qemu-img", "info", "--output=json", path).stdout)[
        "format-specific"]["data"]
    assert data["compat"] == "1.1" and data["lazy-refcounts"] is True
    run("qemu-io", "-c", "write -z 0 64k", path)  # a zero cluster: no way back to 0.10
    p = run(img, "amend", "-o", "compat=0.10,lazy_refcounts=off", path, check=False)
    assert p.returncode == 1 and "zero clusters" in p.stderr
    run(img, "amend", "-o", "lazy_refcounts=off,size=8M", path)
    info = json.loads(run("qemu-img", "info", "--output=json", path).stdout)
    assert info["virtual-size"] == 8 << 20
    assert info["format-specific"]["data"]["lazy-refcounts"] is False
    qemu_check_clean(path)
    other = tmp_path / "n.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", other, "1M")
    run(img, "amend", "-o", "compat=0.10", other)
    assert json.loads(run("qemu-img", "info", "--output=json", other).stdout)[
        "format-specific"]["data"]["compat"] == "0.10"
    qemu_check_clean(other)


@pytest.mark.parametrize("args", [
    ["-O", "qcow2", "--size", "0"],
    ["-O", "qcow2", "--size", "100G"],
    ["-O", "qcow2", "-o", "cluster_size=4k", "--size", "1G"],
    ["-O", "qcow2", "-o", "cluster_size=512,refcount_bits=1", "--size", "3G"],
    ["-O", "qcow2", "-o", "extended_l2=on", "--size", "10G"],
    ["--output=json", "-O", "qcow2", "IMAGE"],
    ["-O", "raw", "IMAGE"],
])
def test_measure_matches_qemu(build_dir, tmp_path, args):
    img, writer = tools(build_dir)
    path = tmp_path / "m.qcow2"
    run(img, "create", "-q", "-f", "qcow2", path, "64M")
    run(writer, path, "qcow2", stdin=SCRIPT)
    args = [str(path) if a == "IMAGE" else a for a in args]
    assert run(img, "measure", *args).stdout == run("qemu-img", "measure", *args).stdout


def test_refcount_table_growth_qemu_checks(build_dir, tmp_path):
    """512-byte clusters with 64-bit refcounts: 4 MiB of data outgrow the first refcount
    table, which moves; qemu must find the result consistent."""
    img, writer = tools(build_dir)
    path = tmp_path / "g.qcow2"
    run(img, "create", "-q", "-f", "qcow2", "-o", "cluster_size=512,refcount_bits=64", path,
        "64M")
    script = "".join(f"w {i << 20} 65536 {i + 1}\n" for i in range(64)) + "f\n"
    run(writer, path, "qcow2", stdin=script)
    with open(path, "rb") as f:
        assert struct.unpack(">I", f.read(60)[56:60])[0] > 1
    qemu_check_clean(path)
    model = bytearray(64 * MiB)
    apply_ops(model, script)
    assert to_raw_qemu(path, tmp_path / "g.raw") == bytes(model)


def test_convert_with_backing_copies_the_top_only(build_dir, tmp_path):
    img, _ = tools(build_dir)
    base = tmp_path / "base.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", base, "4M")
    run("qemu-io", "-c", "write -P 0x31 0 4M", base)
    src = tmp_path / "src.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2", src)
    run("qemu-io", "-c", "write -P 0x32 1M 64k", "-c", "write -z 2M 64k",
        "-c", "write -P 0 3M 4k", src)
    out = tmp_path / "out.qcow2"
    run(img, "convert", "-O", "qcow2", "-B", "base.qcow2", "-F", "qcow2", src, out)
    qemu_check_clean(out)
    info = json.loads(run("qemu-img", "info", "--output=json", out).stdout)
    assert info["backing-filename"] == "base.qcow2"
    assert to_raw_qemu(out, tmp_path / "o.raw") == to_raw_qemu(src, tmp_path / "s.raw")
    top = [e for e in json.loads(run("qemu-img", "map", "--output=json", out).stdout)
           if e["depth"] == 0]
    assert sum(e["length"] for e in top) == 65536 * 3
