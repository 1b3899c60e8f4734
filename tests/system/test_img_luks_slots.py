"""LUKS key slot management (vireo-img amend state=active|inactive, keyslot, new-secret,
old-secret, iter-time, --force) against qemu-img/qemu-io, for raw LUKS and qcow2 with
encrypt.format=luks: keys we add open in qemu, keys we erase no longer do, keys qemu-img adds
or erases behave the same with us, the data stays byte-identical, all 8 slots, and refused
changes (no free slot, wrong old secret, last slot, ...) leave the image unchanged."""

from __future__ import annotations

import json
import re
import shutil
import struct

import pytest

from imgtools import run, tools

MiB = 1 << 20
SIZE = 2 * MiB
FORMATS = ["luks", "qcow2"]
# 1 ms asks for the minimum of 1000 PBKDF2 rounds (as qemu-img), so each unlock is instant.
ITER = "1"


def pre(fmt):
    return "" if fmt == "luks" else "encrypt."


def secrets(tmp_path, n=9):
    """Files k1..kn holding distinct passwords, and --object args for all of them."""
    args = []
    for i in range(1, n + 1):
        p = tmp_path / f"k{i}"
        p.write_bytes(f"password number {i}".encode())
        args += ["--object", f"secret,id=k{i},file={p}"]
    return args


def iopts(fmt, path, key):
    return ["--image-opts", f"driver={fmt},file.filename={path},{pre(fmt)}key-secret={key}"]


def create(tool, fmt, path, objs, key="k1"):
    o = (f"key-secret={key},iter-time={ITER}" if fmt == "luks" else
         f"encrypt.format=luks,encrypt.key-secret={key},encrypt.iter-time={ITER}")
    run(tool, "create", "-q", "-f", fmt, *objs, "-o", o, path, SIZE)
    run("qemu-io", *objs, *iopts(fmt, path, key), "-c", "write -P 0x5a 0 1M",
        "-c", "write -P 0xc3 1500000 70000")


def amend(tool, fmt, path, objs, key, *opts, force=False, check=True):
    o = ",".join(f"{pre(fmt)}{x}" for x in opts)
    return run(tool, "amend", *(["--force"] if force else []), *objs, "-o", o,
               *iopts(fmt, path, key), check=check)


def opens(fmt, path, objs, key) -> bool:
    p = run("qemu-io", *objs, *iopts(fmt, path, key), "-c", "read -P 0x5a 0 1M", check=False)
    assert p.returncode == 0 or "Invalid password" in p.stderr, p.stderr
    return p.returncode == 0


def plain(tool, fmt, path, objs, key, out) -> bytes:
    run(tool, "convert", *objs, *iopts(fmt, path, key), "-O", "raw", out)
    return out.read_bytes()


def slots(path) -> list[bool]:
    info = json.loads(run("qemu-img", "info", "--output=json", path).stdout)
    data = info["format-specific"]["data"]
    return [s["active"] for s in (data["encrypt"] if "encrypt" in data else data)["slots"]]


@pytest.mark.asan
@pytest.mark.parametrize("fmt", FORMATS)
def test_we_add_and_erase_qemu_judges(build_dir, tmp_path, fmt):
    img, _ = tools(build_dir)
    objs = secrets(tmp_path, 3)
    path = tmp_path / f"a.{fmt}"
    create("qemu-img", fmt, path, objs)
    ref = plain("qemu-img", fmt, path, objs, "k1", tmp_path / "ref.raw")
    amend(img, fmt, path, objs, "k1", "state=active", "new-secret=k2", f"iter-time={ITER}")
    assert slots(path) == [True, True] + [False] * 6
    assert opens(fmt, path, objs, "k2") and opens(fmt, path, objs, "k1")
    # a given slot
    amend(img, fmt, path, objs, "k2", "state=active", "new-secret=k3", "keyslot=5",
          f"iter-time={ITER}")
    assert slots(path) == [True, True, False, False, False, True, False, False]
    assert opens(fmt, path, objs, "k3")
    # erase by password, then by slot number
    material = path.read_bytes()
    amend(img, fmt, path, objs, "k2", "state=inactive", "old-secret=k1")
    assert slots(path) == [False, True, False, False, False, True, False, False]
    assert not opens(fmt, path, objs, "k1")
    amend(img, fmt, path, objs, "k2", "state=inactive", "keyslot=5")
    assert not opens(fmt, path, objs, "k3") and opens(fmt, path, objs, "k2")
    after = path.read_bytes()
    info = json.loads(run("qemu-img", "info", "--output=json", path).stdout)
    data = info["format-specific"]["data"]
    base = 0 if fmt == "luks" else after.find(b"LUKS\xba\xbe")
    for s in (0, 5):
        off = base + (data.get("encrypt") or data)["slots"][s]["key-offset"]
        # erased means the key material is gone, overwritten with noise (not zeros)
        old, new = material[off:off + 256000], after[off:off + 256000]
        assert sum(a == b for a, b in zip(old, new)) < 2000 and new.count(0) < 2000
    assert plain("qemu-img", fmt, path, objs, "k2", tmp_path / "q.raw") == ref
    assert plain(img, fmt, path, objs, "k2", tmp_path / "o.raw") == ref
    if fmt == "qcow2":
        run("qemu-img", "check", *objs, *iopts(fmt, path, "k2"))
    assert json.loads(run(img, "info", "--output=json", path).stdout) == info


@pytest.mark.parametrize("fmt", FORMATS)
def test_qemu_adds_and_erases_we_judge(build_dir, tmp_path, fmt):
    img, _ = tools(build_dir)
    objs = secrets(tmp_path, 2)
    path = tmp_path / f"b.{fmt}"
    create(img, fmt, path, objs)
    ref = plain(img, fmt, path, objs, "k1", tmp_path / "ref.raw")
    amend("qemu-img", fmt, path, objs, "k1", "state=active", "new-secret=k2", "keyslot=3",
          f"iter-time={ITER}")
    assert plain(img, fmt, path, objs, "k2", tmp_path / "k2.raw") == ref
    amend("qemu-img", fmt, path, objs, "k2", "state=inactive", "keyslot=0")
    p = run(img, "convert", *objs, *iopts(fmt, path, "k1"), "-O", "raw", tmp_path / "x.raw",
            check=False)
    assert p.returncode == 1 and "invalid password" in p.stderr and str(path) in p.stderr
    assert plain(img, fmt, path, objs, "k2", tmp_path / "k2b.raw") == ref


def test_all_eight_slots(build_dir, tmp_path):
    img, _ = tools(build_dir)
    objs = secrets(tmp_path, 9)
    path = tmp_path / "c.luks"
    create(img, "luks", path, objs)
    for i in range(2, 9):
        amend(img, "luks", path, objs, "k1", "state=active", f"new-secret=k{i}",
              f"iter-time={ITER}")
    assert slots(path) == [True] * 8
    for i in range(1, 9):
        assert opens("luks", path, objs, f"k{i}"), f"k{i}"
    before = path.read_bytes()
    p = amend(img, "luks", path, objs, "k1", "state=active", "new-secret=k9",
              f"iter-time={ITER}", check=False)
    assert p.returncode == 1 and "all 8 LUKS key slots are active" in p.stderr, p.stderr
    assert path.read_bytes() == before
    # every slot but one erased, each by its password; the data stays
    for i in range(1, 8):
        amend(img, "luks", path, objs, "k8", "state=inactive", f"old-secret=k{i}")
    assert slots(path) == [False] * 7 + [True]
    assert opens("luks", path, objs, "k8") and not opens("luks", path, objs, "k4")


# refused changes: (options, key the image is opened with, message)
ERRORS = {
    "wrong_old_secret": (["state=inactive", "old-secret=k3"], "k1",
                         "no LUKS key slot opens with old-secret"),
    "slot_not_holding_old": (["state=inactive", "keyslot=1", "old-secret=k1"], "k1",
                             "key slot 1 does not open with old-secret"),
    "last_slot_by_password": (["state=inactive", "old-secret=k1"], "k1", None),
    "already_inactive": (["state=inactive", "keyslot=4"], "k1", "key slot 4 is already inactive"),
    "occupied_slot": (["state=active", "keyslot=1", "new-secret=k3"], "k1",
                      "key slot 1 is active: erase it first"),
    "bad_slot": (["state=active", "keyslot=8", "new-secret=k3"], "k1",
                 "keyslot '8' is not a key slot number"),
    "no_state": (["keyslot=1"], "k1", "need state=active"),
    "active_without_new": (["state=active"], "k1", "state=active needs new-secret"),
    "inactive_without_what": (["state=inactive"], "k1", "needs keyslot=N or old-secret"),
    "unknown_secret": (["state=active", "new-secret=nope"], "k1", "secret 'nope' not found"),
    "wrong_key": (["state=active", "new-secret=k3"], "k3", "invalid password"),
}


@pytest.fixture(scope="module")
def two_slot_images(build_dir, tmp_path_factory):
    img, _ = tools(build_dir)
    d = tmp_path_factory.mktemp("slots")
    objs = secrets(d, 3)
    out = {}
    for fmt in FORMATS:
        path = d / f"two.{fmt}"
        create(img, fmt, path, objs)  # ours (fast); qemu-img adds the second key
        # slot 1 holds k2; slot 0 holds k1
        amend("qemu-img", fmt, path, objs, "k1", "state=active", "new-secret=k2",
              f"iter-time={ITER}")
        out[fmt] = path.read_bytes()
    return objs, out


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", sorted(ERRORS))
def test_refused_changes_leave_image(build_dir, tmp_path, two_slot_images, fmt, case):
    img, _ = tools(build_dir)
    objs, good = two_slot_images
    path = tmp_path / f"e.{fmt}"
    path.write_bytes(good[fmt])
    opts, key, expect = ERRORS[case]
    if case == "last_slot_by_password":
        # k2's slot erased first (qemu-img), so k1's is the only one left
        amend("qemu-img", fmt, path, objs, "k1", "state=inactive", "keyslot=1")
        expect = "would leave no active LUKS key slot"
    before = path.read_bytes()
    p = amend(img, fmt, path, objs, key, *opts, check=False)
    assert p.returncode == 1, p.stderr
    assert expect in p.stderr, p.stderr
    assert "Sanitizer" not in p.stderr
    assert path.read_bytes() == before


@pytest.mark.parametrize("fmt", FORMATS)
def test_force_erases_last_slot(build_dir, tmp_path, two_slot_images, fmt):
    img, _ = tools(build_dir)
    objs, good = two_slot_images
    path = tmp_path / f"f.{fmt}"
    path.write_bytes(good[fmt])
    amend(img, fmt, path, objs, "k1", "state=inactive", "keyslot=1")
    amend(img, fmt, path, objs, "k1", "state=inactive", "old-secret=k1", force=True)
    assert slots(path) == [False] * 8
    p = run("qemu-io", *objs, *iopts(fmt, path, "k1"), "-c", "read 0 512", check=False)
    assert p.returncode != 0
    # a keyless image: info still works (as qemu-img's), opening with a key says why not
    assert json.loads(run(img, "info", "--output=json", path).stdout) == \
        json.loads(run("qemu-img", "info", "--output=json", path).stdout)
    p = run(img, "convert", *objs, *iopts(fmt, path, "k1"), "-O", "raw", tmp_path / "x.raw",
            check=False)
    assert p.returncode == 1 and "no active key slot" in p.stderr, p.stderr


@pytest.mark.parametrize("fmt", FORMATS)
def test_info_slots_as_qemu(build_dir, tmp_path, two_slot_images, fmt):
    img, _ = tools(build_dir)
    objs, good = two_slot_images
    path = tmp_path / f"i.{fmt}"
    path.write_bytes(good[fmt])
    for out in ("json", "human"):
        ours = run(img, "info", f"--output={out}", path).stdout
        theirs = run("qemu-img", "info", f"--output={out}", path).stdout
        if out == "json":
            ours, theirs = json.loads(ours), json.loads(theirs)
        assert ours == theirs


def _slot_field(data: bytearray, slot: int, off: int, value: int) -> None:
    base = data.find(b"LUKS\xba\xbe")
    struct.pack_into(">I", data, base + 208 + 48 * slot + off, value)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("where", ["over_slot0", "past_area"])
def test_damaged_free_slot_not_written(build_dir, tmp_path, two_slot_images, fmt, where):
    """An inactive slot's key offset was never used: adding a key there must not write over
    another slot's key material or outside the header area."""
    img, _ = tools(build_dir)
    objs, good = two_slot_images
    data = bytearray(good[fmt])
    _slot_field(data, 3, 40, 8 if where == "over_slot0" else 0x7fffff00)
    path = tmp_path / f"d.{fmt}"
    path.write_bytes(bytes(data))
    p = amend(img, fmt, path, objs, "k1", "state=active", "new-secret=k3", "keyslot=3",
              f"iter-time={ITER}", check=False)
    assert p.returncode == 1 and "key slot 3" in p.stderr and "not written" in p.stderr, \
        p.stderr
    assert path.read_bytes() == bytes(data)
    # (qemu refuses to open such an image at all; we open it, the keys still work)
    assert plain(img, fmt, path, objs, "k1", tmp_path / "1.raw") == \
        plain(img, fmt, path, objs, "k2", tmp_path / "2.raw")


def test_write_order_is_crash_safe(build_dir, tmp_path):
    """Adding: key material, sync, the slot entry still off, sync, its 4-byte state word,
    sync.  Erasing: noise over the material, sync, the entry cleared, sync.  (strace shows the
    order of the writes; a crash between any two leaves every other key working.)"""
    img, _ = tools(build_dir)
    if not shutil.which("strace"):
        pytest.skip("strace is missing (Debian package strace)")
    objs = secrets(tmp_path, 2)
    path = tmp_path / "o.luks"
    create(img, "luks", path, objs)

    def trace(*opts):
        log = tmp_path / "strace.log"
        o = ",".join(opts)
        run("strace", "-f", "-o", log, "-e", "trace=pwrite64,fdatasync,fsync", img, "amend",
            *objs, "-o", o, *iopts("luks", path, "k1"))
        calls = []
        for line in log.read_text().splitlines():
            m = re.search(r"pwrite64\(\d+, .*, (\d+), (\d+)\)", line)
            if m:
                calls.append(("w", int(m.group(1)), int(m.group(2))))
            elif "fdatasync(" in line or "fsync(" in line:
                calls.append(("sync",))
        return calls

    calls = trace("state=active", "new-secret=k2", "keyslot=2", f"iter-time={ITER}")
    info = json.loads(run("qemu-img", "info", "--output=json", path).stdout)
    off = info["format-specific"]["data"]["slots"][2]["key-offset"]
    entry = 208 + 48 * 2
    assert calls[:6] == [("w", 256000, off), ("sync",), ("w", 44, entry + 4), ("sync",),
                         ("w", 4, entry), ("sync",)], calls
    calls = trace("state=inactive", "keyslot=2")
    assert calls[:4] == [("w", 256000, off), ("sync",), ("w", 48, entry), ("sync",)], calls
