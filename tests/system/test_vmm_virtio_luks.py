"""vireo-vmm's virtio-blk on LUKS-encrypted images (`--disk ...,secret-file=KEYFILE`): our
test guest's disk checks on raw LUKS and qcow2+luks images.  Ciphertext does not compress, so
the images are made (vireo-img, iter-time 1 ms) and decrypted (vireo-img convert) inside the
target and only the decrypted view comes back; qemu-img/qemu-io judge the same code paths in
tests/unit/test_virtio_blk_luks.c and test_img_luks.py.  A wrong key stops the VMM before the
guest runs, with an error naming the disk."""

from __future__ import annotations

import gzip

import pytest

from test_vmm_guest_virtio import device_lines
from test_vmm_virtio_qcow2 import check_guest_pattern
from vmm import EXIT_POWEROFF, guest_cmd, q, run_guest, verdict

DISK_MIB = 2
KEY = b"vmm disk passphrase"


def make(target, fmt: str, name: str) -> tuple[str, str, str]:
    """An encrypted image of DISK_MIB MiB made in the target; returns (image, key file,
    --object/--image-opts args for vireo-img there)."""
    d = f"{target.tmpdir}/luks-{name}"
    img, key = f"{d}/disk.{fmt}", f"{d}/key"
    target.check(f"rm -rf {q(d)} && mkdir -p {q(d)}", 30)
    target.write_file(key, KEY)
    pre = "" if fmt == "luks" else "encrypt."
    o = ("key-secret=k,iter-time=1" if fmt == "luks" else
         "encrypt.format=luks,encrypt.key-secret=k,encrypt.iter-time=1")
    tool = f"{target.build}/src/img/vireo-img"
    target.check(f"{tool} create -q -f {fmt} --object secret,id=k,file={key} -o {o} {img} "
                 f"{DISK_MIB}M", 60)
    opts = (f"--object secret,id=k,file={key} --image-opts "
            f"driver={fmt},file.filename={img},{pre}key-secret=k")
    return img, key, opts


# qcow2+luks only: raw luks takes the same path through blk_bdev.c and the block library, and
# tests/unit/test_virtio_blk_luks.c drives both through the device.
@pytest.mark.asan
@pytest.mark.parametrize("fmt", ["qcow2"])
def test_guest_on_luks_disk(target, fmt):
    img, key, opts = make(target, fmt, fmt)
    cmd = guest_cmd(target, words="virtio-blk blk-serial=LUKS-SN-1",
                    extra=("--no-reboot", "--disk",
                           f"path={img},secret-file={key},serial=LUKS-SN-1"))
    res = run_guest(target, cmd)
    assert verdict(res).startswith("VIREO-GUEST: PASS"), res.report()
    assert device_lines(res.console).get("blk", "").startswith("PASS"), res.report()
    assert res.rc == EXIT_POWEROFF, res.report()
    tool = f"{target.build}/src/img/vireo-img"
    if fmt == "qcow2":
        target.check(f"{tool} check -q {opts}", 60)
    # the guest's pattern is only in the decrypted view, never in the file
    rc, _ = target.run(f"grep -qa VIREOBLK {img}", 30)
    assert rc == 1, "plaintext in the encrypted image"
    target.check(f"{tool} convert {opts} -O raw {img}.view && gzip -c {img}.view > "
                 f"{img}.view.gz", 60)
    view = gzip.decompress(target.read_file(f"{img}.view.gz"))
    check_guest_pattern(res.console, view, bytes(DISK_MIB << 20))


def test_wrong_key_names_disk(target):
    img, key, _ = make(target, "qcow2", "wrong")
    target.write_file(key, b"not the key")
    cmd = guest_cmd(target, words="virtio-blk",
                    extra=("--no-reboot", "--disk", f"path={img},secret-file={key}"))
    res = run_guest(target, cmd)
    assert res.rc == 2, res.report()
    assert "disk 'vda'" in res.raw and "invalid password" in res.raw, res.report()
