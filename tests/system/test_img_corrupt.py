"""The corrupt-image corpus (make_corrupt_images.py): every broken image gives a clear error
naming the image and the field, never a crash, and read-only commands never change it."""

from __future__ import annotations

import hashlib

import pytest

import make_corrupt_images
from imgtools import run, tools


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    d = tmp_path_factory.mktemp("corrupt")
    return {name: (path, phrase, stage)
            for name, path, phrase, stage in make_corrupt_images.make(str(d))}


def _digest(path):
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


@pytest.mark.asan
@pytest.mark.parametrize("case", make_corrupt_images.CASE_NAMES)
def test_corrupt_image_clean_error(build_dir, tmp_path, corpus, case):
    img, writer = tools(build_dir)
    path, phrase, stage = corpus[case]
    before = _digest(path)
    info = run(img, "info", "-f", "qcow2", path, check=False)
    conv = run(img, "convert", "-f", "qcow2", "-O", "raw", path, tmp_path / "o.raw",
               check=False)
    chk = run(img, "check", "-f", "qcow2", path, check=False)
    for p in (info, conv, chk):
        assert p.returncode >= 0, f"killed by signal {-p.returncode}: {p.stderr}"
    assert _digest(path) == before, "a read-only command changed the image"
    failing = conv
    if stage == "open":
        assert info.returncode == 1 and chk.returncode == 1
    else:
        assert info.returncode == 0
        assert chk.returncode == 2, chk.stdout + chk.stderr
    assert failing.returncode == 1
    msg = failing.stderr
    assert path in msg and phrase in msg, msg
    assert msg.count("\n") <= 2, msg
    # so does a shrink (on a copy: it walks every table past the cut)
    copy = tmp_path / "shrunk.qcow2"
    copy.write_bytes(open(path, "rb").read())
    s = run(img, "resize", "-f", "qcow2", "--shrink", copy, "512", check=False)
    assert s.returncode in (0, 1), f"shrink: exit {s.returncode}: {s.stderr}"
    if s.returncode:
        assert str(copy) in s.stderr and s.stderr.count("\n") <= 2, s.stderr
    # a writer refuses cleanly too
    w = run(writer, path, "qcow2", stdin="w 0 131072 5\nf\n", check=False)
    assert w.returncode in (0, 1), w.stderr
    if stage == "open":
        assert w.returncode == 1 and phrase in w.stderr
    elif w.returncode == 1:
        # damage found by a writer marks the image corrupt: later writers refuse
        assert "now marked corrupt" in w.stderr, w.stderr
        w2 = run(writer, path, "qcow2", stdin="w 0 512 6\n", check=False)
        assert w2.returncode == 1 and "marked corrupt" in w2.stderr
