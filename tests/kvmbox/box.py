"""The KVM test box: a Linux VM under QEMU's software emulation (TCG, -cpu max, emulated AMD SVM
with nested paging) whose kernel loads irqbypass, kvm and kvm-amd and so offers a hardware-style
/dev/kvm. System tests run their commands inside it through a command agent on its second serial
port.

    from box import Box
    with Box(include=["/work/main/build"]) as box:      # boots, waits for the agent
        rc, out = box.run("ls -l /dev/kvm", timeout=30)

Files given in `include` (and the shared libraries of every ELF file among them, found with
ldd) are placed in the box's initramfs at the SAME absolute paths as on the host, so a command
line written for the host works unchanged inside. The Linux test guest files
(guest/linux/prepare.sh) are included by default. With qemu=True the box also holds Debian's
qemu-system-x86_64 (in /usr/bin, with its libraries and firmware).

Python 3.11 standard library only. No QEMU survives its Box: stop() kills it, the context
manager and an atexit hook call stop(), and QEMU gets PR_SET_PDEATHSIG so it dies with us.
"""

from __future__ import annotations

import atexit
import base64
import ctypes
import gzip
import hashlib
import os
import secrets
import select
import shlex
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
import weakref

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PREPARE = os.path.join(REPO, "guest", "linux", "prepare.sh")
BUSYBOX = "/bin/busybox"
QEMU = "/usr/bin/qemu-system-x86_64"
QEMU_DATA = ["/usr/share/qemu", "/usr/share/seabios", "/usr/lib/ipxe/qemu"]
BASE_FORMAT = "4"  # bump when the layout of the cached base archive changes

# Modules loaded in the box, in this order (with their dependencies first). The first three are
# required; the others are loaded when the kernel has them as modules (taps, loop devices,
# vhost, bridges for network and vsock tests).
BOX_MODULES_REQUIRED = ["irqbypass", "kvm", "kvm-amd"]
BOX_MODULES_OPTIONAL = ["tun", "loop", "vhost_net", "vhost_vsock", "bridge", "veth"]

# Skipped when a directory is included (object files and meson's private state).
DEFAULT_EXCLUDE_DIRS = ("meson-private", "meson-logs", "meson-info", "__pycache__", ".git")
DEFAULT_EXCLUDE_DIR_SUFFIXES = (".p",)
DEFAULT_EXCLUDE_FILE_SUFFIXES = (".o",)


class BoxError(Exception):
    """The box failed (did not boot, died, or stopped answering)."""


class BoxBootError(BoxError):
    pass


class CommandTimeout(BoxError):
    """A command ran past its time limit; it was killed inside the box (or on the host)."""

    def __init__(self, cmd: str, timeout: float, output: str = ""):
        super().__init__(f"command timed out after {timeout:g} s: {cmd!r}")
        self.cmd = cmd
        self.timeout = timeout
        self.output = output


def cache_dir() -> str:
    return os.environ.get("VIREO_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "vireo")


def log(msg: str) -> None:
    print(f"kvmbox: {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# The Linux guest files (made by guest/linux/prepare.sh)

class LinuxGuest:
    """Paths of the default Linux test guest."""

    def __init__(self, root: str | None = None):
        self.dir = root or os.path.join(cache_dir(), "linux")
        self.vmlinuz = os.path.join(self.dir, "vmlinuz")
        self.vmlinux = os.path.join(self.dir, "vmlinux")
        self.initramfs = os.path.join(self.dir, "initramfs.cpio.gz")
        self.version_file = os.path.join(self.dir, "kernel-version")

    @property
    def files(self) -> list[str]:
        return [self.vmlinuz, self.vmlinux, self.initramfs, self.version_file]

    @property
    def kernel_version(self) -> str:
        with open(self.version_file) as f:
            return f.read().strip()

    @property
    def modules_dir(self) -> str:
        return os.path.join(self.dir, "modules", "lib", "modules", self.kernel_version)

    def ready(self) -> bool:
        return all(os.path.exists(p) for p in self.files)


def ensure_guest(quiet: bool = False) -> LinuxGuest:
    """Run guest/linux/prepare.sh (offline when a kernel is cached: it is then quick)."""
    g = LinuxGuest()
    args = [PREPARE]
    if os.path.exists(os.path.join(g.dir, "kernel-package")):
        args.append("--offline")
    r = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=900)
    if r.returncode != 0:
        raise BoxError(f"{PREPARE} failed:\n{r.stdout}")
    if not quiet:
        for line in r.stdout.splitlines():
            if "up to date" not in line:
                log(line)
    if not g.ready():
        raise BoxError(f"{PREPARE} did not produce the guest files in {g.dir}")
    return g


# ---------------------------------------------------------------------------------------------
# cpio "newc" archives, written directly (no staging copies)

class Cpio:
    """Writes a newc cpio archive. Paths are absolute box paths. Parent directories are created
    as needed; host paths are mirrored with their symlinked components (e.g. Debian's /lib ->
    usr/lib) so that a path valid on the host is valid in the box."""

    def __init__(self, path: str, append: bool = False):
        # Parts of an initramfs may be concatenated; each starts 512-aligned (see close()).
        self.f = open(path, "ab" if append else "wb")
        self.ino = 1000
        self.done: set[str] = set()
        self.size = 0

    def _entry(self, name: str, mode: int, data: bytes = b"", mtime: int = 0,
               rdev: tuple[int, int] = (0, 0), filesize: int | None = None) -> None:
        name_b = name.lstrip("/").encode() + b"\0"
        size = len(data) if filesize is None else filesize
        self.ino += 1
        fields = [self.ino, mode, 0, 0, 1, int(mtime) & 0xFFFFFFFF, size, 0, 0,
                  rdev[0], rdev[1], len(name_b), 0]
        hdr = b"070701" + b"".join(b"%08X" % v for v in fields)
        self._write(hdr + name_b)
        self._pad()
        if data:
            self._write(data)
            self._pad()

    def _write(self, b: bytes) -> None:
        self.f.write(b)
        self.size += len(b)

    def _pad(self, align: int = 4) -> None:
        if self.size % align:
            self._write(b"\0" * (align - self.size % align))

    def dir(self, path: str, mode: int = 0o755) -> None:
        path = os.path.normpath(path)
        if path == "/" or path in self.done:
            return
        self.dir(os.path.dirname(path))
        self._entry(path, stat.S_IFDIR | mode)
        self.done.add(path)

    def symlink(self, path: str, target: str) -> None:
        if path in self.done:
            return
        self.dir(os.path.dirname(path))
        self._entry(path, stat.S_IFLNK | 0o777, target.encode())
        self.done.add(path)

    def data(self, path: str, data: bytes, mode: int = 0o644) -> None:
        self.dir(os.path.dirname(path))
        self._entry(path, stat.S_IFREG | mode, data)
        self.done.add(path)

    def node(self, path: str, mode: int, major: int, minor: int) -> None:
        self.dir(os.path.dirname(path))
        self._entry(path, mode, rdev=(major, minor))
        self.done.add(path)

    def file(self, box_path: str, host_path: str) -> None:
        """Regular file from the host, streamed."""
        if box_path in self.done:
            return
        self.dir(os.path.dirname(box_path))
        st = os.stat(host_path)
        name_b = box_path.lstrip("/").encode() + b"\0"
        self.ino += 1
        fields = [self.ino, stat.S_IFREG | stat.S_IMODE(st.st_mode), 0, 0, 1,
                  int(st.st_mtime) & 0xFFFFFFFF, st.st_size, 0, 0, 0, 0, len(name_b), 0]
        self._write(b"070701" + b"".join(b"%08X" % v for v in fields) + name_b)
        self._pad()
        with open(host_path, "rb") as src:
            n = 0
            while True:
                chunk = src.read(1 << 20)
                if not chunk:
                    break
                self._write(chunk)
                n += len(chunk)
        if n != st.st_size:
            raise BoxError(f"{host_path} changed while being archived")
        self._pad()
        self.done.add(box_path)

    # -- mirroring host paths --------------------------------------------------------------

    def mirror_parents(self, path: str) -> str:
        """Create the directories leading to `path` as on the host (symlinked components become
        symlinks, and their targets are mirrored too). Returns the host's real parent path."""
        parent = os.path.dirname(os.path.normpath(path))
        parts = [p for p in parent.split("/") if p]
        cur = "/"
        for p in parts:
            nxt = os.path.join(cur, p)
            if os.path.islink(nxt):
                target = os.readlink(nxt)
                self.symlink(nxt, target)
                real = os.path.realpath(nxt)
                if os.path.isdir(real):
                    self.mirror_parents(os.path.join(real, "x"))
                    self.dir_as_host(real)
            elif os.path.isdir(nxt):
                self.dir_as_host(nxt)
            else:
                self.dir(nxt)
            cur = nxt
        return os.path.realpath(parent)

    def dir_as_host(self, path: str) -> None:
        if path in self.done:
            return
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
        except OSError:
            mode = 0o755
        self.dir(os.path.dirname(path))
        self.dir(path, mode)

    def host_path(self, path: str, exclude: bool = True, elf_out: list[str] | None = None,
                  follow_depth: int = 0) -> None:
        """Add a host file, symlink or directory tree at the same absolute path."""
        path = os.path.normpath(os.path.abspath(path))
        if path in self.done:
            return
        self.mirror_parents(path)
        st = os.lstat(path)
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(path)
            self.symlink(path, target)
            real = os.path.realpath(path)
            if os.path.exists(real) and not os.path.isdir(real) and follow_depth < 8:
                self.host_path(real, exclude, elf_out, follow_depth + 1)
        elif stat.S_ISDIR(st.st_mode):
            self.dir_as_host(path)
            for name in sorted(os.listdir(path)):
                child = os.path.join(path, name)
                if exclude and _excluded(child):
                    continue
                self.host_path(child, exclude, elf_out, follow_depth)
        elif stat.S_ISREG(st.st_mode):
            self.file(path, path)
            if elf_out is not None and _is_elf(path):
                elf_out.append(path)
        # sockets, fifos and devices are skipped

    def close(self, align: int = 512) -> None:
        self._entry("TRAILER!!!", 0)
        self._pad(align)
        self.f.close()


def _excluded(path: str) -> bool:
    name = os.path.basename(path)
    if os.path.isdir(path) and not os.path.islink(path):
        return name in DEFAULT_EXCLUDE_DIRS or name.endswith(DEFAULT_EXCLUDE_DIR_SUFFIXES)
    return name.endswith(DEFAULT_EXCLUDE_FILE_SUFFIXES)


def _is_elf(path: str) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(4) == b"\x7fELF"
    except OSError:
        return False


_ldd_cache: dict[tuple[str, int, int], list[str]] = {}


def shared_libs(path: str) -> list[str]:
    """The shared libraries (and the dynamic loader) `path` needs, from ldd."""
    st = os.stat(path)
    key = (path, st.st_mtime_ns, st.st_size)
    if key in _ldd_cache:
        return _ldd_cache[key]
    libs: list[str] = []
    try:
        r = subprocess.run(["ldd", path], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           text=True, timeout=30)
        out = r.stdout if r.returncode == 0 else ""
    except (OSError, subprocess.TimeoutExpired):
        out = ""
    for line in out.splitlines():
        line = line.strip()
        if "=>" in line:
            rhs = line.split("=>", 1)[1].strip().split(" (")[0].strip()
            if rhs.startswith("/"):
                libs.append(rhs)
            elif rhs == "not found":
                log(f"warning: {path}: {line}")
        elif line.startswith("/"):
            libs.append(line.split(" (")[0].strip())
    _ldd_cache[key] = libs
    return libs


def add_with_libs(cpio: Cpio, paths: list[str], exclude: bool = True) -> int:
    elves: list[str] = []
    for p in paths:
        if not os.path.lexists(p):
            raise BoxError(f"cannot include {p}: no such file or directory")
        cpio.host_path(p, exclude=exclude, elf_out=elves)
    libs: set[str] = set()
    for e in elves:
        libs.update(shared_libs(e))
    for lib in sorted(libs):
        cpio.host_path(lib, exclude=False)
    return len(elves)


# ---------------------------------------------------------------------------------------------
# Cached parts of the box's initramfs

def _modules_order(moddir: str, wanted: list[str], required: list[str]) -> list[str]:
    deps: dict[str, list[str]] = {}
    by_name: dict[str, str] = {}
    with open(os.path.join(moddir, "modules.dep")) as f:
        for line in f:
            if ":" not in line:
                continue
            mod, rest = line.split(":", 1)
            deps[mod] = rest.split()
            base = os.path.basename(mod).split(".ko")[0].replace("-", "_")
            by_name.setdefault(base, mod)
    order: list[str] = []
    seen: set[str] = set()

    def visit(m: str) -> None:
        if m in seen:
            return
        seen.add(m)
        for d in deps.get(m, []):
            visit(d)
        order.append(m)

    for name in wanted:
        mod = by_name.get(name.replace("-", "_"))
        if mod is None:
            if name in required:
                raise BoxError(f"kernel has no module {name} (needed by the box)")
            continue
        visit(mod)
    return order


def _hash_files(paths: list[str], h=None):
    h = h or hashlib.sha256()
    for p in paths:
        st = os.stat(p)
        h.update(f"{p} {st.st_size} {st.st_mtime_ns}\n".encode())
    return h


def base_archive(guest: LinuxGuest) -> str:
    """The box's own files: busybox, /init, the agent, kvm modules. Cached, rebuilt when an input
    changes."""
    out_dir = os.path.join(cache_dir(), "kvmbox")
    os.makedirs(out_dir, exist_ok=True)
    init = os.path.join(HERE, "box-init.sh")
    agent = os.path.join(HERE, "agent.sh")
    h = hashlib.sha256(BASE_FORMAT.encode())
    for p in (init, agent):
        with open(p, "rb") as f:
            h.update(f.read())
    _hash_files([BUSYBOX, guest.version_file, os.path.join(guest.modules_dir, "modules.dep")], h)
    key = h.hexdigest()[:16]
    path = os.path.join(out_dir, f"base-{key}.cpio")
    if os.path.exists(path):
        return path
    log(f"building the box base archive {path}")
    moddir = guest.modules_dir
    order = _modules_order(moddir, BOX_MODULES_REQUIRED + BOX_MODULES_OPTIONAL,
                           BOX_MODULES_REQUIRED)
    tmp = path + f".tmp{os.getpid()}"
    c = Cpio(tmp)
    for d in ("/proc", "/sys", "/dev", "/run", "/root", "/tmp", "/var", "/var/tmp", "/etc"):
        c.dir(d)
    c.node("/dev/console", stat.S_IFCHR | 0o600, 5, 1)
    c.node("/dev/null", stat.S_IFCHR | 0o666, 1, 3)
    c.file("/vireo/bin/busybox", BUSYBOX)
    applets = subprocess.run([BUSYBOX, "--list"], stdout=subprocess.PIPE, text=True,
                             check=True, timeout=30).stdout.split()
    for a in applets:
        if a != "busybox":
            c.symlink(f"/vireo/bin/{a}", "busybox")
    with open(init, "rb") as f:
        c.data("/init", f.read(), 0o755)
    with open(agent, "rb") as f:
        c.data("/vireo/agent.sh", f.read(), 0o755)
    for m in order:
        c.file(f"/vireo/modules/{m}", os.path.join(moddir, m))
    c.data("/vireo/modules.order", ("\n".join(order) + "\n").encode())
    c.data("/etc/passwd", b"root:x:0:0:root:/root:/bin/sh\n")
    c.data("/etc/group", b"root:x:0:\ntty:x:5:\nkvm:x:104:\n")
    c.data("/etc/hosts", b"127.0.0.1 localhost vireo-box\n::1 localhost\n")
    # /bin/sh as on a Debian host (/bin -> usr/bin with merged /usr) but pointing at busybox;
    # many programs (system(3), popen(3), #!/bin/sh scripts) need it.
    c.mirror_parents("/bin/sh")
    c.symlink(os.path.join(os.path.realpath("/bin"), "sh"), "/vireo/bin/busybox")
    c.close()
    os.replace(tmp, path)
    for old in os.listdir(out_dir):
        if old.startswith("base-") and old.endswith(".cpio") and old != os.path.basename(path):
            try:
                os.unlink(os.path.join(out_dir, old))
            except OSError:
                pass
    return path


def qemu_archive() -> str:
    """qemu-system-x86_64 in /usr/bin with its libraries and firmware. Cached."""
    out_dir = os.path.join(cache_dir(), "kvmbox")
    os.makedirs(out_dir, exist_ok=True)
    if not os.path.exists(QEMU):
        raise BoxError(f"{QEMU} is missing (apt-get install qemu-system-x86)")
    h = hashlib.sha256(BASE_FORMAT.encode())
    _hash_files([QEMU] + [d for d in QEMU_DATA if os.path.exists(d)], h)
    key = h.hexdigest()[:16]
    path = os.path.join(out_dir, f"qemu-{key}.cpio")
    if os.path.exists(path):
        return path
    log(f"building the box's QEMU archive {path}")
    tmp = path + f".tmp{os.getpid()}"
    c = Cpio(tmp)
    add_with_libs(c, [QEMU] + [d for d in QEMU_DATA if os.path.exists(d)], exclude=False)
    c.close()
    os.replace(tmp, path)
    for old in os.listdir(out_dir):
        if old.startswith("qemu-") and old.endswith(".cpio") and old != os.path.basename(path):
            try:
                os.unlink(os.path.join(out_dir, old))
            except OSError:
                pass
    return path


# ---------------------------------------------------------------------------------------------
# The box

def _pdeathsig() -> None:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


_live: "weakref.WeakSet[Box]" = weakref.WeakSet()


@atexit.register
def _stop_all() -> None:
    for b in list(_live):
        try:
            b.stop()
        except Exception:
            pass


class Box:
    def __init__(self, include: list[str] | tuple[str, ...] = (), *, qemu: bool = False,
                 guest: bool = True, memory: str = "3G", cpus: int | None = None,
                 boot_timeout: float = 120.0, retries: int = 1, append: str = "",
                 keep: bool = False, quiet: bool = False, verbose: bool = True):
        self.include = [os.path.abspath(p) for p in include]
        self.with_qemu = qemu
        self.with_guest = guest
        self.memory = memory
        # One box vCPU: QEMU 7.2's TCG emulation of nested SVM corrupts state when two box
        # vCPUs run nested guests at the same time (stress runs with 2 box vCPUs: nested
        # guests triple-faulting at random points, a box kernel panic, hung boxes, in about 1
        # of 20 runs of two VMs at once; with 1 box vCPU 0 of 50).  One TCG thread for two
        # vCPUs avoids it too but livelocks SMP guests.  VIREO_BOX_CPUS overrides.
        self.cpus = cpus if cpus is not None else int(os.environ.get("VIREO_BOX_CPUS", "1"))
        self.boot_timeout = boot_timeout
        self.retries = retries
        self.append = append
        self.keep = keep
        self.quiet = quiet
        self.verbose = verbose
        self.proc: subprocess.Popen | None = None
        self.sock: socket.socket | None = None
        self.tmp: str | None = None
        self.buf = b""
        self.boot_seconds: float | None = None
        self.prepare_seconds: float | None = None
        self.dead = False
        self.console_log: str | None = None
        self.guest: LinuxGuest | None = None
        self._saved_tty = None

    # -- building --------------------------------------------------------------------------

    def _initrd(self, extra: dict[str, bytes] | None = None, cwd: str | None = None) -> str:
        assert self.tmp
        parts = [base_archive(self.guest or LinuxGuest())]
        if self.with_qemu:
            parts.append(qemu_archive())
        initrd = os.path.join(self.tmp, "initrd.cpio")
        with open(initrd, "wb") as out:
            for p in parts:
                with open(p, "rb") as f:
                    shutil.copyfileobj(f, out, 1 << 20)
        c = Cpio(initrd, append=True)  # the per-run part goes after the cached ones
        paths = list(self.include)
        if self.with_guest and self.guest:
            paths += self.guest.files
        nelf = add_with_libs(c, paths)
        if cwd and os.path.isdir(cwd):
            c.mirror_parents(os.path.join(cwd, "x"))
        for name, data in (extra or {}).items():
            c.data(name, data, 0o755 if name.endswith(".sh") else 0o644)
        c.close()
        if self.verbose:
            log(f"initramfs {os.path.getsize(initrd) >> 20} MiB ({len(paths)} included paths, "
                f"{nelf} ELF files with their libraries{', QEMU' if self.with_qemu else ''})")
        return initrd

    def _qemu_cmd(self, initrd: str, interactive: bool) -> list[str]:
        assert self.tmp and self.guest
        append = "console=ttyS0 panic=-1 rdinit=/init"
        if interactive or self.quiet:
            append += " quiet loglevel=1"
        else:
            append += " earlyprintk=ttyS0"  # early messages for the hang diagnostics
        if self.append:
            append += " " + self.append
        # See __init__ on why the box has one vCPU by default.
        tcg = "tcg,thread=" + os.environ.get("VIREO_BOX_TCG_THREAD", "multi")
        cmd = [QEMU, "-nodefaults", "-no-user-config", "-no-reboot", "-display", "none",
               "-M", "q35", "-accel", tcg, "-cpu", "max",
               "-smp", str(self.cpus), "-m", self.memory,
               "-kernel", self.guest.vmlinuz, "-initrd", initrd, "-append", append]
        if interactive:
            cmd += ["-chardev", "stdio,id=con,signal=off,mux=off"]
        else:
            cmd += ["-chardev", f"file,id=con,path={self.console_log}"]
        cmd += ["-serial", "chardev:con",
                "-chardev", f"socket,id=agent,path={self.tmp}/agent.sock,server=on,wait=off",
                "-serial", "chardev:agent",
                "-monitor", f"unix:{self.tmp}/monitor.sock,server=on,wait=off"]
        return cmd

    # -- life cycle ------------------------------------------------------------------------

    def start(self, *paths: str, interactive_cmd: str | None = None, cwd: str | None = None,
              env: dict[str, str] | None = None) -> "Box":
        self.include += [os.path.abspath(p) for p in paths]
        t0 = time.monotonic()
        self.guest = ensure_guest(quiet=not self.verbose)  # its kernel is the box kernel too
        last: Exception | None = None
        for attempt in range(1 + self.retries):
            self.tmp = tempfile.mkdtemp(prefix="vireo-box-")
            self.console_log = os.path.join(self.tmp, "console.log")
            try:
                extra: dict[str, bytes] = {}
                benv = {"VIREO_MODE": "interactive" if interactive_cmd is not None else "agent"}
                if interactive_cmd is not None:
                    extra["/vireo/cmd.sh"] = interactive_cmd.encode()
                    if cwd:
                        benv["VIREO_CWD"] = cwd
                benv.update(env or {})
                extra["/vireo/box.env"] = "".join(
                    f"{k}={shlex.quote(v)}\n" for k, v in benv.items()).encode()
                initrd = self._initrd(extra, cwd)
                self.prepare_seconds = time.monotonic() - t0
                self._launch(initrd, interactive_cmd is not None)
                self._wait_ready()
                self.boot_seconds = time.monotonic() - t0 - self.prepare_seconds
                if self.verbose:
                    log(f"box ready in {self.boot_seconds:.1f} s "
                        f"(+{self.prepare_seconds:.1f} s to assemble)")
                _live.add(self)
                return self
            except BoxBootError as e:
                last = e
                log(f"box boot failed (attempt {attempt + 1}): {e}")
                self._kill()
                self._cleanup_tmp(force=not self.keep)
                t0 = time.monotonic()
        raise BoxBootError(f"the box did not boot after {1 + self.retries} attempts: {last}")

    def _launch(self, initrd: str, interactive: bool) -> None:
        cmd = self._qemu_cmd(initrd, interactive)
        if self.verbose and not interactive:
            log("exec " + shlex.join(cmd))
        if interactive:
            stdin, stdout = None, None
            if os.isatty(0):
                import termios
                self._saved_tty = termios.tcgetattr(0)
        else:
            stdin, stdout = subprocess.DEVNULL, open(os.path.join(self.tmp, "qemu.out"), "wb")
        self.proc = subprocess.Popen(cmd, stdin=stdin, stdout=stdout, stderr=stdout,
                                     preexec_fn=_pdeathsig, start_new_session=True)
        if stdout is not None:
            stdout.close()
        _live.add(self)
        path = os.path.join(self.tmp, "agent.sock")
        deadline = time.monotonic() + 30
        while True:
            if self.proc.poll() is not None:
                raise BoxBootError(f"QEMU exited with status {self.proc.returncode}: "
                                   f"{self._qemu_out()}")
            try:
                s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                s.connect(path)
                self.sock = s
                break
            except OSError:
                s.close()
            if time.monotonic() > deadline:
                raise BoxBootError("QEMU did not create its agent socket")
            time.sleep(0.05)
        self.buf = b""

    def _qemu_out(self) -> str:
        try:
            with open(os.path.join(self.tmp, "qemu.out"), errors="replace") as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def _recv(self, deadline: float) -> bool:
        """Read what the agent sent, until deadline. False on timeout; raises if QEMU died."""
        assert self.sock and self.proc
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            r, _, _ = select.select([self.sock], [], [], min(left, 0.5))
            if r:
                data = self.sock.recv(1 << 16)
                if not data:
                    self.dead = True
                    raise BoxError("the box's agent connection closed (QEMU exited?)\n"
                                   + self.diagnostics())
                self.buf += data
                return True
            if self.proc.poll() is not None:
                self.dead = True
                raise BoxError(f"QEMU exited with status {self.proc.returncode}\n"
                               + self.diagnostics())

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.boot_timeout
        while b"VIREO-BOX-READY" not in self.buf or not self.buf.split(
                b"VIREO-BOX-READY", 1)[1].count(b"\n"):
            try:
                if not self._recv(deadline):
                    raise BoxBootError(f"no ready marker within {self.boot_timeout:g} s\n"
                                       + self.diagnostics())
            except BoxBootError:
                raise
            except BoxError as e:
                raise BoxBootError(str(e)) from None
        line = self.buf.split(b"VIREO-BOX-READY", 1)[1].split(b"\n", 1)
        self.ready_info = line[0].decode(errors="replace").strip()
        self.buf = line[1]
        # QEMU has long loaded the initramfs: do not leave 100+ MiB in /tmp if we get killed
        try:
            os.unlink(os.path.join(self.tmp, "initrd.cpio"))
        except OSError:
            pass
        if "kvm=no" in self.ready_info:
            raise BoxBootError("the box has no /dev/kvm (kvm-amd did not load; does this QEMU "
                               "emulate SVM with -cpu max?)\n" + self.diagnostics())

    def console_tail(self, lines: int = 40) -> str:
        if not self.console_log or not os.path.exists(self.console_log):
            return "(no console log)"
        with open(self.console_log, "rb") as f:
            f.seek(0, 2)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def monitor(self, command: str, timeout: float = 5.0) -> str:
        """Send one HMP command to the box's QEMU monitor, return its answer."""
        if not self.tmp:
            return ""
        path = os.path.join(self.tmp, "monitor.sock")
        out = b""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(timeout)
                s.connect(path)
                deadline = time.monotonic() + timeout
                while b"(qemu)" not in out and time.monotonic() < deadline:
                    out += s.recv(65536)
                out = b""
                s.sendall(command.encode() + b"\n")
                while out.count(b"(qemu)") < 1 and time.monotonic() < deadline:
                    chunk = s.recv(65536)
                    if not chunk:
                        break
                    out += chunk
        except OSError as e:
            return f"(monitor: {e})"
        text = out.decode(errors="replace").replace("\r", "")
        text = text.rsplit("(qemu)", 1)[0]
        # drop the monitor's echo of the command (line editing escapes) and the FPU/SIMD noise
        keep = [ln for ln in text.splitlines()
                if "\x1b" not in ln and not ln.startswith(("FPR", "YMM", "XMM", "ZMM", "FCW"))]
        return "\n".join(keep).strip()

    def diagnostics(self) -> str:
        regs = ""
        if self.proc and self.proc.poll() is None:
            regs = self.monitor("info registers -a")
        return (f"--- box console (last lines of {self.console_log}) ---\n{self.console_tail()}\n"
                f"--- QEMU output ---\n{self._qemu_out()}\n"
                + (f"--- info registers ---\n{regs}\n" if regs else ""))

    # -- commands --------------------------------------------------------------------------

    def run(self, cmd: str, timeout: float = 60.0) -> tuple[int, str]:
        """Run a shell command (busybox ash) inside the box; returns (exit status, stdout+stderr).
        Raises CommandTimeout (after killing the command's process group in the box) when it runs
        past `timeout` seconds, BoxError when the box stops answering."""
        if self.dead or not self.sock:
            raise BoxError("the box is not running")
        tok = "@@" + secrets.token_hex(8) + "@@"
        limit = max(1, int(timeout + 0.999))
        line = f"RUN {tok} {limit} {base64.b64encode(cmd.encode()).decode()}\n".encode()
        self.sock.sendall(line)
        begin = f"{tok} BEGIN\n".encode()
        end = f"\n{tok} END ".encode()
        deadline = time.monotonic() + limit + 30
        got_begin = False
        while True:
            i = self.buf.find(end)
            if i >= 0:
                j = self.buf.find(b"\n", i + len(end))
                if j >= 0:
                    break
            if not got_begin and begin in self.buf:
                got_begin = True
                deadline = time.monotonic() + 30
            n = len(self.buf)
            if not self._recv(deadline):
                self.dead = True
                raise BoxError(f"the box did not answer a command within {limit + 30} s: "
                               f"{cmd!r}\n" + self.diagnostics())
            if got_begin and len(self.buf) > n:
                deadline = time.monotonic() + 30  # output still flowing
        b = self.buf.find(begin)
        body = self.buf[b + len(begin):i] if 0 <= b < i else b""
        status, cs, enc = (self.buf[i + len(end):j].decode().split() + ["0", "plain"])[:3]
        self.buf = self.buf[j + 1:]
        self.last_box_seconds = int(cs) / 100.0 if cs.isdigit() else None
        raw = base64.b64decode(b"".join(body.split()))
        if enc == "gzip":
            raw = gzip.decompress(raw)
        output = raw.decode(errors="replace")
        if status == "timeout":
            raise CommandTimeout(cmd, timeout, output)
        if status == "error":
            raise BoxError(f"the agent could not run the command: {output}")
        return int(status), output

    def put(self, data: bytes, box_path: str, mode: int = 0o644, chunk: int = 6144) -> None:
        """Write bytes to a file inside the box (through the agent, base64 in chunks)."""
        q = shlex.quote(box_path)
        rc, out = self.run(f"mkdir -p $(dirname {q}) && : > {q}", 30)
        if rc:
            raise BoxError(f"put {box_path}: {out}")
        for off in range(0, len(data), chunk):
            b64 = base64.b64encode(data[off:off + chunk]).decode()
            rc, out = self.run(f"printf %s {b64} | base64 -d >> {q}", 30)
            if rc:
                raise BoxError(f"put {box_path}: {out}")
        self.run(f"chmod {mode:o} {q}", 30)

    def get(self, box_path: str, timeout: float = 120) -> bytes:
        """Read a file from inside the box."""
        rc, out = self.run(f"base64 {shlex.quote(box_path)}", timeout)
        if rc:
            raise BoxError(f"get {box_path}: {out}")
        return base64.b64decode("".join(out.split()))

    # -- interactive ---------------------------------------------------------------------------

    def run_interactive(self, cmd: str, cwd: str | None = None,
                        timeout: float | None = None) -> int:
        """Boot a box whose console (ttyS0) is this process's terminal and run `cmd` on it with a
        controlling tty; the box powers off when cmd exits. Returns cmd's exit status (255 when
        the box died without reporting one)."""
        env = {}
        size = shutil.get_terminal_size((0, 0))
        if size.lines and size.columns:
            env.update(VIREO_ROWS=str(size.lines), VIREO_COLS=str(size.columns))
        if os.environ.get("TERM"):
            env["VIREO_TERM"] = os.environ["TERM"]
        try:
            self.start(interactive_cmd=cmd, cwd=cwd or os.getcwd(), env=env)
            deadline = time.monotonic() + timeout if timeout else None
            while b"VIREO-BOX-EXIT" not in self.buf or not self.buf.split(
                    b"VIREO-BOX-EXIT", 1)[1].count(b"\n"):
                try:
                    d = min(deadline, time.monotonic() + 3600) if deadline else \
                        time.monotonic() + 3600
                    if not self._recv(d) and deadline and time.monotonic() >= deadline:
                        self._restore_tty()
                        log(f"timeout after {timeout:g} s, stopping the box")
                        return 124
                except BoxError:
                    self._restore_tty()
                    log(f"the box exited without reporting an exit status "
                        f"(QEMU status {self.proc.returncode if self.proc else '?'})")
                    return 255
            rc = int(self.buf.split(b"VIREO-BOX-EXIT", 1)[1].split()[0])
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pass
            return rc
        finally:
            self.stop()

    def _restore_tty(self) -> None:
        if self._saved_tty is not None:
            import termios
            try:
                termios.tcsetattr(0, termios.TCSADRAIN, self._saved_tty)
            except Exception:
                pass

    def _kill(self) -> None:
        if self.sock:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._restore_tty()

    def _cleanup_tmp(self, force: bool = False) -> None:
        if self.tmp and (force or not self.keep):
            shutil.rmtree(self.tmp, ignore_errors=True)
            self.tmp = None

    def stop(self) -> None:
        self._kill()
        self.dead = True
        if self.keep and self.tmp:
            log(f"kept {self.tmp}")
        else:
            self._cleanup_tmp()
        _live.discard(self)

    def __enter__(self) -> "Box":
        if not self.proc:
            self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
