"""vireo-vmm booting the Debian cloud kernel with a busybox initramfs: bzImage (64-bit boot
protocol) and vmlinux (PVH entry), all CPUs and the right memory seen, no ACPI or PCI trouble
in its log, ACPI power-off from the shell and through the power button."""

from __future__ import annotations

import pytest

from vmm import EXIT_POWEROFF, boot_problems, interact, linux_cmd

from vireo_target import run_vm


def check_linux(res, cpus: int, memory_mib: int, quiet: bool = False):
    m = res.markers()
    assert res.rc == EXIT_POWEROFF, res.report()
    assert m.get("cpus") == str(cpus), res.report()
    assert m.get("online") == (f"0-{cpus - 1}" if cpus > 1 else "0"), res.report()
    total = int(m["memtotal_kb"])
    # The kernel keeps some memory for itself; it must see most of what we gave, never more.
    assert memory_mib * 1024 * 0.8 < total <= memory_mib * 1024, res.report()
    problems = boot_problems(res.console)
    assert not problems, "\n".join(problems) + "\n" + res.report()
    if not quiet:
        assert "ACPI: PM: Preparing to enter system sleep state S5" in res.console, res.report()


@pytest.mark.parametrize("kind", ["bzImage", "pvh"])
def test_linux_boots_and_powers_off(target, kind):
    kernel = target.guest.vmlinuz if kind == "bzImage" else target.guest.vmlinux
    res = run_vm(target, linux_cmd(target, kernel, cpus=2, memory="512M"), deadline=240)
    check_linux(res, 2, 512)
    assert "ACPI: PCI Root Bridge [PCI0]" in res.console, res.report()
    assert "is a 16550A" in res.console, res.report()


def test_linux_four_cpus_and_high_memory(target):
    res = run_vm(target, linux_cmd(target, target.guest.vmlinuz, cpus=4, memory="3584M",
                                   append="vireo.test=poweroff quiet"), deadline=240)
    check_linux(res, 4, 3584, quiet=True)


def test_linux_shell_and_poweroff(target):
    cmd = linux_cmd(target, target.guest.vmlinuz, cpus=1, memory="256M",
                    append="vireo.test=shell quiet")
    rc, out = interact(target, cmd, [
        ("VIREO-LINUX: shell", "sleep 1; feed 'echo SHELL-$((6*7))'"),
        ("SHELL-42", "feed 'poweroff'"),
    ], timeout=240)
    assert "SHELL-42" in out, out
    assert rc == EXIT_POWEROFF, out


def test_linux_sigterm_acpi_power_button(target):
    cmd = linux_cmd(target, target.guest.vmlinuz, cpus=1, memory="256M",
                    append="vireo.test=shell quiet")
    rc, out = interact(target, cmd, [
        ("VIREO-LINUX: acpid=started", "sleep 2; kill -TERM $pid"),
    ], timeout=240)
    assert "power button, poweroff" in out, out
    assert rc == EXIT_POWEROFF, out


def test_linux_reboot_with_no_reboot_exits_3(target):
    from vmm import EXIT_RESET
    res = run_vm(target, linux_cmd(target, target.guest.vmlinuz, cpus=1, memory="256M",
                                   append="vireo.test=reboot quiet"),
                 marker="VIREO-LINUX: reboot", deadline=240)
    assert res.rc == EXIT_RESET, res.report()
