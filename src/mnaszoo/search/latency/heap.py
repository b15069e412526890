"""Keep freed memory in the process while latency is timed, so that timings are of computation.

PyTorch's CPU tensors come straight from the C library's ``malloc``. glibc serves large blocks
(an activation of a 112x112 layer is megabytes) from fresh ``mmap`` pages, or trims freed heap
memory back to the system, and every page of the next call's output then costs a page fault.
Whether that happens depends on what the process allocated before (glibc adapts its thresholds
as it goes), so one network measured 33 ms in one process and 20 ms in another, with 6,700 page
faults a call in the slow one, and a block timed alone could cost more than the network it sat
in. :func:`steady_heap` sets glibc's thresholds so that freed memory is kept and reused while a
table times its models: the latency measured, and predicted, is that of a process in steady state,
the way a model serving requests runs. onnxruntime and ExecuTorch plan their own memory and are not
affected. On other C libraries (musl, macOS, Windows) nothing is changed.

To run a deployed PyTorch model the same way, start its process with
``MALLOC_MMAP_THRESHOLD_=33554432 MALLOC_TRIM_THRESHOLD_=1073741824`` in the environment (glibc
takes at most 32 MiB from the environment: larger blocks, as at batch sizes above 8, still come
from ``mmap``), or wrap the serving loop in :func:`steady_heap`.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["steady_heap"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_HEAP_BLOCKS_BYTES = 1 << 30


@functools.lru_cache(maxsize=1)
def _glibc() -> ctypes.CDLL | None:
    """The running glibc, or ``None`` on any other C library."""
    try:
        if not os.confstr("CS_GNU_LIBC_VERSION"):
            return None
        library = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        library.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        library.malloc_trim.argtypes = [ctypes.c_size_t]
        return library
    except (AttributeError, OSError, ValueError):  # no confstr name, no libc, no mallopt
        return None


@contextmanager
def steady_heap() -> Iterator[bool]:
    """Inside, glibc keeps and reuses freed memory instead of returning it to the system.

    Yields:
        Whether the thresholds are set (``False`` off glibc).

    The setting is made once and stays for the life of the process, as the environment
    variables above would: undoing it after every timing batch would hand the memory back and
    make the next batch fault its pages in again, while its heap settles. A process that timed
    latency therefore keeps its peak memory allocated, as a serving process does.
    """
    yield _keep_freed_memory()


@functools.lru_cache(maxsize=1)
def _keep_freed_memory() -> bool:
    libc = _glibc()
    if libc is None:
        return False
    # Blocks below 1 GiB come from the heap (activations at any batch size the tables time), and
    # the heap is never trimmed below 1 GiB of free memory.
    libc.mallopt(_M_MMAP_THRESHOLD, _HEAP_BLOCKS_BYTES)
    libc.mallopt(_M_TRIM_THRESHOLD, _HEAP_BLOCKS_BYTES)
    return True
