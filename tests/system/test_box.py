"""Smoke tests of the system-test places themselves: the KVM test box (and the host, where it
has hardware KVM) and the default Linux guest."""

from __future__ import annotations

import os
import time

import pytest

import vireo_target
from vireo_target import CommandTimeout, qemu_linux_cmd, run_vm


def test_kvm_device(target):
    out = target.check("ls -l /dev/kvm", 30)
    assert out.startswith("c"), out


def test_kvm_modules_loaded(target):
    if target.where != "box":
        pytest.skip("the modules are the box's business; on a host KVM may be built in")
    out = target.check("cat /proc/modules", 30)
    loaded = {line.split()[0] for line in out.splitlines() if line.strip()}
    assert {"irqbypass", "kvm", "kvm_amd"} <= loaded, out
    assert "svm" in target.check("grep -m1 '^flags' /proc/cpuinfo", 30).split()


def test_exit_status_and_output(target):
    rc, out = target.run("echo out; echo err >&2; exit 7", 30)
    assert rc == 7
    assert "out\n" in out and "err\n" in out
    rc, out = target.run("printf '%s\\n' 'quotes \" and '\"'\"' and $HOME and @@x@@ END 0'", 30)
    assert rc == 0
    assert out == "quotes \" and ' and $HOME and @@x@@ END 0\n"


def test_large_output(target):
    rc, out = target.run("seq 1 50000", 120)
    assert rc == 0
    lines = out.split()
    assert len(lines) == 50000 and lines[-1] == "50000"


def test_timeout_kills_the_command(target):
    t = time.monotonic()
    with pytest.raises(CommandTimeout) as e:
        target.run("echo started; sleep 3071 & sleep 3072", 3)
    assert time.monotonic() - t < 60
    assert "started" in e.value.output
    # the whole process group is gone, and the place still answers
    rc, out = target.run("ps -eo args 2>/dev/null || ps -o args", 30)
    assert "sleep 307" not in out, out


def test_files_at_host_paths(target, linux_guest, build_dir):
    for p in (linux_guest.vmlinuz, linux_guest.vmlinux, linux_guest.initramfs):
        rc, out = target.run(f"stat -c %s {p}", 30)
        assert rc == 0, out
        assert int(out) == os.path.getsize(p)
    if os.path.isdir(build_dir):
        target.check(f"test -d {build_dir}", 30)


def test_write_and_read_file(target):
    data = bytes(range(256)) * 40 + b"end\n"
    path = f"{target.tmpdir}/sub/blob.bin"
    target.write_file(path, data)
    assert target.read_file(path) == data
    assert target.check(f"md5sum {path}", 30).split()[0] == __import__("hashlib").md5(data).hexdigest()


@pytest.mark.needs_qemu
def test_qemu_kvm_linux_guest(target, linux_guest):
    """QEMU with KVM boots the Linux test guest inside the target up to its markers: proves
    the guest files and, in the box, nested KVM."""
    log = f"{target.tmpdir}/qemu-linux.log"
    mon = f"{target.tmpdir}/qemu-linux.mon"
    cmd = qemu_linux_cmd(linux_guest, log, "quiet vireo.test=poweroff", monitor_pipe=mon)
    t = time.monotonic()
    r = run_vm(target, cmd, console_log=log, marker="VIREO-LINUX: poweroff", deadline=150,
               monitor_pipe=mon)
    wall = time.monotonic() - t
    assert not r.hung, r.report()
    assert r.rc == 0, r.report()
    m = r.markers()
    assert m.get("cpus") == "2", r.report()
    assert 400_000 < int(m.get("memtotal_kb", "0")) < 524_288, r.report()
    assert m.get("kernel") == linux_guest.kernel_version, r.report()
    assert "poweroff" in m, r.report()
    target.note(f"QEMU/KVM Linux guest: marker after {r.marker_s:.1f} s "
                f"(guest uptime {m.get('uptime')} s), QEMU exit after {r.exit_s:.1f} s, "
                f"wall {wall:.1f} s")
