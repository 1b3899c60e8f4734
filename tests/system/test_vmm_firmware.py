"""vireo-vmm --firmware: Debian's SeaBIOS from the reset vector, the machine described to it
through fw_cfg; Linux booted by SeaBIOS (QEMU's linuxboot_dma.bin option ROM reading the
kernel from fw_cfg); GRUB from a virtio-blk disk once vireo-vmm has --disk.

SeaBIOS and the option ROM are copied into the target where it lacks them (the box holds only
the build and the guest files)."""

from __future__ import annotations

import atexit
import gzip
import os
import shutil
import subprocess
import tempfile

import pytest

import grub_image
from vireo_target import box_include, build_dir, run_vm
from vmm import EXIT_POWEROFF, EXIT_RESET, EXIT_STOPPED, EXIT_USAGE, boot_problems, interact, q, \
    vmm_cmd

SEABIOS = "/usr/share/seabios/bios-256k.bin"
LINUXBOOT = "/usr/share/qemu/linuxboot_dma.bin"
QEMU = "/usr/bin/qemu-system-x86_64"


def _vmm_help() -> str:
    try:
        return subprocess.run([os.path.join(build_dir(), "src/vmm/vireo-vmm"), "--help"],
                              capture_output=True, text=True, timeout=10).stdout
    except OSError:
        return ""


HAS_DISK = "--disk" in _vmm_help()
HAS_NET = "--net" in _vmm_help()
IPXE = "/usr/lib/ipxe/qemu/pxe-virtio.rom"

# In the box at the same paths (see _put for targets booted before this module was imported).
for _f in (SEABIOS, LINUXBOOT, IPXE):
    box_include(_f)


def _make_grub_disk() -> tuple[str, str]:
    """The GRUB disk, made at import so that the box (booted later) holds it: (path, why
    not)."""
    missing = grub_image.tools_missing()
    if missing:
        return "", "cannot build the GRUB disk: missing " + ", ".join(missing)
    d = tempfile.mkdtemp(prefix="vireo-grub-test-")
    atexit.register(shutil.rmtree, d, ignore_errors=True)
    path = os.path.join(d, "grub.img")
    try:
        grub_image.make_image(path)
    except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
        return "", f"cannot build the GRUB disk: {e}"
    box_include(path)
    return path, ""


GRUB_DISK, GRUB_DISK_MISSING = _make_grub_disk()

pytestmark = pytest.mark.skipif(not os.path.isfile(SEABIOS),
                                reason=f"{SEABIOS} missing (Debian package seabios)")


def _put(target, path: str) -> None:
    """Copy a host file to the same path in the target unless it is there already."""
    if target.run(f"test -f {q(path)}", 30)[0] == 0:
        return
    with open(path, "rb") as f:
        data = f.read()
    gz = f"{target.tmpdir}/{os.path.basename(path)}.gz"
    target.write_file(gz, gzip.compress(data))
    target.check(f"mkdir -p {q(os.path.dirname(path))} && gunzip -c {q(gz)} > {q(path)}", 60)


@pytest.fixture(scope="module")
def firmware(target) -> str:
    _put(target, SEABIOS)
    for f in (LINUXBOOT, IPXE):
        if os.path.isfile(f):
            _put(target, f)
    return SEABIOS


@pytest.mark.asan
def test_seabios_banner_and_no_bootable_device(target, firmware):
    """SeaBIOS starts at the reset vector, finds fw_cfg (its console goes to COM1 because
    fw_cfg says "no graphics"), finds nothing to boot, waits etc/boot-fail-wait and resets
    through port 0xcf9: with --no-reboot vireo-vmm then exits 3."""
    cmd = vmm_cmd(target, "--firmware", firmware, "--memory", "128M", "--no-reboot",
                  "--log-level", "debug")
    res = run_vm(target, cmd, marker="No bootable device", deadline=60)
    assert "SeaBIOS (version" in res.console, res.report()
    # SeaBIOS's debug log (port 0x402, used once it reads back 0xe9) shows what it found.
    for line in ("firmware: Found QEMU fw_cfg", "firmware: QEMU fw_cfg DMA interface supported",
                 "firmware: qemu/e820: addr 0x0000000000000000 len 0x0000000008000000 [RAM]",
                 "firmware: ACPI: parse DSDT"):
        assert line in res.console, res.report()
    assert "No bootable device." in res.console, res.report()
    assert res.rc == EXIT_RESET, res.report()
    # The retry delay is fw_cfg's etc/boot-fail-wait (5 s), not SeaBIOS's default of 60 s.
    assert res.exit_s is not None and res.exit_s < 40, res.report()


def test_seabios_boots_linux_through_fw_cfg(target, firmware):
    """--firmware with --kernel: SeaBIOS runs linuxboot_dma.bin, which reads the kernel,
    initrd and command line through fw_cfg DMA; Linux finds the ACPI tables SeaBIOS placed
    through the table loader (RSDP in the F-segment), all CPUs and memory (4 GiB: RAM above
    4 GiB comes through etc/e820) and powers off.  With virtio-blk, a disk too: the BAR
    SeaBIOS assigned lies in the window our ACPI tables describe, so Linux keeps it."""
    if not os.path.isfile(LINUXBOOT):
        pytest.skip(f"{LINUXBOOT} missing (Debian package qemu-system-data)")
    g = target.guest
    disk = []
    if HAS_DISK:
        target.check(f"head -c 1048576 /dev/zero > {target.tmpdir}/blank.img", 30)
        disk = ["--disk", f"path={target.tmpdir}/blank.img"]
    cmd = vmm_cmd(target, "--firmware", firmware, "--kernel", g.vmlinuz, "--initrd",
                  g.initramfs, "--cmdline", "console=ttyS0 vireo.test=poweroff", "--memory",
                  "4G", "--cpus", "2", "--no-reboot", *disk)
    res = run_vm(target, cmd, deadline=240)
    assert res.rc == EXIT_POWEROFF, res.report()
    m = res.markers()
    assert "poweroff" in m, res.report()
    assert m.get("cpus") == "2", res.report()
    assert int(m.get("memtotal_kb", "0")) > 3800 * 1024, res.report()
    if HAS_DISK:
        assert m.get("blk") == "vda:2048", res.report()
    assert "SeaBIOS (version" in res.console, res.report()
    assert "ACPI: RSDP 0x00000000000F" in res.console, res.report()  # the F-segment
    assert "Command line: console=ttyS0 vireo.test=poweroff" in res.console, res.report()
    assert not boot_problems(res.console), "\n".join(boot_problems(res.console))


BAD = [
    ("missing", "/nonexistent/bios.bin", ["/nonexistent/bios.bin", "No such file"]),
    ("not a multiple of 64 KiB", "{d}/odd.bin", ["odd.bin", "multiple of 64 KiB"]),
    ("larger than 16 MiB", "{d}/huge.bin", ["huge.bin", "16 MiB"]),
    ("empty", "{d}/empty.bin", ["empty.bin", "64 KiB"]),
    ("a directory", "{d}", ["Is a directory"]),
]


@pytest.mark.asan
@pytest.mark.parametrize("name,path,needles", BAD, ids=[b[0] for b in BAD])
def test_bad_firmware_file(target, name, path, needles):
    d = target.tmpdir
    target.check(f"head -c 1000 /dev/zero > {d}/odd.bin && : > {d}/empty.bin && "
                 f"rm -f {d}/huge.bin && dd if=/dev/zero of={d}/huge.bin bs=1 count=0 "
                 f"seek=17M 2>/dev/null", 30)
    rc, out = target.run(vmm_cmd(target, "--firmware", path.format(d=d)) + " </dev/null", 60)
    lines = [l for l in out.splitlines() if l.strip() and "kvm-pvm" not in l]
    assert rc == EXIT_USAGE, out
    assert len(lines) == 1 and lines[0].startswith("vireo-vmm: "), out
    for n in needles:
        assert n in lines[0], out


def test_firmware_refuses_elf_kernel(target, firmware):
    """linuxboot_dma.bin speaks the Linux boot protocol only: an ELF vmlinux is refused."""
    rc, out = target.run(vmm_cmd(target, "--firmware", firmware, "--kernel",
                                 target.guest.vmlinux) + " </dev/null", 60)
    lines = [l for l in out.splitlines() if l.strip() and "kvm-pvm" not in l]
    assert rc == EXIT_USAGE, out
    assert len(lines) == 1 and "bzImage" in lines[0], out


# ---- GRUB from an MBR disk ----------------------------------------------------------------

@pytest.fixture(scope="module")
def grub_disk() -> str:
    if not GRUB_DISK:
        pytest.skip(GRUB_DISK_MISSING)
    return GRUB_DISK


def test_grub_image_boots_under_qemu(grub_disk):
    """The image builder itself, judged by the reference: QEMU q35 (TCG, on this host) with
    its SeaBIOS boots the disk from virtio-blk, GRUB reads grub.cfg from ext2 and prints the
    marker, then powers off through ACPI."""
    if not os.access(QEMU, os.X_OK):
        pytest.skip(f"{QEMU} is not installed")
    r = subprocess.run([QEMU, "-M", "q35", "-accel", "tcg", "-m", "128", "-display", "none",
                        "-nodefaults", "-no-user-config", "-serial", "stdio", "-no-reboot",
                        "-drive", f"file={grub_disk},format=raw,if=virtio,snapshot=on"],
                       capture_output=True, text=True, timeout=120)
    assert f"{grub_image.DEFAULT_MARKER} from hd0,msdos1" in r.stdout, r.stdout + r.stderr
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.skipif(not HAS_DISK,
                    reason="vireo-vmm has no virtio-blk yet (--disk missing from --help)")
def test_grub_from_virtio_blk(target, firmware, grub_disk):
    """SeaBIOS finds our virtio-blk disk, boots its MBR; GRUB loads its core from the disk
    through int 13h, reads grub.cfg from the ext2 partition, prints the marker and halts
    (ACPI S5 from our DSDT's \\_S5): vireo-vmm exits 0."""
    _put(target, grub_disk)
    img = f"{target.tmpdir}/grub.img"  # a copy: the guest may write to its disk
    target.check(f"cp {q(grub_disk)} {q(img)}", 60)
    cmd = vmm_cmd(target, "--firmware", firmware, "--disk", f"path={img}", "--memory", "256M",
                  "--no-reboot")
    res = run_vm(target, cmd, marker=grub_image.DEFAULT_MARKER, deadline=120)
    assert f"{grub_image.DEFAULT_MARKER} from hd0,msdos1" in res.console, res.report()
    assert res.rc == EXIT_POWEROFF, res.report()


@pytest.mark.skipif(not HAS_NET,
                    reason="vireo-vmm has no virtio-net yet (--net missing from --help)")
def test_ipxe_option_rom_on_virtio_net(target, firmware):
    """With a virtio-net device SeaBIOS runs iPXE (Debian ipxe-qemu's pxe-virtio.rom, offered
    through fw_cfg as the device's ROM file): its banner appears and it opens the NIC."""
    if not os.path.isfile(IPXE):
        pytest.skip(f"{IPXE} missing (Debian package ipxe-qemu)")
    if target.where == "host" and os.geteuid() != 0:
        pytest.skip("a tap device needs root on the host")
    cmd = vmm_cmd(target, "--firmware", firmware, "--net", "tap=vireofw0", "--memory", "128M",
                  "--no-reboot")
    rc, out = interact(target, cmd, [("using virtio-net", "kill -INT $pid")], timeout=60)
    assert "iPXE (http://ipxe.org) 00:0" in out, out
    assert "using virtio-net on 0000:00:0" in out, out
    assert rc == EXIT_STOPPED, out
