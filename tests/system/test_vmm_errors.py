"""Bad input to vireo-vmm: one line naming the problem, the documented exit status, never a
crash."""

from __future__ import annotations

import pytest

from vmm import EXIT_USAGE, guest_elf, vmm_cmd

pytestmark = pytest.mark.asan


def run_bad(target, *args):
    rc, out = target.run(vmm_cmd(target, *args) + " </dev/null", 60)
    lines = [l for l in out.splitlines() if l.strip() and "kvm-pvm" not in l]
    return rc, lines


@pytest.fixture(scope="module")
def files(target):
    d = target.tmpdir
    target.check(
        f"head -c 3000 {target.guest.vmlinuz} > {d}/truncated.bzImage && "
        f"head -c 20000 {guest_elf(target)} > {d}/truncated.elf && "
        f"seq 1 2000 > {d}/text.txt && "
        f"dd if=/dev/zero of={d}/big.initrd bs=1M count=40 2>/dev/null", 60)
    return d


CASES = [
    ("missing kernel", ["--kernel", "/nonexistent/vmlinuz"], ["/nonexistent/vmlinuz", "No such file"]),
    ("truncated bzImage", ["--kernel", "{d}/truncated.bzImage"], ["truncated"]),
    ("truncated ELF", ["--kernel", "{d}/truncated.elf"], ["past the end"]),
    ("not a kernel", ["--kernel", "{d}/text.txt"], ["not a Linux bzImage"]),
    ("initrd larger than memory", ["--kernel", "{g}", "--memory", "32M", "--initrd", "{d}/big.initrd"],
     ["big.initrd", "--memory"]),
    ("memory 0", ["--kernel", "{g}", "--memory", "0"], ["--memory", "at least"]),
    ("memory beyond the address space", ["--kernel", "{g}", "--memory", "8192T"],
     ["--memory", "address space"]),
    ("10 KiB cmdline", ["--kernel", "{v}", "--cmdline", "x" * 10240], ["10240 bytes", "at most"]),
    ("10 KiB cmdline, ELF", ["--kernel", "{g}", "--cmdline", "x" * 10240], ["10240 bytes"]),
    ("unknown option", ["--kernel", "{g}", "--frobnicate"], ["unknown option '--frobnicate'"]),
    ("bad cpus", ["--kernel", "{g}", "--cpus", "0"], ["--cpus"]),
    ("bad serial", ["--kernel", "{g}", "--serial", "carrier-pigeon"], ["--serial"]),
    ("no kernel", ["--memory", "1G"], ["no --kernel"]),
]


@pytest.mark.parametrize("name,args,needles", CASES, ids=[c[0] for c in CASES])
def test_bad_input(target, files, name, args, needles):
    args = [a.format(d=files, g=guest_elf(target), v=target.guest.vmlinuz) for a in args]
    rc, lines = run_bad(target, *args)
    assert rc == EXIT_USAGE, f"{name}: exit {rc}\n" + "\n".join(lines)
    assert len(lines) == 1, f"{name}: expected one line\n" + "\n".join(lines)
    assert lines[0].startswith("vireo-vmm: "), lines
    for n in needles:
        assert n in lines[0], f"{name}: '{n}' not in: {lines[0]}"
