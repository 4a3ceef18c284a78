#!/usr/bin/python3
"""Export a PyTorch CNN to qtool's float model format (model.json + weights.npz).

The format is specified in docs/model-format.md. The exporter traces the model with
torch.fx in eval mode and maps each traced call to one node of the format:

    nn.Conv2d                                    -> conv2d
    nn.Linear                                    -> linear
    nn.BatchNorm2d, nn.BatchNorm1d               -> batchnorm
    nn.ReLU, F.relu, torch.relu, Tensor.relu     -> relu
    nn.ReLU6, F.relu6                            -> relu6
    nn.Hardtanh, F.hardtanh, torch.clamp/clip    -> clip (clamp(min=0) alone -> relu)
    nn.MaxPool2d, F.max_pool2d                   -> maxpool2d
    nn.AvgPool2d, F.avg_pool2d                   -> avgpool2d
    nn.AdaptiveAvgPool2d(1), F.adaptive_avg_pool2d(x, 1) -> global_avgpool
    nn.Flatten, torch.flatten(x, 1), x.view(x.size(0), -1), x.reshape(N, -1) -> flatten
    +, +=, torch.add, Tensor.add                 -> add
    torch.cat(..., dim=1)                        -> concat
    nn.Dropout, nn.Dropout2d, F.dropout          -> dropout
    nn.Identity                                  -> identity

Any other module, function or method raises ExportError naming it and the traced node.
The model must have one tensor input. Its batch dimension is written as -1.

Python use:

    from export_pytorch import export
    export(model, (1, 3, 32, 32), "out/mymodel",
           preprocess={"scale": 1 / 255, "mean": [0.485, 0.456, 0.406],
                       "std": [0.229, 0.224, 0.225]})

Command line, with a factory function or class that builds the model and a state dict
saved with torch.save(model.state_dict(), path):

    python3 scripts/export_pytorch.py --module mypkg.models:make_model \\
        --state-dict ckpt.pt --input-shape 1,3,224,224 -o out/mymodel \\
        --scale 0.00392156862745098 --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225

The output folder gets model.json and weights.npz. weights.npz contains, as float32, the
state_dict entries that the nodes reference, under their state_dict keys.
"""

import argparse
import importlib
import json
import math
import operator
import os
import sys

import numpy as np
import torch
import torch.fx
import torch.nn as nn
import torch.nn.functional as F
from torch.fx.passes.shape_prop import ShapeProp

FORMAT = "qtool.float/1"
MODEL_FILE = "model.json"
WEIGHTS_FILE = "weights.npz"


class ExportError(ValueError):
    """A model that the float model format cannot express."""


def export(model, example_input_shape, out_dir, input_name="input", preprocess=None, name=None):
    """Write model.json and weights.npz for `model` into `out_dir` and return the JSON as a dict.

    `example_input_shape` is the full input shape including a batch size, such as
    (1, 3, 224, 224). Only its non-batch dimensions are written. `preprocess` is the
    input's preprocessing as docs/model-format.md defines it: a dict with optional keys
    `scale`, `mean` and `std`. The model is switched to eval mode and stays in it.
    Raises ExportError when the model uses something the format cannot express.
    """
    graph, weights = convert(model, example_input_shape, input_name, preprocess, name)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, MODEL_FILE), "w") as f:
        f.write(format_model_json(graph))
    np.savez(os.path.join(out_dir, WEIGHTS_FILE), **weights)
    return graph


def convert(model, example_input_shape, input_name="input", preprocess=None, name=None):
    """Trace `model` and return the model JSON as a dict and its weights as {key: float32 array}."""
    shape = [int(d) for d in example_input_shape]
    if len(shape) not in (2, 4) or any(d <= 0 for d in shape):
        raise ExportError(
            f"invalid example input shape {shape}: expected 4 positive dims (N,C,H,W) or 2 (N,C)")
    model.eval()
    try:
        traced = torch.fx.symbolic_trace(model)
    except Exception as e:
        raise ExportError(
            f"torch.fx could not trace {type(model).__name__}: {e}. "
            "Data-dependent control flow in forward() cannot be traced.") from e
    converter = _Converter(traced, shape, input_name)
    nodes, outputs = converter.run()
    model_input = {"name": input_name, "shape": [-1] + shape[1:]}
    if preprocess is not None:
        model_input["preprocess"] = _check_preprocess(preprocess, shape[1])
    graph = {"format": FORMAT}
    if name:
        graph["name"] = name
    graph["weights"] = WEIGHTS_FILE
    graph["inputs"] = [model_input]
    graph["outputs"] = outputs
    graph["nodes"] = nodes
    return graph, converter.weights


def format_model_json(graph):
    """Return the model JSON as text with one line per node, so diffs show changed nodes."""
    lines = ["{"]
    items = list(graph.items())
    for i, (key, value) in enumerate(items):
        comma = "," if i < len(items) - 1 else ""
        if key in ("inputs", "nodes") and value:
            lines.append(f"  {json.dumps(key)}: [")
            for j, entry in enumerate(value):
                entry_comma = "," if j < len(value) - 1 else ""
                lines.append(f"    {json.dumps(entry)}{entry_comma}")
            lines.append(f"  ]{comma}")
        else:
            lines.append(f"  {json.dumps(key)}: {json.dumps(value)}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _check_preprocess(preprocess, channels):
    unknown = set(preprocess) - {"scale", "mean", "std"}
    if unknown:
        raise ExportError(f"invalid preprocess keys {sorted(unknown)}: expected scale, mean, std")
    checked = {}
    if "scale" in preprocess:
        checked["scale"] = float(preprocess["scale"])
    for key in ("mean", "std"):
        if key in preprocess:
            value = preprocess[key]
            values = [float(v) for v in value] if isinstance(value, (list, tuple)) else [float(value)]
            if len(values) not in (1, channels):
                raise ExportError(
                    f"invalid preprocess {key} {values}: expected 1 value or {channels}, one per input channel")
            if key == "std" and any(v == 0 for v in values):
                raise ExportError(f"invalid preprocess std {values}: values must be non-zero")
            checked[key] = values
    return checked


def _pair(value, description):
    if isinstance(value, int):
        return [value, value]
    if isinstance(value, (tuple, list)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return [int(value[0]), int(value[1])]
    raise ExportError(f"invalid {description} {value!r}: expected an int or a pair of ints")


def _padding4(value, description):
    """Return PyTorch's symmetric padding as [top, left, bottom, right]."""
    ph, pw = _pair(value, description)
    return [ph, pw, ph, pw]


def _bind(node, names, defaults):
    """Map a call's positional and keyword arguments to `names`, filling `defaults`."""
    args = list(node.args)
    if len(args) > len(names):
        raise ExportError(f"node {node.name}: too many arguments for {_describe_target(node)}")
    bound = dict(defaults)
    bound.update(zip(names, args))
    for key, value in node.kwargs.items():
        if key not in names:
            raise ExportError(f"node {node.name}: unsupported argument {key}= for {_describe_target(node)}")
        bound[key] = value
    missing = [n for n in names if n not in bound]
    if missing:
        raise ExportError(f"node {node.name}: missing argument {missing[0]} for {_describe_target(node)}")
    return bound


def _describe_target(node):
    if node.op == "call_module":
        return f"module {node.target}"
    if node.op == "call_method":
        return f"Tensor.{node.target}"
    target = node.target
    module = getattr(target, "__module__", None) or ""
    qualname = getattr(target, "__qualname__", None) or getattr(target, "__name__", None) or repr(target)
    if qualname.startswith("_VariableFunctionsClass."):
        # Built-in torch functions such as torch.cat report this internal class as their owner.
        return f"function torch.{target.__name__}"
    if module in ("", "builtins", "_operator"):
        return f"function {qualname}"
    return f"function {module}.{qualname}"


# Tensor methods that change their tensor in place.
_INPLACE_METHODS = {"relu_", "add_", "clamp_", "clip_"}


class _Converter:
    """Translate one traced graph into the nodes of the float model format."""

    def __init__(self, traced, input_shape, input_name):
        self.traced = traced
        self.modules = dict(traced.named_modules())
        self.state_dict = traced.state_dict()
        self.input_shape = input_shape
        self.input_name = input_name
        self.weights = {}
        self.tensor_names = {}  # fx node -> name of the tensor in the model JSON
        self.batch_size_nodes = set()  # fx nodes that compute x.size(0) or x.shape[0]
        self.shape_nodes = set()  # fx nodes that compute x.size() or x.shape
        self.used_names = {input_name}
        self.nodes = []

    def run(self):
        graph = self.traced.graph
        try:
            ShapeProp(self.traced).propagate(torch.randn(*self.input_shape))
        except Exception as e:
            raise ExportError(
                f"running the traced model on an input of shape {self.input_shape} failed: {e}") from e
        self._check_inplace(graph)

        placeholders = [n for n in graph.nodes if n.op == "placeholder"]
        if len(placeholders) != 1:
            names = [n.name for n in placeholders]
            raise ExportError(f"model has {len(placeholders)} inputs {names}: expected exactly one tensor input")
        self.tensor_names[placeholders[0]] = self.input_name

        needed = self._needed_nodes(graph)
        outputs = None
        for node in graph.nodes:
            if node.op == "placeholder":
                continue
            if node.op == "output":
                outputs = self._outputs(node)
                continue
            if node not in needed:
                continue
            if node.op == "get_attr":
                raise ExportError(
                    f"node {node.name}: direct use of parameter or buffer {node.target} is not supported. "
                    "Use it through a module such as nn.Conv2d or nn.Linear")
            self._convert(node)
        return self.nodes, outputs

    def _needed_nodes(self, graph):
        """Return the nodes that the graph's outputs depend on."""
        output = next(n for n in graph.nodes if n.op == "output")
        needed = set()
        stack = [output]
        while stack:
            node = stack.pop()
            for arg in node.all_input_nodes:
                if arg not in needed:
                    needed.add(arg)
                    stack.append(arg)
        return needed

    def _check_inplace(self, graph):
        """Reject in-place calls whose input is read afterwards.

        torch.fx records an in-place call as a new value, so a later read of the original
        variable would miss the change and the export would compute something else.
        """
        order = {node: i for i, node in enumerate(graph.nodes)}
        for node in graph.nodes:
            if not self._is_inplace(node) or not node.args:
                continue
            source = node.args[0]
            if not isinstance(source, torch.fx.Node):
                continue
            for user in source.users:
                if user is not node and order[user] > order[node]:
                    raise ExportError(
                        f"node {node.name}: in-place {_describe_target(node)} changes {source.name}, "
                        f"which node {user.name} reads afterwards, but torch.fx cannot follow that change. "
                        "Assign the result (x = relu(x)) or use the out-of-place form.")

    def _is_inplace(self, node):
        if node.op == "call_module":
            return bool(getattr(self.modules[node.target], "inplace", False))
        if node.op == "call_method":
            return node.target in _INPLACE_METHODS
        if node.op == "call_function":
            return bool(node.kwargs.get("inplace", False)) or node.target in (F.relu_, torch.relu_, operator.iadd)
        return False

    def _outputs(self, node):
        result = node.args[0]
        values = list(result) if isinstance(result, (tuple, list)) else [result]
        names = []
        for value in values:
            if not isinstance(value, torch.fx.Node) or value not in self.tensor_names:
                raise ExportError(
                    f"model output {value!r} is not a tensor. Outputs must be a tensor or a tuple or list of tensors")
            names.append(self.tensor_names[value])
        return names

    # Helpers used by the op handlers.

    def _shape(self, node):
        if not isinstance(node, torch.fx.Node):
            raise ExportError(f"expected a tensor computed by the graph, got the constant {node!r}")
        meta = node.meta.get("tensor_meta")
        if meta is None or not hasattr(meta, "shape"):
            raise ExportError(f"node {node.name}: value is not a single tensor")
        return list(meta.shape)

    def _tensor(self, node, value):
        if not isinstance(value, torch.fx.Node):
            raise ExportError(
                f"node {node.name}: {_describe_target(node)} gets the constant {value!r} "
                "where the format expects a tensor computed by the graph")
        if value not in self.tensor_names:
            raise ExportError(
                f"node {node.name}: input {value.name} is not a tensor the format can express")
        return self.tensor_names[value]

    def _new_name(self, preferred):
        name = preferred
        suffix = 1
        while name in self.used_names:
            name = f"{preferred}_{suffix}"
            suffix += 1
        self.used_names.add(name)
        return name

    def _param(self, key):
        if key not in self.state_dict:
            raise ExportError(f"parameter {key} is not in the model's state_dict")
        value = self.state_dict[key].detach().cpu().numpy().astype(np.float32)
        if not np.all(np.isfinite(value)):
            raise ExportError(f"parameter {key} contains NaN or Inf")
        self.weights[key] = value
        return key

    def _emit(self, node, op, inputs, attrs=None, params=None, preferred=None):
        name = self._new_name(preferred or node.name)
        entry = {"name": name, "op": op, "inputs": inputs}
        if attrs:
            entry["attrs"] = attrs
        if params:
            entry["params"] = params
        self.nodes.append(entry)
        self.tensor_names[node] = name
        return name

    def _require_rank(self, node, value, ranks):
        shape = self._shape(value)
        if len(shape) not in ranks:
            expected = " or ".join(str(r) for r in ranks)
            raise ExportError(
                f"node {node.name}: {_describe_target(node)} gets a tensor of shape {shape}, but "
                f"the format supports rank {expected} here")
        return shape

    # Dispatch.

    def _convert(self, node):
        if node.op == "call_module":
            module = self.modules[node.target]
            handler = _MODULE_HANDLERS.get(type(module))
            if handler is None:
                raise ExportError(
                    f"node {node.name}: unsupported module {node.target} of type "
                    f"{type(module).__module__}.{type(module).__name__}")
            handler(self, node, module)
        elif node.op == "call_function":
            if self._convert_shape_query(node):
                return
            handler = _FUNCTION_HANDLERS.get(node.target)
            if handler is None:
                raise ExportError(f"node {node.name}: unsupported {_describe_target(node)}")
            handler(self, node)
        elif node.op == "call_method":
            if self._convert_shape_query(node):
                return
            handler = _METHOD_HANDLERS.get(node.target)
            if handler is None:
                raise ExportError(f"node {node.name}: unsupported method Tensor.{node.target}")
            handler(self, node)
        else:
            raise ExportError(f"node {node.name}: unsupported fx operation {node.op}")

    def _convert_shape_query(self, node):
        """Record x.size(), x.shape, x.size(0) and x.shape[0] for later flatten calls, and return whether `node` is one."""
        if node.op == "call_method" and node.target == "size":
            if len(node.args) == 1 and not node.kwargs:
                self.shape_nodes.add(node)
                return True
            dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
            if dim == 0:
                self.batch_size_nodes.add(node)
                return True
            raise ExportError(f"node {node.name}: only x.size(0) is supported, got x.size({dim!r})")
        if node.op == "call_function" and node.target is getattr and node.args[1] == "shape":
            self.shape_nodes.add(node)
            return True
        if node.op == "call_function" and node.target is operator.getitem and node.args[0] in self.shape_nodes:
            if node.args[1] == 0:
                self.batch_size_nodes.add(node)
                return True
            raise ExportError(f"node {node.name}: only the batch size x.shape[0] is supported, got index {node.args[1]!r}")
        return False

    # Module handlers.

    def conv2d(self, node, m):
        self._require_rank(node, node.args[0], (4,))
        if m.padding_mode != "zeros":
            raise ExportError(f"node {node.name}: conv {node.target} has padding_mode={m.padding_mode!r}, but only 'zeros' is supported")
        kh, kw = m.kernel_size
        dh, dw = m.dilation
        if m.padding == "valid":
            padding = [0, 0, 0, 0]
        elif m.padding == "same":
            # PyTorch puts the smaller half of an odd total padding at the top and left.
            total_h, total_w = dh * (kh - 1), dw * (kw - 1)
            padding = [total_h // 2, total_w // 2, total_h - total_h // 2, total_w - total_w // 2]
        else:
            padding = _padding4(tuple(m.padding), "conv padding")
        attrs = {"stride": list(m.stride), "padding": padding, "dilation": [dh, dw], "groups": m.groups}
        params = {"weight": self._param(f"{node.target}.weight")}
        if m.bias is not None:
            params["bias"] = self._param(f"{node.target}.bias")
        self._emit(node, "conv2d", [self._tensor(node, node.args[0])], attrs, params, preferred=node.target)

    def linear(self, node, m):
        self._require_rank(node, node.args[0], (2,))
        params = {"weight": self._param(f"{node.target}.weight")}
        if m.bias is not None:
            params["bias"] = self._param(f"{node.target}.bias")
        self._emit(node, "linear", [self._tensor(node, node.args[0])], None, params, preferred=node.target)

    def batchnorm(self, node, m):
        ranks = (4,) if isinstance(m, nn.BatchNorm2d) else (2,)
        self._require_rank(node, node.args[0], ranks)
        if m.running_mean is None or m.running_var is None:
            raise ExportError(
                f"node {node.name}: batch norm {node.target} has track_running_stats=False, so it "
                "normalizes with each batch's statistics. The format needs running_mean and running_var")
        params = {}
        if m.affine:
            params["weight"] = self._param(f"{node.target}.weight")
            params["bias"] = self._param(f"{node.target}.bias")
        params["running_mean"] = self._param(f"{node.target}.running_mean")
        params["running_var"] = self._param(f"{node.target}.running_var")
        attrs = {"eps": float(m.eps)}
        self._emit(node, "batchnorm", [self._tensor(node, node.args[0])], attrs, params, preferred=node.target)

    def relu_module(self, node, m):
        self._emit(node, "relu", [self._tensor(node, node.args[0])], preferred=node.target)

    def relu6_module(self, node, m):
        self._emit(node, "relu6", [self._tensor(node, node.args[0])], preferred=node.target)

    def hardtanh_module(self, node, m):
        self._emit_clip(node, node.args[0], m.min_val, m.max_val, preferred=node.target)

    def maxpool_module(self, node, m):
        self._emit_maxpool(node, node.args[0], m.kernel_size, m.stride, m.padding, m.dilation,
                           m.ceil_mode, m.return_indices, preferred=node.target)

    def avgpool_module(self, node, m):
        self._emit_avgpool(node, node.args[0], m.kernel_size, m.stride, m.padding, m.ceil_mode,
                           m.count_include_pad, m.divisor_override, preferred=node.target)

    def adaptive_avgpool_module(self, node, m):
        self._emit_global_avgpool(node, node.args[0], m.output_size, preferred=node.target)

    def flatten_module(self, node, m):
        self._emit_flatten(node, node.args[0], m.start_dim, m.end_dim, preferred=node.target)

    def dropout_module(self, node, m):
        attrs = {"p": float(m.p)}
        self._emit(node, "dropout", [self._tensor(node, node.args[0])], attrs, preferred=node.target)

    def identity_module(self, node, m):
        self._emit(node, "identity", [self._tensor(node, node.args[0])], preferred=node.target)

    # Function and method handlers. Methods get the tensor as their first argument, like functions.

    def relu_function(self, node):
        bound = _bind(node, ["input", "inplace"], {"inplace": False})
        self._emit(node, "relu", [self._tensor(node, bound["input"])])

    def relu6_function(self, node):
        bound = _bind(node, ["input", "inplace"], {"inplace": False})
        self._emit(node, "relu6", [self._tensor(node, bound["input"])])

    def hardtanh_function(self, node):
        bound = _bind(node, ["input", "min_val", "max_val", "inplace"],
                      {"min_val": -1.0, "max_val": 1.0, "inplace": False})
        self._emit_clip(node, bound["input"], bound["min_val"], bound["max_val"])

    def clamp_function(self, node):
        bound = _bind(node, ["input", "min", "max"], {"min": None, "max": None})
        low, high = bound["min"], bound["max"]
        if isinstance(low, torch.fx.Node) or isinstance(high, torch.fx.Node):
            raise ExportError(f"node {node.name}: {_describe_target(node)} with tensor bounds is not supported")
        if high is None and low == 0:
            self._emit(node, "relu", [self._tensor(node, bound["input"])])
            return
        if low is None or high is None:
            raise ExportError(
                f"node {node.name}: {_describe_target(node)} with min={low!r}, max={high!r}, but the format's "
                "clip needs both bounds (clamp(min=0) alone is exported as relu)")
        self._emit_clip(node, bound["input"], low, high)

    def maxpool_function(self, node):
        bound = _bind(node, ["input", "kernel_size", "stride", "padding", "dilation", "ceil_mode", "return_indices"],
                      {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False, "return_indices": False})
        self._emit_maxpool(node, bound["input"], bound["kernel_size"], bound["stride"], bound["padding"],
                           bound["dilation"], bound["ceil_mode"], bound["return_indices"])

    def avgpool_function(self, node):
        bound = _bind(node, ["input", "kernel_size", "stride", "padding", "ceil_mode", "count_include_pad",
                             "divisor_override"],
                      {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True,
                       "divisor_override": None})
        self._emit_avgpool(node, bound["input"], bound["kernel_size"], bound["stride"], bound["padding"],
                           bound["ceil_mode"], bound["count_include_pad"], bound["divisor_override"])

    def adaptive_avgpool_function(self, node):
        bound = _bind(node, ["input", "output_size"], {})
        self._emit_global_avgpool(node, bound["input"], bound["output_size"])

    def flatten_function(self, node):
        bound = _bind(node, ["input", "start_dim", "end_dim"], {"start_dim": 0, "end_dim": -1})
        self._emit_flatten(node, bound["input"], bound["start_dim"], bound["end_dim"])

    def view_method(self, node):
        """Export x.view(N, -1) and x.reshape(N, -1), and their forms with a literal size, as flatten."""
        source = node.args[0]
        sizes = list(node.args[1:])
        if len(sizes) == 1 and isinstance(sizes[0], (tuple, list)):
            sizes = list(sizes[0])
        if not sizes and "shape" in node.kwargs:
            sizes = list(node.kwargs["shape"])
        self._emit_view_as_flatten(node, source, sizes)

    def reshape_function(self, node):
        bound = _bind(node, ["input", "shape"], {})
        self._emit_view_as_flatten(node, bound["input"], list(bound["shape"]))

    def add_function(self, node):
        if node.target in (operator.add, operator.iadd):
            a, b = node.args
            alpha = 1
        else:
            bound = _bind(node, ["input", "other", "alpha"], {"alpha": 1})
            a, b, alpha = bound["input"], bound["other"], bound["alpha"]
        if alpha != 1:
            raise ExportError(f"node {node.name}: {_describe_target(node)} with alpha={alpha!r} is not supported")
        for value in (a, b):
            if not isinstance(value, torch.fx.Node):
                raise ExportError(
                    f"node {node.name}: adding the constant {value!r} is not supported because add takes two tensors")
        shape_a, shape_b = self._shape(a), self._shape(b)
        if shape_a != shape_b:
            raise ExportError(
                f"node {node.name}: add of shapes {shape_a} and {shape_b}, but the format's add needs equal shapes "
                "and does not broadcast")
        self._emit(node, "add", [self._tensor(node, a), self._tensor(node, b)])

    def cat_function(self, node):
        bound = _bind(node, ["tensors", "dim"], {"dim": 0})
        tensors = list(bound["tensors"])
        shapes = [self._require_rank(node, t, (4,)) for t in tensors]
        dim = bound["dim"]
        if dim not in (1, -3):
            raise ExportError(f"node {node.name}: {_describe_target(node)} along dim={dim!r}, but only dim=1 is supported")
        inputs = [self._tensor(node, t) for t in tensors]
        if len(inputs) == 1:
            self._emit(node, "identity", inputs)
            return
        for shape in shapes[1:]:
            if shape[2:] != shapes[0][2:]:
                raise ExportError(f"node {node.name}: concat of shapes {shapes} with different H or W")
        self._emit(node, "concat", inputs, {"axis": 1})

    def dropout_function(self, node):
        bound = _bind(node, ["input", "p", "training", "inplace"], {"p": 0.5, "training": True, "inplace": False})
        if bound["training"] is not False:
            raise ExportError(
                f"node {node.name}: {_describe_target(node)} with training={bound['training']!r} drops values even "
                "in eval mode. Pass training=self.training or use nn.Dropout")
        self._emit(node, "dropout", [self._tensor(node, bound["input"])], {"p": float(bound["p"])})

    # Emitters shared by modules and functions.

    def _emit_clip(self, node, source, low, high, preferred=None):
        low, high = float(low), float(high)
        if not math.isfinite(low) or not math.isfinite(high) or not low < high:
            raise ExportError(f"node {node.name}: invalid clip bounds min={low}, max={high}: expected finite min < max")
        self._emit(node, "clip", [self._tensor(node, source)], {"min": low, "max": high}, preferred=preferred)

    def _emit_maxpool(self, node, source, kernel, stride, padding, dilation, ceil_mode, return_indices,
                      preferred=None):
        self._require_rank(node, source, (4,))
        if ceil_mode:
            raise ExportError(f"node {node.name}: max pooling with ceil_mode=True is not supported. Use ceil_mode=False")
        if _pair(dilation, "max pooling dilation") != [1, 1]:
            raise ExportError(f"node {node.name}: max pooling with dilation={dilation!r} is not supported. Use dilation=1")
        if return_indices:
            raise ExportError(f"node {node.name}: max pooling with return_indices=True is not supported")
        attrs = self._pool_attrs(kernel, stride, padding)
        self._emit(node, "maxpool2d", [self._tensor(node, source)], attrs, preferred=preferred)

    def _emit_avgpool(self, node, source, kernel, stride, padding, ceil_mode, count_include_pad, divisor_override,
                      preferred=None):
        self._require_rank(node, source, (4,))
        if ceil_mode:
            raise ExportError(f"node {node.name}: average pooling with ceil_mode=True is not supported. Use ceil_mode=False")
        if divisor_override is not None:
            raise ExportError(f"node {node.name}: average pooling with divisor_override={divisor_override!r} is not supported")
        attrs = self._pool_attrs(kernel, stride, padding)
        attrs["count_include_pad"] = bool(count_include_pad)
        self._emit(node, "avgpool2d", [self._tensor(node, source)], attrs, preferred=preferred)

    def _pool_attrs(self, kernel, stride, padding):
        kernel = _pair(kernel, "pooling kernel")
        # PyTorch pooling treats stride=None and an empty stride as "same as the kernel".
        stride = kernel if stride is None or stride == () or stride == [] else _pair(stride, "pooling stride")
        return {"kernel": kernel, "stride": stride, "padding": _padding4(padding, "pooling padding")}

    def _emit_global_avgpool(self, node, source, output_size, preferred=None):
        self._require_rank(node, source, (4,))
        if output_size not in (1, (1, 1), [1, 1]):
            raise ExportError(
                f"node {node.name}: adaptive average pooling to {output_size!r} is not supported, "
                "only output size 1 (global average pooling)")
        self._emit(node, "global_avgpool", [self._tensor(node, source)], preferred=preferred)

    def _emit_flatten(self, node, source, start_dim, end_dim, preferred=None):
        shape = self._shape(source)
        if start_dim != 1 or end_dim not in (-1, len(shape) - 1):
            raise ExportError(
                f"node {node.name}: flatten with start_dim={start_dim!r}, end_dim={end_dim!r} is not supported. "
                "Only flatten(x, 1), which keeps the batch dimension, is supported")
        self._emit(node, "flatten", [self._tensor(node, source)], preferred=preferred)

    def _emit_view_as_flatten(self, node, source, sizes):
        shape = self._shape(source)
        rest = int(np.prod(shape[1:]))
        # A literal batch size other than -1 would only fit the traced batch size, so it is rejected.
        batch_ok = len(sizes) == 2 and (sizes[0] in self.batch_size_nodes or sizes[0] == -1)
        rest_ok = len(sizes) == 2 and (sizes[1] == -1 or sizes[1] == rest)
        if not batch_ok or not rest_ok or sizes == [-1, -1]:
            size_labels = [s.name if isinstance(s, torch.fx.Node) else s for s in sizes]
            raise ExportError(
                f"node {node.name}: {_describe_target(node)}{tuple(size_labels)} on a tensor of shape {shape} is not "
                "supported. Only flattening to (x.size(0), -1) or (-1, C*H*W) is")
        self._emit(node, "flatten", [self._tensor(node, source)])


_MODULE_HANDLERS = {
    nn.Conv2d: _Converter.conv2d,
    nn.Linear: _Converter.linear,
    nn.BatchNorm2d: _Converter.batchnorm,
    nn.BatchNorm1d: _Converter.batchnorm,
    nn.ReLU: _Converter.relu_module,
    nn.ReLU6: _Converter.relu6_module,
    nn.Hardtanh: _Converter.hardtanh_module,
    nn.MaxPool2d: _Converter.maxpool_module,
    nn.AvgPool2d: _Converter.avgpool_module,
    nn.AdaptiveAvgPool2d: _Converter.adaptive_avgpool_module,
    nn.Flatten: _Converter.flatten_module,
    nn.Dropout: _Converter.dropout_module,
    nn.Dropout2d: _Converter.dropout_module,
    nn.Identity: _Converter.identity_module,
}

_FUNCTION_HANDLERS = {
    F.relu: _Converter.relu_function,
    F.relu_: _Converter.relu_function,
    torch.relu: _Converter.relu_function,
    torch.relu_: _Converter.relu_function,
    F.relu6: _Converter.relu6_function,
    F.hardtanh: _Converter.hardtanh_function,
    torch.clamp: _Converter.clamp_function,
    torch.clip: _Converter.clamp_function,
    F.max_pool2d: _Converter.maxpool_function,
    F.avg_pool2d: _Converter.avgpool_function,
    F.adaptive_avg_pool2d: _Converter.adaptive_avgpool_function,
    torch.flatten: _Converter.flatten_function,
    torch.reshape: _Converter.reshape_function,
    operator.add: _Converter.add_function,
    operator.iadd: _Converter.add_function,
    torch.add: _Converter.add_function,
    torch.cat: _Converter.cat_function,
    torch.concat: _Converter.cat_function,
    F.dropout: _Converter.dropout_function,
}

_METHOD_HANDLERS = {
    "relu": _Converter.relu_function,
    "relu_": _Converter.relu_function,
    "clamp": _Converter.clamp_function,
    "clip": _Converter.clamp_function,
    "flatten": _Converter.flatten_function,
    "view": _Converter.view_method,
    "reshape": _Converter.view_method,
    "add": _Converter.add_function,
    "add_": _Converter.add_function,
}


def _parse_ints(text, option):
    try:
        return [int(v) for v in text.split(",")]
    except ValueError:
        raise SystemExit(f"invalid {option} {text!r}: expected comma-separated integers such as 1,3,224,224")


def _parse_floats(text, option):
    try:
        return [float(v) for v in text.split(",")]
    except ValueError:
        raise SystemExit(f"invalid {option} {text!r}: expected comma-separated numbers such as 0.485,0.456,0.406")


def _load_factory(spec):
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise SystemExit(f"invalid --module {spec!r}: expected MODULE:CALLABLE such as mypkg.models:make_model")
    # Allow models that live in the current folder, as `python3 -m` would.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    module = importlib.import_module(module_name)
    factory = module
    for part in attr.split("."):
        if not hasattr(factory, part):
            raise SystemExit(f"invalid --module {spec!r}: {module_name} has no attribute {attr}")
        factory = getattr(factory, part)
    return factory


def main(argv=None):
    parser = argparse.ArgumentParser(
        description="Export a PyTorch CNN to qtool's float model format (model.json + weights.npz).",
        epilog="Example: python3 scripts/export_pytorch.py --module mypkg.models:make_model "
               "--state-dict ckpt.pt --input-shape 1,3,224,224 -o out/mymodel "
               "--scale 0.00392156862745098 --mean 0.485,0.456,0.406 --std 0.229,0.224,0.225")
    parser.add_argument("--module", required=True,
                        help="MODULE:CALLABLE that returns the nn.Module when called, such as a class or "
                             "factory function. MODULE is imported from the current folder or sys.path")
    parser.add_argument("--kwargs", default="{}",
                        help="JSON object of keyword arguments for CALLABLE (default: {})")
    parser.add_argument("--state-dict",
                        help="file saved with torch.save(model.state_dict(), path), loaded with "
                             "weights_only=True and strict key matching. Without it the model keeps "
                             "the weights CALLABLE gives it")
    parser.add_argument("--state-dict-key",
                        help="key of the state dict inside the loaded file, for checkpoints such as "
                             "{'model': state_dict, 'optimizer': ...}")
    parser.add_argument("--input-shape", required=True,
                        help="example input shape N,C,H,W or N,C with a batch size, such as 1,3,224,224")
    parser.add_argument("--input-name", default="input", help="name of the graph input (default: input)")
    parser.add_argument("--name", help="model name written to model.json")
    parser.add_argument("--scale", type=float, help="preprocess scale applied to raw input values, such as 0.00392156862745098 for 1/255")
    parser.add_argument("--mean", help="preprocess mean, one value or one per channel, comma-separated")
    parser.add_argument("--std", help="preprocess standard deviation, one value or one per channel, comma-separated")
    parser.add_argument("-o", "--out-dir", required=True, help="output folder for model.json and weights.npz")
    args = parser.parse_args(argv)

    factory = _load_factory(args.module)
    try:
        kwargs = json.loads(args.kwargs)
    except json.JSONDecodeError as e:
        raise SystemExit(f"invalid --kwargs {args.kwargs!r}: {e}")
    model = factory(**kwargs)
    if not isinstance(model, nn.Module):
        raise SystemExit(f"--module {args.module} returned {type(model).__name__}, expected an nn.Module")

    if args.state_dict:
        try:
            state = torch.load(args.state_dict, map_location="cpu", weights_only=True)
        except Exception as e:
            raise SystemExit(f"loading state dict {args.state_dict} failed: {e}")
        if args.state_dict_key:
            if not isinstance(state, dict) or args.state_dict_key not in state:
                raise SystemExit(f"key {args.state_dict_key!r} not found in {args.state_dict}")
            state = state[args.state_dict_key]
        try:
            model.load_state_dict(state)
        except (RuntimeError, TypeError) as e:
            raise SystemExit(f"state dict {args.state_dict} does not fit the model: {e}")

    preprocess = {}
    if args.scale is not None:
        preprocess["scale"] = args.scale
    if args.mean is not None:
        preprocess["mean"] = _parse_floats(args.mean, "--mean")
    if args.std is not None:
        preprocess["std"] = _parse_floats(args.std, "--std")

    shape = _parse_ints(args.input_shape, "--input-shape")
    try:
        graph = export(model, shape, args.out_dir, input_name=args.input_name,
                       preprocess=preprocess or None, name=args.name)
    except ExportError as e:
        raise SystemExit(f"export failed: {e}")
    print(f"wrote {len(graph['nodes'])} nodes to {os.path.join(args.out_dir, MODEL_FILE)} "
          f"and {os.path.join(args.out_dir, WEIGHTS_FILE)}")


if __name__ == "__main__":
    main()
