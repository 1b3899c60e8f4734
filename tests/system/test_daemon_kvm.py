"""vireod + vireo end to end with the kvm driver (vireo-vmm) and the Linux test guest, in the
target (the KVM test box, and the host too when it has hardware KVM): define a type='kvm'
domain with a raw virtio disk, start it, reach the guest's shell on the console log, suspend
it (paused, its vCPU time stops), kill -9 vireod and start it again (the VM is re-attached:
same pid, still paused as its control socket says, console relayed again), resume, domstats
(cpu time, the disk's counters from vireo-vmm), reset (the guest boots again in the same
process), ACPI shutdown through the guest's acpid, undefine.  The box has busybox sh only, so
the scenario is a shell script; its "STEP:" lines say how far it got.
"""

from __future__ import annotations

import shlex
import time

SHELL = "VIREO-LINUX: shell"
POWER_BUTTON = "VIREO-LINUX: power button, poweroff"
NAME = "kvm1"
DISK_MIB = 8


def domain_xml(guest, disk: str) -> str:
    return f"""<domain type='kvm'>
  <name>{NAME}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{guest.vmlinuz}</kernel>
    <initrd>{guest.initramfs}</initrd>
    <cmdline>console=ttyS0 quiet vireo.test=shell</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <serial type='pty'/>
  </devices>
</domain>
"""


def scenario(build: str, root: str, guest) -> str:
    q = shlex.quote
    xml = domain_xml(guest, f"{root}/disk.img")
    return f"""
B={q(build)}
R={q(root)}
V="$B/src/cli/vireo --root $R"
LOG="$R/var/log/vireo/{NAME}.console.log"
up_s() {{ local u; read -r u _ </proc/uptime; echo "${{u%.*}}"; }}
fail() {{
    echo "FAIL: $*"
    echo "--- dominfo"; $V dominfo {NAME} --json 2>&1
    echo "--- console log"; tail -n 40 "$LOG" 2>&1
    echo "--- vireod"; tail -n 60 "$R/vireod.out" 2>&1
    exit 1
}}
field() {{  # field NAME: a top-level value of `vireo dominfo --json` (pretty-printed)
    $V dominfo {NAME} --json 2>/dev/null |
        sed -n "s/^  \\"$1\\": *\\"\\{{0,1\\}}\\([^\\",]*\\).*/\\1/p" | head -n 1
}}
start_daemon() {{
    "$B/src/daemon/vireod" --root "$R" --foreground --log-level debug >>"$R/vireod.out" 2>&1 &
    dpid=$!
    echo "$dpid" >"$R/vireod.pid"
    i=0
    until $V list >/dev/null 2>&1; do
        kill -0 "$dpid" 2>/dev/null || fail "vireod exited"
        i=$((i + 1)); [ $i -le 200 ] || fail "vireod did not answer in 20 s"
        sleep 0.1
    done
}}
stat_field() {{  # stat_field NAME: a top-level number of `vireo domstats --json`
    $V domstats {NAME} --json 2>/dev/null | sed -n "s/^  \\"$1\\": *\\([0-9]*\\).*/\\1/p" | head -n 1
}}
wait_count() {{  # wait_count TEXT N SECONDS
    end=$(( $(up_s) + $3 ))
    until [ "$(grep -cF "$1" "$LOG" 2>/dev/null)" -ge "$2" ]; do
        [ "$(up_s)" -le "$end" ] || fail "'$1' not $2 times on the console in $3 s"
        sleep 0.5
    done
}}
wait_log() {{  # wait_log TEXT SECONDS
    end=$(( $(up_s) + $2 ))
    until grep -qF "$1" "$LOG" 2>/dev/null; do
        [ "$(up_s)" -le "$end" ] || fail "'$1' not on the console in $2 s"
        sleep 0.5
    done
}}

rm -rf "$R"; mkdir -p "$R"
dd if=/dev/zero of="$R/disk.img" bs=1048576 count={DISK_MIB} 2>/dev/null || fail "dd"
cat >"$R/{NAME}.xml" <<'VIREO_XML_END'
{xml}VIREO_XML_END
start_daemon
echo "STEP: vireod up"
$V define "$R/{NAME}.xml" || fail "define"
t0=$(up_s)
$V start {NAME} || fail "start"
wait_log {q(SHELL)} 150
echo "STEP: shell after $(( $(up_s) - t0 )) s"
[ "$(field state)" = running ] || fail "state is not running"
vmpid=$(field pid)
[ -n "$vmpid" ] && kill -0 "$vmpid" || fail "no live VM pid ($vmpid)"
echo "STEP: running pid=$vmpid"
grep -F "VIREO-LINUX: " "$LOG" | grep -E "cpus=|memtotal_kb=|blk=|acpid="

$V suspend {NAME} || fail "suspend"
[ "$($V domstate {NAME})" = paused ] || fail "domstate after suspend is not paused"
c1=$(stat_field vcpu_time_ns); sleep 1; c2=$(stat_field vcpu_time_ns)
[ -n "$c1" ] && [ "$c1" -gt 0 ] || fail "no vcpu_time_ns in domstats ($c1)"
[ $((c2 - c1)) -lt 20000000 ] || fail "paused, yet the vCPUs ran $((c2 - c1)) ns in 1 s"
echo "STEP: paused vcpu_time_ns=$c1"

kill -9 "$dpid"; wait "$dpid" 2>/dev/null
$V list >/dev/null 2>&1; rc=$?
[ $rc = 3 ] || fail "vireo list with vireod killed: exit status $rc, expected 3"
kill -0 "$vmpid" || fail "the VM died with vireod"
echo "STEP: vireod killed, VM alive"
start_daemon
[ "$(field state)" = paused ] || fail "state after re-attach is not paused"
[ "$(field pid)" = "$vmpid" ] || fail "pid after re-attach is $(field pid), expected $vmpid"
[ "$(field reason)" = re-attached ] || fail "reason is not re-attached"
echo "STEP: re-attached pid=$vmpid"
$V resume {NAME} || fail "resume"
[ "$($V domstate {NAME})" = running ] || fail "domstate after resume is not running"
$V domstats {NAME} | tee "$R/stats.txt" | grep -E "cpu.time|block.0"
grep -qE "^  cpu.time=[1-9]" "$R/stats.txt" || fail "no cpu.time in domstats"
grep -qE "^  block.0.name=vda" "$R/stats.txt" || fail "no vda in domstats"
grep -qE "^  block.0.rd.reqs=[1-9]" "$R/stats.txt" || fail "no disk reads counted"
echo "STEP: resumed, stats"
t0=$(up_s)
$V reset {NAME} || fail "reset"
wait_count {q(SHELL)} 2 150
[ "$(field pid)" = "$vmpid" ] || fail "pid after reset is $(field pid), expected $vmpid"
echo "STEP: reset, shell again after $(( $(up_s) - t0 )) s"

$V shutdown {NAME} --timeout 60 || fail "shutdown"
[ "$(field state)" = "shut off" ] || fail "state after shutdown is not shut off"
kill -0 "$vmpid" 2>/dev/null && fail "vireo-vmm ($vmpid) still runs after shutdown"
# The relay was reconnected after the restart: the guest's acpid line reached the log.
wait_log {q(POWER_BUTTON)} 10
echo "STEP: shut off"
$V undefine {NAME} || fail "undefine"
$V list --all | grep -q {NAME} && fail "still listed after undefine"
echo "STEP: undefined"
kill "$dpid"; wait "$dpid"
echo "STEP: done"
"""


def cleanup(root: str) -> str:
    """Whatever failed, nothing of the test keeps running (by the pids written down)."""
    q = shlex.quote
    return f"""
R={q(root)}
for f in "$R/run/vireo/domains"/*/vm.pid "$R/vireod.pid"; do
    [ -f "$f" ] && read -r p _ <"$f" && kill -9 "$p" 2>/dev/null
done
rm -rf "$R"
true
"""


def test_kvm_domain_lifecycle_kill9_reattach_acpi_shutdown(target, linux_guest, build_dir):
    root = f"{target.tmpdir}/vk"
    t = time.monotonic()
    try:
        rc, out = target.run(scenario(build_dir, root, linux_guest), 300)
    finally:
        target.run(cleanup(root), 60)
    took = time.monotonic() - t
    print(out)
    assert rc == 0 and "STEP: done" in out, f"[{target.where}] exit status {rc}:\n{out}"
    steps = [line for line in out.splitlines() if line.startswith("STEP: shell after")]
    target.note(f"test_daemon_kvm: {took:.0f} s, {steps[0][6:] if steps else '?'}")
    # The guest saw what the domain XML gave it.
    assert "VIREO-LINUX: cpus=1" in out, out
    assert f"blk=vda:{DISK_MIB * 2048}" in out, out
    assert "acpid=started" in out, out
