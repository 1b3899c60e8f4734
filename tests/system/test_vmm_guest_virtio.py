"""vireo-vmm's virtio-pci devices driven by our test guest (guest/virtio_*.c): the scenarios
of test_guest_virtio_qemu.py (where QEMU's devices are the reference), on vireo-vmm's
`--disk path=FILE[,readonly=on][,serial=S]`, `--rng`, `--console file:PATH` and
`--net tap=NAME`, plus the hostile guest in strict mode: every malformed chain must put the
device into DEVICE_NEEDS_RESET, and the VMM must keep serving."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

import vireo_target
from vmm import EXIT_POWEROFF, guest_cmd, interact, q, run_guest, verdict


def _vmm_help() -> str:
    path = os.path.join(vireo_target.build_dir(), "src", "vmm", "vireo-vmm")
    try:
        r = subprocess.run([path, "--help"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return r.stdout + r.stderr


_HELP = _vmm_help()
pytestmark = [
    pytest.mark.asan,
    pytest.mark.skipif("--disk" not in _HELP,
                       reason="vireo-vmm has no virtio devices yet (--disk missing from --help)"),
]
needs_net = pytest.mark.skipif("--net" not in _HELP,
                               reason="vireo-vmm has no virtio-net yet (--net missing from --help)")

CONSOLE_MARKER = b"VIREO-CONSOLE: hello from the vireo test guest\n"
DISK_MIB = 2  # 4096 sectors: room for the guest's five regions
TAP = "vireotap0"


def sector_pattern(sector: int) -> bytes:
    """What the guest writes to a sector (see guest/virtio_blk.c)."""
    return (b"VIREOBLK" + sector.to_bytes(8, "little") +
            bytes((sector * 31 + i) & 0xff for i in range(16, 512)))


def regions(console: str, kind: str) -> list[tuple[int, int]]:
    return [(int(s), int(n)) for s, n in
            re.findall(rf"virtio-blk: {kind} sectors (\d+)\+(\d+)", console)]


def device_lines(console: str) -> dict[str, str]:
    res = {}
    for l in console.splitlines():
        m = re.search(r"VIREO-VIRTIO: (\w+) (PASS|FAIL)(.*)", l)
        if m:
            res[m.group(1)] = m.group(2) + m.group(3)
    return res


def make_disk(target, name: str, fill: str = "") -> str:
    """A raw image of DISK_MIB MiB in the target: zeros, or every byte `fill`."""
    path = f"{target.tmpdir}/{name}"
    tr = f" | tr '\\000' {q(fill)}" if fill else ""
    target.check(f"dd if=/dev/zero bs=1M count={DISK_MIB} 2>/dev/null{tr} > {q(path)}", 60)
    return path


def test_guest_drives_virtio_devices(target):
    img, con = make_disk(target, "virtio-rw.img"), f"{target.tmpdir}/virtio-console.out"
    cmd = guest_cmd(target, words="virtio-blk blk-serial=VIREO-SN-1 virtio-rng virtio-console",
                    extra=("--no-reboot", "--disk", f"path={img},serial=VIREO-SN-1", "--rng",
                           "--console", f"file:{con}"))
    res = run_guest(target, cmd)
    assert verdict(res).startswith("VIREO-GUEST: PASS"), res.report()
    assert "virtio=blk,rng,console" in verdict(res), res.report()
    lines = device_lines(res.console)
    for dev in ("blk", "rng", "console"):
        assert lines.get(dev, "").startswith("PASS"), f"{dev}: {lines}\n{res.report()}"
    assert "pass 2: indirect descriptors, event-idx on" in res.console, res.report()
    assert re.search(r"queue 0: \d+ completions, [1-9]\d* MSI-X interrupts", res.console), \
        res.report()
    assert res.rc == EXIT_POWEROFF, res.report()

    data = target.read_file(img)
    written, zeroed = regions(res.console, "pattern"), regions(res.console, "zeroes")
    assert len(written) >= 3, res.report()
    for start, count in written:
        if any(z[0] == start for z in zeroed):
            continue
        for s in range(start, start + count):
            assert data[s * 512:(s + 1) * 512] == sector_pattern(s), f"sector {s}"
    for start, count in zeroed:
        assert data[start * 512:(start + count) * 512] == bytes(count * 512)
    assert CONSOLE_MARKER in target.read_file(con)


def test_readonly_disk_refuses_writes(target):
    img = make_disk(target, "virtio-ro.img", "Z")
    cmd = guest_cmd(target, words="virtio-blk=ro",
                    extra=("--no-reboot", "--disk", f"path={img},readonly=on"))
    res = run_guest(target, cmd)
    assert verdict(res).startswith("VIREO-GUEST: PASS"), res.report()
    assert device_lines(res.console).get("blk", "").startswith("PASS"), res.report()
    assert "refused with IOERR" in res.console, res.report()
    assert target.read_file(img) == b"Z" * (DISK_MIB << 20), "the read-only disk changed"


def test_guest_fails_on_wrong_serial(target):
    # The guest's checks can fail on vireo-vmm too.
    img = make_disk(target, "virtio-serial.img")
    cmd = guest_cmd(target, words="virtio-blk blk-serial=EXPECTED",
                    extra=("--no-reboot", "--disk", f"path={img},serial=OTHER"))
    res = run_guest(target, cmd)
    assert verdict(res).startswith("VIREO-GUEST: FAIL virtio-blk: serial 'OTHER'"), res.report()


def test_hostile_virtio_guest_leaves_vmm_alive(target):
    img, con = make_disk(target, "virtio-hostile.img"), f"{target.tmpdir}/virtio-hostile.out"
    cmd = guest_cmd(target, words="virtio-hostile=strict",
                    extra=("--no-reboot", "--disk", f"path={img}", "--rng", "--console",
                           f"file:{con}"))
    res = run_guest(target, cmd, deadline=180)
    lines = [l for l in res.console.splitlines() if "VIREO-VIRTIO: hostile " in l]
    # strict: every malformed chain must end in DEVICE_NEEDS_RESET, on every device.
    assert any("hostile PASS devices=3 strict" in l for l in lines), res.report()
    for l in lines[:-1]:
        assert re.search(r"loop=reset,long=reset,outside=reset,direction=reset,jump=reset", l), \
            res.report()
    assert verdict(res).startswith("VIREO-GUEST: PASS"), res.report()
    assert res.rc == EXIT_POWEROFF, res.report()
    assert b"alive after the hostile chains" in target.read_file(con)


@needs_net
def test_guest_net_through_tap(target):
    # The host side of the tap answers ARP for 10.213.7.1 once it has that address and is up.
    # The tap is made beforehand where `ip tuntap` exists; else vireo-vmm makes it, and the
    # address is given as soon as it appears (the guest repeats its request for 10 s).
    setup = (f"ip tuntap add dev {TAP} mode tap 2>/dev/null; "
             f"(i=0; while ! ip link show {TAP} >/dev/null 2>&1 && [ $i -lt 200 ]; do "
             f"sleep 0.05; i=$((i+1)); done; ip addr add 10.213.7.1/24 dev {TAP}; "
             f"ip link set {TAP} up) &")
    cmd = guest_cmd(target, words="virtio-net=10.213.7.15,10.213.7.1",
                    extra=("--no-reboot", "--net", f"tap={TAP}"))
    rc, out = interact(target, f"{setup} {cmd}", [("VIREO-GUEST:", "")], timeout=120,
                       finish=f"ip link del {TAP} 2>/dev/null")
    assert "VIREO-VIRTIO: net PASS" in out, out
    assert "VIREO-GUEST: PASS" in out, out
    assert rc == EXIT_POWEROFF, out
