"""Keep freed host memory in the process for reuse, instead of handing it back to the kernel at every free.

Why: PyTorch's CPU tensors come from the C library's ``malloc``. glibc serves every block above its mmap threshold
(at most 32 MiB) with a fresh ``mmap`` and unmaps it at ``free``. A ConvNet training step at batch 256 on 28x28 or
32x32 inputs allocates and frees activations of 100+ MiB each, so every step faults in and zeroes tens of thousands
of fresh pages in the kernel. Measured on this project's CPU (BENCHMARKS.md, "Host memory and 2x2 pooling"), that
kernel work was 22-27 s of system time in a 20-epoch ConvNet evaluation of 79-94 s CPU time. With mmap off
(``M_MMAP_MAX = 0``) the blocks come from the heap, and a high trim threshold (``M_TRIM_THRESHOLD``, 2 GiB) keeps
freed heap for the next step, as a caching allocator would. The arithmetic is untouched: results are bitwise the
same either way. The price is that a process keeps its peak heap (up to 2 GiB more than it uses at a given moment)
until it exits.

Only the command line and the benchmark scripts call :func:`retain_freed_memory`, once at start; importing the
library changes nothing. ``DISTILLSET_RETAIN_MEMORY=0`` turns it off. On a C library other than glibc it does
nothing.
"""

from __future__ import annotations

import ctypes
import os

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameter numbers (malloc.h)
_M_MMAP_MAX = -4
_TRIM_THRESHOLD = 2**31 - 1  # mallopt takes an int: the largest it accepts, 2 GiB


def retain_freed_memory() -> bool:
    """Make glibc keep freed blocks for reuse (module docstring); True when the setting took effect."""
    if os.environ.get("DISTILLSET_RETAIN_MEMORY", "1") == "0":
        return False
    try:
        libc = ctypes.CDLL(None)  # the process's own symbols, the C library's among them
    except (OSError, TypeError):  # TypeError: Windows has no such handle
        return False
    if not hasattr(libc, "gnu_get_libc_version") or not hasattr(libc, "mallopt"):
        return False  # not glibc, whose mallopt parameter numbers these are
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD))
