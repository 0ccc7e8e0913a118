"""Per-op profile of one training step: where the time of a compiled epoch goes, op by op.

Compiles the scanned epoch (one seed, no seed axis) of a net, runs it once to warm up, runs it
again under `jax.profiler.trace`, sums the trace's complete ("X") events by name (XLA:CPU names
each thunk after its HLO instruction) and prints microseconds per step, largest first, with
what each op computes (its HLO shape and JAX op name from `compiled.as_text()`).
  python benchmarks/profile_step.py --model nielsen_conv1 --batch-size 10 --steps 500
  python benchmarks/profile_step.py --model fast --batch-size 256 --steps 60
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import re
import tempfile
import time
from pathlib import Path

import jax
import numpy as np
from nets import NETS, net_config

from cnn_jax.data.idx import load_idx_dir
from cnn_jax.models.convnet import ConvNet
from cnn_jax.train import init_states, make_optimizer, make_train_epoch, make_train_step

DATA_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"

def op_summary(compiled_text: str) -> dict[str, str]:
    """HLO instruction name -> 'shape <JAX op name>' for every instruction of the program."""
    out = {}
    for line in compiled_text.splitlines():
        m = re.match(r"\s*(?:ROOT )?%?([\w.\-]+) = (\S+) ", line)
        if m:
            op = re.search(r'op_name="([^"]*)"', line)
            out[m.group(1)] = f"{m.group(2)} {op.group(1).split('closed_call/')[-1] if op else ''}"
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=sorted(NETS), default="nielsen_conv1")
    p.add_argument("--batch-size", type=int, default=10)
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--top", type=int, default=15)
    p.add_argument("--data-dir", type=Path, default=DATA_DIR)
    a = p.parse_args(argv)
    cfg = net_config(a.model)
    model_cfg, opt_cfg = cfg.model, cfg.optimizer
    n = a.batch_size * a.steps
    arrays = load_idx_dir(a.data_dir)
    x = jax.numpy.asarray(arrays["train_images"][:n, ..., None])
    y = jax.numpy.asarray(arrays["train_labels"][:n].astype(np.int32))
    model = ConvNet(model_cfg)
    tx = make_optimizer(opt_cfg, a.steps, 1)
    epoch = make_train_epoch(make_train_step(model, tx), n, a.batch_size, shuffle=True)
    state = jax.tree_util.tree_map(lambda s: s[0], init_states(model, tx, [0]))
    key = jax.random.PRNGKey(0)
    compiled = jax.jit(epoch).lower(state, key, x, y).compile()
    jax.block_until_ready(compiled(state, key, x, y))
    t = time.perf_counter()
    jax.block_until_ready(compiled(state, key, x, y))
    step_us = (time.perf_counter() - t) / a.steps * 1e6
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
            jax.block_until_ready(compiled(state, key, x, y))
        trace = next(Path(trace_dir).rglob("*.trace.json.gz"))
        with gzip.open(trace) as f:
            events = json.load(f)
    events = events["traceEvents"] if isinstance(events, dict) else events
    what = op_summary(compiled.as_text())
    total = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and e.get("name") in what:
            total[e["name"]] += e.get("dur", 0)
    print(f"{a.model}, minibatch {a.batch_size}: {step_us:.0f} us per step unprofiled "
          f"({n / (step_us * a.steps / 1e6):.0f} img/s); jax {jax.__version__}")
    for name, us in total.most_common(a.top):
        print(f"{us / a.steps:9.1f} us  {name:<28} {what[name][:110]}")


if __name__ == "__main__":
    main()
