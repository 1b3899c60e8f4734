#!/usr/bin/env python3
"""Make a corpus of broken qcow2 images, one per kind of bad field, from a good image that
qemu-img writes.  Each case names the phrase the error must contain and whether opening the
image fails ("open") or only reading its data does ("read").

    make_corrupt_images.py DIR      writes DIR/<case>.qcow2 and prints the cases
"""

from __future__ import annotations

import os
import struct
import subprocess
import sys

CS = 65536


def _base(path: str) -> None:
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", path, "1M"], check=True)
    subprocess.run(["qemu-io", "-c", "write -P 0x61 0 64k", "-c", "write -c -P 0x62 64k 64k",
                    path], check=True, capture_output=True)


def _u32(d: bytearray, off: int, v: int) -> None:
    d[off:off + 4] = struct.pack(">I", v & 0xffffffff)


def _u64(d: bytearray, off: int, v: int) -> None:
    d[off:off + 8] = struct.pack(">Q", v & 0xffffffffffffffff)


def _r64(d: bytes, off: int) -> int:
    return struct.unpack(">Q", d[off:off + 8])[0]


def _l2(d: bytes) -> int:
    return _r64(d, _r64(d, 40)) & 0x00fffffffffffe00


# name -> (patch function, phrase in the error, stage)
def _cases():
    def ext_after_header(d, typ, ln):
        _u32(d, 112, typ)
        _u32(d, 116, ln)

    return {
        "version_4": (lambda d: _u32(d, 4, 4), "version", "open"),
        "cluster_bits_30": (lambda d: _u32(d, 20, 30), "cluster_bits", "open"),
        "cluster_bits_8": (lambda d: _u32(d, 20, 8), "cluster_bits", "open"),
        "size_overflow": (lambda d: _u64(d, 24, 1 << 63), "virtual size", "open"),
        "crypt_method_5": (lambda d: _u32(d, 32, 5), "crypt_method", "open"),
        "l1_size_huge": (lambda d: _u32(d, 36, 0x10000000), "l1_size", "open"),
        "l1_size_too_small": (lambda d: (_u64(d, 24, 1 << 40), _u32(d, 36, 1)), "l1_size",
                              "open"),
        "l1_offset_past_end": (lambda d: _u64(d, 40, 1 << 40), "l1_table_offset", "open"),
        "l1_offset_unaligned": (lambda d: _u64(d, 40, _r64(d, 40) + 8), "l1_table_offset",
                                "open"),
        "l1_overlaps_header": (lambda d: _u64(d, 40, 0), "l1_table_offset", "open"),
        "l1_overlaps_reftable": (lambda d: _u64(d, 40, _r64(d, 48)), "overlaps", "open"),
        "reftable_past_end": (lambda d: _u64(d, 48, 1 << 40), "refcount_table_offset", "open"),
        "reftable_clusters_0": (lambda d: _u32(d, 56, 0), "refcount_table_clusters", "open"),
        "reftable_clusters_huge": (lambda d: _u32(d, 56, 0xffffffff),
                                   "refcount_table_clusters", "open"),
        "nb_snapshots_huge": (lambda d: (_u32(d, 60, 0x7fffffff), _u64(d, 64, CS)),
                              "nb_snapshots", "open"),
        "snapshots_past_end": (lambda d: (_u32(d, 60, 1), _u64(d, 64, 1 << 40)),
                               "snapshots_offset", "open"),
        "snapshot_table_truncated": (lambda d: (_u32(d, 60, 1000), _u64(d, 64, len(d) - CS)),
                                     "snapshot", "open"),
        "incompat_unknown": (lambda d: _u64(d, 72, 1 << 10), "incompatible features", "open"),
        "external_data_file": (lambda d: _u64(d, 72, 1 << 2), "external data file", "open"),
        "refcount_order_7": (lambda d: _u32(d, 96, 7), "refcount_order", "open"),
        "header_length_short": (lambda d: _u32(d, 100, 56), "header_length", "open"),
        "header_length_huge": (lambda d: _u32(d, 100, CS * 2), "header_length", "open"),
        "compression_type_2": (lambda d: (d.__setitem__(104, 2), _u64(d, 72, 1 << 3)),
                               "compression_type", "open"),
        "compression_bit_without_type": (lambda d: _u64(d, 72, 1 << 3), "compression",
                                         "open"),
        "extl2_small_clusters": (lambda d: (_u64(d, 72, 1 << 4), _u32(d, 20, 12)),
                                 "extended L2", "open"),
        "backing_offset_past_cluster": (lambda d: (_u64(d, 8, CS - 2), _u32(d, 16, 10)),
                                        "backing_file_offset", "open"),
        "backing_size_huge": (lambda d: (_u64(d, 8, 1024), _u32(d, 16, 5000)),
                              "backing_file_size", "open"),
        "extension_length_overflow": (lambda d: ext_after_header(d, 0x12345678, 0xfffffff0),
                                      "header extension", "open"),
        "l1_entry_past_end": (lambda d: _u64(d, _r64(d, 40), (1 << 40) | (1 << 63)),
                              "L1 entry", "read"),
        "l1_entry_into_header": (lambda d: _u64(d, _r64(d, 40), 512 | (1 << 63)), "L1 entry",
                                 "read"),
        "l1_entry_over_reftable": (lambda d: _u64(d, _r64(d, 40), _r64(d, 48) | (1 << 63)),
                                   "L1 entry", "read"),
        "l2_entry_past_end": (lambda d: _u64(d, _l2(d), (1 << 40) | (1 << 63)), "L2 entry",
                              "read"),
        "l2_entry_unaligned": (lambda d: _u64(d, _l2(d), _r64(d, _l2(d)) + 512),
                               "cluster-aligned", "read"),
        "compressed_past_end": (lambda d: _u64(d, _l2(d) + 8, (1 << 62) | (1 << 40)),
                                "compressed cluster", "read"),
        "compressed_over_l1": (lambda d: _u64(d, _l2(d) + 8, (1 << 62) | (_r64(d, 40) + 16)),
                               "L1 or refcount table", "read"),
        "compressed_garbage": (lambda d: _u64(d, _l2(d) + 8, (1 << 62) | (_l2(d) + 4096)),
                               "decompress", "read"),
        "data_over_reftable": (lambda d: _u64(d, _l2(d), _r64(d, 48) | (1 << 63)),
                               "L1 or refcount table", "read"),
    }


def make(directory: str) -> list[tuple[str, str, str, str]]:
    os.makedirs(directory, exist_ok=True)
    base = os.path.join(directory, "base.qcow2")
    _base(base)
    with open(base, "rb") as f:
        good = f.read()
    out = []
    for name, (patch, phrase, stage) in _cases().items():
        d = bytearray(good)
        patch(d)
        path = os.path.join(directory, name + ".qcow2")
        with open(path, "wb") as f:
            f.write(d)
        out.append((name, path, phrase, stage))
    truncated = os.path.join(directory, "truncated_header.qcow2")
    with open(truncated, "wb") as f:
        f.write(good[:50])
    out.append(("truncated_header", truncated, "too short", "open"))
    return out


CASE_NAMES = list(_cases()) + ["truncated_header"]

if __name__ == "__main__":
    for name, path, phrase, stage in make(sys.argv[1] if len(sys.argv) > 1 else "corrupt"):
        print(f"{name}\t{stage}\t{phrase}\t{path}")
