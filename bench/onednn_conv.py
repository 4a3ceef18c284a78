#!/usr/bin/python3
"""Time the qtool benchmark shapes through PyTorch's oneDNN backend.

For each conv and GEMM shape of internal/gemm's BenchmarkConv and
BenchmarkGEMM this script times one forward pass of a quantized layer
(quint8 activations in channels-last layout, per-channel qint8 weights,
torch.backends.quantized.engine = "onednn") and of the float32 layer, on
one thread, and prints milliseconds and GOPS (2 operations per
multiply-add) so the numbers compare with `go test -bench` in the same run:
GOPS over the median wall time and cpuGOPS over the median process CPU time.

Written for Debian's python3-torch (PyTorch 1.13, oneDNN 2.6); run it with
/usr/bin/python3. oneDNN picks its instruction set at run time. Set
ONEDNN_MAX_CPU_ISA (for example AVX512_CORE_VNNI or AVX2) to cap it, and
ONEDNN_VERBOSE=1 to see which implementation ran.

Usage: /usr/bin/python3 bench/onednn_conv.py [--repeat N] [--json]
"""

import argparse
import json
import statistics
import sys
import time

import torch
import torch.ao.nn.quantized as nnq

# (name, batch, in channels, out channels, height, width, kernel, padding, groups)
CONV_SHAPES = [
    ("3x3_64to64_56x56", 1, 64, 64, 56, 56, 3, 1, 1),
    ("3x3_32to32_28x28", 1, 32, 32, 28, 28, 3, 1, 1),
    ("depthwise3x3_64_56x56", 1, 64, 64, 56, 56, 3, 1, 64),
]

# (name, M output features, K input features, N batch rows), as in BenchmarkGEMM.
GEMM_SHAPES = [
    ("256x256x256", 256, 256, 256),
    ("64x576x3136", 64, 576, 3136),
]


def time_call(fn, repeat):
    """Return the median wall seconds and the median process CPU seconds of
    repeat calls of fn, after 5 warm-up calls. On a machine shared with other
    processes the CPU time is the steadier of the two."""
    for _ in range(5):
        fn()
    wall, cpu = [], []
    for _ in range(repeat):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(wall), statistics.median(cpu)


def quantized_weight(weight):
    """Quantize a float weight per output channel, symmetric, to qint8."""
    scales = weight.abs().amax(dim=tuple(range(1, weight.dim()))).clamp(min=1e-8) / 127
    zero_points = torch.zeros(weight.shape[0], dtype=torch.int64)
    return torch.quantize_per_channel(weight, scales.double(), zero_points, 0, torch.qint8)


def conv_layers(batch, in_c, out_c, height, width, kernel, padding, groups):
    """Return the float32 and quantized conv and their inputs."""
    weight = torch.randn(out_c, in_c // groups, kernel, kernel)
    bias = torch.randn(out_c)

    fconv = torch.nn.Conv2d(in_c, out_c, kernel, padding=padding, groups=groups)
    with torch.no_grad():
        fconv.weight.copy_(weight)
        fconv.bias.copy_(bias)
    x = torch.rand(batch, in_c, height, width).contiguous(memory_format=torch.channels_last)

    qconv = nnq.Conv2d(in_c, out_c, kernel, padding=padding, groups=groups)
    qconv.set_weight_bias(quantized_weight(weight), bias)
    qconv.scale = 0.05
    qconv.zero_point = 128
    qx = torch.quantize_per_tensor(x, 1.0 / 255, 128, torch.quint8)
    return fconv, x, qconv, qx


def linear_layers(m, k, n):
    """Return the float32 and quantized linear layers and their inputs."""
    weight = torch.randn(m, k)
    bias = torch.randn(m)

    flinear = torch.nn.Linear(k, m)
    with torch.no_grad():
        flinear.weight.copy_(weight)
        flinear.bias.copy_(bias)
    x = torch.rand(n, k)

    qlinear = nnq.Linear(k, m)
    qlinear.set_weight_bias(quantized_weight(weight), bias)
    qlinear.scale = 0.05
    qlinear.zero_point = 128
    qx = torch.quantize_per_tensor(x, 1.0 / 255, 128, torch.quint8)
    return flinear, x, qlinear, qx


def measure(name, ops, float_layer, x, quantized_layer, qx, repeat):
    with torch.no_grad():
        int8_seconds, int8_cpu = time_call(lambda: quantized_layer(qx), repeat)
        float_seconds, float_cpu = time_call(lambda: float_layer(x), repeat)
    return {
        "shape": name,
        "int8_ms": int8_seconds * 1e3,
        "int8_gops": ops / int8_seconds / 1e9,
        "int8_cpu_gops": ops / int8_cpu / 1e9,
        "fp32_ms": float_seconds * 1e3,
        "fp32_gflops": ops / float_seconds / 1e9,
        "fp32_cpu_gflops": ops / float_cpu / 1e9,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=50, help="timed calls per layer (the median is reported)")
    parser.add_argument("--json", action="store_true", help="print one JSON object per shape instead of a table")
    args = parser.parse_args()

    if "onednn" not in torch.backends.quantized.supported_engines:
        sys.exit(f"onednn_conv.py: this PyTorch {torch.__version__} has no onednn quantized engine; "
                 f"supported: {torch.backends.quantized.supported_engines}")
    torch.backends.quantized.engine = "onednn"
    torch.set_num_threads(1)
    torch.manual_seed(0)

    results = []
    for name, batch, in_c, out_c, height, width, kernel, padding, groups in CONV_SHAPES:
        layers = conv_layers(batch, in_c, out_c, height, width, kernel, padding, groups)
        out_h = height + 2 * padding - kernel + 1
        out_w = width + 2 * padding - kernel + 1
        ops = 2 * batch * out_h * out_w * out_c * (in_c // groups) * kernel * kernel
        results.append(measure(name, ops, *layers, args.repeat))
    for name, m, k, n in GEMM_SHAPES:
        results.append(measure(name, 2 * m * k * n, *linear_layers(m, k, n), args.repeat))

    if args.json:
        for r in results:
            print(json.dumps(r))
        return
    print(f"torch {torch.__version__}, quantized engine {torch.backends.quantized.engine}, "
          f"threads {torch.get_num_threads()}")
    print(f"{'shape':24} {'int8 ms':>9} {'int8 GOPS':>10} {'int8 cpuGOPS':>13} {'fp32 ms':>9} {'fp32 GFLOPS':>12}")
    for r in results:
        print(f"{r['shape']:24} {r['int8_ms']:9.3f} {r['int8_gops']:10.1f} {r['int8_cpu_gops']:13.1f} "
              f"{r['fp32_ms']:9.3f} {r['fp32_gflops']:12.1f}")


if __name__ == "__main__":
    main()
