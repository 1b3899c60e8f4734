"""qemu-img's options in vireo-img, judged against qemu-img itself: each option vireo-img
implements gives qemu-img's result (output, exit code), and each it does not is refused by
name, never silently ignored."""

from __future__ import annotations

import json
import struct
import time

import pytest

from imgtools import run, tag_bytes, tools

MiB = 1 << 20


def both(img, *args):
    """Run the same command line with qemu-img and vireo-img."""
    return run("qemu-img", *args, check=False), run(img, *args, check=False)


def test_convert_and_measure_from_a_snapshot(build_dir, tmp_path):
    img, writer = tools(build_dir)
    path = tmp_path / "s.qcow2"
    run(img, "create", "-q", "-f", "qcow2", path, "4M")
    run(writer, path, "qcow2", stdin="w 0 1048576 1\nf\n")
    run(img, "snapshot", "-c", "first", path)
    run(writer, path, "qcow2", stdin="w 524288 2097152 2\nf\n")
    run("qemu-img", "snapshot", "-c", "second", path)
    run(writer, path, "qcow2", stdin="z 0 4194304\nf\n")
    first = tag_bytes(0, MiB, 1) + bytes(3 * MiB)
    for param in ("first", "1", "snapshot.name=first", "snapshot.id=1",
                  "snapshot.id=1,snapshot.name=first", "second", "snapshot.id=2"):
        ours, theirs = tmp_path / "ours.raw", tmp_path / "theirs.raw"
        run(img, "convert", "-l", param, "-O", "raw", path, ours)
        run("qemu-img", "convert", "-l", param, "-O", "raw", path, theirs)
        assert ours.read_bytes() == theirs.read_bytes(), param
        if "first" in param or "id=1" in param or param == "1":
            assert ours.read_bytes() == first, param
        q, v = both(img, "measure", "--output=json", "-O", "qcow2", "-l", param, path)
        assert json.loads(v.stdout) == json.loads(q.stdout), param
    # the active disk is untouched by the view, and a miss is an error naming it
    run(img, "convert", "-O", "raw", path, tmp_path / "now.raw")
    assert (tmp_path / "now.raw").read_bytes() == bytes(4 * MiB)
    for param in ("nope", "snapshot.id=1,snapshot.name=second"):
        q, v = both(img, "convert", "-l", param, "-O", "raw", path, tmp_path / "x.raw")
        assert q.returncode == v.returncode == 1, param
        assert "snapshot" in v.stderr
    p = run(img, "convert", "-l", "first", "-f", "raw", "-O", "raw", path, tmp_path / "x.raw",
            check=False)
    assert p.returncode == 1 and "qcow2" in p.stderr


def test_convert_target_is_zero_and_copy_offload(build_dir, tmp_path):
    img, _ = tools(build_dir)
    src = tmp_path / "s.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", src, "4M")
    run("qemu-io", "-c", "write -P 1 0 1M", "-c", "write -z 2M 1M", src)
    maps = {}
    for tool in ("qemu-img", img):
        for extra in ([], ["--target-is-zero"]):
            out = tmp_path / "t.qcow2"
            run("qemu-img", "create", "-q", "-f", "qcow2", out, "4M")
            run(tool, "convert", "-n", *extra, "-O", "qcow2", src, out)
            run("qemu-img", "compare", src, out)
            maps.setdefault(tuple(extra), []).append(
                run("qemu-img", "map", "--output=json", out).stdout)
    for extra, (theirs, ours) in maps.items():
        assert ours == theirs, extra
    assert maps[()] != maps[("--target-is-zero",)]  # zeros written only without it
    q, v = both(img, "convert", "--target-is-zero", "-O", "raw", src, tmp_path / "a.raw")
    assert q.returncode == v.returncode == 1
    assert "--target-is-zero requires use of -n flag" in v.stderr
    q, v = both(img, "convert", "-C", "-c", "-O", "qcow2", src, tmp_path / "c.qcow2")
    assert q.returncode == v.returncode == 1
    assert "Cannot enable copy offloading when -c is used" in v.stderr
    run(img, "convert", "-C", "-O", "raw", src, tmp_path / "c.raw")
    run("qemu-img", "compare", src, tmp_path / "c.raw")


def test_convert_bitmaps(build_dir, tmp_path):
    """--bitmaps: qemu-img's refusals (raw output, raw source) and success without bitmaps;
    a source with persistent bitmaps is refused by name (vireo-img does not write them)."""
    img, _ = tools(build_dir)
    plain, withbm = tmp_path / "p.qcow2", tmp_path / "b.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", plain, "1M")
    run("qemu-img", "create", "-q", "-f", "qcow2", withbm, "1M")
    run("qemu-img", "bitmap", "--add", withbm, "b0")
    raw = tmp_path / "r.raw"
    raw.write_bytes(bytes(65536))
    for args, msg in ((["-O", "raw", plain], "Format driver 'raw' does not support bitmaps"),
                      (["-f", "raw", "-O", "qcow2", raw], "Source lacks bitmap support")):
        q, v = both(img, "convert", "--bitmaps", *args, tmp_path / "o.img")
        assert q.returncode == v.returncode == 1 and msg in v.stderr, args
    q, v = both(img, "convert", "--bitmaps", "-O", "qcow2", plain, tmp_path / "o.qcow2")
    assert q.returncode == v.returncode == 0
    p = run(img, "convert", "--bitmaps", "-O", "qcow2", withbm, tmp_path / "x.qcow2",
            check=False)
    assert p.returncode == 1 and "--bitmaps" in p.stderr and "not supported" in p.stderr
    assert not (tmp_path / "x.qcow2").exists()


def test_refusals_by_name(build_dir, tmp_path):
    img, _ = tools(build_dir)
    src = tmp_path / "s.raw"
    src.write_bytes(b"\x01" * 65536)
    for cmd in ("bench", "bitmap"):
        p = run(img, cmd, "x", check=False)
        assert p.returncode == 1 and f"'{cmd}' is not supported" in p.stderr
    for cmd in ("convert", "resize", "dd"):
        for flag in ("--help", "-h"):
            p = run(img, cmd, flag)
            assert "usage: vireo-img" in p.stdout and f"  {cmd} " in p.stdout
    p = run(img, "-T", "foo", "info", src, check=False)
    assert p.returncode == 1 and "-T" in p.stderr


def test_map_range(build_dir, tmp_path):
    img, _ = tools(build_dir)
    path = tmp_path / "m.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", path, "4M")
    run("qemu-io", "-c", "write -P 1 0 1M", "-c", "write -P 2 3M 64k", "-c", "write -z 2M 64k",
        path)
    for extra in (["--start-offset=512k", "--max-length=3000000"],
                  ["--start-offset", "65536", "--max-length", "1M"],
                  ["--start-offset=4M"], ["--start-offset=8M"], ["--max-length=0"],
                  ["--start-offset=5000000", "--max-length=0"]):
        for output in ("json", "human"):
            q, v = both(img, "map", f"--output={output}", *extra, path)
            assert v.returncode == q.returncode == 0
            if output == "json":
                assert json.loads(v.stdout) == json.loads(q.stdout), extra
            else:
                assert v.stdout == q.stdout, extra
    q, v = both(img, "map", "--start-offset=-1", path)
    assert q.returncode == v.returncode == 1


def test_compare_strict_block_status(build_dir, tmp_path):
    """compare -s also fails on ranges stored differently (allocated, zero, data), at the
    same offset as qemu-img."""
    img, _ = tools(build_dir)
    a = tmp_path / "a.qcow2"  # unallocated
    run("qemu-img", "create", "-q", "-f", "qcow2", a, "1M")
    b = tmp_path / "b.qcow2"  # a zero cluster
    run("qemu-img", "create", "-q", "-f", "qcow2", b, "1M")
    run("qemu-io", "-c", "write -z 0 64k", b)
    c = tmp_path / "c.raw"  # sparse raw file with its first 4k written, as qemu-img makes
    run("qemu-img", "create", "-q", "-f", "raw", c, "1M")
    d = tmp_path / "d.qcow2"  # zeros written as data
    run("qemu-img", "create", "-q", "-f", "qcow2", d, "1M")
    run("qemu-io", "-c", "write -P 0 0 1M", d)
    e = tmp_path / "e.qcow2"  # compressed
    run("qemu-img", "create", "-q", "-f", "qcow2", e, "1M")
    run("qemu-io", "-c", "write -c -P 3 0 64k", e)
    f = tmp_path / "f.qcow2"
    f.write_bytes(e.read_bytes())
    g = tmp_path / "g.qcow2"  # another size
    run("qemu-img", "create", "-q", "-f", "qcow2", g, "2M")
    for x, y in ((a, b), (a, c), (c, d), (a, a), (b, d), (d, d), (e, f), (c, c), (a, g),
                 (b, e)):
        for strict in (["-s"], []):
            q, v = both(img, "compare", *strict, x, y)
            assert (v.returncode, v.stdout) == (q.returncode, q.stdout), (x.name, y.name)


def test_create_unsafe_backing(build_dir, tmp_path):
    img, _ = tools(build_dir)
    for args in (["-b", "nonexist", "-F", "raw", "{}", "1M"],
                 ["-u", "-b", "nonexist", "-F", "raw", "{}", "1M"],
                 ["-u", "-b", "nonexist", "-F", "raw", "{}"]):
        codes = []
        for tool in ("qemu-img", img):
            out = tmp_path / f"u-{len(codes)}.qcow2"
            p = run(tool, "create", "-q", "-f", "qcow2",
                    *[str(out) if a == "{}" else a for a in args], check=False)
            codes.append((p.returncode, out.exists()))
        assert codes[0] == codes[1], args
    p = run(img, "create", "-q", "-u", "-f", "qcow2", "-b", "x", "-F", "raw",
            tmp_path / "n.qcow2", check=False)
    assert "needs a size" in p.stderr


def test_cache_modes_checked(build_dir, tmp_path):
    img, _ = tools(build_dir)
    path = tmp_path / "c.qcow2"
    run(img, "create", "-q", "-f", "qcow2", path, "1M")
    for args in (["check", "-T", "{}", path], ["compare", "-T", "{}", path, path],
                 ["convert", "-t", "{}", "-O", "raw", path, tmp_path / "o.raw"],
                 ["convert", "-T", "{}", "-O", "raw", path, tmp_path / "o.raw"],
                 ["rebase", "-u", "-t", "{}", "-b", "", path]):
        for mode, ok in (("writeback", True), ("none", True), ("bogus", False)):
            a = [mode if x == "{}" else x for x in args]
            q, v = both(img, *a)
            assert (q.returncode == 0) == ok and (v.returncode == 0) == ok, a


def test_commit_rate_limit(build_dir, tmp_path):
    img, writer = tools(build_dir)
    base, top = tmp_path / "base.qcow2", tmp_path / "top.qcow2"
    run(img, "create", "-q", "-f", "qcow2", base, "4M")
    run(img, "create", "-q", "-f", "qcow2", "-b", base.name, "-F", "qcow2", top)
    run(writer, top, "qcow2", stdin="w 0 2097152 1\nf\n")
    p = run(img, "commit", "-r", "0", top, check=False)
    assert p.returncode == 1 and "rate limit" in p.stderr
    t = time.monotonic()
    run(img, "commit", "-q", "-r", "4M", top)
    assert time.monotonic() - t >= 0.45  # 2 MiB at 4 MiB/s
    out = tmp_path / "o.raw"
    run("qemu-img", "convert", "-O", "raw", base, out)
    assert out.read_bytes()[:2 * MiB] == tag_bytes(0, 2 * MiB, 1)
    run("qemu-img", "check", base)


def test_create_preallocation(build_dir, tmp_path):
    """preallocation=falloc|full: the same layout as qemu-img's (map), the file allocated;
    metadata refused for raw with qemu-img's message."""
    img, _ = tools(build_dir)
    for fmt in ("qcow2", "raw"):
        for mode in ("metadata", "falloc", "full"):
            ours, theirs = tmp_path / f"o.{fmt}", tmp_path / f"q.{fmt}"
            for p in (ours, theirs):
                if p.exists():
                    p.unlink()
            q = run("qemu-img", "create", "-q", "-f", fmt, "-o", f"preallocation={mode}",
                    theirs, "3M", check=False)
            v = run(img, "create", "-q", "-f", fmt, "-o", f"preallocation={mode}", ours, "3M",
                    check=False)
            assert v.returncode == q.returncode, (fmt, mode, v.stderr)
            if q.returncode:
                assert "Unsupported preallocation mode: metadata" in v.stderr
                continue
            assert ours.stat().st_size == theirs.stat().st_size, (fmt, mode)
            if mode != "metadata":
                assert ours.stat().st_blocks * 512 >= 3 * MiB, (fmt, mode)
            run("qemu-img", "compare", "-f", fmt, "-F", fmt, ours, theirs)
            if fmt == "qcow2":  # (qemu-img writes a raw file's first 4 KiB: not compared)
                assert run("qemu-img", "map", "--output=json", ours).stdout == run(
                    "qemu-img", "map", "--output=json", theirs).stdout, (fmt, mode)
                run("qemu-img", "check", ours)


def test_dd_as_qemu_img(build_dir, tmp_path):
    """dd's operands and arithmetic as qemu-img's (count counts from the input's start, sizes
    rounded up to sectors); the outputs byte-identical."""
    img, writer = tools(build_dir)
    src = tmp_path / "s.qcow2"
    run(img, "create", "-q", "-f", "qcow2", src, "3M")
    run(writer, src, "qcow2", stdin="w 0 1048576 1\nw 2097152 102400 2\nf\n")
    for args in (["bs=64k", "count=10", "skip=5"], ["bs=1M", "skip=1"], ["bs=1000"],
                 ["bs=1000", "skip=3"], ["count=100"], ["bs=1k", "count=0"], [],
                 ["bs=4k", "count=100000"]):
        q, v = tmp_path / "q.raw", tmp_path / "v.raw"
        run("qemu-img", "dd", f"if={src}", f"of={q}", *args)
        run(img, "dd", f"if={src}", f"of={v}", *args)
        assert q.read_bytes() == v.read_bytes(), args
    run(img, "dd", "-O", "qcow2", f"if={src}", f"of={tmp_path / 'v.qcow2'}", "bs=1M", "skip=1")
    run("qemu-img", "dd", "-O", "qcow2", f"if={src}", f"of={tmp_path / 'q.qcow2'}", "bs=1M",
        "skip=1")
    run("qemu-img", "compare", tmp_path / "v.qcow2", tmp_path / "q.qcow2")
    run("qemu-img", "check", tmp_path / "v.qcow2")
    for args, msg in ((["bs=0"], "Invalid bs specified"), (["conv=notrunc"], "conv"),
                      ([f"if={src}"], "Must specify both input and output files")):
        a = args if args[0].startswith("if=") else [f"if={src}", f"of={tmp_path / 'x'}"] + args
        q, v = both(img, "dd", *a)
        assert q.returncode == v.returncode == 1 and msg in v.stderr, args
    # qemu-img prints this error but exits 0; vireo-img exits 1
    p = run(img, "dd", f"if={src}", f"of={tmp_path / 'x'}", "skip=100000", check=False)
    assert p.returncode == 1 and "cannot skip to specified offset" in p.stderr


def test_convert_several_sources_and_rate_limit(build_dir, tmp_path):
    """Several sources are concatenated (the same image and map as qemu-img's, compressed
    too); -r limits the bytes read a second."""
    img, writer = tools(build_dir)
    a, b, c = tmp_path / "a.qcow2", tmp_path / "b.raw", tmp_path / "c.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", a, "1M")
    run("qemu-io", "-c", "write -P 1 0 64k", a)
    b.write_bytes(b"\x02" * (512 << 10))
    run("qemu-img", "create", "-q", "-f", "qcow2", c, "3M")
    run("qemu-io", "-c", "write -z 0 1M", "-c", "write -P 3 2M 4k", c)
    for extra in (["-O", "qcow2"], ["-O", "raw"], ["-c", "-O", "qcow2"]):
        q, v = tmp_path / "q.img", tmp_path / "v.img"
        run("qemu-img", "convert", *extra, a, b, c, q)
        run(img, "convert", *extra, a, b, c, v)
        run("qemu-img", "compare", q, v)
        if extra[-1] == "qcow2" and "-c" not in extra:
            assert run("qemu-img", "map", "--output=json", q).stdout == run(
                "qemu-img", "map", "--output=json", v).stdout
    assert json.loads(run("qemu-img", "info", "--output=json", v).stdout)[
        "virtual-size"] == 1 * MiB + 512 * 1024 + 3 * MiB
    p = run(img, "convert", "-B", a.name, "-O", "qcow2", a, b, tmp_path / "x.qcow2",
            check=False)
    assert p.returncode == 1 and "-B" in p.stderr
    # -r: 2 MiB of data at 4 MiB/s takes half a second, the same bytes come out
    d = tmp_path / "d.raw"
    d.write_bytes(tag_bytes(0, 2 * MiB, 5))
    t = time.monotonic()
    run(img, "convert", "-r", "4M", "-f", "raw", "-O", "qcow2", d, tmp_path / "r.qcow2")
    assert time.monotonic() - t >= 0.45
    run("qemu-img", "compare", "-F", "raw", tmp_path / "r.qcow2", d)
    p = run(img, "convert", "-r", "x", "-f", "raw", "-O", "raw", d, tmp_path / "y.raw",
            check=False)
    assert p.returncode == 1 and "rate limit" in p.stderr


def test_convert_target_image_opts(build_dir, tmp_path):
    img, _ = tools(build_dir)
    src, out = tmp_path / "s.qcow2", tmp_path / "t.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", src, "1M")
    run("qemu-io", "-c", "write -P 1 0 64k", src)
    run("qemu-img", "create", "-q", "-f", "qcow2", out, "1M")
    spec = f"driver=qcow2,file.filename={out}"
    q, v = both(img, "convert", "--target-image-opts", src, spec)
    assert q.returncode == v.returncode == 1
    assert "--target-image-opts requires use of -n flag" in v.stderr
    run(img, "convert", "-n", "--target-image-opts", src, spec)
    run("qemu-img", "compare", src, out)
    run("qemu-img", "check", out)


def test_convert_salvage(build_dir, tmp_path):
    """--salvage: a compressed cluster that does not decompress is written as zeros (exit 0, a
    warning), the rest copied, as qemu-img does; without it the convert fails."""
    img, _ = tools(build_dir)
    src = tmp_path / "s.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", src, "1M")
    run("qemu-io", "-c", "write -P 1 0 64k", "-c", "write -c -P 5 64k 64k",
        "-c", "write -P 2 256k 64k", src)
    with open(src, "r+b") as f:
        h = f.read(104)
        (l1,) = struct.unpack(">Q", h[40:48])
        f.seek(l1)
        l2 = struct.unpack(">Q", f.read(8))[0] & 0x00FFFFFFFFFFFE00
        f.seek(l2 + 8)
        (e,) = struct.unpack(">Q", f.read(8))
        f.seek(e & ((1 << 54) - 1))  # 64 KiB clusters: 54 offset bits
        f.write(b"\xff" * 64)
    q, v = both(img, "convert", "-O", "raw", src, tmp_path / "x.raw")
    assert q.returncode == v.returncode == 1
    for extra in (["-O", "raw"], ["-O", "qcow2"], ["-c", "-O", "qcow2"]):
        ours, theirs = tmp_path / "o.img", tmp_path / "t.img"
        run("qemu-img", "convert", "--salvage", *extra, src, theirs)
        p = run(img, "convert", "--salvage", *extra, src, ours)
        assert "128 sectors could not be read" in p.stderr
        run("qemu-img", "compare", ours, theirs)


def test_commit_into_a_deeper_base(build_dir, tmp_path):
    """commit -b BASE: what the top and the images between hold goes into BASE (the same
    base as qemu-img's), -b implies -d; a base outside the chain is an error."""
    img, _ = tools(build_dir)

    def chain(d):
        d.mkdir()
        run("qemu-img", "create", "-q", "-f", "qcow2", d / "base.qcow2", "4M")
        run("qemu-io", "-c", "write -P 1 0 4M", d / "base.qcow2")
        run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "base.qcow2", "-F", "qcow2",
            d / "mid.qcow2")
        run("qemu-io", "-c", "write -P 2 1M 1M", "-c", "write -z 3M 64k", d / "mid.qcow2")
        run("qemu-img", "create", "-q", "-f", "qcow2", "-b", "mid.qcow2", "-F", "qcow2",
            d / "top.qcow2")
        run("qemu-io", "-c", "write -P 3 1536k 1M", d / "top.qcow2")
        return d

    q, v = chain(tmp_path / "q"), chain(tmp_path / "v")
    want = tmp_path / "want.raw"
    run("qemu-img", "convert", "-O", "raw", q / "top.qcow2", want)
    run("qemu-img", "commit", "-q", "-b", "base.qcow2", q / "top.qcow2")
    run(img, "commit", "-q", "-b", "base.qcow2", v / "top.qcow2")
    run("qemu-img", "compare", "-F", "raw", v / "base.qcow2", want)
    run("qemu-img", "compare", v / "base.qcow2", q / "base.qcow2")
    run("qemu-img", "check", v / "base.qcow2")
    run("qemu-img", "compare", "-F", "raw", v / "top.qcow2", want)  # not emptied
    # -b naming the direct backing file keeps the top too
    run(img, "commit", "-q", "-b", "mid.qcow2", v / "top.qcow2")
    run("qemu-img", "compare", "-F", "raw", v / "top.qcow2", want)
    assert '"depth": 0' in run("qemu-img", "map", "--output=json", v / "top.qcow2").stdout
    q2, v2 = both(img, "commit", "-b", "nope.qcow2", v / "top.qcow2")
    assert q2.returncode == v2.returncode == 1 and "nope.qcow2" in v2.stderr
