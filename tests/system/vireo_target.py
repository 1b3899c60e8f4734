"""Where system tests run their commands: inside the KVM test box, or directly on the host.

A system test gets a `Target` (pytest fixture `target`, see conftest.py) and uses only:

    rc, out = target.run("some sh command line", timeout=60)   # stdout+stderr together
    target.where          # "box" or "host" (for messages only: a test must not depend on it)
    target.build          # the build directory (same absolute path in both places)
    target.guest          # LinuxGuest: .vmlinuz .vmlinux .initramfs (same paths in both places)
    target.tmpdir         # a scratch directory inside the target, made for the session
    target.write_file(path, data: bytes)  /  target.read_file(path) -> bytes
    target.has_qemu       # qemu-system-x86_64 usable in the target

Commands are POSIX sh command lines run in `/` with stdin from /dev/null, in their own process
group; in the box the shell is busybox ash (so use busybox-compatible commands only). A command
that outlives its timeout is killed (its whole process group) and CommandTimeout is raised, with
what it printed so far in .output.

Python 3.11 standard library only.
"""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(REPO, "tests", "kvmbox"))

import box as kvmbox  # noqa: E402
from box import BoxError, CommandTimeout, LinuxGuest  # noqa: E402,F401

QEMU = "/usr/bin/qemu-system-x86_64"

# Host paths test modules want inside the box, registered at import (collection) time, before
# the session's box boots; they appear at the same paths.  Copying through the agent instead
# (write_file) costs seconds per 100 KiB.
_box_include: list[str] = []


def box_include(path: str) -> None:
    if os.path.exists(path) and path not in _box_include:
        _box_include.append(path)


def build_dir() -> str:
    return os.path.abspath(os.environ.get("VIREO_BUILD") or os.path.join(REPO, "build"))


def host_has_hw_kvm() -> bool:
    """Hardware virtualization (vmx or svm in /proc/cpuinfo) and a /dev/kvm we can open.
    kvm-pvm hosts (software MMU, no VT-x/SVM) have a /dev/kvm but no such flag: False."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = set()
            for line in f:
                if line.startswith("flags"):
                    flags.update(line.split(":", 1)[1].split())
                    break
        if not flags & {"vmx", "svm"}:
            return False
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        import fcntl
        return fcntl.ioctl(fd, 0xAE00) == 12  # KVM_GET_API_VERSION
    except OSError:
        return False
    finally:
        os.close(fd)


def places() -> list[str]:
    """VIREO_TARGET=box|host|auto (default auto: the box always, the host too when it has
    hardware KVM)."""
    want = os.environ.get("VIREO_TARGET", "auto").strip().lower()
    if want in ("box", "host"):
        return [want]
    if want != "auto":
        raise ValueError(f"VIREO_TARGET={want!r}: use box, host or auto")
    return ["box", "host"] if host_has_hw_kvm() else ["box"]


class Target:
    where = "?"

    def __init__(self, build: str, guest: LinuxGuest):
        self.build = build
        self.guest = guest
        self.tmpdir = ""
        self.stats: dict[str, float] = {}
        self.notes: list[str] = []

    def run(self, cmd: str, timeout: float = 60.0) -> tuple[int, str]:
        raise NotImplementedError

    def note(self, msg: str) -> None:
        """A line for the end-of-session summary (timings and the like)."""
        self.notes.append(msg)

    def check(self, cmd: str, timeout: float = 60.0) -> str:
        """run() and assert exit status 0; returns the output."""
        rc, out = self.run(cmd, timeout)
        if rc != 0:
            raise AssertionError(f"[{self.where}] exit status {rc}: {cmd}\n{out}")
        return out

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        raise NotImplementedError

    def read_file(self, path: str) -> bytes:
        raise NotImplementedError

    @property
    def has_qemu(self) -> bool:
        return self.run(f"test -x {QEMU}", 30)[0] == 0

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def measure_overhead(self, n: int = 3) -> float:
        best = None
        for _ in range(n):
            t = time.monotonic()
            self.run("true", 30)
            d = time.monotonic() - t
            best = d if best is None else min(best, d)
        self.stats["command_overhead_s"] = best or 0.0
        return best or 0.0

    def describe(self) -> str:
        return self.where

    def __repr__(self) -> str:
        return f"<Target {self.where}>"


class HostTarget(Target):
    where = "host"

    def start(self) -> None:
        self.tmpdir = tempfile.mkdtemp(prefix="vireo-systest-")

    def stop(self) -> None:
        if self.tmpdir:
            shutil.rmtree(self.tmpdir, ignore_errors=True)
            self.tmpdir = ""

    def run(self, cmd: str, timeout: float = 60.0) -> tuple[int, str]:
        p = subprocess.Popen(["/bin/sh", "-c", cmd], stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd="/",
                             start_new_session=True)
        try:
            out, _ = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except OSError:
                pass
            try:
                out, _ = p.communicate(timeout=10)
            except subprocess.TimeoutExpired:  # a grandchild outside the group holds the pipe
                out = b""
            raise CommandTimeout(cmd, timeout, out.decode(errors="replace")) from None
        return p.returncode, out.decode(errors="replace")

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        os.makedirs(os.path.dirname(path) or "/", exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)

    def read_file(self, path: str) -> bytes:
        with open(path, "rb") as f:
            return f.read()


class BoxTarget(Target):
    where = "box"

    def __init__(self, build: str, guest: LinuxGuest, qemu: bool = False,
                 include: list[str] | None = None):
        super().__init__(build, guest)
        self.with_qemu = qemu
        self.include = list(include or [])
        self.box: kvmbox.Box | None = None
        self.boots = 0

    def _boot(self) -> None:
        include = [p for p in [self.build] if os.path.isdir(p)] + self.include
        b = kvmbox.Box(include, qemu=self.with_qemu, verbose=False)
        b.start()
        self.box = b
        self.boots += 1
        self.stats["boot_s"] = b.boot_seconds or 0.0
        self.stats["assemble_s"] = b.prepare_seconds or 0.0
        rc, out = b.run("mktemp -d /tmp/vireo-systest-XXXXXX", 30)
        if rc:
            raise BoxError(f"mktemp in the box failed: {out}")
        self.tmpdir = out.strip()

    def start(self) -> None:
        if self.box is None or self.box.dead:
            if self.box is not None:
                print(f"\nvireo target: the box died, booting a new one "
                      f"(boot #{self.boots + 1})", file=sys.stderr)
            self._boot()

    def stop(self) -> None:
        if self.box:
            self.box.stop()
            self.box = None

    def run(self, cmd: str, timeout: float = 60.0) -> tuple[int, str]:
        self.start()
        assert self.box
        try:
            return self.box.run(cmd, timeout)
        except CommandTimeout:
            raise
        except BoxError as e:
            if not self.box.dead:
                raise
            # The box itself (QEMU's emulated machine) stopped answering: an environment
            # failure, seen about once in a few hundred nested boots.  Say so loudly, boot a
            # new box and run the command once more; a second failure is the test's.
            print(f"\nvireo target: the box stopped answering; retrying in a new box:\n{e}",
                  file=sys.stderr)
            self.note(f"the box stopped answering during {cmd[:80]!r}; ran it again in a new box")
            self.start()
            return self.box.run(cmd, timeout)

    def write_file(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.start()
        assert self.box
        self.box.put(data, path, mode)

    def read_file(self, path: str) -> bytes:
        self.start()
        assert self.box
        return self.box.get(path)

    def console_tail(self, lines: int = 40) -> str:
        return self.box.console_tail(lines) if self.box else ""

    def describe(self) -> str:
        return "box (TCG VM with nested KVM)" + (" + QEMU" if self.with_qemu else "")


def make_target(where: str, qemu: bool = False) -> Target:
    guest = kvmbox.ensure_guest(quiet=True)
    build = build_dir()
    if where == "box":
        # VIREO_BOX_INCLUDE: more paths for the box (os.pathsep-separated), e.g. a second build
        # dir; VIREO_BOX_QEMU=1: put QEMU in the box even when no test is marked needs_qemu.
        extra = [p for p in os.environ.get("VIREO_BOX_INCLUDE", "").split(os.pathsep) if p]
        extra += _box_include
        qemu = qemu or os.environ.get("VIREO_BOX_QEMU", "") not in ("", "0")
        t: Target = BoxTarget(build, guest, qemu=qemu, include=extra)
    elif where == "host":
        t = HostTarget(build, guest)
    else:
        raise ValueError(where)
    t.start()
    return t


def sh_quote(s: str) -> str:
    return shlex.quote(s)


# ---------------------------------------------------------------------------------------------
# Running a VM (our VMM or QEMU) inside the target with a watchdog

class VmResult:
    """What run_vm() saw. Times are seconds since the VM command started (measured inside the
    target); None when it did not happen."""

    def __init__(self, out: str):
        self.raw = out
        self.marker_s: float | None = None
        self.exit_s: float | None = None
        self.rc: int | None = None
        self.hung = False
        self.console = ""
        self.monitor = ""
        section = None
        console: list[str] = []
        monitor: list[str] = []
        for line in out.splitlines():
            if line.startswith("VIREO-T: "):
                kv = dict(w.split("=", 1) for w in line[9:].split() if "=" in w)
                if "marker_cs" in kv:
                    self.marker_s = int(kv["marker_cs"]) / 100.0
                if "exit_cs" in kv:
                    self.exit_s = int(kv["exit_cs"]) / 100.0
                    self.rc = int(kv.get("rc", "-1"))
                if line.startswith("VIREO-T: hang"):
                    self.hung = True
                section = kv.get("section", section)
                continue
            if section == "console":
                console.append(line)
            elif section == "monitor":
                monitor.append(line)
        self.console = "\n".join(console)
        self.monitor = "\n".join(monitor)

    def markers(self, prefix: str = "VIREO-LINUX: ") -> dict[str, str]:
        """Marker lines `PREFIX key=value` of the console as a dict (and `PREFIX word` as
        word -> "")."""
        d: dict[str, str] = {}
        for line in self.console.splitlines():
            i = line.find(prefix)
            if i < 0:
                continue
            rest = line[i + len(prefix):].strip()
            k, _, v = rest.partition("=")
            d[k] = v
        return d

    def report(self) -> str:
        return (f"rc={self.rc} hung={self.hung} marker_s={self.marker_s} exit_s={self.exit_s}\n"
                f"--- console ---\n{self.console}\n"
                + (f"--- monitor ---\n{self.monitor}\n" if self.monitor else ""))


def vm_script(cmd: str, console_log: str | None, marker: str, deadline: float,
              monitor_pipe: str | None = None, console_lines: int = 400) -> str:
    """A sh script (busybox-compatible) that starts `cmd` in the background, notes when `marker`
    (a fixed string) appears in the console log, waits for it to exit, and after `deadline`
    seconds treats it as hung: prints "VIREO-T: hang", asks the QEMU monitor (a `-monitor
    pipe:PATH` chardev: PATH.in / PATH.out fifos) for `info registers`, then kills it. The console
    log is the file the VM writes (e.g. QEMU -serial file:LOG) or, when None, cmd's own output."""
    q = shlex.quote
    log = console_log or "$work/out"
    mon = ""
    if monitor_pipe:
        mon = (f"rm -f {q(monitor_pipe)}.in {q(monitor_pipe)}.out; "
               f"mkfifo {q(monitor_pipe)}.in {q(monitor_pipe)}.out")
    dump = ""
    if monitor_pipe:
        dump = (f"echo 'VIREO-T: section=monitor'; "
                f"(timeout 5 cat {q(monitor_pipe)}.out &); sleep 0.2; "
                f"printf 'info registers -a\\ninfo status\\n' > {q(monitor_pipe)}.in; sleep 3")
    return f"""
up_cs() {{ local u; read -r u _ </proc/uptime; echo "${{u%.*}}${{u#*.}}"; }}
work=$(mktemp -d /tmp/vireo-vm-XXXXXX)
log={log if console_log is None else q(log)}
rm -f "$log"
{mon}
t0=$(up_cs)
setsid sh -c {q(cmd)} </dev/null >"$work/out" 2>&1 &
pid=$!   # a session leader: kill -- -$pid reaches everything the VM command started
seen=""
while :; do
    if [ -z "$seen" ] && grep -qF {q(marker)} "$log" 2>/dev/null; then
        seen=1; echo "VIREO-T: marker_cs=$(( $(up_cs) - t0 ))"
    fi
    kill -0 "$pid" 2>/dev/null || break
    if [ $(( $(up_cs) - t0 )) -gt {int(deadline * 100)} ]; then
        echo "VIREO-T: hang after_cs=$(( $(up_cs) - t0 ))"
        {dump if dump else ':'}
        # vireo-vmm prints every vCPU's registers on SIGUSR2 (QEMU dies of it; it is
        # being killed anyway).
        kill -USR2 -- "-$pid" 2>/dev/null; sleep 1
        kill -KILL -- "-$pid" 2>/dev/null
        break
    fi
    sleep 0.5
done
wait "$pid"
rc=$?
kill -KILL -- "-$pid" 2>/dev/null
if [ -z "$seen" ] && grep -qF {q(marker)} "$log" 2>/dev/null; then
    echo "VIREO-T: marker_cs=$(( $(up_cs) - t0 ))"
fi
echo "VIREO-T: exit_cs=$(( $(up_cs) - t0 )) rc=$rc"
echo "VIREO-T: section=console"
tail -n {console_lines} "$log" 2>/dev/null
if [ "$log" != "$work/out" ] && [ -s "$work/out" ]; then
    echo "VIREO-T: section=output"
    tail -n 50 "$work/out"
fi
rm -rf "$work"
"""


def run_vm(target: Target, cmd: str, *, console_log: str | None = None,
           marker: str = "VIREO-LINUX: poweroff", deadline: float = 120.0,
           monitor_pipe: str | None = None) -> VmResult:
    """Run a VM command in the target with vm_script()'s watchdog; returns a VmResult."""
    script = vm_script(cmd, console_log, marker, deadline, monitor_pipe)
    rc, out = target.run(script, deadline + 60)
    return VmResult(out)


def qemu_linux_cmd(guest: LinuxGuest, console_log: str, append: str = "",
                   monitor_pipe: str | None = None, memory: str = "512", cpus: int = 2,
                   extra: str = "") -> str:
    """A QEMU/KVM command line booting the Linux test guest (q35, bzImage + initramfs)."""
    q = shlex.quote
    cmd = (f"{QEMU} -enable-kvm -cpu host -M q35 -m {memory} -smp {cpus} -nodefaults "
           f"-no-user-config -display none -no-reboot -serial file:{q(console_log)} "
           f"-kernel {q(guest.vmlinuz)} -initrd {q(guest.initramfs)} "
           f"-append {q(('console=ttyS0 ' + append).strip())}")
    if monitor_pipe:
        cmd += f" -monitor pipe:{q(monitor_pipe)}"
    return cmd + (" " + extra if extra else "")
