"""vireo-img convert of a raw source into a new image: runs of new clusters are allocated
and reserved on the host (fallocate) with one call each, then written; zero clusters (holes
of the source, zeros stored as data) are not stored, as qemu-img's default -S 4k: both tools
allocate the same clusters.  Into a raw file, each data range copied from an image is
reserved the same way before copy_file_range fills it."""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
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
    # LeakSanitizer (an ASan build) refuses to run under ptrace; leaks are not what is traced
    env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0")
    p = subprocess.run(["strace", "-f", "-e", "trace=" + calls, *map(str, cmd)],
                       capture_output=True, text=True, timeout=120, env=env)
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


def test_fresh_runs_are_reserved_in_one_call(build_dir, tmp_path):
    """Each run of new clusters is reserved with one fallocate before its write (ext4 then
    skips its per-block delayed allocation); the image stays the same."""
    img, _ = tools(build_dir)
    src = tmp_path / "src.raw"
    data = write_source(src, 9 * MiB + 3 * KiB + 512)
    out = tmp_path / "o.qcow2"
    trace = strace_calls([img, "convert", "-f", "raw", "-O", "qcow2", src, out],
                         "fallocate,pwrite64")
    lines = trace.splitlines()
    reserved = [line for line in lines if "fallocate(" in line and ", 0, " in line]
    assert reserved, "no run of clusters was reserved:\n" + trace
    # the biggest data write went into space reserved just before it
    big = max((line for line in lines if "pwrite64(" in line),
              key=lambda line: int(line.rsplit(", ", 2)[1]))
    assert lines[lines.index(big) - 1] in reserved, trace
    qemu_check_clean(out)
    assert to_raw_qemu(out, tmp_path / "back.raw") == data


def test_qcow2_to_raw_reserves_before_copying(build_dir, tmp_path):
    img, _ = tools(build_dir)
    src = tmp_path / "src.raw"
    data = write_source(src, 9 * MiB + 3 * KiB + 512)
    q = tmp_path / "src.qcow2"
    run("qemu-img", "convert", "-f", "raw", "-O", "qcow2", src, q)
    out = tmp_path / "o.raw"
    trace = strace_calls([img, "convert", "-f", "qcow2", "-O", "raw", q, out],
                         "fallocate,copy_file_range")
    lines = [line for line in trace.splitlines() if "fallocate(" in line or
             "copy_file_range(" in line]
    copies = [i for i, line in enumerate(lines) if "copy_file_range(" in line]
    assert copies, trace
    assert all(i > 0 and "fallocate(" in lines[i - 1] for i in copies), trace
    assert out.read_bytes() == data
    # only the data is reserved: the holes of the source stay holes
    assert os.stat(out).st_blocks * 512 < len(data) - 2 * MiB


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


@pytest.mark.parametrize("opts", [["-O", "qcow2"], ["-O", "qcow2", "-o", "cluster_size=4k"],
                                  ["-O", "raw"], ["-O", "qcow2", "-S", "0"]])
def test_two_threads_write_what_one_does(build_dir, tmp_path, opts):
    """A raw source is converted by two threads taking chunks in turn: the output is the same,
    byte for byte, as VIREO_IMG_ONE_THREAD=1's (chunks written in disk order)."""
    img, _ = tools(build_dir)
    src = tmp_path / "src.raw"
    data = write_source(src, 9 * MiB + 3 * KiB + 512)
    outs = []
    for one in (False, True):
        out = tmp_path / f"o{int(one)}.img"
        env = dict(os.environ)
        env.pop("VIREO_IMG_ONE_THREAD", None)
        if one:
            env["VIREO_IMG_ONE_THREAD"] = "1"
        p = subprocess.run([img, "convert", "-f", "raw", *opts, str(src), str(out)], env=env,
                           capture_output=True, text=True, timeout=120)
        assert p.returncode == 0, p.stderr
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]
    if opts[1] == "qcow2":
        assert to_raw_qemu(tmp_path / "o0.img", tmp_path / "back.raw") == data
    else:
        assert outs[0] == data


def test_raw_source_is_read_by_two_threads(build_dir, tmp_path):
    img, _ = tools(build_dir)
    src = tmp_path / "src.raw"
    write_source(src, 9 * MiB + 3 * KiB + 512)
    trace = strace_calls([img, "convert", "-f", "raw", "-O", "qcow2", src,
                          tmp_path / "o.qcow2"], "pread64")
    readers = {line.split("]")[0] for line in trace.splitlines()
               if "pread64(" in line and line.startswith("[pid")}
    assert len(readers) == 2, "not two threads reading the source:\n" + trace


def test_two_threads_into_an_existing_image(build_dir, tmp_path):
    """-n: zeros of the source are written as zeroes over old data, in both threads' chunks."""
    img, _ = tools(build_dir)
    src = tmp_path / "src.raw"
    data = write_source(src, 9 * MiB + 3 * KiB + 512)
    out = tmp_path / "o.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", out, str(len(data)))
    run("qemu-io", "-c", f"write -P 0x77 0 {len(data)}", out)
    run(img, "convert", "-n", "-f", "raw", "-O", "qcow2", src, out)
    qemu_check_clean(out)
    assert to_raw_qemu(out, tmp_path / "back.raw") == data


@pytest.mark.parametrize("limit", [3 * MiB, 9 * MiB // 2])
def test_write_error_in_either_thread_fails_cleanly(build_dir, tmp_path, limit):
    """The output cannot grow past `limit` (RLIMIT_FSIZE: EFBIG), which the writes of the
    second chunk (the second thread's) or of the third (the first's) reach: an error naming the
    image, exit status 1, no hang."""
    img, _ = tools(build_dir)
    src = tmp_path / "src.raw"
    write_source(src, 9 * MiB + 3 * KiB + 512)
    out = tmp_path / "o.qcow2"

    def small_files():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)

    p = subprocess.run([img, "convert", "-f", "raw", "-O", "qcow2", str(src), str(out)],
                       capture_output=True, text=True, timeout=60, preexec_fn=small_files)
    assert p.returncode == 1, p.stderr
    assert str(out) in p.stderr and "cannot write" in p.stderr, p.stderr
