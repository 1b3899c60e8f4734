"""vireo-vmm running our own test guest (guest/): memory map, ACPI, PCI, SMP, RTC and power,
checked from inside the guest; hostile guests; power button, reset and triple fault; two VMs
at once."""

from __future__ import annotations

import pytest

from vmm import (EXIT_POWEROFF, EXIT_RESET, EXIT_STOPPED, EXIT_TRIPLE_FAULT, guest_cmd,
                 interact, run_guest, verdict, vmm_cmd, guest_elf)

pytestmark = pytest.mark.asan


@pytest.mark.parametrize("cpus", [1, 2, 4])
def test_guest_passes(target, cpus):
    res = run_guest(target, guest_cmd(target, cpus=cpus))
    assert verdict(res).startswith(f"VIREO-GUEST: PASS cpus={cpus}"), res.report()
    assert res.rc == EXIT_POWEROFF, res.report()


def test_guest_256_cpus(target):
    # The most vCPUs vireo-vmm takes: APIC IDs 0-255, the last one reachable only in x2APIC
    # mode (MADT x2APIC entry, KVM's 32-bit APIC ID API).
    res = run_guest(target, guest_cmd(target, cpus=256, memory="512M"), deadline=300)
    assert verdict(res).startswith("VIREO-GUEST: PASS cpus=256"), res.report()
    assert "256 of 256 CPUs online" in res.console, res.report()


def test_guest_large_memory_above_4g(target):
    # 5 GiB: RAM is split around the PCI hole; the guest checks the map it is given.
    res = run_guest(target, guest_cmd(target, cpus=2, memory="5G"))
    assert verdict(res).startswith("VIREO-GUEST: PASS"), res.report()
    assert "ram=5" in verdict(res), res.report()


def test_256_gib_guest_is_declarable(target):
    # Guest RAM is reserved lazily: 256 GiB on a small host costs only what is touched.
    res = run_guest(target, guest_cmd(target, cpus=1, memory="256G") + " --stats")
    assert verdict(res).startswith("VIREO-GUEST: PASS"), res.report()
    rss = int(res.console.split("peak_rss_kib=")[1].split()[0])
    assert rss < 256 * 1024, f"peak RSS {rss} KiB for a guest that touches little\n{res.report()}"


def test_hostile_guest_leaves_vmm_serving(target):
    res = run_guest(target, guest_cmd(target, cpus=2, words="hostile"), deadline=300)
    assert "hostile:" in res.console and "accesses done" in res.console, res.report()
    assert verdict(res).startswith("VIREO-GUEST: PASS"), res.report()
    assert res.rc == EXIT_POWEROFF, res.report()


def test_reset_with_no_reboot_exits_3(target):
    res = run_guest(target, guest_cmd(target, words="reset"))
    assert res.rc == EXIT_RESET, res.report()


def test_triple_fault_with_no_reboot_exits_4(target):
    res = run_guest(target, guest_cmd(target, words="triplefault"))
    assert res.rc == EXIT_TRIPLE_FAULT, res.report()


def test_reset_reboots_the_guest(target):
    # Without --no-reboot a reset starts the guest again; SIGTERM twice then stops it.
    cmd = guest_cmd(target, words="reset", extra=())
    rc, out = interact(target, cmd, [
        ("VIREO-GUEST: PASS", ""),
    ], finish=(
        "i=0; while [ $(grep -c 'test guest starting' \"$w/out\") -lt 2 ] && [ $i -lt 300 ]; "
        "do sleep 0.2; i=$((i+1)); done; kill -TERM $pid; sleep 0.5; kill -TERM $pid"))
    assert out.count("test guest starting") >= 2, out
    assert "rebooting" in out, out
    assert rc == EXIT_STOPPED, out


def test_sigterm_presses_the_power_button(target):
    rc, out = interact(target, guest_cmd(target, words="powerbutton"), [
        ("waiting for power button", "kill -TERM $pid"),
    ])
    assert "power button pressed" in out, out
    assert rc == EXIT_POWEROFF, out


def test_two_vms_at_once(target):
    # Both VMs wait for their power button at the same time, then both power off.
    cmd = guest_cmd(target, cpus=2, words="powerbutton")
    script = f"""
w=$(mktemp -d /tmp/vireo-two-XXXXXX)
{cmd} </dev/null >$w/a 2>&1 & a=$!
{cmd} </dev/null >$w/b 2>&1 & b=$!
i=0
while [ $i -lt 600 ]; do
  grep -q 'waiting for power button' $w/a && grep -q 'waiting for power button' $w/b && break
  sleep 0.2; i=$((i+1))
done
echo "both-waiting=$i"
kill -TERM $a $b
wait $a; echo "rc-a=$?"
wait $b; echo "rc-b=$?"
cat $w/a $w/b; rm -rf $w
"""
    rc, out = target.run(script, 300)
    assert "both-waiting=600" not in out, out
    assert "rc-a=0" in out and "rc-b=0" in out, out
    assert out.count("VIREO-GUEST: PASS cpus=2") == 2, out


def test_serial_to_file(target):
    log = f"{target.tmpdir}/serial-file.log"
    rc, out = target.run(guest_cmd(target, extra=("--no-reboot", "--serial", f"file:{log}"))
                         + " </dev/null", 120)
    assert rc == EXIT_POWEROFF, out
    assert "VIREO-GUEST: PASS" not in out
    assert "VIREO-GUEST: PASS" in target.read_file(log).decode(errors="replace")


def test_stats_report_exits(target):
    rc, out = target.run(guest_cmd(target) + " --stats </dev/null", 120)
    assert rc == EXIT_POWEROFF, out
    stats = dict(kv.split("=") for kv in out.split("stats: ")[1].split())
    assert int(stats["exits_io"]) > 100, out
    assert float(stats["first_output_ms"]) > 0, out


def test_version_and_help(target):
    out = target.check(vmm_cmd(target, "--version"), 30)
    assert out.startswith("vireo-vmm "), out
    out = target.check(vmm_cmd(target, "--help"), 30)
    for word in ("--kernel", "--memory", "--serial", "--no-reboot", "Exit status", "triple"):
        assert word in out, out
