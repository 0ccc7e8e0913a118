"""Side by side: cnn-jax vs PyTorch eager on Nielsen's conv20-pool-FC100 net, one run.

For each minibatch size, alternates `torch_baseline.py` (in its own venv, never a project
dependency; NCHW and channels_last memory formats) and `bench_train.py` (this repo's venv)
`--rounds` times, each a full timed epoch of 50,000 images after a warm-up, and prints one JSON
line with the medians and the ratio to the faster PyTorch format. Alternating means machine
noise hits all alike.
  python benchmarks/vs_torch.py --batch-size 10 128 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
TORCH_PYTHON = Path(__file__).resolve().parents[1] / ".venv-torch" / "bin" / "python"


def last_json(cmd: list[str]) -> dict:
    """Run `cmd`, return the last JSON line it printed (errors exit with its stderr)."""
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=HERE.parent)
    lines = [ln for ln in done.stdout.splitlines() if ln.startswith("{")]
    if done.returncode or not lines:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-500:]}")
    return json.loads(lines[-1])


def main(argv: list[str] | None = None) -> None:
    """Parse arguments, alternate the two benchmarks, print the ratios."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, nargs="+", default=[10, 128])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2, help="PyTorch intra-op threads")
    p.add_argument("--torch-python", type=Path, default=TORCH_PYTHON,
                   help="python of a venv with torch==2.13.0 (benchmarks/README.md)")
    a = p.parse_args(argv)
    if not a.torch_python.exists():
        sys.exit(f"--torch-python={a.torch_python} does not exist; see benchmarks/README.md")
    for bs in a.batch_size:
        torch_ips: dict[str, list[float]] = {"nchw": [], "channels_last": []}
        jax_ips = []
        for _ in range(a.rounds):
            for fmt, ips in torch_ips.items():
                t = last_json([str(a.torch_python), str(HERE / "torch_baseline.py"),
                               "--batch-size", str(bs), "--epochs", "1", "--threads",
                               str(a.threads), *(["--channels-last"] if fmt != "nchw" else [])])
                ips.append(t["images_per_sec"])
            j = last_json([sys.executable, str(HERE / "bench_train.py"), "--batch-size", str(bs),
                           "--repeats", "1", "--warmup", "1"])
            jax_ips.append(j["images_per_s"])
        medians = {fmt: statistics.median(ips) for fmt, ips in torch_ips.items()}
        best = max(medians, key=medians.get)
        jm = statistics.median(jax_ips)
        print(json.dumps({"batch_size": bs, "rounds": a.rounds, "jax_images_per_s": jax_ips,
                          **{f"torch_{fmt}_images_per_s": ips for fmt, ips in torch_ips.items()},
                          "jax_median": jm, **{f"torch_{fmt}_median": m
                                               for fmt, m in medians.items()},
                          "torch_best_format": best,
                          "ratio_vs_best_torch": round(jm / medians[best], 2),
                          "torch": t.get("torch"), "threads": a.threads}), flush=True)


if __name__ == "__main__":
    main()
