"""Our test guest judged against the reference: under QEMU (software emulation, on the host)
it must give the same verdict as under vireo-vmm. If it did not, the guest's checks, not the
VMM, would be suspect."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

import vireo_target

QEMU = shutil.which("qemu-system-x86_64")


def qemu_guest(machine: str, cpus: int, words: str = "") -> subprocess.CompletedProcess:
    elf = os.path.join(vireo_target.build_dir(), "guest", "vireo-test-guest.elf")
    cmd = [QEMU, "-M", machine, "-accel", "tcg", "-m", "256", "-smp", str(cpus),
           "-nodefaults", "-no-user-config", "-display", "none", "-serial", "stdio",
           "-no-reboot", "-kernel", elf, "-append", f"cpus={cpus} mem=256M {words}".strip()]
    return subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                          timeout=180)


@pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 is not installed")
@pytest.mark.parametrize("machine,cpus", [("q35", 1), ("q35", 4), ("microvm", 2)])
@pytest.mark.parametrize("words", ["", "hostile"])
def test_guest_passes_under_qemu(machine, cpus, words):
    r = qemu_guest(machine, cpus, words)
    verdicts = [l for l in r.stdout.splitlines() if l.startswith("VIREO-GUEST: ")]
    assert verdicts and verdicts[0].startswith(f"VIREO-GUEST: PASS cpus={cpus}"), r.stdout
    assert r.returncode == 0, r.stdout + r.stderr
