#!/usr/bin/python3
"""Check scripts/export_pytorch.py against an independent NumPy interpreter of the float model format.

The interpreter below implements the ops of docs/model-format.md from that document, in float64,
and runs exported models on the same inputs as PyTorch. Outputs must agree within 1e-4
(maximum absolute difference). The checks cover:

  * testdata/lenet-mnist: logits for the first 64 test images against expected_logits.npy,
    and the interpreter's accuracy on all 2000 test images in test_x.npy.
  * three synthetic models that testdata/synthetic/ stores: a depthwise conv block with
    batch norm and ReLU6, a residual block with bias-free convs and batch norm without
    affine parameters, and a block with concat, pooling, linear, BatchNorm1d and Hardtanh.
  * more small models for the functional and method forms the exporter accepts.
  * models the exporter must reject, with the error text each rejection must contain.

Usage:
    /usr/bin/python3 scripts/check_export.py                   # check, exit 1 on any failure
    /usr/bin/python3 scripts/check_export.py --write-synthetic # also rewrite testdata/synthetic/
"""

import argparse
import json
import os
import sys
import tempfile
import warnings

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

SCRIPTS = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(SCRIPTS)
sys.path.insert(0, SCRIPTS)
from export_pytorch import ExportError, export  # noqa: E402

TOLERANCE = 1e-4

# Interpreter of docs/model-format.md.

ALLOWED_ATTRS = {
    "conv2d": {"stride", "padding", "dilation", "groups", "activation", "act_min", "act_max"},
    "linear": {"activation", "act_min", "act_max"},
    "batchnorm": {"eps"},
    "relu": set(),
    "relu6": set(),
    "clip": {"min", "max"},
    "maxpool2d": {"kernel", "stride", "padding"},
    "avgpool2d": {"kernel", "stride", "padding", "count_include_pad"},
    "global_avgpool": set(),
    "add": {"activation", "act_min", "act_max"},
    "concat": {"axis"},
    "flatten": set(),
    "identity": set(),
    "dropout": {"p"},
}
REQUIRED_PARAMS = {
    "conv2d": {"weight"},
    "linear": {"weight"},
    "batchnorm": {"running_mean", "running_var"},
}
OPTIONAL_PARAMS = {
    "conv2d": {"bias"},
    "linear": {"bias"},
    "batchnorm": {"weight", "bias"},
}


class FormatError(ValueError):
    """A model JSON that breaks docs/model-format.md."""


def load_model(folder):
    """Read folder/model.json and the weights it names, and return (graph, {key: float64 array})."""
    with open(os.path.join(folder, "model.json")) as f:
        graph = json.load(f)
    if graph.get("format") != "qtool.float/1":
        raise FormatError(f"format is {graph.get('format')!r}, expected 'qtool.float/1'")
    weights_path = os.path.join(folder, graph.get("weights", "."))
    weights = {}
    if weights_path.endswith(".npz"):
        with np.load(weights_path, allow_pickle=False) as archive:
            for key in archive.files:
                weights[key] = archive[key].astype(np.float64)
    else:
        for filename in os.listdir(weights_path):
            if filename.endswith(".npy"):
                weights[filename[:-4]] = np.load(os.path.join(weights_path, filename)).astype(np.float64)
    return graph, weights


def preprocess(raw, spec, channels):
    """Apply an input's `preprocess` to raw data: (raw * scale - mean[c]) / std[c]."""
    scale = spec.get("scale", 1.0)
    mean = np.broadcast_to(np.asarray(spec.get("mean", [0.0]), dtype=np.float64), (channels,))
    std = np.broadcast_to(np.asarray(spec.get("std", [1.0]), dtype=np.float64), (channels,))
    view = (1, channels) + (1,) * (raw.ndim - 2)
    return (raw.astype(np.float64) * scale - mean.reshape(view)) / std.reshape(view)


def run_model(graph, weights, data):
    """Run the graph on `data` (one array per graph input, in order) and return its outputs.

    uint8 data goes through the input's preprocess, and float data is used as it is.
    """
    tensors = {}
    for spec, raw in zip(graph["inputs"], data):
        if raw.dtype == np.uint8:
            tensors[spec["name"]] = preprocess(raw, spec.get("preprocess", {}), raw.shape[1])
        else:
            tensors[spec["name"]] = raw.astype(np.float64)
    for node in graph["nodes"]:
        name, op = node["name"], node["op"]
        if name in tensors:
            raise FormatError(f"duplicate tensor name {name}")
        if op not in ALLOWED_ATTRS:
            raise FormatError(f"node {name}: unknown op {op!r}")
        attrs = node.get("attrs", {})
        unknown = set(attrs) - ALLOWED_ATTRS[op]
        if unknown:
            raise FormatError(f"node {name}: unknown attrs {sorted(unknown)} for {op}")
        params = node.get("params", {})
        names = set(params)
        missing = REQUIRED_PARAMS.get(op, set()) - names
        extra = names - REQUIRED_PARAMS.get(op, set()) - OPTIONAL_PARAMS.get(op, set())
        if missing or extra:
            raise FormatError(f"node {name}: params missing {sorted(missing)}, unknown {sorted(extra)}")
        for key in params.values():
            if key not in weights:
                raise FormatError(f"node {name}: parameter {key} not found in the weights")
        for input_name in node["inputs"]:
            if input_name not in tensors:
                raise FormatError(f"node {name}: input {input_name} names no earlier tensor")
        inputs = [tensors[n] for n in node["inputs"]]
        values = {role: weights[key] for role, key in params.items()}
        result = OPS[op](inputs, attrs, values)
        tensors[name] = apply_activation(result, attrs)
    return [tensors[name] for name in graph["outputs"]]


def apply_activation(x, attrs):
    activation = attrs.get("activation")
    if activation is None:
        return x
    if activation == "relu":
        return np.maximum(x, 0)
    if activation == "relu6":
        return np.clip(x, 0, 6)
    if activation == "clip":
        return np.clip(x, attrs["act_min"], attrs["act_max"])
    raise FormatError(f"unknown activation {activation!r}")


def padding4(attrs):
    padding = attrs.get("padding", [0, 0, 0, 0])
    if len(padding) == 2:
        return [padding[0], padding[1], padding[0], padding[1]]
    if len(padding) != 4:
        raise FormatError(f"padding {padding} must have 2 or 4 values")
    return list(padding)


def pad_nchw(x, padding, value):
    top, left, bottom, right = padding
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), constant_values=value)


def windows(x, kernel, stride, dilation=(1, 1)):
    """Return the sliding windows of padded x as [N, C, H', W', kh, kw]."""
    kh, kw = kernel
    dh, dw = dilation
    span_h, span_w = dh * (kh - 1) + 1, dw * (kw - 1) + 1
    view = np.lib.stride_tricks.sliding_window_view(x, (span_h, span_w), axis=(2, 3))
    return view[:, :, ::stride[0], ::stride[1], ::dh, ::dw]


def op_conv2d(inputs, attrs, params):
    (x,) = inputs
    weight = params["weight"]
    groups = attrs.get("groups", 1)
    stride = attrs.get("stride", [1, 1])
    dilation = attrs.get("dilation", [1, 1])
    out_channels, group_channels, kh, kw = weight.shape
    if x.shape[1] != group_channels * groups or out_channels % groups:
        raise FormatError(f"conv weight {weight.shape} does not fit input {x.shape} with groups={groups}")
    padded = pad_nchw(x, padding4(attrs), 0.0)
    out_per_group = out_channels // groups
    outputs = []
    for g in range(groups):
        patches = windows(padded[:, g * group_channels:(g + 1) * group_channels], (kh, kw), stride, dilation)
        w = weight[g * out_per_group:(g + 1) * out_per_group]
        outputs.append(np.einsum("nchwij,ocij->nohw", patches, w, optimize=True))
    y = np.concatenate(outputs, axis=1)
    if "bias" in params:
        y = y + params["bias"].reshape(1, -1, 1, 1)
    return y


def op_linear(inputs, attrs, params):
    (x,) = inputs
    y = x @ params["weight"].T
    if "bias" in params:
        y = y + params["bias"]
    return y


def op_batchnorm(inputs, attrs, params):
    (x,) = inputs
    view = (1, -1) + (1,) * (x.ndim - 2)
    y = (x - params["running_mean"].reshape(view)) / np.sqrt(params["running_var"].reshape(view) + attrs.get("eps", 1e-5))
    if "weight" in params:
        y = y * params["weight"].reshape(view) + params["bias"].reshape(view)
    return y


def op_clip(inputs, attrs, params):
    low, high = attrs["min"], attrs["max"]
    if not low < high:
        raise FormatError(f"clip needs min < max, got {low}, {high}")
    return np.clip(inputs[0], low, high)


def op_maxpool2d(inputs, attrs, params):
    kernel = attrs["kernel"]
    stride = attrs.get("stride", kernel)
    padded = pad_nchw(inputs[0], padding4(attrs), -np.inf)
    return windows(padded, kernel, stride).max(axis=(4, 5))


def op_avgpool2d(inputs, attrs, params):
    (x,) = inputs
    kernel = attrs["kernel"]
    stride = attrs.get("stride", kernel)
    padding = padding4(attrs)
    sums = windows(pad_nchw(x, padding, 0.0), kernel, stride).sum(axis=(4, 5))
    if attrs.get("count_include_pad", True):
        return sums / (kernel[0] * kernel[1])
    ones = np.ones((1, 1) + x.shape[2:])
    counts = windows(pad_nchw(ones, padding, 0.0), kernel, stride).sum(axis=(4, 5))
    return sums / counts


def op_concat(inputs, attrs, params):
    if attrs.get("axis", 1) != 1:
        raise FormatError(f"concat axis {attrs['axis']} is not supported")
    return np.concatenate(inputs, axis=1)


def op_add(inputs, attrs, params):
    a, b = inputs
    if a.shape != b.shape:
        raise FormatError(f"add of shapes {a.shape} and {b.shape}")
    return a + b


OPS = {
    "conv2d": op_conv2d,
    "linear": op_linear,
    "batchnorm": op_batchnorm,
    "relu": lambda inputs, attrs, params: np.maximum(inputs[0], 0),
    "relu6": lambda inputs, attrs, params: np.clip(inputs[0], 0, 6),
    "clip": op_clip,
    "maxpool2d": op_maxpool2d,
    "avgpool2d": op_avgpool2d,
    "global_avgpool": lambda inputs, attrs, params: inputs[0].mean(axis=(2, 3), keepdims=True),
    "add": op_add,
    "concat": op_concat,
    "flatten": lambda inputs, attrs, params: inputs[0].reshape(inputs[0].shape[0], -1),
    "identity": lambda inputs, attrs, params: inputs[0],
    "dropout": lambda inputs, attrs, params: inputs[0],
}

# Synthetic models, small enough to keep as Go test fixtures.


class DwConvBnRelu6(nn.Module):
    """MobileNet-style block: depthwise 3x3 conv with channel multiplier 2, then a 1x1 conv."""

    def __init__(self):
        super().__init__()
        self.dw = nn.Conv2d(3, 6, 3, stride=2, padding=1, groups=3)
        self.dw_bn = nn.BatchNorm2d(6)
        self.dw_relu = nn.ReLU6(inplace=True)
        self.pw = nn.Conv2d(6, 8, 1)
        self.pw_bn = nn.BatchNorm2d(8)
        self.pw_relu = nn.ReLU6()

    def forward(self, x):
        x = self.dw_relu(self.dw_bn(self.dw(x)))
        return self.pw_relu(self.pw_bn(self.pw(x)))


class ResidualBnNoAffine(nn.Module):
    """Residual block with bias-free convs and batch norm without gamma and beta.

    The second conv has an even kernel with padding='same', which PyTorch pads by 0 at the
    top and left and by 1 at the bottom and right.
    """

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 4, 3, padding=1)
        self.conv1 = nn.Conv2d(4, 4, 3, padding=(1, 1), bias=False)
        self.bn1 = nn.BatchNorm2d(4, affine=False)
        self.conv2 = nn.Conv2d(4, 4, 2, padding="same", bias=False)
        self.bn2 = nn.BatchNorm2d(4, affine=False)

    def forward(self, x):
        x = self.stem(x)
        identity = x
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        out += identity
        return torch.relu(out)


class ConcatPoolBn1d(nn.Module):
    """Two conv branches joined by torch.cat, pooled, then a linear head with BatchNorm1d and Hardtanh."""

    def __init__(self):
        super().__init__()
        self.branch1 = nn.Conv2d(3, 4, 1)
        self.branch3 = nn.Conv2d(3, 4, 3, padding=1)
        self.pool = nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False)
        self.gap = nn.AdaptiveAvgPool2d((1, 1))
        self.fc1 = nn.Linear(8, 16)
        self.bn = nn.BatchNorm1d(16)
        self.act = nn.Hardtanh(-0.5, 0.5)
        self.fc2 = nn.Linear(16, 5)

    def forward(self, x):
        x = torch.cat([F.relu(self.branch1(x)), F.relu(self.branch3(x))], dim=1)
        x = self.gap(self.pool(x))
        x = x.view(x.size(0), -1)
        return self.fc2(self.act(self.bn(self.fc1(x))))


# Model class and standard deviation of its random input. The depthwise block gets a wider
# input so that some of its outputs reach ReLU6's upper bound of 6.
SYNTHETIC = {
    "dwconv-bn-relu6": (DwConvBnRelu6, 4.0),
    "residual-bn-noaffine": (ResidualBnNoAffine, 1.0),
    "concat-pool-bn1d": (ConcatPoolBn1d, 1.0),
}

# Models for the functional and method forms, checked in a temporary folder only.


class FunctionalForms(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, (3, 1), stride=(1, 2), padding=(1, 0), dilation=(2, 1))
        self.shared = nn.Conv2d(4, 4, 1)
        self.drop = nn.Dropout(0.3)
        self.ident = nn.Identity()

    def forward(self, x):
        x = self.conv(x)
        x = torch.clamp(x, -0.2, 0.9)
        x = self.shared(x)
        x = self.shared(x)  # the same module twice gets two uniquely named nodes
        x = F.max_pool2d(x, 3, stride=1, padding=1)
        x = F.avg_pool2d(x, 2)
        x = torch.add(x, F.hardtanh(x))
        x = x.add(F.relu6(x)).clamp(min=0)
        x = self.ident(self.drop(x))
        y = F.adaptive_avg_pool2d(x, 1)
        a = x.reshape(x.shape[0], -1)
        b = torch.flatten(y, 1)
        c = x.flatten(1)
        d = x.view(-1, 24)  # 24 = C*H*W for the [2,3,9,10] input that check_variants uses
        return F.dropout(a + c + d, 0.1, self.training), b


class SameDilated(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 2, (4, 3), dilation=(1, 2), padding="same")
        self.flat = nn.Flatten()

    def forward(self, x):
        return self.flat(F.relu(self.conv(x), inplace=True))


class BasicBlock(nn.Module):
    """ResNet basic block as torchvision writes it: one in-place ReLU module called twice and +=."""

    def __init__(self, in_channels, out_channels, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels))

    def forward(self, x):
        identity = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        if self.downsample is not None:
            identity = self.downsample(x)
        out += identity
        return self.relu(out)


class TinyResNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 8, 7, 2, 3, bias=False), nn.BatchNorm2d(8), nn.ReLU(inplace=True), nn.MaxPool2d(3, 2, 1))
        self.layer1 = nn.Sequential(BasicBlock(8, 8, 1), BasicBlock(8, 16, 2))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.avgpool(self.layer1(self.stem(x)))
        return self.fc(torch.flatten(x, 1))


VARIANTS = {
    "functional-forms": FunctionalForms,
    "same-dilated": SameDilated,
    "tiny-resnet": TinyResNet,
}

# Models the exporter must reject, with a fragment the error must contain.


class Wrap(nn.Module):
    def __init__(self, body):
        super().__init__()
        self.body = body

    def forward(self, x):
        return self.body(x)


class Sigmoid(nn.Module):
    def forward(self, x):
        return torch.sigmoid(x)


class ScalarAdd(nn.Module):
    def forward(self, x):
        return x + 1


class LiteralBatchView(nn.Module):
    def forward(self, x):
        return x.view(4, -1)


class CatDim2(nn.Module):
    def forward(self, x):
        return torch.cat([x, x], dim=2)


class InplaceReadAfter(nn.Module):
    def forward(self, x):
        y = F.relu(x, inplace=True)
        return y + x


class DropoutTraining(nn.Module):
    def forward(self, x):
        return F.dropout(x, 0.5)


REJECTED = {
    "maxpool-ceil-mode": (lambda: Wrap(nn.MaxPool2d(2, ceil_mode=True)), "ceil_mode=True"),
    "maxpool-dilation": (lambda: Wrap(nn.MaxPool2d(2, dilation=2)), "dilation=2"),
    "avgpool-ceil-mode": (lambda: Wrap(nn.AvgPool2d(2, ceil_mode=True)), "ceil_mode=True"),
    "bn-no-running-stats": (lambda: Wrap(nn.BatchNorm2d(3, track_running_stats=False)), "track_running_stats=False"),
    "conv-reflect-padding": (lambda: Wrap(nn.Conv2d(3, 3, 3, padding=1, padding_mode="reflect")), "padding_mode='reflect'"),
    "unsupported-module": (lambda: Wrap(nn.Sigmoid()), "unsupported module body"),
    "unsupported-function": (Sigmoid, "unsupported function torch.sigmoid"),
    "adaptive-pool-2x2": (lambda: Wrap(nn.AdaptiveAvgPool2d(2)), "adaptive average pooling to 2"),
    "scalar-add": (ScalarAdd, "adding the constant 1"),
    "literal-batch-view": (LiteralBatchView, "Only flattening"),
    "cat-dim-2": (CatDim2, "only dim=1"),
    "inplace-read-after": (InplaceReadAfter, "reads afterwards"),
    "dropout-training": (DropoutTraining, "training=True"),
}


def randomize_batchnorm(model, generator):
    """Give every batch norm non-trivial statistics and affine parameters, as a trained model has."""
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                size = module.num_features
                module.running_mean.copy_(torch.randn(size, generator=generator) * 0.5)
                module.running_var.copy_(torch.rand(size, generator=generator) * 1.5 + 0.25)
                if module.affine:
                    module.weight.copy_(torch.rand(size, generator=generator) * 2.5 + 0.5)
                    module.bias.copy_(torch.randn(size, generator=generator) + 1.0)


def build(model_class, seed):
    torch.manual_seed(seed)
    model = model_class()
    randomize_batchnorm(model, torch.Generator().manual_seed(seed + 1))
    return model.eval()


def compare(label, actual, expected):
    """Return True when `actual` matches `expected` within TOLERANCE, printing the result."""
    if actual.shape != expected.shape:
        print(f"FAIL {label}: shape {actual.shape}, expected {expected.shape}")
        return False
    difference = float(np.max(np.abs(actual - expected)))
    ok = difference <= TOLERANCE
    print(f"{'ok  ' if ok else 'FAIL'} {label}: max abs difference {difference:.2e}")
    return ok


def torch_outputs(model, x):
    with torch.no_grad():
        result = model(torch.from_numpy(x))
    results = result if isinstance(result, tuple) else (result,)
    return [r.numpy() for r in results]


def check_model(label, model, x, folder):
    """Export `model` to `folder`, run the JSON on `x` and compare with PyTorch's outputs."""
    export(model, x.shape, folder, name=label)
    graph, weights = load_model(folder)
    actual = run_model(graph, weights, [x])
    expected = torch_outputs(model, x)
    if len(actual) != len(expected):
        print(f"FAIL {label}: {len(actual)} outputs, expected {len(expected)}")
        return False
    return all(compare(f"{label} output {i}", a, e) for i, (a, e) in enumerate(zip(actual, expected)))


def check_synthetic(write):
    ok = True
    for seed, (label, (model_class, input_std)) in enumerate(SYNTHETIC.items()):
        model = build(model_class, seed)
        x = (np.random.default_rng(seed).standard_normal((4, 3, 8, 8)) * input_std).astype(np.float32)
        folder = os.path.join(REPO, "testdata", "synthetic", label)
        if write:
            ok &= check_model(label, model, x, folder)
            np.save(os.path.join(folder, "input.npy"), x)
            np.save(os.path.join(folder, "expected.npy"), torch_outputs(model, x)[0].astype(np.float32))
        else:
            with tempfile.TemporaryDirectory() as tmp:
                ok &= check_model(label, model, x, tmp)
        if not os.path.exists(os.path.join(folder, "model.json")):
            print(f"FAIL {label}: {folder} not found. Run with --write-synthetic")
            ok = False
            continue
        graph, weights = load_model(folder)
        stored_input = np.load(os.path.join(folder, "input.npy"))
        stored_expected = np.load(os.path.join(folder, "expected.npy"))
        (actual,) = run_model(graph, weights, [stored_input])
        ok &= compare(f"{label} stored fixture", actual, stored_expected)
    return ok


def check_variants():
    ok = True
    for seed, (label, model_class) in enumerate(VARIANTS.items()):
        model = build(model_class, 100 + seed)
        x = np.random.default_rng(100 + seed).standard_normal((2, 3, 9, 10)).astype(np.float32)
        with tempfile.TemporaryDirectory() as tmp:
            ok &= check_model(label, model, x, tmp)
    return ok


def check_rejections():
    ok = True
    for label, (make_model, fragment) in REJECTED.items():
        model = make_model().eval()
        with tempfile.TemporaryDirectory() as tmp:
            try:
                export(model, (2, 3, 8, 8), tmp)
            except ExportError as e:
                if fragment in str(e):
                    print(f"ok   {label}: rejected: {e}")
                else:
                    print(f"FAIL {label}: error {str(e)!r} does not contain {fragment!r}")
                    ok = False
                continue
        print(f"FAIL {label}: export succeeded, expected an error containing {fragment!r}")
        ok = False
    return ok


def check_lenet():
    folder = os.path.join(REPO, "testdata", "lenet-mnist")
    graph, weights = load_model(folder)
    test_x = np.load(os.path.join(folder, "test_x.npy"))
    test_y = np.load(os.path.join(folder, "test_y.npy"))
    expected = np.load(os.path.join(folder, "expected_logits.npy"))
    (logits,) = run_model(graph, weights, [test_x[:len(expected)]])
    ok = compare("lenet-mnist logits", logits, expected)
    correct = 0
    for start in range(0, len(test_x), 500):
        (batch_logits,) = run_model(graph, weights, [test_x[start:start + 500]])
        correct += int((batch_logits.argmax(axis=1) == test_y[start:start + 500]).sum())
    print(f"     lenet-mnist: interpreter accuracy {correct / len(test_x):.4f} on {len(test_x)} test images")
    return ok


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--write-synthetic", action="store_true",
                        help="rewrite testdata/synthetic/*/ from the seeded models before checking them")
    args = parser.parse_args()
    torch.set_num_threads(1)
    # ResidualBnNoAffine uses an even kernel with padding='same' on purpose.
    warnings.filterwarnings("ignore", message="Using padding='same' with even kernel lengths")

    ok = check_lenet()
    ok &= check_synthetic(args.write_synthetic)
    ok &= check_variants()
    ok &= check_rejections()
    print("all checks passed" if ok else "some checks FAILED")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
