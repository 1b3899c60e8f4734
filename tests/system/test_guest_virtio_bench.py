"""The test guest's virtio benchmark words (guest/virtio_bench.c, used by bench/virtio/run) on
vireo-vmm: `bench-blk=` keeps 32 requests in flight and prints its rate, `bench-net=tx`
streams frames through a tap, bad words fail the verdict."""

from __future__ import annotations

import re

from test_vmm_guest_virtio import TAP, make_disk, needs_net, pytestmark  # noqa: F401
from vmm import EXIT_POWEROFF, guest_cmd, run_guest, verdict

BLK_RE = re.compile(r"VIREO-BENCH: blk (\w+) qd=(\d+) bs=(\d+) us=(\d+) ops=(\d+) "
                    r"MBps=[0-9.]+ iops=[0-9.]+")


def test_guest_bench_blk(target):
    img = make_disk(target, "bench.img")  # 2 MiB
    words = ("bench-blk=randread,qd=32,secs=1 bench-blk=seqwrite,qd=1,bs=131072,secs=1 "
             "bench-blk=randwrite,qd=8,bs=512,secs=1")
    res = run_guest(target, guest_cmd(target, words=words,
                                      extra=("--no-reboot", "--disk",
                                             f"path={img},cache=writeback")))
    lines = [m.groups() for m in BLK_RE.finditer(res.console)]
    assert [(m, qd, bs) for m, qd, bs, *_ in lines] == [
        ("randread", "32", "4096"), ("seqwrite", "1", "131072"), ("randwrite", "8", "512")
    ], res.report()
    for _, qd, _, us, ops in lines:
        # A whole second of requests, at least one round of the queue depth completed.
        assert int(us) >= 1_000_000 and int(ops) >= int(qd), res.report()
    assert verdict(res).startswith("VIREO-GUEST: PASS"), res.report()
    assert res.rc == EXIT_POWEROFF, res.report()


def test_guest_bench_bad_words(target):
    img = make_disk(target, "bench-bad.img")
    bad = {"bench-blk=fastread": "bench-blk=", "bench-blk=randread,qd=64": "bench-blk=",
           "bench-blk=seqread,bs=1000": "bench-blk=", "bench-net=rx": "bench-net="}
    res = run_guest(target, guest_cmd(target, words=" ".join(bad),
                                      extra=("--no-reboot", "--disk", f"path={img}")))
    assert verdict(res).startswith("VIREO-GUEST: FAIL bad cmdline value for bench-blk="), \
        res.report()
    assert res.console.count("bad cmdline value for bench-blk=") >= 3, res.report()
    assert "bad cmdline value for bench-net=" in res.console, res.report()
    assert "VIREO-BENCH:" not in res.console, res.report()


@needs_net
def test_guest_bench_net_tx(target):
    # vireo-vmm makes the tap (and sets it up) when it does not exist yet.
    res = run_guest(target, guest_cmd(target, words="bench-net=tx,secs=1,len=600",
                                      extra=("--no-reboot", "--net", f"tap={TAP}")))
    m = re.search(r"VIREO-BENCH: net tx len=600 us=(\d+) frames=(\d+)", res.console)
    assert m and int(m.group(1)) >= 1_000_000 and int(m.group(2)) >= 64, res.report()
    assert verdict(res).startswith("VIREO-GUEST: PASS"), res.report()
