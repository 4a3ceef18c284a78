#!/usr/bin/python3
"""Print the markdown benchmark table of docs/benchmarks.md from the raw
outputs that bench/run.sh writes to a folder: gemm.txt (go test -bench) and
onednn_default.json, onednn_vnni.json, onednn_avx2.json (onednn_conv.py
--json).

Each qtool row shows the median over the -count runs of GOPS (wall time) and
cpuGOPS (process CPU time). It also shows cpuGOPS as a percentage of the
460 GOPS per core that the targets were set against, and of the
single-thread instruction peak that bench/vnnipeak measured for the path
(peak.txt). Single-thread rows also
show oneDNN int8 cpuGOPS at its default instruction set and at the same
instruction set as the qtool path (AVX512_CORE_VNNI for vnni, AVX2 for avx2),
and the ratio of qtool's cpuGOPS to it. CPU time is used because the machine
may be shared with other processes.

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
    """Return {shape: (int8 GOPS, int8 cpuGOPS)}, or {} if the file is missing."""
    if not os.path.exists(path):
        return {}
    result = {}
    with open(path) as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                result[r["shape"]] = (r["int8_gops"], r["int8_cpu_gops"])
    return result


def ratio(a, b):
    return f"{a / b:.2f}" if b else "n/a"


def read_peaks(path):
    """Return {path: single-thread GOPS} from vnnipeak's output, or {}."""
    peaks = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                m = re.match(r"^\S+ \S+ \((\w+)\)\s+1\s+([\d.]+)$", line.strip())
                if m:
                    peaks[m.group(1)] = float(m.group(2))
    return peaks


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__.splitlines()[-1])
    folder = sys.argv[1]
    runs = read_go(os.path.join(folder, "gemm.txt"))
    peaks = read_peaks(os.path.join(folder, "peak.txt"))
    default = read_onednn(os.path.join(folder, "onednn_default.json"))
    same_isa = {
        "vnni": read_onednn(os.path.join(folder, "onednn_vnni.json")),
        "avx2": read_onednn(os.path.join(folder, "onednn_avx2.json")),
    }

    print("| shape | path | threads | GOPS | cpuGOPS | cpuGOPS / 460 | cpuGOPS / measured peak "
          "| oneDNN default cpuGOPS | qtool / oneDNN default | oneDNN same ISA cpuGOPS | qtool / oneDNN same ISA |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for (shape, kernel, threads), metrics in sorted(runs.items()):
        gops = statistics.median(metrics["GOPS"])
        cpu = statistics.median(metrics["cpuGOPS"]) if metrics["cpuGOPS"] else float("nan")
        peak = peaks.get(kernel)
        cells = [f"{gops:.1f}", f"{cpu:.1f}", f"{100 * cpu / PEAK_PER_CORE:.0f}%",
                 f"{100 * cpu / peak:.0f}%" if peak else ""]
        # oneDNN ran on one thread, so only single-thread rows get ratios.
        for table in (default, same_isa.get(kernel, {})):
            ref = table.get(shape)
            if ref and threads == 1:
                cells += [f"{ref[1]:.1f}", ratio(cpu, ref[1])]
            else:
                cells += ["", ""]
        print(f"| {shape} | {kernel} | {threads} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
