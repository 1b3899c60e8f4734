#!/usr/bin/env python3
"""Make a raw disk image that boots GRUB from its MBR, as `grub-install` would on a PC disk,
but into a plain file: no root, no loop device, no host disk touched.

Layout (512-byte sectors):
  LBA 0        GRUB's boot.img (MBR code; it loads LBA 1, the defaults baked into boot.img)
               plus an MBR partition table with one active Linux partition
  LBA 1..      core.img from grub-mkimage -O i386-pc: diskboot.img, whose default blocklist
               says "the rest follows at LBA 2", then the compressed kernel with the modules
               (biosdisk part_msdos ext2 normal serial echo halt ...) and the prefix
               (hd0,msdos1)/boot/grub
  LBA 2048..   the partition: ext2 made by mke2fs -d from a directory holding
               boot/grub/grub.cfg, which puts GRUB's terminal on COM1, prints a marker line and
               powers the machine off (GRUB's `halt` uses the ACPI tables' \\_S5)

So the boot goes BIOS int 13h -> MBR -> core.img -> GRUB reads grub.cfg from ext2 on the same
disk: everything a GRUB disk needs from the firmware's disk driver.

    grub_image.py OUT.img [MARKER]        (default marker: VIREO-GRUB: grub.cfg ran)

Needs Debian's grub-pc-bin (grub-mkimage, /usr/lib/grub/i386-pc) and e2fsprogs (mke2fs).
"""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import tempfile

GRUB_DIR = "/usr/lib/grub/i386-pc"
SECTOR = 512
PART_START = 2048  # LBA: 1 MiB, where partitioning tools put the first partition
PART_SIZE_MIB = 4
DEFAULT_MARKER = "VIREO-GRUB: grub.cfg ran"
MODULES = ["biosdisk", "part_msdos", "ext2", "normal", "configfile", "serial", "terminal",
           "echo", "halt", "acpi", "test"]


def tools_missing() -> list[str]:
    """What this machine lacks to build the image (empty when all is there)."""
    missing = []
    if not shutil.which("grub-mkimage") or not os.path.isfile(f"{GRUB_DIR}/boot.img"):
        missing.append("grub-mkimage and /usr/lib/grub/i386-pc (Debian package grub-pc-bin)")
    if not shutil.which("mke2fs", path=os.environ.get("PATH", "") + ":/sbin:/usr/sbin"):
        missing.append("mke2fs (Debian package e2fsprogs)")
    return missing


def grub_cfg(marker: str) -> str:
    return ("serial --unit=0 --speed=115200\n"
            "terminal_input serial\n"
            "terminal_output serial\n"
            f"echo \"{marker} from $root\"\n"
            "halt\n")


def mbr_partition_entry(start: int, sectors: int) -> bytes:
    # Active, CHS fields at their "use LBA" maximum, type 0x83 (Linux), LBA start and length.
    return struct.pack("<B3sB3sII", 0x80, b"\xfe\xff\xff", 0x83, b"\xfe\xff\xff", start, sectors)


def make_image(out: str, marker: str = DEFAULT_MARKER) -> None:
    missing = tools_missing()
    if missing:
        raise RuntimeError("cannot build the GRUB image: missing " + ", ".join(missing))
    with tempfile.TemporaryDirectory(prefix="vireo-grub-") as tmp:
        root = os.path.join(tmp, "root")
        os.makedirs(os.path.join(root, "boot", "grub"))
        with open(os.path.join(root, "boot", "grub", "grub.cfg"), "w") as f:
            f.write(grub_cfg(marker))
        core = os.path.join(tmp, "core.img")
        subprocess.run(["grub-mkimage", "-O", "i386-pc", "-d", GRUB_DIR, "-o", core,
                        "-p", "(hd0,msdos1)/boot/grub", *MODULES], check=True)
        fs = os.path.join(tmp, "fs.img")
        env = dict(os.environ, PATH=os.environ.get("PATH", "") + ":/sbin:/usr/sbin",
                   E2FSPROGS_FAKE_TIME="1700000000")
        open(fs, "wb").close()  # mke2fs -q still announces a file it creates
        subprocess.run(["mke2fs", "-q", "-F", "-t", "ext2", "-b", "1024", "-L", "vireo-grub",
                        "-d", root, fs, f"{PART_SIZE_MIB}M"], check=True, env=env)
        with open(f"{GRUB_DIR}/boot.img", "rb") as f:
            boot = f.read()
        with open(core, "rb") as f:
            core_img = f.read()
        with open(fs, "rb") as f:
            fs_img = f.read()
    part_sectors = len(fs_img) // SECTOR
    if len(boot) != SECTOR or 1 + (len(core_img) + SECTOR - 1) // SECTOR > PART_START:
        raise RuntimeError(f"unexpected sizes: boot.img {len(boot)}, core.img {len(core_img)}")
    mbr = bytearray(boot)
    mbr[446:510] = mbr_partition_entry(PART_START, part_sectors) + bytes(48)
    mbr[510:512] = b"\x55\xaa"
    img = bytearray((PART_START + part_sectors) * SECTOR)
    img[0:SECTOR] = mbr
    img[SECTOR:SECTOR + len(core_img)] = core_img
    img[PART_START * SECTOR:PART_START * SECTOR + len(fs_img)] = fs_img
    with open(out, "wb") as f:
        f.write(img)


def main(argv: list[str]) -> int:
    if len(argv) not in (2, 3) or argv[1].startswith("-"):
        print(__doc__.strip(), file=sys.stderr)
        return 2
    try:
        make_image(argv[1], argv[2] if len(argv) == 3 else DEFAULT_MARKER)
    except (RuntimeError, subprocess.CalledProcessError, OSError) as e:
        print(f"grub_image.py: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
