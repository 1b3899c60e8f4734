"""LUKS1 encryption against qemu-img/qemu-io, both ways, for raw LUKS (`-f luks`) and qcow2
with encrypt.format=luks: qemu's encrypted images we read byte-identical (qemu-img convert of
the decrypted data is the judge) and write (qemu-img check clean, qemu-io reads our writes);
ours qemu reads with the same secret; a wrong password and damaged LUKS headers give clean
errors naming the image."""

from __future__ import annotations

import os
import struct
import subprocess

import pytest

from imgtools import apply_ops, run, tools

MiB = 1 << 20
SIZE = 4 * MiB
PASSWORD = b"correct horse battery"

# Unaligned and sector-crossing writes (read-modify-write of encrypted sectors), zeroes.
SCRIPT = """
w 1000 5000 7
w 65000 140000 8
z 262144 65536
w 300000 1000 9
z 301000 70000
w 3000000 70000 10
w 3000513 511 11
f
"""

FORMATS = ["luks", "qcow2"]


def secret(tmp_path, data=PASSWORD, name="pw"):
    p = tmp_path / name
    p.write_bytes(data)
    return p


def obj(pw):
    return ["--object", f"secret,id=sec0,file={pw}"]


def image_opts(fmt, path):
    key = "key-secret" if fmt == "luks" else "encrypt.key-secret"
    return ["--image-opts", f"driver={fmt},file.filename={path},{key}=sec0"]


def create_opts(fmt):
    if fmt == "luks":
        return "key-secret=sec0,iter-time=10"
    return "encrypt.format=luks,encrypt.key-secret=sec0,encrypt.iter-time=10"


def qemu_raw(fmt, path, pw, out) -> bytes:
    run("qemu-img", "convert", *obj(pw), *image_opts(fmt, path), "-O", "raw", out)
    return open(out, "rb").read()


def ours_raw(img, fmt, path, pw, out) -> bytes:
    run(img, "convert", *obj(pw), *image_opts(fmt, path), "-O", "raw", out)
    return open(out, "rb").read()


def qemu_check(fmt, path, pw):
    if fmt != "qcow2":
        return
    p = run("qemu-img", "check", *obj(pw), *image_opts(fmt, path), check=False)
    assert p.returncode == 0, f"qemu-img check {path}: {p.stdout}{p.stderr}"


def write_script(writer, fmt, path, pw, script=SCRIPT):
    env = dict(os.environ, VIREO_TEST_SECRET_FILE=str(pw))
    p = subprocess.run([writer, str(path), fmt], input=script, text=True, env=env,
                       capture_output=True, timeout=120)
    assert p.returncode == 0, p.stderr


@pytest.mark.asan
@pytest.mark.parametrize("fmt", FORMATS)
def test_qemu_creates_we_read_and_write(build_dir, tmp_path, fmt):
    img, writer = tools(build_dir)
    pw = secret(tmp_path)
    path = tmp_path / f"q.{fmt}"
    run("qemu-img", "create", "-q", "-f", fmt, *obj(pw), "-o", create_opts(fmt), path, SIZE)
    run("qemu-io", *obj(pw), *image_opts(fmt, path), "-c", "write -P 0x5a 0 4M",
        "-c", "write -P 0x33 100001 3000", "-c", "write -P 0x77 2M 64k")
    ref = qemu_raw(fmt, path, pw, tmp_path / "ref.raw")
    assert ours_raw(img, fmt, path, pw, tmp_path / "ours.raw") == ref
    # our writes, with partial sectors, on qemu's image
    write_script(writer, fmt, path, pw)
    qemu_check(fmt, path, pw)
    model = bytearray(ref)
    apply_ops(model, SCRIPT)
    assert qemu_raw(fmt, path, pw, tmp_path / "after.raw") == bytes(model)
    run("qemu-io", *obj(pw), *image_opts(fmt, path), "-c", "read -P 0 302080 65536")


@pytest.mark.asan
@pytest.mark.parametrize("fmt", FORMATS)
def test_we_create_qemu_reads(build_dir, tmp_path, fmt):
    img, writer = tools(build_dir)
    pw = secret(tmp_path)
    path = tmp_path / f"v.{fmt}"
    run(img, "create", "-q", "-f", fmt, *obj(pw), "-o", create_opts(fmt), path, SIZE)
    info = run("qemu-img", "info", "--output=json", path).stdout
    assert '"encrypted": true' in info
    write_script(writer, fmt, path, pw)
    qemu_check(fmt, path, pw)
    model = bytearray(SIZE)
    apply_ops(model, SCRIPT)
    assert qemu_raw(fmt, path, pw, tmp_path / "q.raw") == bytes(model)
    # qemu writes to our image; we read what it wrote
    run("qemu-io", *obj(pw), *image_opts(fmt, path), "-c", "write -P 0x5a 100000 300000")
    qemu_check(fmt, path, pw)
    assert ours_raw(img, fmt, path, pw, tmp_path / "o.raw") == \
        qemu_raw(fmt, path, pw, tmp_path / "q2.raw")


def test_convert_to_encrypted_qcow2(build_dir, tmp_path):
    img, _ = tools(build_dir)
    pw = secret(tmp_path)
    src = tmp_path / "src.raw"
    data = os.urandom(MiB) + bytes(MiB) + os.urandom(MiB // 2 + 512)
    src.write_bytes(data)
    out = tmp_path / "e.qcow2"
    run(img, "convert", *obj(pw), "-f", "raw", "-O", "qcow2", "-o", create_opts("qcow2"),
        src, out)
    qemu_check("qcow2", out, pw)
    assert qemu_raw("qcow2", out, pw, tmp_path / "back.raw") == data
    # the data clusters hold no plaintext
    assert data[:4096] not in out.read_bytes()
    # a plain file name works when one secret is given
    run(img, "convert", *obj(pw), "-O", "raw", out, tmp_path / "plain.raw")
    assert (tmp_path / "plain.raw").read_bytes() == data
    # compression and encryption do not mix (as qemu)
    p = run(img, "convert", *obj(pw), "-c", "-f", "raw", "-O", "qcow2", "-o",
            create_opts("qcow2"), src, tmp_path / "c.qcow2", check=False)
    assert p.returncode == 1 and "compressed" in p.stderr


@pytest.mark.parametrize("fmt", FORMATS)
def test_wrong_password(build_dir, tmp_path, fmt):
    img, _ = tools(build_dir)
    pw = secret(tmp_path)
    path = tmp_path / f"w.{fmt}"
    run("qemu-img", "create", "-q", "-f", fmt, *obj(pw), "-o", create_opts(fmt), path, MiB)
    bad = secret(tmp_path, b"wrong", "bad")
    p = run(img, "convert", *obj(bad), *image_opts(fmt, path), "-O", "raw",
            tmp_path / "o.raw", check=False)
    assert p.returncode == 1
    assert str(path) in p.stderr and "invalid password" in p.stderr, p.stderr


def test_no_key(build_dir, tmp_path):
    img, _ = tools(build_dir)
    pw = secret(tmp_path)
    path = tmp_path / "n.qcow2"
    run("qemu-img", "create", "-q", "-f", "qcow2", *obj(pw), "-o", create_opts("qcow2"), path,
        MiB)
    # info and check need no key; reading data does
    assert "encrypted: yes" in run(img, "info", path).stdout
    run(img, "check", path)
    p = run(img, "convert", "-O", "raw", path, tmp_path / "o.raw", check=False)
    assert p.returncode == 1 and str(path) in p.stderr and "key-secret" in p.stderr, p.stderr
    p = run(img, "create", "-f", "luks", tmp_path / "x.luks", "1M", check=False)
    assert p.returncode == 1 and "secret" in p.stderr
    raw = tmp_path / "n.luks"
    run("qemu-img", "create", "-q", "-f", "luks", *obj(pw), "-o", create_opts("luks"), raw, MiB)
    out = run(img, "info", raw).stdout
    assert "file format: luks" in out and "encrypted: yes" in out and "(1048576 bytes)" in out
    p = run(img, "convert", "-O", "raw", raw, tmp_path / "o2.raw", check=False)
    assert p.returncode == 1 and str(raw) in p.stderr and "key-secret" in p.stderr, p.stderr


def test_secret_on_command_line_refused(build_dir, tmp_path):
    img, _ = tools(build_dir)
    p = run(img, "create", "-f", "luks", "--object", "secret,id=sec0,data=hunter2", "-o",
            "key-secret=sec0", tmp_path / "x.luks", "1M", check=False)
    assert p.returncode == 1 and "file=" in p.stderr and "data=" in p.stderr
    assert not (tmp_path / "x.luks").exists()


def test_secret_from_stdin(build_dir, tmp_path):
    img, _ = tools(build_dir)
    path = tmp_path / "s.luks"
    p = subprocess.run([img, "create", "-q", "-f", "luks", "--object", "secret,id=sec0,file=-",
                        "-o", "key-secret=sec0,iter-time=10", str(path), "1M"],
                       input=PASSWORD, capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert qemu_raw("luks", path, secret(tmp_path), tmp_path / "o.raw") == bytes(MiB)


def _u32(d, off, v):
    d[off:off + 4] = struct.pack(">I", v)


def _name(d, off, s):
    d[off:off + 32] = s.ljust(32, b"\0")


# LUKS header fields (offsets from the header start), damaged one at a time.
CORRUPT = {
    "bad_magic": (lambda d: d.__setitem__(slice(0, 6), b"LUKS\0\0"), "bad magic"),
    "version_2": (lambda d: d.__setitem__(slice(6, 8), b"\0\2"), "LUKS version 2"),
    "cipher_twofish": (lambda d: _name(d, 8, b"twofish"), "cipher 'twofish'"),
    "mode_cbc": (lambda d: _name(d, 40, b"cbc-essiv:sha256"), "cipher mode"),
    "hash_md5": (lambda d: _name(d, 72, b"md5"), "hash 'md5'"),
    "name_unterminated": (lambda d: d.__setitem__(slice(8, 40), b"A" * 32), "not terminated"),
    "key_bytes_7": (lambda d: _u32(d, 108, 7), "key size"),
    "mk_iter_huge": (lambda d: _u32(d, 164, 0xFFFFFFFF), "iteration count"),
    "mk_iter_0": (lambda d: _u32(d, 164, 0), "iteration count"),
    "slot_iter_huge": (lambda d: _u32(d, 212, 0xFFFFFFF0), "iteration count"),
    "slot_offset_past_end": (lambda d: _u32(d, 248, 0x7FFFFFFF), "outside the header area"),
    "slot_offset_in_header": (lambda d: _u32(d, 248, 0), "outside the header area"),
    "stripes_1": (lambda d: _u32(d, 252, 1), "stripes"),
    "stripes_huge": (lambda d: _u32(d, 252, 0xFFFFFFFF), "stripes"),
    "slot_state": (lambda d: _u32(d, 208, 0x12345678), "invalid state"),
    "no_active_slot": (lambda d: _u32(d, 208, 0xDEAD), "no active key slot"),
}


@pytest.fixture(scope="module")
def luks_images(tmp_path_factory):
    d = tmp_path_factory.mktemp("luks")
    pw = d / "pw"
    pw.write_bytes(PASSWORD)
    out = {}
    for fmt in FORMATS:
        path = d / f"good.{fmt}"
        run("qemu-img", "create", "-q", "-f", fmt, *obj(pw), "-o", create_opts(fmt), path,
            MiB)
        out[fmt] = path.read_bytes()
    return pw, out


@pytest.mark.asan
@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_corrupt_luks_header(build_dir, tmp_path, luks_images, fmt, case):
    img, _ = tools(build_dir)
    pw, good = luks_images
    data = bytearray(good[fmt])
    base = data.find(b"LUKS\xba\xbe")
    assert base >= 0
    hdr = bytearray(data[base:base + 592])
    damage, expect = CORRUPT[case]
    damage(hdr)
    data[base:base + 592] = hdr
    path = tmp_path / f"bad.{fmt}"
    path.write_bytes(bytes(data))
    before = path.read_bytes()
    p = run(img, "convert", *obj(pw), *image_opts(fmt, path), "-O", "raw", tmp_path / "o.raw",
            check=False, timeout=60)
    assert p.returncode == 1, p.stderr
    assert str(path) in p.stderr and expect in p.stderr, p.stderr
    assert "Sanitizer" not in p.stderr
    assert path.read_bytes() == before


def test_qcow2_crypt_extension_past_end(build_dir, tmp_path, luks_images):
    img, _ = tools(build_dir)
    pw, good = luks_images
    data = bytearray(good["qcow2"])
    i = data.find(struct.pack(">II", 0x0537BE77, 16))
    assert i > 0
    data[i + 8:i + 16] = struct.pack(">Q", 1 << 40)
    path = tmp_path / "ext.qcow2"
    path.write_bytes(bytes(data))
    p = run(img, "info", *obj(pw), path, check=False)
    assert p.returncode == 1 and "LUKS header area" in p.stderr and str(path) in p.stderr
