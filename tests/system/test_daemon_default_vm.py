"""The README's main command, `tools/run-default-vm`, the way CI can run it (no terminal):
`--check` builds, brings up vireod under a --root of its own, defines and starts the domain
`default` with the driver this host can run it with (saying which and why), waits for the
guest's shell on its console and shuts it down through ACPI.  A second run reuses that vireod
and that definition."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "../../tools/run-default-vm")


def stop_vireod(root: str):
    try:
        with open(os.path.join(root, "run/vireo/vireod.pid")) as f:
            os.kill(int(f.read().split()[0]), signal.SIGTERM)
    except (OSError, ValueError, IndexError):
        pass


def run_check(build_dir: str, root: str) -> str:
    env = dict(os.environ, VIREO_BUILD=build_dir)
    r = subprocess.run([SCRIPT, "--check", "--root", root], env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, text=True, timeout=300)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-4000:]
    return out


def test_run_default_vm_check(build_dir, linux_guest, tmp_path):
    with open("/proc/cpuinfo") as f:
        flags = set(f.read().split())
    # The script's own rule: hardware KVM = /dev/kvm, vmx or svm, and not kvm-pvm.
    kvm = (os.access("/dev/kvm", os.R_OK | os.W_OK) and not os.path.isdir("/sys/module/kvm_pvm")
           and bool(flags & {"vmx", "svm"}))
    if not kvm and shutil.which("qemu-system-x86_64") is None:
        pytest.skip("no hardware KVM and no qemu-system-x86_64")
    root = str(tmp_path / "r")
    try:
        out = run_check(build_dir, root)
        assert "starting vireod --root" in out, out
        want = "driver kvm (vireo-vmm): " if kvm else "driver qemu (QEMU/TCG): "
        assert want in out, out
        if not kvm:
            assert "kvm-pvm" in out or "no /dev/kvm" in out or "vmx/svm" in out, out
        assert "check passed" in out and "reached its shell and shut down" in out, out
        out = run_check(build_dir, root)
        assert "using the vireod already serving" in out and "check passed" in out, out
        domains = subprocess.run([os.path.join(build_dir, "src/cli/vireo"), "--root", root,
                                  "list", "--all"], capture_output=True, text=True).stdout
        assert "default" in domains and "shut off" in domains, domains
    finally:
        subprocess.run([os.path.join(build_dir, "src/cli/vireo"), "--root", root, "destroy",
                        "default"], capture_output=True)
        stop_vireod(root)
