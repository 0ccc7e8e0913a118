import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from cnn_jax.config import (
    Config,
    ConvBlockConfig,
    DenseConfig,
    ModelConfig,
    OptimizerConfig,
    TrainConfig,
)
from cnn_jax.train import TrainState, fit, make_optimizer, make_train_epoch

SMALL = ModelConfig(
    conv=(ConvBlockConfig(4),),
    dense=(DenseConfig(16),),
    activation="relu",
    init="lecun",
    name="small",
)


def small_cfg(**train):
    train = {"epochs": 2, "batch_size": 50, "progress": False, **train}
    return Config(model=SMALL, optimizer=OptimizerConfig("sgd", lr=0.1, schedule="constant"),
                  train=TrainConfig(**train))


def test_same_seed_twice_gives_identical_metrics(tiny_splits):
    a, b = (fit(small_cfg(), tiny_splits) for _ in range(2))
    assert a.history[-1]["train_loss"] == b.history[-1]["train_loss"]
    assert a.per_seed == b.per_seed
    assert a.per_seed[0]["status"] == "ok"


def test_seeds_in_one_program_match_separate_runs(tiny_splits):
    together = fit(small_cfg(seeds=3), tiny_splits)
    alone = fit(Config(**{**small_cfg().__dict__, "seed": 2}), tiny_splits)
    assert len(together.per_seed) == 3 and [s["seed"] for s in together.per_seed] == [0, 1, 2]
    np.testing.assert_allclose(
        together.history[-1]["train_loss"][2], alone.history[-1]["train_loss"][0], rtol=1e-4
    )
    assert together.history[0]["train_loss"][0] != together.history[0]["train_loss"][1]


def test_learning_happens(tiny_splits):
    cfg = Config(
        model=SMALL,
        optimizer=OptimizerConfig("adam", lr=3e-3, schedule="constant"),
        train=TrainConfig(epochs=3, batch_size=20, progress=False),
    )
    result = fit(cfg, tiny_splits)
    losses = [h["train_loss"][0] for h in result.history]
    assert losses[-1] < losses[0]
    assert result.per_seed[0]["test_acc"] > 0.6


def test_divergence_is_recorded_and_stops_the_run(tiny_splits):
    cfg = Config(
        model=SMALL,
        optimizer=OptimizerConfig("sgd", lr=1e12, schedule="constant"),
        train=TrainConfig(epochs=5, batch_size=50, progress=False),
    )
    result = fit(cfg, tiny_splits)
    assert result.per_seed[0]["status"] == "diverged"
    assert len(result.history) < 5
    assert result.per_seed[0]["test_acc"] is None


def test_an_exploding_but_finite_loss_is_diverged_under_the_bound(tiny_splits):
    cfg = Config(model=SMALL, optimizer=OptimizerConfig("sgd", lr=1e5, schedule="constant"),
                 train=TrainConfig(epochs=2, batch_size=50, progress=False))
    unbounded = fit(Config(**{**cfg.__dict__, "train": TrainConfig(
        epochs=2, batch_size=50, progress=False, max_loss=None)}), tiny_splits)
    losses = [h["train_loss"][0] for h in unbounded.history]
    assert all(np.isfinite(losses)) and max(losses) > 100  # explodes, never NaN
    assert unbounded.per_seed[0]["status"] == "ok"
    result = fit(cfg, tiny_splits)  # the default train.max_loss=100
    assert result.per_seed[0]["status"] == "diverged" and result.per_seed[0]["test_acc"] is None
    assert len(result.history) == 1  # every seed diverged: the run stops
    from cnn_jax.train import build, run_epochs

    resumed = run_epochs(build(cfg, tiny_splits), result.progress)  # and stays stopped
    assert len(resumed.history) == 1 and resumed.per_seed == result.per_seed


def test_exploded_is_a_non_finite_loss_or_one_above_the_bound():
    from cnn_jax.protocol import exploded

    losses = [2.0, 500.0, float("nan"), float("inf")]
    assert exploded(losses, 100.0).tolist() == [False, True, True, True]
    assert exploded(losses).tolist() == [False, False, True, True]


def test_nielsen_l2_on_weights_only_divided_by_minibatches():
    params = {"d": {"kernel": jnp.full((2, 2), 2.0), "bias": jnp.full((2,), 2.0)}}
    grads = jax.tree_util.tree_map(jnp.ones_like, params)
    tx = make_optimizer(OptimizerConfig("sgd", lr=0.5, l2=0.1, schedule="constant"), 4)
    updates, _ = tx.update(grads, tx.init(params), params)
    # kernel: -lr * (grad + l2 / n_batches * W) = -0.5 * (1 + 0.025 * 2)
    np.testing.assert_allclose(updates["d"]["kernel"], -0.5 * 1.05)
    np.testing.assert_allclose(updates["d"]["bias"], -0.5)


@pytest.mark.parametrize("shuffle", [False, True])
def test_fixed_order_is_the_same_every_epoch(shuffle):
    def step(state, x, y, key):  # an order-sensitive checksum of the labels seen
        checksum = state.params * 31.0 % 1e6 + y[0]
        return TrainState(checksum, (), state.step + 1), {"loss": jnp.float32(0.0)}

    epoch = jax.jit(make_train_epoch(step, n=40, batch_size=10, shuffle=shuffle))
    x, y = jnp.zeros((40, 1)), jnp.arange(40.0)
    start = TrainState(jnp.float32(0.0), (), jnp.int32(0))
    runs = [epoch(start, jax.random.PRNGKey(k), x, y)[0].params for k in (1, 2)]
    assert (runs[0] == runs[1]) == (not shuffle)
    if not shuffle:
        expected = 0.0
        for first in (0, 10, 20, 30):
            expected = expected * 31.0 % 1e6 + first
        assert float(runs[0]) == expected


def test_label_smoothing_changes_the_loss():
    from cnn_jax.train import cross_entropy

    logits = jnp.array([[4.0, 0.0, 0.0]])
    assert float(cross_entropy(logits, jnp.array([0]), 0.1)) > float(
        optax.softmax_cross_entropy_with_integer_labels(logits, jnp.array([0]))[0]
    )


def test_plurality_vote_majority_and_ties():
    from cnn_jax.train.ensemble import plurality_vote

    preds = np.array([[1, 2, 3, 0], [1, 2, 4, 5], [7, 9, 4, 6]])
    np.testing.assert_array_equal(plurality_vote(preds, 10), [1, 2, 4, 0])


@pytest.mark.parametrize("seeds", [1, 2])
def test_fit_compiles_the_same_programs_for_one_epoch_or_many(tiny_splits, seeds):
    from cnn_jax.train import count_compiles

    fit(small_cfg(epochs=1, seeds=seeds, batch_size=100), tiny_splits)  # caches eager helpers
    counts = {}
    for epochs in (1, 2):
        with count_compiles() as log:
            fit(small_cfg(epochs=epochs, seeds=seeds, batch_size=100), tiny_splits)
        counts[epochs] = log.count
    assert counts[1] == counts[2], counts  # nothing recompiles per epoch
    assert counts[1] >= 3  # the epoch program and two evaluations at least were seen


def test_a_test_split_equal_to_validation_is_evaluated_once(tiny_splits):
    from cnn_jax.train import count_compiles

    same = tiny_splits._replace(test_x=tiny_splits.val_x.copy(), test_y=tiny_splits.val_y.copy())
    counts, results = {}, {}
    for name, splits in (("distinct", tiny_splits), ("same", same)):
        fit(small_cfg(epochs=1), splits)  # caches eager helpers
        with count_compiles() as log:
            results[name] = fit(small_cfg(epochs=1), splits)
        counts[name] = log.count
    assert counts["same"] == counts["distinct"] - 1, counts
    record = results["same"].history[0]
    assert record["test_acc"] == record["val_acc"]
    assert results["distinct"].history[0]["val_acc"] == record["val_acc"]


def test_count_compiles_sees_a_new_shape_and_not_a_cached_one():
    from cnn_jax.train import count_compiles

    f = jax.jit(lambda x: x * 2 + 1)
    with count_compiles() as log:
        f(np.ones(3, np.float32)).block_until_ready()
        f(np.ones(3, np.float32)).block_until_ready()
    assert log.count == 1
    with count_compiles() as log:
        f(np.ones(4, np.float32)).block_until_ready()
    assert log.count == 1  # compiled, or loaded from this session's compile cache
    assert all(s > 0 for s in log.seconds)


CACHE_SCRIPT = """
import sys, jax, numpy as np
from cnn_jax.train import count_compiles, enable_compile_cache
print(enable_compile_cache(sys.argv[1]))
with count_compiles() as log:
    jax.jit(lambda x: jax.numpy.sin(x) * 3)(np.ones(5, np.float32)).block_until_ready()
print(log.compiled, log.cache_hits)
"""


def test_compile_cache_lets_a_second_process_load_instead_of_compiling(tmp_path):
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    cache = tmp_path / "xla"

    def run() -> list[str]:
        done = subprocess.run([sys.executable, "-c", CACHE_SCRIPT, f"{tmp_path}/./xla"],
                              env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout.split("\n")

    first = run()
    assert first[0] == str(cache) and first[1] == "1 0"  # compiled, and written
    assert any(cache.iterdir())
    assert run()[1] == "0 1"  # loaded from the cache, not compiled


def test_one_seed_program_has_no_seed_axis_inside_but_keeps_it_outside():
    from cnn_jax.train import over_seeds

    seen = []

    def fn(a, b):
        seen.append((a.shape, b.shape))
        return {"sum": a.sum() + b.sum()}

    out = over_seeds(fn, 1, (0, None))(jnp.ones((1, 3)), jnp.ones(2))
    assert seen == [((3,), (2,))] and out["sum"].shape == (1,)
    out = over_seeds(fn, 2, (0, None))(jnp.ones((2, 3)), jnp.ones(2))
    assert out["sum"].shape == (2,) and np.allclose(out["sum"], 5.0)


def test_seed_loop_equals_vmap_and_compiles_one_seed_program():
    from cnn_jax.train.seeds import compile_over_seeds

    def fn(w, x):
        return {"w": w * x.sum(), "n": w.sum()}

    w, x = jnp.arange(6.0).reshape(3, 2), jnp.ones(4)
    looped = compile_over_seeds(fn, (w, x), (0, None), "loop")
    vmapped = compile_over_seeds(fn, (w, x), (0, None), "vmap")
    leaves = [jax.tree_util.tree_leaves(f(w, x)) for f in (looped, vmapped)]
    for a, b in zip(*leaves, strict=True):
        np.testing.assert_allclose(a, b)
    assert looped(w, x)["w"].shape == (3, 2)


def test_fit_gives_the_same_numbers_looped_or_vmapped(tiny_splits):
    ref = fit(small_cfg(seeds=2, seed_batching="vmap"), tiny_splits)
    got = fit(small_cfg(seeds=2, seed_batching="loop"), tiny_splits)
    np.testing.assert_allclose(got.history[-1]["train_loss"], ref.history[-1]["train_loss"],
                               rtol=1e-4)
    assert got.per_seed[1]["test_acc"] == pytest.approx(ref.per_seed[1]["test_acc"], abs=0.011)


def test_looped_seeds_run_at_once_in_threads():
    """With workers=2 the two seeds' calls overlap: each waits at a barrier for the other."""
    import threading

    from cnn_jax.train.seeds import compile_over_seeds

    def meet(barrier: threading.Barrier):
        def wait(v):
            barrier.wait()  # a sequential loop never gets the 2nd call here: broken
            return v

        return lambda w: {"w": jax.pure_callback(wait, jax.ShapeDtypeStruct(w.shape, w.dtype), w)}

    w = jnp.arange(4.0).reshape(2, 2)
    looped = compile_over_seeds(meet(threading.Barrier(2, timeout=20)), (w,), (0,), "loop",
                                workers=2)
    np.testing.assert_array_equal(looped(w)["w"], w)  # seed order kept
    barrier = threading.Barrier(2, timeout=0.5)
    one_by_one = compile_over_seeds(meet(barrier), (w,), (0,), "loop", workers=1)
    with pytest.raises(Exception):  # noqa: B017 (the callback's BrokenBarrierError, as XLA wraps it)
        jax.block_until_ready(one_by_one(w))


def test_a_failing_seed_stops_the_other_threads_before_they_are_waited_for():
    import threading
    import time

    from cnn_jax.train.seeds import map_seeds

    stop, started, finished = threading.Event(), threading.Event(), []

    def work(i):
        if i == 0:
            started.wait(timeout=10)
            raise ValueError("seed 0 failed")
        started.set()
        deadline = time.monotonic() + 10  # a map_seeds that never sets `stop` waits for this
        while not stop.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        finished.append(stop.is_set())
        return jnp.zeros(1)

    t0 = time.monotonic()
    with pytest.raises(ValueError, match="seed 0 failed"):
        map_seeds(work, 2, workers=2, stop=stop)
    assert finished == [True] and time.monotonic() - t0 < 5
    assert [int(a[0]) for a in map_seeds(lambda i: jnp.full(1, i), 3, workers=2)] == [0, 1, 2]


def test_a_later_seeds_failure_stops_an_earlier_seed_still_running():
    import threading
    import time

    from cnn_jax.train.seeds import map_seeds

    stop, started = threading.Event(), threading.Event()

    def work(i):
        if i == 1:
            started.wait(timeout=10)
            raise ValueError("seed 1 failed")
        started.set()
        deadline = time.monotonic() + 10  # waited for in seed order, this would take 10 s
        while not stop.is_set() and time.monotonic() < deadline:
            time.sleep(0.01)
        return jnp.zeros(1)

    t0 = time.monotonic()
    with pytest.raises(ValueError, match="seed 1 failed"):
        map_seeds(work, 3, workers=2, stop=stop)
    assert stop.is_set() and time.monotonic() - t0 < 5


def test_fewer_training_images_than_a_minibatch_is_a_config_error(tiny_splits):
    from cnn_jax.config import ConfigError
    from cnn_jax.train import build

    few = type(tiny_splits)(tiny_splits.train_x[:20], tiny_splits.train_y[:20],
                            *tiny_splits[2:])
    cfg = Config(model=SMALL, optimizer=OptimizerConfig("sgd", lr=0.1, l2=0.1, schedule="constant"),
                 train=TrainConfig(epochs=1, batch_size=50, progress=False))
    with pytest.raises(ConfigError, match="train.batch_size=50 exceeds the 20 training images"):
        build(cfg, few)


def test_concurrent_seeds_give_the_same_numbers_as_one_by_one(tiny_splits):
    one = fit(small_cfg(seeds=3, seed_batching="loop", concurrent_seeds=1), tiny_splits)
    three = fit(small_cfg(seeds=3, seed_batching="loop", concurrent_seeds=3), tiny_splits)
    strip = lambda history: [{k: v for k, v in h.items() if k != "seconds"} for h in history]
    assert strip(three.history) == strip(one.history)
    for a, b in zip(*(jax.tree_util.tree_leaves(r.progress.state.params) for r in (one, three)),
                    strict=True):
        np.testing.assert_array_equal(a, b)


def test_concurrent_seeds_default_to_one_per_core_and_at_most_the_seeds():
    from cnn_jax.cpus import usable_cores
    from cnn_jax.train.seeds import concurrent_seeds

    assert concurrent_seeds(None, 64) == min(64, usable_cores())
    assert concurrent_seeds(None, 1) == 1
    assert concurrent_seeds(4, 3) == 3 and concurrent_seeds(2, 5) == 2
    assert concurrent_seeds(2, 5, devices=2) == 1  # sharded programs never overlap


def test_auto_seed_batching_loops_on_cpu_and_vmaps_on_accelerators():
    from cnn_jax.train.seeds import resolve_seed_batching

    assert resolve_seed_batching("auto", "cpu") == "loop"
    assert resolve_seed_batching("auto", "gpu") == "vmap"
    assert resolve_seed_batching("vmap", "cpu") == "vmap"
    with pytest.raises(ValueError, match="seed_batching='many' is not one of auto, vmap, loop"):
        resolve_seed_batching("many")


def test_program_epoch_e_counts_from_1_and_is_keyed_by_its_index(tiny_splits):
    """Program.epoch(state, e) trains epoch e as history numbers it, its minibatch order keyed
    by e - 1 (the keys runs have always used), and fit's epoch 1 is that epoch."""
    from cnn_jax.train import build

    cfg = small_cfg(epochs=1)
    program = build(cfg, tiny_splits, 1)
    state = jax.tree_util.tree_map(lambda a: a[0], program.fresh().state)
    key = jax.random.fold_in(jax.random.fold_in(jax.random.PRNGKey(cfg.seed), 1), 0)
    x, y = jnp.asarray(tiny_splits.train_x), jnp.asarray(tiny_splits.train_y)
    alone, _ = jax.jit(program.train_epoch)(state, key, x, y)
    first, _ = program.epoch(program.fresh().state, 1)
    fitted = fit(cfg, tiny_splits)
    assert fitted.history[0]["epoch"] == 1 == fitted.progress.epochs_done
    for a, b, c in zip(jax.tree_util.tree_leaves(alone.params),
                       jax.tree_util.tree_leaves(first.params),
                       jax.tree_util.tree_leaves(fitted.progress.state.params), strict=True):
        np.testing.assert_allclose(np.asarray(b)[0], np.asarray(a), rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(np.asarray(b), np.asarray(c))
