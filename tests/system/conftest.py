"""pytest setup of the system tests: the `target` fixture (where commands run) and paths.

    def test_something(target, linux_guest, build_dir):
        rc, out = target.run(f"{build_dir}/src/vmm/vireo-vmm --kernel {linux_guest.vmlinuz} ...", 120)

Places, env VIREO_TARGET: box | host | auto (default). auto = always inside the KVM test box
(tests/kvmbox), and also directly on the host when it has hardware KVM (vmx|svm and a usable
/dev/kvm); `target` is parametrized over the places, so each test runs once per place. The box
is booted once per session with the build dir (env VIREO_BUILD, default <repo>/build) and the
Linux guest files at the same paths as on the host; with qemu-system-x86_64 too when a
collected test is marked `needs_qemu` (or VIREO_BOX_QEMU=1). VIREO_BOX_INCLUDE=PATH:PATH...
adds more paths to the box (e.g. a second build directory).

Markers:
  needs_qemu   the test runs qemu-system-x86_64 in the target (skipped on a host without it)
"""

from __future__ import annotations

import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vireo_target  # noqa: E402

_PLACES = vireo_target.places()
_want_qemu = {"value": False}
_targets: dict[str, vireo_target.Target] = {}


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_qemu: runs qemu-system-x86_64 inside the target")


def pytest_collection_modifyitems(session, config, items):
    _want_qemu["value"] = any(item.get_closest_marker("needs_qemu") for item in items)


@pytest.fixture(scope="session")
def build_dir() -> str:
    """The build directory (same absolute path on the host and in the box)."""
    return vireo_target.build_dir()


@pytest.fixture(scope="session")
def linux_guest() -> vireo_target.LinuxGuest:
    """The default Linux guest: .vmlinuz (bzImage), .vmlinux (ELF, for PVH), .initramfs,
    .kernel_version; prepared (and cached) by guest/linux/prepare.sh."""
    return vireo_target.kvmbox.ensure_guest(quiet=True)


@pytest.fixture(scope="session", params=_PLACES)
def target(request, linux_guest) -> vireo_target.Target:
    where = request.param
    t = _targets.get(where)
    if t is None:
        try:
            t = vireo_target.make_target(where, qemu=_want_qemu["value"])
        except vireo_target.BoxError as e:
            pytest.fail(f"cannot start the {where} target: {e}", pytrace=False)
        t.measure_overhead()
        _targets[where] = t
        msg = f"vireo target {t.describe()}:"
        if "boot_s" in t.stats:
            msg += f" boot {t.stats['boot_s']:.1f} s (+{t.stats['assemble_s']:.1f} s assembling),"
        msg += f" per-command overhead {t.stats['command_overhead_s'] * 1000:.0f} ms"
        t.stats["message"] = msg  # type: ignore[assignment]
        tr = request.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            tr.write_line("")
            tr.write_line(msg)
        request.addfinalizer(t.stop)
    return t


@pytest.fixture(autouse=True)
def _skip_without_qemu(request):
    if request.node.get_closest_marker("needs_qemu") and "target" in request.fixturenames:
        t = request.getfixturevalue("target")
        if t.where == "host" and not os.access(vireo_target.QEMU, os.X_OK):
            pytest.skip(f"{vireo_target.QEMU} is not installed")


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    for t in _targets.values():
        msg = t.stats.get("message")
        if msg:
            boots = getattr(t, "boots", 0)
            extra = f" ({boots} boots)" if boots > 1 else ""
            terminalreporter.write_line(str(msg) + extra)
        for n in t.notes:
            terminalreporter.write_line(f"  [{t.where}] {n}")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failure in the box, add the tail of the box's console to the report."""
    outcome = yield
    rep = outcome.get_result()
    if rep.failed and call.when == "call":
        t = _targets.get("box")
        if isinstance(t, vireo_target.BoxTarget) and t.box is not None:
            rep.sections.append(("box console (tail)", t.console_tail(30)))
