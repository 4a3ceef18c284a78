#!/bin/sh
# Runs the int8 kernel benchmarks of docs/benchmarks.md in one session and
# prints the markdown table. It measures the instruction peaks
# (bench/vnnipeak), the qtool int8 and float32 kernels and the whole LeNet
# fixture (go test -bench, COUNT runs each), and
# PyTorch's oneDNN int8 and float32 layers at its default instruction set and
# capped at AVX512_CORE_VNNI and AVX2.
#
# Usage, from the repository root: sh bench/run.sh [OUTDIR]
# OUTDIR (default bench/out) receives the raw outputs.
set -eu

out=${1:-bench/out}
count=${COUNT:-5}
python=${PYTHON:-/usr/bin/python3}
mkdir -p "$out"

echo "load before: $(cat /proc/loadavg)" | tee "$out/load.txt"
go run ./bench/vnnipeak | tee "$out/peak.txt"
go test -run '^$' -bench 'Conv/|^BenchmarkGEMM' -count "$count" ./internal/gemm | tee "$out/gemm.txt"
go test -run '^$' -bench '^BenchmarkSGEMM' -count "$count" ./internal/gemm | tee "$out/sgemm.txt"
go test -run '^$' -bench '^BenchmarkLeNet' -benchtime 20x -count "$count" ./internal/eval | tee "$out/lenet.txt"
"$python" bench/onednn_conv.py --json > "$out/onednn_default.json"
ONEDNN_MAX_CPU_ISA=AVX512_CORE_VNNI "$python" bench/onednn_conv.py --json > "$out/onednn_vnni.json"
ONEDNN_MAX_CPU_ISA=AVX2 "$python" bench/onednn_conv.py --json > "$out/onednn_avx2.json"
echo "load after: $(cat /proc/loadavg)" | tee -a "$out/load.txt"

"$python" bench/report.py "$out"
