"""PyTorch CPU baseline for the speed benchmarks (own venv; never a project dependency)."""

import time

_T0 = time.perf_counter()

import argparse  # noqa: E402
import gzip  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"


def read_idx(path: Path, header: int) -> np.ndarray:
    """Read a gzipped IDX file, skipping its fixed-size header."""
    with gzip.open(path, "rb") as f:
        return np.frombuffer(f.read(), dtype=np.uint8, offset=header)


def load_mnist(data_dir: Path) -> tuple[torch.Tensor, ...]:
    """Return (train_x, train_y, test_x, test_y): float32 Nx1x28x28 in [0, 1], int64 labels."""
    out = []
    for split in ("train", "t10k"):
        x = read_idx(data_dir / f"{split}-images-idx3-ubyte.gz", 16).reshape(-1, 1, 28, 28)
        y = read_idx(data_dir / f"{split}-labels-idx1-ubyte.gz", 8)
        out += [torch.from_numpy(x.astype(np.float32) / 255.0), torch.tensor(y, dtype=torch.long)]
    return tuple(out)


class Network3(nn.Module):
    """Nielsen's network3 conv20(5x5)-maxpool2-sigmoid -> FC100 sigmoid -> softmax(10)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 20, 5)
        self.fc = nn.Linear(20 * 12 * 12, 100)
        self.out = nn.Linear(100, 10)
        # Nielsen's init: N(0, 1/n_out) weights, N(0, 1) biases, zeros for the softmax layer.
        nn.init.normal_(self.conv.weight, std=math.sqrt(1.0 / (20 * 25 / 4)))
        nn.init.normal_(self.conv.bias, std=1.0)
        nn.init.normal_(self.fc.weight, std=math.sqrt(1.0 / 100))
        nn.init.normal_(self.fc.bias, std=1.0)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return log-probabilities."""
        h = torch.sigmoid(F.max_pool2d(self.conv(x), 2))
        h = torch.sigmoid(self.fc(h.flatten(1)))
        return F.log_softmax(self.out(h), dim=1)


class FastNet(nn.Module):
    """Small CNN: conv32 3x3, pool, relu, conv64 3x3, pool, relu, fc128 relu, fc10."""

    def __init__(self, c1: int = 32, c2: int = 64, hidden: int = 128) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, c1, 3)
        self.conv2 = nn.Conv2d(c1, c2, 3)
        self.fc = nn.Linear(c2 * 5 * 5, hidden)
        self.out = nn.Linear(hidden, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Return log-probabilities."""
        h = F.relu(F.max_pool2d(self.conv1(x), 2))  # pool before relu: same result, 4x less relu
        h = F.relu(F.max_pool2d(self.conv2(h), 2))
        h = F.relu(self.fc(h.flatten(1)))
        return F.log_softmax(self.out(h), dim=1)


def train_steps(model, opt, x, y, bs, max_steps=None, sched=None) -> int:
    """Run one shuffled pass of minibatch SGD steps (remainder dropped); return steps taken."""
    model.train()
    perm = torch.randperm(x.shape[0])
    xs, ys = x[perm], y[perm]
    steps = x.shape[0] // bs if max_steps is None else min(max_steps, x.shape[0] // bs)
    for i in range(steps):
        xb, yb = xs[i * bs : (i + 1) * bs], ys[i * bs : (i + 1) * bs]
        opt.zero_grad(set_to_none=True)
        loss = F.nll_loss(model(xb), yb)
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    return steps


@torch.inference_mode()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, bs: int = 1000) -> float:
    """Return classification accuracy of model on (x, y)."""
    model.eval()
    hits = sum(
        (model(x[i : i + bs]).argmax(1) == y[i : i + bs]).sum().item() for i in range(0, len(x), bs)
    )
    return hits / len(x)


def run_network3(args, data) -> dict:
    """Time plain-SGD training of Nielsen's network3 on the first 50k training images."""
    train_x, train_y, test_x, test_y = data
    fmt = torch.channels_last if args.channels_last else torch.contiguous_format
    x, y = train_x[:50_000].contiguous(memory_format=fmt), train_y[:50_000].contiguous()
    model = Network3().to(memory_format=fmt)
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    train_steps(model, opt, x, y, args.batch_size, max_steps=args.warmup_steps)
    steps = 0
    t = time.perf_counter()
    for _ in range(args.epochs):
        steps += train_steps(model, opt, x, y, args.batch_size, max_steps=args.max_steps)
    seconds = time.perf_counter() - t
    return {
        "framework": "pytorch",
        "torch": torch.__version__,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "channels_last": args.channels_last,
        "epochs": args.epochs,
        "steps": steps,
        "images_per_sec": round(steps * args.batch_size / seconds, 1),
        "seconds": round(seconds, 3),
        "test_acc": round(accuracy(model, test_x, test_y), 4),
    }


def run_fast(args, data) -> dict:
    """Train a small CNN on all 60k images until test accuracy >= target, timed from start."""
    train_x, train_y, test_x, test_y = data
    mean, std = 0.1307, 0.3081
    cl = torch.channels_last  # NHWC is markedly faster for oneDNN convs on CPU
    x = ((train_x - mean) / std).contiguous(memory_format=cl)
    tx = ((test_x - mean) / std).contiguous(memory_format=cl)
    model = FastNet(args.c1, args.c2, args.hidden).to(memory_format=cl)
    opt = torch.optim.Adam(model.parameters(), lr=args.lr)
    steps_per_epoch = x.shape[0] // args.batch_size
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=args.lr, epochs=args.max_epochs, steps_per_epoch=steps_per_epoch
    )
    acc, history = 0.0, []
    for epoch in range(1, args.max_epochs + 1):
        train_steps(model, opt, x, train_y, args.batch_size, sched=sched)
        acc = accuracy(model, tx, test_y)
        history.append([epoch, round(acc, 4), round(time.perf_counter() - _T0, 2)])
        if acc >= args.target:
            break
    reached = acc >= args.target
    return {
        "framework": "pytorch",
        "recipe": "fast",
        "torch": torch.__version__,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "model": f"conv{args.c1}-pool-conv{args.c2}-pool-fc{args.hidden}",
        "optimizer": f"adam onecycle max_lr={args.lr} over {args.max_epochs} epochs",
        "seconds_to_99": round(time.perf_counter() - _T0, 2) if reached else None,
        "epochs": epoch,
        "test_acc": round(acc, 4),
        "history": history,
    }


def main() -> None:
    """Parse arguments, run the chosen benchmark, print one JSON line."""
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--recipe", choices=["network3", "fast"], default="network3")
    p.add_argument("--data-dir", type=Path, default=DEFAULT_DATA)
    p.add_argument("--batch-size", type=int, default=None, help="default 10 (network3), 128 (fast)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--epochs", type=int, default=1)
    p.add_argument("--max-steps", type=int, default=None, help="cut each timed epoch short")
    p.add_argument("--warmup-steps", type=int, default=300)
    p.add_argument("--lr", type=float, default=None, help="default 0.1 (network3), 3e-3 (fast)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-epochs", type=int, default=2, help="fast: OneCycle length / epoch cap")
    p.add_argument("--target", type=float, default=0.99, help="fast: test accuracy to stop at")
    p.add_argument("--channels-last", action="store_true", help="network3: NHWC tensors")
    p.add_argument("--c1", type=int, default=32)
    p.add_argument("--c2", type=int, default=64)
    p.add_argument("--hidden", type=int, default=128)
    args = p.parse_args()
    fast = args.recipe == "fast"
    args.batch_size = args.batch_size or (128 if fast else 10)
    args.lr = args.lr or (3e-3 if fast else 0.1)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = load_mnist(args.data_dir)
    print(json.dumps(run_fast(args, data) if fast else run_network3(args, data)), flush=True)


if __name__ == "__main__":
    main()
