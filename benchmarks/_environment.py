"""What a benchmark's data file records about the machine it ran on (shared by the scripts)."""

from __future__ import annotations

import os
import platform


def cpu_features() -> str:
    """The CPU's vector extensions that matter to these kernels, in words."""
    flags = ""
    try:
        with open("/proc/cpuinfo") as handle:
            flags = next((line for line in handle if line.startswith("flags")), "")
    except OSError:
        pass
    words = set(flags.split())
    return ", ".join(
        name if flag in words else f"no {name}"
        for flag, name in (("avx2", "AVX2"), ("avx512_vnni", "AVX-512 VNNI"))
    )


def machine(extra: str = "") -> str:
    """``a 2-core x86_64 machine`` with the load average when it was asked, and ``extra``."""
    load = os.getloadavg()[0]
    text = f"a {os.cpu_count()}-core {platform.machine()} machine"
    text += f" (load average {load:.1f} at the start"
    return text + (f"; {extra})" if extra else ")")
