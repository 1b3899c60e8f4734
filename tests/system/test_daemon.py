"""vireod + vireo end to end on this host, with the QEMU/TCG driver (pure software emulation,
so it runs anywhere) and the Linux test guest: life cycle through the CLI, the console, ACPI
shutdown, pause/resume, reset, reboot, destroy, kill -9 of vireod with two VMs running and
their re-attachment, and bad input to the API.  Everything lives under a --root in a temp dir.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import threading
import time

import pytest

QEMU = shutil.which("qemu-system-x86_64")
pytestmark = pytest.mark.skipif(QEMU is None, reason="qemu-system-x86_64 is not installed")

SHELL = "VIREO-LINUX: shell"
BOOT_TIMEOUT = 120


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float = 30):
        super().__init__("localhost", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Daemon:
    def __init__(self, build: str, root: str):
        self.build = build
        self.root = root
        self.vireod = os.path.join(build, "src/daemon/vireod")
        self.cli = os.path.join(build, "src/cli/vireo")
        self.sock = os.path.join(root, "run/vireo/vireod.sock")
        self.logdir = os.path.join(root, "var/log/vireo")
        self.proc: subprocess.Popen | None = None

    def start(self):
        log = open(os.path.join(self.root, "vireod.out"), "ab")
        self.proc = subprocess.Popen([self.vireod, "--root", self.root, "--foreground",
                                      "--log-level", "debug"], stdout=log, stderr=log)
        for _ in range(100):
            try:
                # A socket file left by a killed vireod refuses until the new one binds.
                if self.api("GET", "/v1/version")[0] == 200:
                    return
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"vireod did not come up:\n{self.daemon_log()}")

    def stop(self) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(30)

    def kill9(self):
        assert self.proc is not None
        self.proc.kill()
        self.proc.wait(10)

    def daemon_log(self) -> str:
        with open(os.path.join(self.root, "vireod.out"), errors="replace") as f:
            return f.read()[-4000:]

    def api(self, method: str, path: str, body=None, raw: bytes | None = None):
        c = UnixHTTP(self.sock)
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        c.request(method, path, body=data, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        text = r.read()
        c.close()
        try:
            return r.status, json.loads(text) if text else None
        except json.JSONDecodeError:
            return r.status, text

    def vireo(self, *args, timeout: float = 90, stdin: str | None = None, env=None):
        r = subprocess.run([self.cli, "-c", self.sock, *args], input=stdin, text=True,
                           capture_output=True, timeout=timeout, env=env)
        return r.returncode, r.stdout, r.stderr

    def ok(self, *args, **kw) -> str:
        rc, out, err = self.vireo(*args, **kw)
        assert rc == 0, f"vireo {' '.join(args)} -> {rc}\n{out}\n{err}\n{self.daemon_log()}"
        return out

    def info(self, name: str) -> dict:
        return json.loads(self.ok("dominfo", name, "--json"))

    def console_log(self, name: str) -> str:
        try:
            with open(os.path.join(self.logdir, f"{name}.console.log"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def wait_console(self, name: str, text: str, count: int = 1,
                     timeout: float = BOOT_TIMEOUT):
        end = time.time() + timeout
        while time.time() < end:
            if self.console_log(name).count(text) >= count:
                return
            time.sleep(0.25)
        raise AssertionError(f"{name}: '{text}' x{count} not seen in {timeout} s; console:\n"
                             f"{self.console_log(name)[-3000:]}\ndaemon:\n{self.daemon_log()}")

    def wait_state(self, name: str, state: str, timeout: float = 60) -> dict:
        end = time.time() + timeout
        info = {}
        while time.time() < end:
            info = self.info(name)
            if info["state"] == state:
                return info
            time.sleep(0.2)
        raise AssertionError(f"{name}: state {info.get('state')}, expected {state}")


def domain_xml(name: str, guest, extra_devices: str = "", memory_mib: int = 192,
               uuid: str | None = None, dtype: str = "qemu") -> str:
    u = f"<uuid>{uuid}</uuid>" if uuid else ""
    return f"""<domain type='{dtype}'>
  <name>{name}</name>{u}
  <memory unit='MiB'>{memory_mib}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='q35'>hvm</type>
    <kernel>{guest.vmlinuz}</kernel>
    <initrd>{guest.initramfs}</initrd>
    <cmdline>console=ttyS0 quiet vireo.test=shell</cmdline>
  </os>
  <features><acpi/></features>
  <devices>
    <serial type='pty'/>
    {extra_devices}
  </devices>
</domain>
"""


@pytest.fixture(scope="module")
def daemon(build_dir, tmp_path_factory):
    for exe in ("src/daemon/vireod", "src/cli/vireo"):
        if not os.access(os.path.join(build_dir, exe), os.X_OK):
            pytest.skip(f"{build_dir}/{exe} is not built")
    # Short paths: unix socket paths are limited to 107 bytes.
    root = tmp_path_factory.mktemp("vd")
    d = Daemon(build_dir, str(root))
    d.start()
    yield d
    # Leave nothing running behind.
    try:
        if d.proc and d.proc.poll() is None:
            for dom in d.api("GET", "/v1/domains")[1]:
                if dom["state"] in ("running", "paused"):
                    d.api("POST", f"/v1/domains/{dom['name']}/destroy")
            d.stop()
    except (OSError, http.client.HTTPException) as e:
        print(f"teardown: {e}")
        if d.proc:
            d.proc.kill()
    finally:
        # Whatever went wrong, no VM of this test outlives it (by the pids vireod recorded).
        rundir = os.path.join(d.root, "run/vireo/domains")
        for name in os.listdir(rundir) if os.path.isdir(rundir) else []:
            try:
                with open(os.path.join(rundir, name, "vm.pid")) as f:
                    os.kill(int(f.read().split()[0]), signal.SIGKILL)
            except (OSError, ValueError, IndexError):
                pass


def write_xml(daemon: Daemon, name: str, text: str) -> str:
    p = os.path.join(daemon.root, f"{name}.xml")
    with open(p, "w") as f:
        f.write(text)
    return p


def test_lifecycle_console_pause_acpi_shutdown(daemon, linux_guest):
    events = subprocess.Popen([daemon.cli, "-c", daemon.sock, "events", "--json"],
                              stdout=subprocess.PIPE, text=True)
    time.sleep(1)  # let it subscribe: the stream carries only events after that
    try:
        f = write_xml(daemon, "vm1", domain_xml("vm1", linux_guest))
        assert "defined" in daemon.ok("define", f)
        assert "vm1" in daemon.ok("list", "--all")
        assert "vm1" not in daemon.ok("list")
        daemon.ok("start", "vm1")
        assert daemon.ok("domstate", "vm1").strip() == "running"
        daemon.wait_console("vm1", SHELL)
        # The console: type a command, read its answer, detach with Ctrl-].
        p = subprocess.Popen([daemon.cli, "-c", daemon.sock, "console", "vm1"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        assert p.stdin is not None
        p.stdin.write(b"echo console-$((6*7))-ok\n")
        p.stdin.flush()
        daemon.wait_console("vm1", "console-42-ok", timeout=30)
        time.sleep(0.5)
        p.stdin.write(b"\x1d")
        p.stdin.flush()
        out, err = p.communicate(timeout=10)
        assert p.returncode == 0, err
        assert b"console-42-ok" in out, out[-2000:]
        # Pause and resume.
        daemon.ok("suspend", "vm1")
        assert daemon.info("vm1")["state"] == "paused"
        rc, _, err = daemon.vireo("suspend", "vm1")
        assert rc == 1 and "already paused" in err
        daemon.ok("resume", "vm1")
        assert daemon.info("vm1")["state"] == "running"
        stats = json.loads(daemon.ok("domstats", "vm1", "--json"))
        assert stats["cpu_time_ns"] > 0 and stats["rss_bytes"] > 0
        assert "disks" in stats and "nets" in stats
        # The round trip keeps uuid and name, with units normalised.
        xml = daemon.ok("dumpxml", "vm1")
        assert daemon.info("vm1")["uuid"] in xml and "<memory unit=\"KiB\">196608" in xml
        # ACPI shutdown: the guest's acpid powers it off.
        daemon.ok("shutdown", "vm1", "--timeout", "60")
        info = daemon.info("vm1")
        assert info["state"] == "shut off" and info["reason"] == "shutdown", info
        assert "power button" in daemon.console_log("vm1")
    finally:
        time.sleep(0.5)
        events.terminate()
        lines = events.communicate(timeout=10)[0].splitlines()
    seen = [json.loads(l)["event"] for l in lines if '"vm1"' in l]
    for e in ("defined", "started", "suspended", "resumed", "shutdown-requested", "stopped"):
        assert e in seen, seen


def test_reset_reboot_destroy(daemon, linux_guest):
    if daemon.api("GET", "/v1/domains/vm1")[0] == 404:
        daemon.ok("define", write_xml(daemon, "vm1", domain_xml("vm1", linux_guest)))
    before = daemon.console_log("vm1").count(SHELL)
    daemon.ok("start", "vm1")
    daemon.wait_console("vm1", SHELL, before + 1)
    pid = daemon.info("vm1")["pid"]
    # reset: a hardware reset of the same VM process.
    daemon.ok("reset", "vm1")
    daemon.wait_console("vm1", SHELL, before + 2)
    assert daemon.info("vm1")["pid"] == pid
    # reboot: ACPI power-off, then a new start.
    daemon.ok("reboot", "vm1")
    end = time.time() + 60
    while time.time() < end:
        i = daemon.info("vm1")
        if i["state"] == "running" and i.get("pid") != pid:
            break
        time.sleep(0.2)
    assert i.get("pid") not in (None, pid), i
    daemon.wait_console("vm1", SHELL, before + 3)
    out = daemon.ok("destroy", "vm1")
    assert "destroyed" in out
    info = daemon.info("vm1")
    assert info["state"] == "shut off" and info["reason"] == "destroyed"


def test_kill9_daemon_reattaches_two_vms(daemon, linux_guest):
    for n in ("ra", "rb"):
        daemon.ok("define", write_xml(daemon, n, domain_xml(n, linux_guest)))
        daemon.ok("start", n)
    pids = {n: daemon.info(n)["pid"] for n in ("ra", "rb")}
    daemon.kill9()
    rc, _, err = daemon.vireo("list")
    assert rc == 3 and "cannot talk to vireod" in err
    for n, pid in pids.items():
        os.kill(pid, 0)  # the VMs outlive the daemon
    daemon.start()
    for n, pid in pids.items():
        i = daemon.info(n)
        assert i["state"] == "running" and i["pid"] == pid and i["reason"] == "re-attached", i
    # The consoles are relayed again and both guests reach their shell.
    for n in ("ra", "rb"):
        daemon.wait_console(n, SHELL)
    # Both are manageable: QMP (pause/resume), ACPI shutdown, destroy.
    daemon.ok("suspend", "ra")
    assert daemon.info("ra")["state"] == "paused"
    daemon.ok("resume", "ra")
    daemon.ok("shutdown", "ra", "--timeout", "60")
    assert daemon.info("ra")["state"] == "shut off"
    daemon.ok("destroy", "rb")
    assert daemon.info("rb")["state"] == "shut off"
    # A VM that ends while vireod is away is noticed at the next start.
    daemon.ok("start", "rb")
    pid = daemon.info("rb")["pid"]
    daemon.kill9()
    os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    daemon.start()
    i = daemon.info("rb")
    assert i["state"] in ("shut off", "crashed") and "pid" not in i, i


def error_of(resp) -> str:
    status, body = resp
    assert isinstance(body, dict) and "error" in body, (status, body)
    assert body["error"]["code"] == status
    return body["error"]["message"]


def test_bad_input(daemon, linux_guest):
    d = daemon
    st, _ = d.api("POST", "/v1/domains", {"xml": "<domain type='qemu'><name>x</name>"})
    assert st == 400
    assert "malformed XML" in error_of(d.api("POST", "/v1/domains", {"xml": "<domain"}))
    msg = error_of(d.api("POST", "/v1/domains",
                         {"xml": domain_xml("bad1", linux_guest, "<video/>")}))
    assert "/domain/devices/video" in msg and "unsupported element" in msg
    # Duplicate name (another uuid) and duplicate uuid (another name).
    u = "11111111-2222-4333-8444-555555555555"
    assert d.api("POST", "/v1/domains", {"xml": domain_xml("dup", linux_guest, uuid=u)})[0] == 201
    r = d.api("POST", "/v1/domains", {"xml": domain_xml("dup", linux_guest)})
    assert r[0] == 409 and "already exists" in error_of(r)
    r = d.api("POST", "/v1/domains", {"xml": domain_xml("dup2", linux_guest, uuid=u)})
    assert r[0] == 409 and "already used by domain 'dup'" in error_of(r)
    # Missing disk file: defined, but start says which disk and why.
    disk = ("<disk type='file'><source file='/nonexistent/d.img'/><target dev='vda'/></disk>")
    assert d.api("POST", "/v1/domains",
                 {"xml": domain_xml("nodisk", linux_guest, disk)})[0] == 201
    r = d.api("POST", "/v1/domains/nodisk/start")
    assert r[0] == 400 and "disk 'vda': /nonexistent/d.img: No such file" in error_of(r)
    # Two clients start the same domain at once: one wins, the other is told it runs.
    results = []

    def start():
        results.append(d.api("POST", "/v1/domains/dup/start"))
    ts = [threading.Thread(target=start) for _ in range(2)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    codes = sorted(r[0] for r in results)
    assert codes == [200, 409], results
    assert "already running" in error_of([r for r in results if r[0] == 409][0])
    r = d.api("POST", "/v1/domains/dup/start")
    assert r[0] == 409 and "already running" in error_of(r)
    rc, _, err = d.vireo("start", "dup")
    assert rc == 1 and "already running" in err
    assert d.api("POST", "/v1/domains/dup/destroy")[0] == 200
    # Bad JSON, wrong members, huge bodies, unknown routes and methods.
    r = d.api("POST", "/v1/domains", raw=b'{"xml": ')
    assert r[0] == 400 and "invalid JSON" in error_of(r)
    r = d.api("POST", "/v1/domains", raw=b'[1, 2]')
    assert r[0] == 400 and "expected a JSON object" in error_of(r)
    r = d.api("POST", "/v1/domains", {"xml": "<domain/>", "color": "red"})
    assert r[0] == 400 and "unknown member 'color'" in error_of(r)
    r = d.api("POST", "/v1/domains", {"xml": 5})
    assert r[0] == 400 and "'xml'" in error_of(r)
    r = d.api("PUT", "/v1/domains/dup/autostart", {"autostart": "yes"})
    assert r[0] == 400 and "'autostart'" in error_of(r)
    r = d.api("POST", "/v1/domains", raw=b"x" * (3 << 20))
    assert r[0] == 413 and "larger than" in error_of(r)
    r = d.api("GET", "/v1/nothing")
    assert r[0] == 404 and "no such route: GET /v1/nothing" in error_of(r)
    r = d.api("GET", "/v1/domains/dup/frobnicate")
    assert r[0] == 404 and "no such route" in error_of(r)
    r = d.api("DELETE", "/v1/domains/dup/start")
    assert r[0] == 405 and "POST" in error_of(r)
    r = d.api("GET", "/v1/domains/nope")
    assert r[0] == 404 and "domain 'nope' not found" in error_of(r)
    # A client that disconnects mid-request, and one that speaks no HTTP.
    s = socket.socket(socket.AF_UNIX)
    s.connect(d.sock)
    s.sendall(b"POST /v1/domains HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n{\"xml\":")
    s.close()
    s = socket.socket(socket.AF_UNIX)
    s.connect(d.sock)
    s.sendall(b"\x00\x01garbage\r\n\r\n")
    s.settimeout(10)
    try:
        s.recv(1000)
    except OSError:
        pass
    s.close()
    # The daemon keeps serving.
    assert d.api("GET", "/v1/version")[0] == 200
    assert d.proc is not None and d.proc.poll() is None
    # CLI exit codes.
    assert d.vireo("dominfo", "nope")[0] == 4
    assert d.vireo("frobnicate")[0] == 2
    assert d.vireo("-c", "/nonexistent.sock", "list")[0] == 3
    # undefine: gone afterwards.
    d.ok("undefine", "nodisk")
    assert d.vireo("dominfo", "nodisk")[0] == 4


def test_edit_validates(daemon, linux_guest):
    d = daemon
    d.ok("define", write_xml(d, "ed", domain_xml("ed", linux_guest)))
    ed = os.path.join(d.root, "ed.sh")
    with open(ed, "w") as f:
        f.write("#!/bin/sh\nsed -i 's|<vcpu>1</vcpu>|<vcpu>2</vcpu>|' \"$1\"\n")
    os.chmod(ed, 0o755)
    env = dict(os.environ, EDITOR=ed)
    assert "edited" in d.ok("edit", "ed", env=env)
    assert "<vcpu>2</vcpu>" in d.ok("dumpxml", "ed")
    with open(ed, "w") as f:
        f.write("#!/bin/sh\nsed -i 's|<devices>|<devices><sound/>|' \"$1\"\n")
    rc, _, err = d.vireo("edit", "ed", env=env, stdin="")
    assert rc == 1 and "/domain/devices/sound" in err, err
    assert "<sound" not in d.ok("dumpxml", "ed")
    d.ok("autostart", "ed")
    assert d.info("ed")["autostart"] is True
    d.ok("undefine", "ed")


def test_kvm_driver_pause_reset_stats_reattach_power_button(daemon, build_dir, tmp_path):
    elf = os.path.join(build_dir, "guest/vireo-test-guest.elf")
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        pytest.skip("/dev/kvm is not usable here")
    if not os.path.exists(elf):
        pytest.skip(f"{elf} is not built")
    disk = tmp_path / "k1.img"
    disk.write_bytes(bytes(1 << 20))
    xml = f"""<domain type='kvm'><name>k1</name><memory unit='MiB'>64</memory>
      <os><type>hvm</type><kernel>{elf}</kernel>
      <cmdline>cpus=1 mem=64M virtio-blk powerbutton</cmdline></os>
      <devices><disk type='file' device='disk'><driver name='qemu' type='raw'/>
      <source file='{disk}'/><target dev='vda' bus='virtio'/></disk>
      <rng model='virtio'><backend model='random'>/dev/urandom</backend></rng></devices>
      </domain>"""
    d = daemon
    assert d.api("POST", "/v1/domains", {"xml": xml})[0] == 201
    r = d.api("POST", "/v1/domains/k1/start")
    assert r[0] == 200, r
    # The disk and the rng reach vireo-vmm as virtio-pci functions beside the host bridge.
    d.wait_console("k1", "type-1 and ECAM agree on 3 functions", timeout=60)
    d.wait_console("k1", "waiting for power button", timeout=60)
    # Pause and resume go through vireo-vmm's control socket.
    d.ok("suspend", "k1")
    assert d.ok("domstate", "k1").strip() == "paused"
    rc, _, err = d.vireo("suspend", "k1")
    assert rc == 1 and "already paused" in err, err
    # A paused VM stays paused over a vireod restart: the state comes from the VMM.
    pid = d.info("k1")["pid"]
    d.kill9()
    d.start()
    i = d.info("k1")
    assert i["state"] == "paused" and i["pid"] == pid, i
    d.ok("resume", "k1")
    assert d.ok("domstate", "k1").strip() == "running"
    # A pause by another client of vireo-vmm's control socket reaches vireod as an event.
    ctl = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    ctl.settimeout(10)
    ctl.connect(os.path.join(d.root, "run/vireo/domains/k1/control.sock"))
    f = ctl.makefile("rwb")
    for cmd, state in (("pause", "paused"), ("resume", "running")):
        f.write(json.dumps({"execute": cmd}).encode() + b"\n")
        f.flush()
        end = time.time() + 5
        while d.ok("domstate", "k1").strip() != state:
            assert time.time() < end, f"domstate not {state} after '{cmd}' on the socket"
            time.sleep(0.1)
    ctl.close()
    assert d.info("k1")["reason"] == "unpaused"
    # domstats: vireo-vmm's own counters of the disk the guest read and wrote.
    s = json.loads(d.ok("domstats", "k1", "--json"))
    assert s["cpu_time_ns"] > 0 and s["vcpu_time_ns"] > 0, s
    vda = s["disks"][0]
    assert vda["target"] == "vda" and vda["rd_reqs"] > 0 and vda["wr_reqs"] > 0, s
    assert vda["rd_bytes"] >= 512 and vda["wr_bytes"] >= 512, s
    # reset: the guest boots again in the same process.
    d.ok("reset", "k1")
    d.wait_console("k1", "waiting for power button", count=2, timeout=60)
    assert d.info("k1")["pid"] == pid
    # shutdown presses vireo-vmm's ACPI power button.
    d.ok("shutdown", "k1", "--timeout", "30")
    i = d.info("k1")
    assert i["state"] == "shut off" and i["reason"] == "shutdown", i
    # destroy is SIGKILL: vireod removes what vireo-vmm left, its control socket included.
    d.ok("start", "k1")
    d.ok("destroy", "k1")
    assert not os.path.exists(os.path.join(d.root, "run/vireo/domains/k1")), \
        os.listdir(os.path.join(d.root, "run/vireo/domains/k1"))
    d.ok("undefine", "k1")


def test_transient_create_and_shutdown_timeout(daemon, linux_guest):
    d = daemon
    # No <acpi/>: QEMU runs with acpi=off and the power button does nothing.
    xml = domain_xml("noacpi", linux_guest).replace("<features><acpi/></features>", "")
    out = d.ok("create", write_xml(d, "noacpi", xml))
    assert "created" in out
    info = d.info("noacpi")
    assert info["state"] == "running" and info["persistent"] is False
    rc, _, err = d.vireo("shutdown", "noacpi", "--timeout", "2")
    assert rc == 5 and "still running 2 s after the ACPI power button" in err, err
    assert "vireo destroy noacpi" in err
    rc, _, err = d.vireo("undefine", "noacpi")
    assert rc == 1 and "transient" in err
    d.ok("destroy", "noacpi")
    # A transient domain is gone once it stopped.
    assert d.vireo("dominfo", "noacpi")[0] == 4


def test_host_validate(daemon):
    rc, out, _ = daemon.vireo("host-validate", "--json")
    checks = {c["check"]: c for c in json.loads(out)}
    for name in ("/dev/kvm", "KVM flavour", "CPU virtualization", "/dev/net/tun", "Bridges",
                 "cgroup v2", "Hugepages", "KSM", "Driver qemu (TCG)",
                 "Driver kvm (vireo-vmm)"):
        assert name in checks, (name, checks.keys())
    assert checks["Driver qemu (TCG)"]["status"] == "PASS"  # the module skips without QEMU
    assert rc == 0
    if os.path.exists("/sys/module/kvm_pvm"):
        assert "kvm-pvm" in checks["KVM flavour"]["detail"]


def test_clean_shutdown_keeps_vms_and_autostart(daemon, linux_guest):
    d = daemon
    d.ok("start", "dup")
    pid = d.info("dup")["pid"]
    assert d.stop() == 0
    assert not os.path.exists(d.sock)
    os.kill(pid, 0)
    d.start()
    assert d.info("dup")["pid"] == pid
    d.ok("destroy", "dup")
    # Autostart domains start with the daemon.
    d.ok("autostart", "dup")
    assert d.stop() == 0
    d.start()
    info = d.info("dup")
    assert info["state"] == "running" and info["autostart"] is True, info
    d.ok("autostart", "dup", "--disable")
    d.ok("destroy", "dup")


def test_openapi_spec_matches_routes(daemon):
    """Every route of docs/api/openapi.json is served, with the methods it lists, and the
    daemon serves no other /v1 route."""
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "../../docs/api/openapi.json")) as f:
        spec = json.load(f)
    methods = ("get", "put", "post", "delete")
    for path, item in spec["paths"].items():
        if path == "/v1/events":
            continue  # a stream: checked by the life-cycle test
        url = (path.replace("{name}", "no-such-domain").replace("{pool}", "no-such-pool")
               .replace("{vol}", "v.img").replace("{network}", "no-such-net"))
        for m in methods:
            if m not in item:
                continue
            st, body = daemon.api(m.upper(), url, {} if m in ("put", "post") else None)
            assert st != 405 and "no such route" not in json.dumps(body), (m, path, st, body)
            assert str(st) in item[m]["responses"], (m, path, st, body)
        for m in methods:
            if m not in item:
                st, _ = daemon.api(m.upper(), url)
                assert st in (404, 405), (m, path, st)


def test_config_errors_and_second_daemon(daemon, tmp_path):
    d = daemon
    # A second vireod on the same directories refuses to start, naming the first.
    r = subprocess.run([d.vireod, "--root", d.root, "--foreground"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 1 and "another vireod" in r.stderr, r.stderr
    assert d.api("GET", "/v1/version")[0] == 200
    # A bad setting stops the daemon with the file, line and key.
    root = tmp_path / "bad"
    (root / "etc/vireo").mkdir(parents=True)
    (root / "etc/vireo/vireod.conf").write_text("# comment\nlog_level = debug\nbogus = 1\n")
    r = subprocess.run([d.vireod, "--root", str(root), "--foreground"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "vireod.conf:3: unknown setting 'bogus'" in r.stderr, r.stderr
    (root / "etc/vireo/vireod.conf").write_text("default_driver = xen\n")
    r = subprocess.run([d.vireod, "--root", str(root), "--foreground"], capture_output=True,
                       text=True, timeout=30)
    assert r.returncode == 2 and "default_driver: 'xen'" in r.stderr, r.stderr


def test_random_requests_never_stop_the_daemon(daemon):
    """Hundreds of malformed, truncated or nonsensical requests: each gets an answer or a
    closed connection, and the daemon keeps serving."""
    import random
    rnd = random.Random(1234)
    methods = ["GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "FOO", "G\x00T"]
    paths = ["/", "/v1", "/v1/", "/v1/domains", "/v1/domains/", "/v1/domains//start",
             "/v1/domains/%2e%2e/xml", "/v1/domains/" + "a" * 5000, "/v1/pools/default/volumes",
             "/v1/pools/default/volumes/..%2fetc/data", "/v1/events?x=1", "*", "/v1/domains/x/",
             "/v1/pools/default/volumes/v/data/extra", "/v1/domains/vm1/stats/"]
    bodies = [b"", b"{", b"[]", b"null", b'{"xml": null}', b'{"xml": "<domain/>"}',
              b'{"xml": "' + b"<a>" * 3000 + b'"}', os.urandom(2000), b'{"autostart": 1}',
              b'{"name": "../x", "capacity": -1}', b"\xff\xfe" * 100]
    for i in range(300):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(10)
        s.connect(daemon.sock)
        body = rnd.choice(bodies)
        head = f"{rnd.choice(methods)} {rnd.choice(paths)} HTTP/1.{rnd.choice([0, 1])}\r\n"
        head += "Host: x\r\n"
        if rnd.random() < 0.8:
            length = len(body) if rnd.random() < 0.8 else rnd.choice([0, 1, 10**9, -5])
            head += f"Content-Length: {length}\r\n"
        if rnd.random() < 0.1:
            head += "Transfer-Encoding: chunked\r\n"
        raw = head.encode("latin-1") + b"\r\n" + body
        if rnd.random() < 0.2:
            raw = raw[:rnd.randrange(len(raw))]  # the client gives up midway
        try:
            s.sendall(raw)
            if rnd.random() < 0.7:
                s.shutdown(socket.SHUT_WR)
                s.recv(65536)
        except OSError:
            pass
        s.close()
    st, body = daemon.api("GET", "/v1/version")
    assert st == 200 and body["api"] == 1
    assert daemon.proc is not None and daemon.proc.poll() is None
