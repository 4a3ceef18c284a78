#!/usr/bin/python3
"""Print the markdown benchmark table of docs/benchmarks.md from the raw
outputs that bench/run.sh writes to a folder: gemm.txt (go test -bench) and
onednn_default.json, onednn_vnni.json, onednn_avx2.json (onednn_conv.py
--json).

Each qtool row shows the median over the -count runs of GOPS (wall time) and
cpuGOPS (process CPU time), the percentage of the 460 GOPS per core that the
targets were set against, and the ratio of qtool's wall-time GOPS to oneDNN
int8 at its default instruction set and at the same instruction set as the
qtool path (AVX512_CORE_VNNI for vnni, AVX2 for avx2).

Usage: /usr/bin/python3 bench/report.py OUTDIR
"""

import collections
import json
import os
import re
import statistics
import sys

PEAK_PER_CORE = 460.0

LINE = re.compile(r"^Benchmark(Conv|GEMM)/(\S+?)/(\w+)/threads=(\d+)-\d+\s+\d+\s+(.*)$")


def read_go(path):
    """Return {(shape, path, threads): {"GOPS": [...], "cpuGOPS": [...]}}."""
    runs = collections.defaultdict(lambda: collections.defaultdict(list))
    with open(path) as f:
        for line in f:
            m = LINE.match(line.strip())
            if not m:
                continue
            _, shape, kernel, threads, metrics = m.groups()
            fields = metrics.split()
            for value, unit in zip(fields[0::2], fields[1::2]):
                if unit in ("GOPS", "cpuGOPS"):
                    runs[(shape, kernel, int(threads))][unit].append(float(value))
    return runs


def read_onednn(path):
    """Return {shape: int8 GOPS}, or {} if the file is missing or empty."""
    if not os.path.exists(path):
        return {}
    result = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                result[r["shape"]] = r["int8_gops"]
    return result


def ratio(a, b):
    return f"{a / b:.2f}" if b else "n/a"


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.splitlines()[-1])
    folder = sys.argv[1]
    runs = read_go(os.path.join(folder, "gemm.txt"))
    default = read_onednn(os.path.join(folder, "onednn_default.json"))
    same_isa = {
        "vnni": read_onednn(os.path.join(folder, "onednn_vnni.json")),
        "avx2": read_onednn(os.path.join(folder, "onednn_avx2.json")),
    }

    print("| shape | path | threads | GOPS | cpuGOPS | % of 460/core | oneDNN default | qtool/oneDNN default | oneDNN same ISA | qtool/oneDNN same ISA |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (shape, kernel, threads), metrics in sorted(runs.items()):
        gops = statistics.median(metrics["GOPS"])
        cpu = statistics.median(metrics["cpuGOPS"]) if metrics["cpuGOPS"] else float("nan")
        peak = 100 * gops / (PEAK_PER_CORE * threads)
        ref = default.get(shape, 0.0)
        same = same_isa.get(kernel, {}).get(shape, 0.0)
        # oneDNN ran on one thread, so the ratios compare single-thread rows.
        ref_cell = f"{ref:.1f}" if ref and threads == 1 else ""
        same_cell = f"{same:.1f}" if same and threads == 1 else ""
        print(f"| {shape} | {kernel} | {threads} | {gops:.1f} | {cpu:.1f} | {peak:.0f}% | {ref_cell} | "
              f"{ratio(gops, ref) if ref_cell else ''} | {same_cell} | {ratio(gops, same) if same_cell else ''} |")


if __name__ == "__main__":
    main()
