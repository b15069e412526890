"""Latency/throughput of the MnasNet models on this machine: ``mnaszoo bench`` as a script.

    python benchmarks/bench_inference.py mnasnet_a1 mnasnet_b1 --json-out bench.json

Takes the options of ``mnaszoo bench --help`` (see docs/benchmarks.md).
"""

from __future__ import annotations

import sys

from mnaszoo.cli.main import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
