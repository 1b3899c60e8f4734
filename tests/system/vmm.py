"""Helpers for the system tests of vireo-vmm: command lines, background runs with a
watchdog, and checks of a Linux guest's boot log. Everything runs through a `Target`
(vireo_target.py), so the tests do not know whether they run in the KVM test box or on the
host."""

from __future__ import annotations

import re
import shlex

from vireo_target import Target, VmResult, run_vm

q = shlex.quote

EXIT_POWEROFF, EXIT_INTERNAL, EXIT_USAGE, EXIT_RESET, EXIT_TRIPLE_FAULT, EXIT_STOPPED = range(6)


def vmm_path(target: Target) -> str:
    return f"{target.build}/src/vmm/vireo-vmm"


def guest_elf(target: Target) -> str:
    return f"{target.build}/guest/vireo-test-guest.elf"


def vmm_cmd(target: Target, *args: str) -> str:
    return " ".join([q(vmm_path(target))] + [q(a) for a in args])


def guest_cmd(target: Target, cpus: int = 1, memory: str = "256M", words: str = "",
              extra: tuple[str, ...] = ("--no-reboot",)) -> str:
    """vireo-vmm running our test guest, told what to expect."""
    cmdline = f"cpus={cpus} mem={memory} {words}".strip()
    return vmm_cmd(target, "--kernel", guest_elf(target), "--memory", memory, "--cpus",
                   str(cpus), "--cmdline", cmdline, *extra)


def linux_cmd(target: Target, kernel: str, cpus: int = 2, memory: str = "512M",
              append: str = "vireo.test=poweroff", extra: tuple[str, ...] = ("--no-reboot",)) -> str:
    return vmm_cmd(target, "--kernel", kernel, "--initrd", target.guest.initramfs, "--memory",
                   memory, "--cpus", str(cpus), "--cmdline", f"console=ttyS0 {append}", *extra)


def run_guest(target: Target, cmd: str, deadline: float = 120) -> VmResult:
    return run_vm(target, cmd, marker="VIREO-GUEST:", deadline=deadline)


def verdict(res: VmResult) -> str:
    for line in res.console.splitlines():
        i = line.find("VIREO-GUEST: ")
        if i >= 0 and ("PASS" in line or "FAIL" in line):
            return line[i:].strip()
    return ""


def interact(target: Target, cmd: str, steps: list[tuple[str, str]], timeout: float = 180,
             finish: str = "") -> tuple[int | None, str]:
    """Start `cmd` in the background with stdin from a FIFO; for each (wait_for, action) wait
    until `wait_for` appears in its output, then run the sh `action` (in which $pid is the
    VMM's pid and `feed TEXT` writes a line to its stdin).  Returns (exit status, output);
    None if it had to be killed."""
    lines = [
        "w=$(mktemp -d /tmp/vireo-int-XXXXXX)",
        'mkfifo "$w/in"',
        f'{cmd} <"$w/in" >"$w/out" 2>&1 &',
        "pid=$!",
        'exec 3>"$w/in"',
        "feed() { printf '%s\\n' \"$1\" >&3; }",
        "waitfor() { i=0; while ! grep -qF \"$1\" \"$w/out\"; do "
        "kill -0 $pid 2>/dev/null || return 1; i=$((i+1)); "
        f"[ $i -gt {int(timeout * 5)} ] && return 1; sleep 0.2; done; return 0; }}",
        "ok=1",
    ]
    for wait_for, action in steps:
        lines.append(f'if [ $ok = 1 ] && waitfor {q(wait_for)}; then {action or ":"}; '
                     f'else ok=0; echo "VIREO-T: never saw: "{q(wait_for)}; fi')
    lines += [
        finish or ":",
        f"i=0; while kill -0 $pid 2>/dev/null && [ $i -lt {int(timeout * 5)} ]; do "
        "sleep 0.2; i=$((i+1)); done",
        "if kill -0 $pid 2>/dev/null; then kill -USR2 $pid; sleep 1; kill -KILL $pid; "
        "echo 'VIREO-T: killed'; fi",
        "wait $pid; echo \"VIREO-T: rc=$?\"",
        "exec 3>&-",
        'cat "$w/out"; rm -rf "$w"',
    ]
    rc, out = target.run("\n".join(lines), timeout * 2 + 60)
    m = re.search(r"VIREO-T: rc=(\d+)", out)
    if "VIREO-T: killed" in out or not m:
        return None, out
    return int(m.group(1)), out


# Lines a Linux guest must never print on our machine: ACPI or PCI trouble, firmware bugs,
# kernel warnings.
_BAD = re.compile(
    r"ACPI Error|ACPI Warning|ACPI BIOS (Error|Warning)|\[Firmware (Bug|Warn)\]|"
    r"PCI: Fatal|MMCONFIG .* not reserved|not using MMCONFIG|PCI: .*failed|"
    r"pci .*can't claim|BAR \d+: no space|WARNING:|Call Trace|BUG:|Oops|"
    r"ACPI: .*(failed|FAILED)|_OSC failed|Kernel panic")


def boot_problems(console: str) -> list[str]:
    """The lines of a Linux boot log that show a problem with our machine.

    One known artifact of the KVM test box is left out: QEMU's software emulation of SVM does
    not intercept XSETBV for nested guests, so KVM's CPUID(0xD) sizes disagree with what the
    guest enabled and every nested Linux (under QEMU/KVM as under vireo-vmm) prints an
    'XSAVE consistency problem' warning with its trace.  It never happens on real hardware."""
    out, skipping = [], False
    for line in console.splitlines():
        if "XSAVE consistency problem" in line:
            skipping = True
        if skipping:
            if "end trace" in line:
                skipping = False
            continue
        if _BAD.search(line):
            out.append(line)
    return out
