"""virtio over PCI in vireo-vmm with the Debian kernel's own drivers: an ext4 file system on
virtio-blk written by the guest and checked on the host after the VM exits, a read-only disk
that refuses writes, cache=none on a block device with two queues, INTx instead of MSI-X,
/dev/hwrng from virtio-rng, hvc0 output reaching its --console backend, virtio-net on a
bridged tap talking to a peer in another network namespace; and bad --disk/--net options
giving one clear line and exit status 2 (no guest needed)."""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import tempfile

import pytest

from vmm import EXIT_POWEROFF, EXIT_STOPPED, EXIT_USAGE, guest_cmd, guest_elf, interact, vmm_cmd

from vireo_target import run_vm

MARKER = "VIREO-LINUX: virtio-done"
DISK_MB = 16


def make_ext4_gz() -> bytes:
    """A small ext4 image with /hello.txt, made on the host, gzipped for the trip to the box."""
    mkfs = shutil.which("mkfs.ext4") or "/usr/sbin/mkfs.ext4"
    if not os.access(mkfs, os.X_OK):
        pytest.skip("mkfs.ext4 (e2fsprogs) is not installed")
    with tempfile.TemporaryDirectory() as d:
        os.mkdir(f"{d}/root")
        with open(f"{d}/root/hello.txt", "w") as f:
            f.write("hello-from-host\n")
        img = f"{d}/disk.img"
        with open(img, "wb") as f:
            f.truncate(DISK_MB << 20)
        subprocess.run([mkfs, "-q", "-F", "-d", f"{d}/root", img], check=True)
        with open(img, "rb") as f:
            return gzip.compress(f.read(), 6)


def host_check_ext4(image: bytes) -> tuple[str, str]:
    """e2fsck -fn and the content of /guest.txt, run on the host."""
    for tool in ("e2fsck", "debugfs"):
        if not (shutil.which(tool) or os.access(f"/usr/sbin/{tool}", os.X_OK)):
            pytest.skip(f"{tool} (e2fsprogs) is not installed")
    with tempfile.TemporaryDirectory() as d:
        img = f"{d}/disk.img"
        with open(img, "wb") as f:
            f.write(image)
        fsck = subprocess.run(["e2fsck", "-fn", img], capture_output=True, text=True)
        cat = subprocess.run(["debugfs", "-R", "cat /guest.txt", img], capture_output=True,
                             text=True)
        return f"rc={fsck.returncode}\n{fsck.stdout}{fsck.stderr}", cat.stdout


@pytest.fixture(scope="module")
def disks(target):
    """In the target: disk.img (ext4 with hello.txt) and ro.img (starts with a label)."""
    d = f"{target.tmpdir}/virtio"
    target.write_file(f"{d}/disk.img.gz", make_ext4_gz())
    target.check(f"cd {d} && gunzip -c disk.img.gz > disk.img && printf READONLY-DISK-OK > ro.img && "
                 f"dd if=/dev/zero of=ro.img bs=1 count=0 seek=1048576 2>/dev/null", 60)
    return d


def linux_virtio_cmd(target, kernel: str, devices: list[str], append: str = "",
                     cpus: int = 1) -> str:
    return vmm_cmd(target, "--kernel", kernel, "--initrd", target.guest.initramfs, "--memory",
                   "384M", "--cpus", str(cpus), "--no-reboot", "--cmdline",
                   f"console=ttyS0 quiet vireo.test=virtio {append}".strip(), *devices)


def disk_line(res, name: str) -> str:
    """The rest of the guest's `VIREO-LINUX: vda: size=...` (or `eth0: ...`) line."""
    for line in res.console.splitlines():
        i = line.find(f"VIREO-LINUX: {name}: ")
        if i >= 0:
            return line[i + len(f"VIREO-LINUX: {name}: "):].strip()
    return ""


def check_common(res, msix: bool):
    m = res.markers()
    assert res.rc == EXIT_POWEROFF, res.report()
    assert m.get("vda-hello") == "hello-from-host", res.report()
    # 1 MiB of `yes 0123456789abcdef`, read back after dropping the guest's caches.
    assert m.get("vda-readback") == "written-by-guest pattern=0e93c6f23779bfe50d0f24cf61c9be59", \
        res.report()
    assert m.get("vda-umount") == "ok", res.report()
    assert m.get("hwrng", "").startswith("virtio_rng.0 bytes=4096"), res.report()
    # 4096 random bytes take (nearly) every byte value; zeros or a short read would not.
    assert int(m["hwrng"].split("distinct=")[1]) > 200, res.report()
    assert m.get("hvc0") == "written", res.report()
    irqs = int(m.get("msix_irqs", "-1"))
    assert (irqs > 0) if msix else (irqs == 0), res.report()
    assert "needs a reset" not in res.console, res.report()
    return m


NET_SETUP = r"""
set -e
for t in brctl unshare nsenter nc; do command -v $t >/dev/null || { echo "MISSING $t"; exit 0; }; done
[ -c /dev/net/tun ] || { echo "MISSING /dev/net/tun"; exit 0; }
brctl addbr vbr0 2>/dev/null || { echo "MISSING bridge support"; exit 0; }
ip link set vbr0 up
ip link add vpeer0 type veth || { brctl delbr vbr0; echo "MISSING veth support"; exit 0; }
peer=$(ip -o link | sed -n 's/^[0-9]*: \([^@:]*\)@vpeer0.*/\1/p')
brctl addif vbr0 vpeer0
ip link set vpeer0 up
unshare -n sleep 600 </dev/null >/dev/null 2>&1 &
ns=$!
sleep 0.3
ip link set "$peer" netns $ns
i=0; while [ $i -lt 4096 ]; do printf '%016d' $i; i=$((i + 1)); done > {d}/pattern.bin
nsenter -t $ns -n sh -c "ip link set lo up; ip addr add 10.0.2.2/24 dev $peer; ip link set $peer up;
    nc -l -p 5555 < {d}/pattern.bin >/dev/null 2>&1 &
    (sleep 300 &) | nc -l -p 5556 > {d}/received.bin 2>/dev/null &" </dev/null >/dev/null 2>&1
echo "NS $ns"
"""

NET_TEARDOWN = "kill {ns} 2>/dev/null; ip link del vpeer0 2>/dev/null; ip link set vbr0 down; " \
               "brctl delbr vbr0; pkill -f 'nc -l -p 555' 2>/dev/null; true"


def net_setup(target, d) -> str | None:
    """A bridge with a peer in its own network namespace (10.0.2.2, TCP servers on 5555 and
    5556); returns the namespace's pid, or None (with a note) where that cannot be built."""
    if target.where != "box":
        target.note("virtio-net: tap, bridge and network namespace need root: box only")
        return None
    out = target.check(NET_SETUP.replace("{d}", d), 60)
    if "MISSING" in out:
        target.note(f"virtio-net not tested: {out.strip()}")
        return None
    return out.split("NS ")[1].split()[0]


def test_virtio_blk_rng_console_net(target, disks):
    """bzImage, MSI-X: a writeback file disk, a read-only disk, rng, console to a file, and
    virtio-net on a tap the VMM creates, bridged to a peer in another network namespace
    (ping, 64 KiB over TCP each way: checksum/TSO offloads, mergeable buffers)."""
    d = disks
    ns = net_setup(target, d)
    devices = [
        "--disk", f"path={d}/disk.img,serial=VIREO-SER-1",
        "--disk", f"path={d}/ro.img,readonly=on",
        "--rng",
        "--console", f"file:{d}/hvc.out",
    ]
    attach = ""
    if ns:
        devices += ["--net", "tap=vtap0,mac=52:54:00:ab:cd:ef"]
        # The VMM creates tap vtap0; it joins the bridge as soon as it exists.
        attach = ("(i=0; while [ $i -lt 300 ]; do brctl addif vbr0 vtap0 2>/dev/null && break; "
                  "i=$((i + 1)); sleep 0.1; done) & exec ")
    try:
        res = run_vm(target, attach + linux_virtio_cmd(target, target.guest.vmlinuz, devices),
                     marker=MARKER, deadline=150)
        if ns:
            received = target.run(f"md5sum < {d}/received.bin", 30)[1].split()[0]
            expected = target.run(f"md5sum < {d}/pattern.bin", 30)[1].split()[0]
    finally:
        if ns:
            target.run(NET_TEARDOWN.format(ns=ns), 30)
    m = check_common(res, msix=True)
    assert disk_line(res, "vda").startswith(
        f"size={DISK_MB * 2048} ro=0 serial=VIREO-SER-1 lbs=512"), res.report()
    assert disk_line(res, "vdb").startswith("size=2048 ro=1"), res.report()
    assert m.get("vdb-write") == "refused", res.report()
    assert m.get("vdb-read") == "READONLY-DISK-OK", res.report()
    # The guest's tty adds a carriage return (onlcr).
    assert target.read_file(f"{d}/hvc.out") == b"VIREO-HVC: hello from hvc0\r\n"
    # The file system as the guest left it, judged on the host.
    target.check(f"gzip -c {d}/disk.img > {d}/after.img.gz", 60)
    fsck, guest_txt = host_check_ext4(gzip.decompress(target.read_file(f"{d}/after.img.gz")))
    assert fsck.startswith("rc=0"), fsck
    assert guest_txt == "written-by-guest\n", guest_txt
    if ns:
        assert disk_line(res, "eth0") == "mac=52:54:00:ab:cd:ef carrier=1", res.report()
        assert m.get("ping") == "3", res.report()
        assert m.get("tcp-in") == f"{expected} bytes=65536", res.report()
        assert m.get("tcp-out") == expected, res.report()
        assert received == expected, res.report()


def test_virtio_cache_none_block_device_intx(target, disks):
    """PVH entry, cache=none on a loop block device with two queues, INTx (pci=nomsi)."""
    d = disks
    rc, out = target.run(f"gunzip -c {d}/disk.img.gz > {d}/loop.img && "
                         f"dev=$(losetup -f) && losetup $dev {d}/loop.img && echo $dev", 30)
    if rc or not out.strip().startswith("/dev/loop"):
        pytest.skip(f"no loop device in the target: {out.strip()}")
    loop = out.strip().splitlines()[-1]
    try:
        cmd = linux_virtio_cmd(target, target.guest.vmlinux, [
            "--disk", f"path={loop},cache=none,num-queues=2",
            "--rng=rate=65536",
            "--console", f"file:{d}/hvc2.out",
        ], append="pci=nomsi", cpus=2)  # Linux uses one queue per CPU at most
        res = run_vm(target, cmd, marker=MARKER, deadline=240)
    finally:
        target.run(f"losetup -d {loop}", 30)
    m = check_common(res, msix=False)
    assert disk_line(res, "vda").endswith("queues=2"), res.report()
    target.check(f"gzip -c {d}/loop.img > {d}/loop-after.img.gz", 60)
    fsck, guest_txt = host_check_ext4(gzip.decompress(target.read_file(f"{d}/loop-after.img.gz")))
    assert fsck.startswith("rc=0"), fsck
    assert guest_txt == "written-by-guest\n", guest_txt


def run_bad(target, *args):
    rc, out = target.run(vmm_cmd(target, *args) + " </dev/null", 60)
    lines = [l for l in out.splitlines() if l.strip() and "kvm-pvm" not in l]
    return rc, lines


BAD = [
    # A qcow2 header goes to the block library, never to the guest as raw data.
    ("broken qcow2", ["--disk", "path={d}/x.qcow2"],
     "vireo-vmm: disk 'vda': {d}/x.qcow2: not a qcow2 image (file too short for a header"),
    ("unknown format", ["--disk", "path={d}/ro.img,format=vmdk"],
     "disk 'vda': {d}/ro.img: unknown format 'vmdk' (supported: raw, qcow2, luks)"),
    ("raw as qcow2", ["--disk", "path={d}/ro.img,format=qcow2"],
     "disk 'vda': {d}/ro.img: not a qcow2 image"),
    ("missing file", ["--disk", "path={d}/nope.img"], "{d}/nope.img: No such file or directory"),
    ("no path", ["--disk", "readonly=on"], "--disk: no path=FILE given"),
    ("bad cache", ["--disk", "path={d}/ro.img,cache=fast"], "cache=fast: expected none or writeback"),
    ("unknown key", ["--disk", "path={d}/ro.img,colour=red"], "unknown key 'colour'"),
    ("not key=value", ["--disk", "{d}/ro.img"], "is not KEY=VALUE"),
    ("long serial", ["--disk", "path={d}/ro.img,serial=" + "s" * 21], "at most 20 characters"),
    ("queues", ["--disk", "path={d}/ro.img,num-queues=0"], "num-queues=0: expected 1 to 8"),
    ("bad readonly", ["--disk", "path={d}/ro.img,readonly=maybe"], "readonly=maybe"),
    ("directory", ["--disk", "path={d}"], "{d}: Is a directory"),
    ("rng rate", ["--rng=rate=fast"], "expected rate=BYTES_PER_SECOND"),
    ("console kind", ["--console", "tty"], "--console 'tty'"),
    ("two stdio", ["--console", "stdio"], "already on stdio"),
    ("net without tap", ["--net", "mac=52:54:00:00:00:01"], "exactly one of tap=NAME or fd=N"),
    ("net bad mac", ["--net", "tap=t0,mac=01:00:00:00:00:01"], "expected a unicast address"),
    ("net not a tap", ["--net", "fd=0"], "fd=0: expected an open file descriptor"),
]


@pytest.mark.asan
@pytest.mark.parametrize("name,args,expect", BAD, ids=[b[0] for b in BAD])
def test_virtio_bad_options(target, disks, name, args, expect):
    d = disks
    target.check(f"printf 'QFI\\373\\0\\0\\0\\3' > {d}/x.qcow2", 30)
    args = [a.format(d=d) for a in args]
    rc, lines = run_bad(target, "--kernel", guest_elf(target), *args)
    assert rc == EXIT_USAGE, lines
    assert len(lines) == 1, lines
    assert expect.format(d=d) in lines[0], lines


@pytest.mark.asan
def test_virtio_devices_survive_reboots(target, disks):
    """The I/O thread and the devices go and come back with each boot: our test guest resets
    itself, vireo-vmm boots it again with the same disk, rng and console; SIGTERM twice ends
    it."""
    d = disks
    cmd = guest_cmd(target, words="reset", extra=(
        "--disk", f"path={d}/ro.img,readonly=on", "--rng", "--console", f"file:{d}/hvc3.out"))
    rc, out = interact(target, cmd, [("VIREO-GUEST: PASS", "")], finish=(
        "i=0; while [ $(grep -c 'test guest starting' \"$w/out\") -lt 3 ] && [ $i -lt 300 ]; "
        "do sleep 0.2; i=$((i+1)); done; kill -TERM $pid; sleep 0.5; kill -TERM $pid"))
    assert out.count("test guest starting") >= 3, out
    # The guest lists the PCI functions at every boot (the last boot may be cut short).
    assert out.count("1af4:1042") >= 2 and out.count("1af4:1044") >= 2, out
    assert "needs a reset" not in out and "error" not in out.lower(), out
    assert rc == EXIT_STOPPED, out
