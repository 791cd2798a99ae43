"""Keeping freed host memory: once the heap has grown to the working set, re-allocating a large block faults in no
fresh pages, where glibc's default maps (and the kernel zeroes) it afresh every time."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

BLOCK = 64 * 2**20  # above glibc's largest mmap threshold (32 MiB), as a ConvNet step's activations are
PROBE = f"""
import json, resource
import torch
from distillset.host_memory import retain_freed_memory
applied = retain_freed_memory()
faults = []
for _ in range(8):  # a training loop: the same large block each step, small objects in between
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    block = torch.empty({BLOCK} // 4)
    block.fill_(1.0)
    small = [object() for _ in range(100)]
    del block
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps({{"applied": applied, "faults": faults}}))
"""


def probe(retain: str) -> dict:
    env = {**os.environ, "DISTILLSET_RETAIN_MEMORY": retain}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's mallopt only")
def test_a_freed_block_is_reused_instead_of_mapped_afresh():
    kept, default = probe("1"), probe("0")
    assert kept["applied"] and not default["applied"]
    pages = BLOCK // 4096
    # the first steps may grow the heap (an aligned request can miss a freed block by its alignment); after that none
    assert sum(kept["faults"][3:]) < pages // 20
    assert all(f > pages // 2 for f in default["faults"][3:])  # every step faults the whole block in again
