"""vireod's storage: pools of type dir and volumes made through our block library (qemu-img, the
reference, judges the files; vireod runs with a PATH that has no qemu-img), a volume used as a
domain's disk by a real Linux guest under QEMU/TCG, and bad input to the storage API."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from unittest import mock

import pytest

from test_daemon import Daemon, UnixHTTP, domain_xml, error_of, write_xml

QEMU_IMG = shutil.which("qemu-img")
pytestmark = pytest.mark.skipif(QEMU_IMG is None or shutil.which("qemu-system-x86_64") is None,
                                reason="qemu-img or qemu-system-x86_64 is not installed")


@pytest.fixture(scope="module")
def daemon(build_dir, tmp_path_factory):
    for exe in ("src/daemon/vireod", "src/cli/vireo"):
        if not os.access(os.path.join(build_dir, exe), os.X_OK):
            pytest.skip(f"{build_dir}/{exe} is not built")
    d = Daemon(build_dir, str(tmp_path_factory.mktemp("vs")))
    # vireod needs no qemu-img: its PATH has only the QEMU the guest-disk test runs.
    bindir = tmp_path_factory.mktemp("bin")
    os.symlink(shutil.which("qemu-system-x86_64"), bindir / "qemu-system-x86_64")
    d.path = str(bindir)
    assert shutil.which("qemu-img", path=d.path) is None
    with mock.patch.dict(os.environ, {"PATH": d.path}):
        d.start()
    yield d
    try:
        for dom in d.api("GET", "/v1/domains")[1]:
            if dom["state"] in ("running", "paused"):
                d.api("POST", f"/v1/domains/{dom['name']}/destroy")
        d.stop()
    except OSError:
        d.proc.kill()


def qemu_img_info(path: str) -> dict:
    r = subprocess.run([QEMU_IMG, "info", "-U", "--output=json", path], capture_output=True,
                       text=True, check=True)
    return json.loads(r.stdout)


def test_pools_and_volumes(daemon, tmp_path):
    d = daemon
    # The default pool exists, active, at the image directory.
    pools = json.loads(d.ok("pool-list", "--json"))
    assert [p["name"] for p in pools] == ["default"]
    assert pools[0]["path"] == os.path.join(d.root, "var/lib/vireo/images")
    target = os.path.join(d.root, "p2")
    d.ok("pool-define-as", "p2", "dir", "--target", target)
    rc, _, err = d.vireo("pool-start", "p2")
    assert rc == 1 and "pool-build p2" in err  # the directory does not exist yet
    d.ok("pool-build", "p2")
    d.ok("pool-start", "p2")
    assert "p2" in d.ok("pool-list")
    xml = d.ok("pool-dumpxml", "p2")
    assert f"<path>{target}</path>" in xml and "<capacity unit=\"bytes\">" in xml
    # Volumes: qcow2 with a backing file, raw; qemu-img agrees on every one.
    d.ok("vol-create-as", "p2", "base.qcow2", "64M", "--format", "qcow2")
    d.ok("vol-create-as", "p2", "top.qcow2", "--format", "qcow2", "--backing-vol",
         "base.qcow2", "--backing-vol-format", "qcow2")
    d.ok("vol-create-as", "p2", "r.img", "1M", "--format", "raw")
    info = qemu_img_info(os.path.join(target, "top.qcow2"))
    assert info["format"] == "qcow2" and info["virtual-size"] == 64 << 20
    assert info["backing-filename"] == os.path.join(target, "base.qcow2")
    vi = json.loads(d.ok("vol-info", "top.qcow2", "--pool", "p2", "--json"))
    assert vi["capacity"] == 64 << 20 and vi["backing_format"] == "qcow2"
    assert qemu_img_info(os.path.join(target, "r.img"))["format"] == "raw"
    subprocess.run([QEMU_IMG, "check", os.path.join(target, "base.qcow2")], check=True,
                   capture_output=True)
    names = {v["name"] for v in json.loads(d.ok("vol-list", "p2", "--json"))}
    assert names == {"base.qcow2", "top.qcow2", "r.img"}
    # Resize (growing; shrinking only when asked), clone, upload, download, delete.
    d.ok("vol-resize", "base.qcow2", "128M", "--pool", "p2")
    assert qemu_img_info(os.path.join(target, "base.qcow2"))["virtual-size"] == 128 << 20
    rc, _, err = d.vireo("vol-resize", "r.img", "4K", "--pool", "p2")
    assert rc == 1 and "shrinking loses data" in err
    d.ok("vol-resize", "r.img", "512K", "--pool", "p2", "--shrink")
    assert os.path.getsize(os.path.join(target, "r.img")) == 512 << 10
    d.ok("vol-clone", "base.qcow2", "copy.qcow2", "--pool", "p2")
    assert qemu_img_info(os.path.join(target, "copy.qcow2"))["virtual-size"] == 128 << 20
    d.ok("vol-clone", "base.qcow2", "copy.raw", "--pool", "p2", "--format", "raw")
    assert qemu_img_info(os.path.join(target, "copy.raw"))["format"] == "raw"
    assert os.path.getsize(os.path.join(target, "copy.raw")) == 128 << 20
    d.ok("vol-delete", "copy.raw", "--pool", "p2")
    data = os.urandom(300000)
    up, down = tmp_path / "up.bin", tmp_path / "down.bin"
    up.write_bytes(data)
    d.ok("vol-upload", "r.img", str(up), "--pool", "p2")
    d.ok("vol-download", "r.img", str(down), "--pool", "p2")
    assert down.read_bytes() == data
    # --format raw: the disk's content through the block library (here a qcow2 volume).
    d.ok("vol-upload", "copy.qcow2", str(up), "--pool", "p2")
    disk = tmp_path / "disk.raw"
    d.ok("vol-download", "copy.qcow2", str(disk), "--pool", "p2", "--format", "raw")
    got = disk.read_bytes()
    assert got[:len(data)] == data and not got[len(data):].strip(b"\0")
    rc, _, err = d.vireo("vol-download", "copy.qcow2", str(disk), "--pool", "p2",
                         "--format", "qcow2")
    assert rc == 2 and "--format takes only 'raw'" in err
    d.ok("vol-delete", "copy.qcow2", "--pool", "p2")
    assert d.vireo("vol-info", "copy.qcow2", "--pool", "p2")[0] == 4
    # Bad input.
    r = d.api("POST", "/v1/pools/p2/volumes", {"name": "../evil", "capacity": 1})
    assert r[0] == 400 and "not a volume name" in error_of(r)
    r = d.api("POST", "/v1/pools/p2/volumes", {"name": "x.img", "capacity": "lots"})
    assert r[0] == 400 and "'capacity'" in error_of(r)
    r = d.api("POST", "/v1/pools/p2/volumes", {"name": "x.img", "capacity": 1, "format": "vmdk"})
    assert r[0] == 400 and "'vmdk'" in error_of(r)
    r = d.api("POST", "/v1/pools/p2/volumes", {"name": "base.qcow2", "capacity": 1})
    assert r[0] == 409 and "already exists" in error_of(r)
    r = d.api("POST", "/v1/pools/p2/volumes", {"name": "y.qcow2", "backing": "nothere.qcow2"})
    assert r[0] == 400 and "nothere.qcow2" in error_of(r)
    r = d.api("POST", "/v1/pools", {"xml": "<pool type='logical'><name>l</name></pool>"})
    assert r[0] == 400 and "/pool/@type" in error_of(r)
    r = d.api("POST", "/v1/pools", {"xml": "<pool type='dir'><name>q</name><target><path>/x"
                                            "</path><permissions/></target></pool>"})
    assert r[0] == 400 and "/pool/target/permissions" in error_of(r)
    r = d.api("GET", "/v1/pools/nope/volumes")
    assert r[0] == 404 and "pool 'nope' not found" in error_of(r)
    rc, _, err = d.vireo("pool-undefine", "p2")
    assert rc == 1 and "active" in err
    d.ok("pool-destroy", "p2")
    r = d.api("GET", "/v1/pools/p2/volumes")
    assert r[0] == 409 and "not active" in error_of(r)
    d.ok("pool-undefine", "p2")
    assert d.vireo("pool-info", "p2")[0] == 4
    # The files stay: undefining a pool never deletes data.
    assert os.path.exists(os.path.join(target, "base.qcow2"))


def test_volume_as_guest_disk(daemon, linux_guest):
    """A qcow2 volume with a backing file, made by vireod, is the guest's virtio disk."""
    d = daemon
    d.ok("vol-create-as", "default", "gbase.qcow2", "48M", "--format", "qcow2")
    d.ok("vol-create-as", "default", "guest.qcow2", "--format", "qcow2", "--backing-vol",
         "gbase.qcow2", "--backing-vol-format", "qcow2")
    path = d.ok("vol-path", "guest.qcow2", "--pool", "default").strip()
    disk = (f"<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
            f"<source file='{path}'/><target dev='vda' bus='virtio'/><serial>VOL1</serial>"
            f"</disk>")
    d.ok("define", write_xml(d, "dv", domain_xml("dv", linux_guest, disk)))
    d.ok("start", "dv")
    d.wait_console("dv", "VIREO-LINUX: shell")
    m = re.search(r"VIREO-LINUX: blk=(\S+)", d.console_log("dv"))
    assert m and "vda:98304" in m.group(1), d.console_log("dv")[-2000:]  # 48 MiB in sectors
    stats = json.loads(d.ok("domstats", "dv", "--json"))
    vda = [x for x in stats["disks"] if x["target"] == "vda"]
    assert vda and vda[0]["rd_bytes"] > 0, stats
    # While the VM runs, its disk and the disk's backing file are neither resized nor replaced
    # (QEMU's image locks); once it is gone, they are.
    for vol in ("guest.qcow2", "gbase.qcow2"):
        r = d.api("POST", f"/v1/pools/default/volumes/{vol}/resize", {"capacity": "64M"})
        assert r[0] == 409 and "in use by a running VM" in error_of(r) and vol in error_of(r), r
    r = d.api("PUT", "/v1/pools/default/volumes/guest.qcow2/data", raw=bytes(4096))
    assert r[0] == 409 and "in use by a running VM" in error_of(r), r
    d.ok("destroy", "dv")
    d.ok("vol-resize", "guest.qcow2", "64M", "--pool", "default")
    d.ok("undefine", "dv")


def qemu_img(*args) -> str:
    return subprocess.run([QEMU_IMG, *args], capture_output=True, text=True,
                          check=True).stdout


def get_bytes(d, url: str) -> tuple[int, bytes]:
    c = UnixHTTP(d.sock)
    c.request("GET", url)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def read_disk(path: str, tmp_path, name: str) -> bytes:
    """The guest-visible bytes of an image, as qemu-img converts them to raw."""
    out = str(tmp_path / f"{name}.raw")
    qemu_img("convert", "-U", "-O", "raw", path, out)
    with open(out, "rb") as f:
        return f.read()


def test_volumes_judged_by_qemu_img(daemon, tmp_path):
    """Create, backing chains, cluster size, preallocation, resize, clone between formats and
    upload of disk content, all judged by qemu-img, with a vireod whose PATH has no qemu-img."""
    d = daemon
    with open(f"/proc/{d.proc.pid}/environ", "rb") as f:
        env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
    assert shutil.which("qemu-img", path=env[b"PATH"].decode()) is None
    pool = os.path.join(d.root, "var/lib/vireo/images")

    def api_ok(method, url, body, status=200):
        r = d.api(method, url, body)
        assert r[0] == status, (url, r)
        return r[1]

    vols = "/v1/pools/default/volumes"
    # qcow2 with a cluster size and metadata preallocation; an overlay whose backing format is
    # read from the base's header (qemu-img shows it recorded).
    v = api_ok("POST", vols, {"name": "jb.qcow2", "capacity": "16M", "format": "qcow2",
                              "cluster_size": 4096, "preallocation": "metadata"}, 201)
    assert v["format"] == "qcow2" and v["capacity"] == 16 << 20 and v["cluster_size"] == 4096
    base = os.path.join(pool, "jb.qcow2")
    info = qemu_img_info(base)
    assert info["cluster-size"] == 4096 and info["virtual-size"] == 16 << 20
    qemu_img("check", base)
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 1M 2M", base], check=True,
                   capture_output=True)
    v = api_ok("POST", vols, {"name": "jt.qcow2", "backing": "jb.qcow2"}, 201)
    assert v["backing"] == base and v["backing_format"] == "qcow2" and v["data"] == 0
    top = os.path.join(pool, "jt.qcow2")
    info = qemu_img_info(top)
    assert info["backing-filename"] == base and info["backing-filename-format"] == "qcow2"
    assert info["virtual-size"] == 16 << 20
    qemu_img("check", top)
    # A given backing format never overrides the header.
    r = d.api("POST", vols, {"name": "jx.qcow2", "backing": "jb.qcow2", "backing_format": "raw"})
    assert r[0] == 400 and "is a qcow2 image, not raw" in error_of(r), r
    assert not os.path.exists(os.path.join(pool, "jx.qcow2"))
    # Raw with full allocation.
    v = api_ok("POST", vols, {"name": "jf.img", "capacity": "2M", "format": "raw",
                              "preallocation": "falloc"}, 201)
    assert v["allocation"] >= 2 << 20 and v["format"] == "raw"
    r = d.api("POST", vols, {"name": "jy.img", "capacity": 1, "format": "raw",
                             "preallocation": "metadata"})
    assert r[0] == 400 and "preallocation 'metadata'" in error_of(r), r

    # Resize grows the virtual size; shrinking is refused unless asked.
    api_ok("POST", f"{vols}/jt.qcow2/resize", {"capacity": "24M"})
    assert qemu_img_info(top)["virtual-size"] == 24 << 20
    qemu_img("check", top)
    r = d.api("POST", f"{vols}/jt.qcow2/resize", {"capacity": "8M"})
    assert r[0] == 400 and "shrinking loses data" in error_of(r) and "jt.qcow2" in error_of(r)
    api_ok("POST", f"{vols}/jt.qcow2/resize", {"capacity": "20M", "shrink": True})
    assert qemu_img_info(top)["virtual-size"] == 20 << 20
    qemu_img("check", top)
    qemu_img("resize", "-q", "-f", "qcow2", top, "24M")  # (back) to 24 MiB for the clones

    # Clone: the chain flattened, into another format, byte-identical and sparse.
    subprocess.run(["qemu-io", "-f", "qcow2", "-c", "write -P 0xa5 2M 64k", top], check=True,
                   capture_output=True)
    want = read_disk(top, tmp_path, "top")
    # Download of the disk's content (?format=raw) rather than the file.
    assert get_bytes(d, f"{vols}/jt.qcow2/data?format=raw") == (200, want)
    r = d.api("GET", f"{vols}/jt.qcow2/data?format=vmdk")
    assert r[0] == 400 and "'vmdk'" in error_of(r)
    v = api_ok("POST", f"{vols}/jt.qcow2/clone", {"name": "jc.img", "format": "raw"}, 201)
    assert v["format"] == "raw" and v["capacity"] == 24 << 20
    with open(os.path.join(pool, "jc.img"), "rb") as f:
        assert f.read() == want
    assert v["allocation"] < 8 << 20  # zeros were not written
    v = api_ok("POST", f"{vols}/jc.img/clone", {"name": "jc.qcow2", "format": "qcow2"}, 201)
    qemu_img("check", os.path.join(pool, "jc.qcow2"))
    assert read_disk(os.path.join(pool, "jc.qcow2"), tmp_path, "jcq") == want
    assert "backing" not in v and v["data"] == 2 << 20  # 1-3 MiB written (0x5a, then 0xa5 at 2 MiB)
    r = d.api("POST", f"{vols}/jt.qcow2/clone", {"name": "jc.img"})
    assert r[0] == 409 and "already exists" in error_of(r)

    # Upload of disk content into a qcow2 volume: it stays qcow2 (same cluster size, no
    # backing file), holding the bytes from offset 0, zeros after them.
    body = os.urandom(3 << 20) + bytes(1 << 20) + b"tail" * 1000
    r = d.api("PUT", f"{vols}/jb.qcow2/data", raw=body)
    assert r[0] == 200 and r[1]["format"] == "qcow2" and r[1]["cluster_size"] == 4096, r
    qemu_img("check", base)
    disk = read_disk(base, tmp_path, "up")
    assert disk[:len(body)] == body and disk[len(body):] == bytes(len(disk) - len(body))
    assert len(disk) == 16 << 20
    # Bigger than the volume: the capacity grows to fit (whole sectors).
    big = os.urandom((17 << 20) + 100)
    r = d.api("PUT", f"{vols}/jb.qcow2/data", raw=big)
    assert r[0] == 200 and r[1]["capacity"] == (17 << 20) + 512, r
    disk = read_disk(base, tmp_path, "up2")
    assert disk[:len(big)] == big and disk[len(big):] == bytes(412)
    # An image file is stored as it is (the volume takes its format) ...
    img = tmp_path / "q.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", str(img), "1M")
    r = d.api("PUT", f"{vols}/jf.img/data", raw=img.read_bytes())
    assert r[0] == 200 and r[1]["format"] == "qcow2" and r[1]["capacity"] == 1 << 20, r
    # ... after its header is checked: a broken one leaves the volume untouched.
    r = d.api("PUT", f"{vols}/jf.img/data", raw=b"QFI\xfb" + bytes(600))
    assert r[0] == 400 and "jf.img" in error_of(r) and "not valid" in error_of(r), r
    assert qemu_img_info(os.path.join(pool, "jf.img"))["format"] == "qcow2"
    # A body under one sector, and a client that goes away mid-body (the volume stays as it
    # was, the temporary file goes).
    r = d.api("PUT", f"{vols}/jb.qcow2/data", raw=b"hello")
    assert r[0] == 200 and r[1]["format"] == "qcow2", r
    disk = read_disk(base, tmp_path, "up3")
    assert disk[:5] == b"hello" and disk[5:] == bytes(len(disk) - 5)
    s = socket.socket(socket.AF_UNIX)
    s.connect(d.sock)
    s.sendall(f"PUT {vols}/jb.qcow2/data HTTP/1.1\r\nHost: x\r\n"
              f"Content-Length: {8 << 20}\r\n\r\n".encode() + os.urandom(3 << 20))
    assert [n for n in os.listdir(pool) if n.startswith(".jb.qcow2.upload-")]  # under way
    s.close()
    end = time.time() + 10
    while [n for n in os.listdir(pool) if n.startswith(".")] and time.time() < end:
        time.sleep(0.05)
    assert read_disk(base, tmp_path, "up4") == disk
    assert not [n for n in os.listdir(pool) if n.startswith(".")]  # no temporary files left


def test_probing_never_guesses_raw(daemon, tmp_path, build_dir):
    """Files whose header says qcow2 or LUKS are never taken as raw, whatever their name."""
    d = daemon
    pool = os.path.join(d.root, "var/lib/vireo/images")
    qemu_img("create", "-q", "-f", "qcow2", "-b", "/etc/hostname", "-F", "raw",
             os.path.join(pool, "disguised.img"), "1M")
    v = json.loads(d.ok("vol-info", "disguised.img", "--pool", "default", "--json"))
    assert v["format"] == "qcow2" and v["backing"] == "/etc/hostname", v
    secret = tmp_path / "pw"
    secret.write_text("pw")
    subprocess.run([os.path.join(build_dir, "src/img/vireo-img"), "create", "-q", "-f", "luks",
                    "--object", f"secret,id=s0,file={secret}", "-o", "key-secret=s0,iter-time=1",
                    os.path.join(pool, "enc.img"), "1M"], check=True, capture_output=True)
    v = json.loads(d.ok("vol-info", "enc.img", "--pool", "default", "--json"))
    assert v["format"] == "luks" and v["capacity"] == 1 << 20, v
    # Its content needs the key: an upload of disk content is refused, the file kept.
    r = d.api("GET", "/v1/pools/default/volumes/enc.img/data?format=raw")
    assert r[0] == 400 and "enc.img" in error_of(r), r
    r = d.api("PUT", "/v1/pools/default/volumes/enc.img/data", raw=bytes(4096))
    assert r[0] == 400 and "enc.img" in error_of(r) and "key" in error_of(r), r
    assert json.loads(d.ok("vol-info", "enc.img", "--pool", "default", "--json"))["format"] \
        == "luks"
    d.ok("vol-delete", "disguised.img", "--pool", "default")
    d.ok("vol-delete", "enc.img", "--pool", "default")


def test_long_clone_does_not_block_others(daemon):
    """A clone copies without the pool lock, in its connection's thread: other requests,
    storage ones included, are answered while it runs."""
    d = daemon
    pool = os.path.join(d.root, "var/lib/vireo/images")
    src = os.path.join(pool, "long.img")
    with open(src, "wb") as f:
        for _ in range(96):
            f.write(os.urandom(1 << 20))
    done = {}

    def clone():
        t = time.monotonic()
        done["r"] = d.api("POST", "/v1/pools/default/volumes/long.img/clone",
                          {"name": "long.qcow2", "format": "qcow2"})
        done["t"] = time.monotonic() - t

    th = threading.Thread(target=clone)
    th.start()
    dst = os.path.join(pool, "long.qcow2")
    while not os.path.exists(dst) and th.is_alive():
        time.sleep(0.002)
    lat = []
    while th.is_alive():
        t = time.monotonic()
        assert d.api("GET", "/v1/pools/default/volumes")[0] == 200
        assert d.api("GET", "/v1/pools/default/volumes/jf.img")[0] in (200, 404)
        if th.is_alive():
            lat.append(time.monotonic() - t)
    th.join()
    assert done["r"][0] == 201, done
    assert lat, f"the clone took {done['t']:.3f} s: no request ran during it"
    assert max(lat) < done["t"] / 2, (lat, done["t"])
    d.ok("vol-delete", "long.img", "--pool", "default")
    d.ok("vol-delete", "long.qcow2", "--pool", "default")
