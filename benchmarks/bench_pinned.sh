#!/bin/bash
# Two one-core processes vs one two-core process, training the same net side by side.
#   bash benchmarks/bench_pinned.sh MODEL [STEPS]   (MODEL: a name of benchmarks/nets.py)
# Prints three lines of images/s: one process on every core, one process pinned to core 0, and
# the two processes pinned to cores 0 and 1 running at once (their sum is the machine's rate).
set -euo pipefail
model=${1:?usage: bash benchmarks/bench_pinned.sh MODEL [STEPS]}
steps=${2:-2500}
cd "$(dirname "$0")/.."
bench() { uv run --frozen python benchmarks/bench_train.py --model "$model" --batch-size 10 \
  --fixed-order --repeats 2 --steps "$steps" | grep -o '"images_per_s": [0-9.]*' | cut -d' ' -f2; }
out=$(mktemp -d); trap 'rm -rf "$out"' EXIT
echo "$model, all cores, one process: $(bench) img/s"
echo "$model, core 0, one process: $(taskset -c 0 bash -c "$(declare -f bench); model=$model steps=$steps bench") img/s"
taskset -c 0 bash -c "$(declare -f bench); model=$model steps=$steps bench" > "$out/0" &
taskset -c 1 bash -c "$(declare -f bench); model=$model steps=$steps bench" > "$out/1"
wait
echo "$model, cores 0 and 1, two processes: $(cat "$out/0") + $(cat "$out/1") img/s"
