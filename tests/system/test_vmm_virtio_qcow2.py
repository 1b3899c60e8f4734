"""vireo-vmm's virtio-blk on qcow2 images (through the block library): our test guest's disk
checks on a qcow2 disk, on overlays over a raw backing file (chains of depth 2 and 3), and a
Debian guest's ext4 on a qcow2 disk with a compressed qcow2 as a read-only second disk.
Images are made by qemu-img on the host and judged by `qemu-img check`, `convert` and the
guest's own markers after the VMM has exited."""

from __future__ import annotations

import gzip
import hashlib
import os
import shutil
import subprocess
import tempfile

import pytest

from test_vmm_guest_virtio import device_lines, regions, sector_pattern
from test_vmm_virtio import DISK_MB, MARKER, disk_line, host_check_ext4, linux_virtio_cmd, \
    make_ext4_gz
from vireo_target import run_vm
from vmm import EXIT_POWEROFF, EXIT_STOPPED, guest_cmd, interact, run_guest, verdict

pytestmark = [
    pytest.mark.skipif(not shutil.which("qemu-img"),
                       reason="qemu-img is not installed on the host (Debian: qemu-utils)"),
]

DISK_MIB = 2  # the test guest's disk: room for its five regions
BASE_BYTE = b"B"  # what the raw backing file holds where the guest did not write


def qemu_img(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["qemu-img", *args], capture_output=True, text=True, timeout=120)


def put(target, host_path: str, box_dir: str) -> str:
    """Copy a host file into the target (gzip'd for the trip); returns its path there."""
    name = os.path.basename(host_path)
    with open(host_path, "rb") as f:
        target.write_file(f"{box_dir}/{name}.gz", gzip.compress(f.read(), 6))
    target.check(f"gunzip -f {box_dir}/{name}.gz", 60)
    return f"{box_dir}/{name}"


def fetch(target, box_path: str, host_dir: str) -> str:
    """Copy a file out of the target into host_dir; returns the host path."""
    target.check(f"gzip -c {box_path} > {box_path}.out.gz", 60)
    host_path = os.path.join(host_dir, os.path.basename(box_path))
    with open(host_path, "wb") as f:
        f.write(gzip.decompress(target.read_file(f"{box_path}.out.gz")))
    return host_path


def md5_in(target, path: str) -> str:
    return target.check(f"md5sum < {path}", 30).split()[0]


def check_clean(path: str) -> None:
    r = qemu_img("check", "-f", "qcow2", path)
    assert r.returncode == 0 and "No errors were found" in r.stdout, r.stdout + r.stderr


def guest_view(path: str) -> bytes:
    """The disk as a guest sees it (backing chain included), through qemu-img."""
    out = path + ".view.raw"
    r = qemu_img("convert", "-O", "raw", path, out)
    assert r.returncode == 0, r.stderr
    with open(out, "rb") as f:
        return f.read()


def check_guest_pattern(console: str, data: bytes, untouched: bytes | None = None) -> None:
    """The guest's pattern where it says it wrote it, zeros where it zeroed, and (with
    `untouched`: the disk before the run) the old content everywhere it did not touch."""
    written, zeroed = regions(console, "pattern"), regions(console, "zeroes")
    discarded = regions(console, "discarded")
    assert len(written) >= 3, console
    for start, count in written:
        if any(z[0] == start for z in zeroed):
            continue
        for s in range(start, start + count):
            assert data[s * 512:(s + 1) * 512] == sector_pattern(s), f"sector {s}"
    for start, count in zeroed:
        assert data[start * 512:(start + count) * 512] == bytes(count * 512), f"zeroes {start}"
    if untouched is None:
        return
    touched = set()
    for start, count in written + zeroed + discarded:
        touched.update(range(start, start + count))
    for s in range(len(data) // 512):
        if s not in touched:
            assert data[s * 512:(s + 1) * 512] == untouched[s * 512:(s + 1) * 512], \
                f"sector {s} changed"


def run_test_guest(target, path: str, serial: str):
    cmd = guest_cmd(target, words=f"virtio-blk blk-serial={serial}",
                    extra=("--no-reboot", "--disk", f"path={path},serial={serial}"))
    res = run_guest(target, cmd)
    assert verdict(res).startswith("VIREO-GUEST: PASS"), res.report()
    assert device_lines(res.console).get("blk", "").startswith("PASS"), res.report()
    assert res.rc == EXIT_POWEROFF, res.report()
    assert "I/O error" not in res.console, res.report()
    return res


@pytest.fixture
def work(target):
    d = tempfile.mkdtemp(prefix="vireo-qcow2-")
    box_dir = f"{target.tmpdir}/qcow2-{os.path.basename(d)}"
    yield d, box_dir
    shutil.rmtree(d, ignore_errors=True)
    target.run(f"rm -rf {box_dir}", 30)


@pytest.mark.asan
def test_guest_on_qcow2_disk(target, work):
    host, box = work
    img = os.path.join(host, "disk.qcow2")
    assert qemu_img("create", "-q", "-f", "qcow2", img, f"{DISK_MIB}M").returncode == 0
    res = run_test_guest(target, put(target, img, box), "QCOW2-SN-1")
    out = fetch(target, f"{box}/disk.qcow2", host)
    check_clean(out)
    check_guest_pattern(res.console, guest_view(out), bytes(DISK_MIB << 20))


@pytest.mark.asan
@pytest.mark.parametrize("depth", [2, 3])
def test_guest_on_qcow2_overlay_over_raw(target, work, depth):
    """base.raw <- [mid.qcow2 <-] top.qcow2: the guest writes the top; the lower layers stay
    as they were and show through where the guest did not write."""
    host, box = work
    base = os.path.join(host, "base.raw")
    with open(base, "wb") as f:
        f.write(BASE_BYTE * (DISK_MIB << 20))
    below, fmt = "base.raw", "raw"
    if depth == 3:
        mid = os.path.join(host, "mid.qcow2")
        assert qemu_img("create", "-q", "-f", "qcow2", "-b", "base.raw", "-F", "raw",
                        mid).returncode == 0
        # A layer of its own: the last 64 KiB come from the middle image.
        r = subprocess.run(["qemu-io", "-f", "qcow2", "-c",
                            f"write -P 0x4d {(DISK_MIB << 20) - 65536} 65536", mid],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        below, fmt = "mid.qcow2", "qcow2"
    top = os.path.join(host, "top.qcow2")
    assert qemu_img("create", "-q", "-f", "qcow2", "-b", below, "-F", fmt,
                    top).returncode == 0
    before = guest_view(top)
    lower = [put(target, os.path.join(host, n), box) for n in
             (["base.raw"] + (["mid.qcow2"] if depth == 3 else []))]
    sums = {p: md5_in(target, p) for p in lower}
    res = run_test_guest(target, put(target, top, box), f"QCOW2-CHAIN-{depth}")
    for p, s in sums.items():
        assert md5_in(target, p) == s, f"{p}: a backing file was written"
    out = fetch(target, f"{box}/top.qcow2", host)  # next to the host's copies of the lower ones
    check_clean(out)
    check_guest_pattern(res.console, guest_view(out), before)


@pytest.mark.asan
def test_sigkilled_vmm_leaves_flushed_qcow2(target, work):
    """The guest flushes after its writes and then waits (powerbutton): a SIGKILLed VMM must
    leave an image qemu-img calls clean (or only leaking) with every flushed sector in it."""
    host, box = work
    img = os.path.join(host, "killed.qcow2")
    assert qemu_img("create", "-q", "-f", "qcow2", img, f"{DISK_MIB}M").returncode == 0
    path = put(target, img, box)
    cmd = guest_cmd(target, words="virtio-blk powerbutton",
                    extra=("--no-reboot", "--disk", f"path={path}"))
    rc, out = interact(target, cmd, [("VIREO-GUEST: PASS", "sleep 0.5; kill -KILL $pid")],
                       timeout=60)
    assert rc == 128 + 9, out
    got = fetch(target, path, host)
    r = qemu_img("check", "-f", "qcow2", got)
    assert r.returncode in (0, 3) and "ERROR" not in r.stdout, r.stdout + r.stderr
    check_guest_pattern(out, guest_view(got), bytes(DISK_MIB << 20))


@pytest.mark.asan
def test_qcow2_disk_over_reboots(target, work):
    """Each reboot closes the image (flushed) and opens it again: the guest's checks pass at
    every boot; SIGTERM ends the VMM and leaves a clean image."""
    host, box = work
    img = os.path.join(host, "reboot.qcow2")
    assert qemu_img("create", "-q", "-f", "qcow2", img, f"{DISK_MIB}M").returncode == 0
    path = put(target, img, box)
    cmd = guest_cmd(target, words="virtio-blk reset", extra=("--disk", f"path={path}"))
    rc, out = interact(target, cmd, [("VIREO-GUEST: PASS", "")], timeout=60, finish=(
        "i=0; while [ $(grep -c 'VIREO-GUEST: PASS' \"$w/out\") -lt 3 ] && [ $i -lt 300 ]; "
        "do sleep 0.2; i=$((i+1)); done; kill -TERM $pid; sleep 0.5; kill -TERM $pid"))
    assert out.count("VIREO-GUEST: PASS") >= 3, out
    assert "VIREO-GUEST: FAIL" not in out and "I/O error" not in out, out
    assert rc == EXIT_STOPPED, out
    got = fetch(target, path, host)
    check_clean(got)
    check_guest_pattern(out, guest_view(got), None)


def test_linux_ext4_on_qcow2_and_compressed_readonly_disk(target, work):
    """A Debian guest mounts ext4 on a qcow2 disk (probed), writes, syncs, reads back and
    powers off; the image is clean and holds the files.  vdb is a compressed qcow2
    (qemu-img convert -c), read-only: the guest's write is refused and its label reads back."""
    host, box = work
    raw = os.path.join(host, "ext4.raw")
    with open(raw, "wb") as f:
        f.write(gzip.decompress(make_ext4_gz()))
    img = os.path.join(host, "ext4.qcow2")
    assert qemu_img("convert", "-O", "qcow2", raw, img).returncode == 0
    label = b"COMPRESSED-QCOW2"
    ro_raw = os.path.join(host, "label.raw")
    with open(ro_raw, "wb") as f:
        f.write(label + bytes(range(256)) * 4096)  # 1 MiB and a bit: not all zeros
        f.truncate(2 << 20)
    ro = os.path.join(host, "label.qcow2")
    assert qemu_img("convert", "-c", "-O", "qcow2", ro_raw, ro).returncode == 0
    assert "100.00% compressed clusters" in qemu_img("check", ro).stdout
    disk, ro_box = put(target, img, box), put(target, ro, box)
    ro_sum = md5_in(target, ro_box)
    devices = ["--disk", f"path={disk},serial=QCOW2-EXT4",
               "--disk", f"path={ro_box},format=qcow2,readonly=on"]
    res = run_vm(target, linux_virtio_cmd(target, target.guest.vmlinuz, devices),
                 marker=MARKER, deadline=150)
    m = res.markers()
    assert res.rc == EXIT_POWEROFF, res.report()
    assert disk_line(res, "vda").startswith(f"size={DISK_MB * 2048} ro=0 serial=QCOW2-EXT4"), \
        res.report()
    assert disk_line(res, "vdb").startswith(f"size={2 << 11} ro=1"), res.report()
    assert m.get("vda-hello") == "hello-from-host", res.report()
    assert m.get("vda-readback") == "written-by-guest pattern=0e93c6f23779bfe50d0f24cf61c9be59", \
        res.report()
    assert m.get("vda-umount") == "ok", res.report()
    assert m.get("vdb-write") == "refused", res.report()
    assert m.get("vdb-read") == label.decode(), res.report()
    assert "needs a reset" not in res.console and "I/O error" not in res.console, res.report()
    assert md5_in(target, ro_box) == ro_sum, "the read-only compressed disk changed"

    out = fetch(target, disk, host)
    check_clean(out)
    fsck, guest_txt = host_check_ext4(guest_view(out))
    assert fsck.startswith("rc=0"), fsck
    assert guest_txt == "written-by-guest\n", guest_txt
    debugfs = shutil.which("debugfs") or "/usr/sbin/debugfs"
    pattern = subprocess.run([debugfs, "-R", "cat /pattern", out + ".view.raw"],
                             capture_output=True, timeout=60).stdout
    assert hashlib.md5(pattern).hexdigest() == "0e93c6f23779bfe50d0f24cf61c9be59"
