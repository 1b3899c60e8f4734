"""vireod's storage: pools of type dir and volumes made through qemu-img (the reference judges
the files), a volume used as a domain's disk by a real Linux guest under QEMU/TCG, and bad
input to the storage API."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import pytest

from test_daemon import Daemon, domain_xml, error_of, write_xml

QEMU_IMG = shutil.which("qemu-img")
pytestmark = pytest.mark.skipif(QEMU_IMG is None or shutil.which("qemu-system-x86_64") is None,
                                reason="qemu-img or qemu-system-x86_64 is not installed")


@pytest.fixture(scope="module")
def daemon(build_dir, tmp_path_factory):
    for exe in ("src/daemon/vireod", "src/cli/vireo"):
        if not os.access(os.path.join(build_dir, exe), os.X_OK):
            pytest.skip(f"{build_dir}/{exe} is not built")
    d = Daemon(build_dir, str(tmp_path_factory.mktemp("vs")))
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
    data = os.urandom(300000)
    up, down = tmp_path / "up.bin", tmp_path / "down.bin"
    up.write_bytes(data)
    d.ok("vol-upload", "r.img", str(up), "--pool", "p2")
    d.ok("vol-download", "r.img", str(down), "--pool", "p2")
    assert down.read_bytes() == data
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
    d.ok("destroy", "dv")
    d.ok("undefine", "dv")
