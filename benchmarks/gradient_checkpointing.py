"""Benchmark: peak memory and step time of a training step with and without gradient checkpointing.

Builds the recipe's MLP (`kerastrain.models.build_mlp`, default: 8 hidden layers of
2048 units, dropout 0.2, Adam) twice in this process, without and with
`gradient_checkpointing`, and trains both on the same random batches of 1024
examples of 784 features. After one untimed call (tracing and compilation), it
alternates the contenders for `--rounds` rounds (A B, B A, A B, ...): each
round resets TensorFlow's memory statistics of `CPU:0`, runs `--steps` training
steps in one call of the compiled training function, and records

- the step's working memory: the allocator's peak during the call minus what
  was allocated before it (both models' weights and optimizer state, the
  batches), so it holds the activations kept for the backward pass, the
  gradients and the temporaries;
- the seconds per step.

Memory needs TensorFlow's BFC allocator on the CPU, which `kerastrain.backend`
turns on (`TF_CPU_ALLOCATOR_USE_BFC`); it does not depend on the machine's
load. Step times do: measure them on a quiet machine.

Usage:

    python benchmarks/gradient_checkpointing.py                     # XLA on and off, writes the results file
    python benchmarks/gradient_checkpointing.py --jit-compile on --rounds 2
    python benchmarks/gradient_checkpointing.py --hidden-layers 16 --units 1024 --batch-size 4096 --output ''

Results: benchmarks/results/gradient_checkpointing.txt; what they show:
docs/gradient-checkpointing.md.
"""

import argparse
import os
import resource
import time

import numpy as np

import provenance

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS = os.path.join(REPO, "benchmarks", "results", "gradient_checkpointing.txt")
MIB = 2**20


def build(arguments, checkpointing, jit_compile):
    """The MLP, compiled as the recipe compiles it, and its compiled training function."""
    from kerastrain import training
    from kerastrain.backend import keras
    from kerastrain.models import build_mlp

    keras.utils.set_random_seed(0)
    model = build_mlp(
        arguments.input_dim,
        arguments.classes,
        hidden_units=(arguments.units,) * arguments.hidden_layers,
        dropout=arguments.dropout,
        gradient_checkpointing=checkpointing,
    )
    training.compile_classifier(model, keras.optimizers.Adam(1e-3), arguments.steps, jit_compile)
    return model, model.make_train_function()


def batches(arguments):
    from kerastrain.backend import tf

    generator = np.random.default_rng(0)
    features = generator.normal(size=(arguments.batch_size * 2, arguments.input_dim)).astype("float32")
    labels = generator.integers(0, arguments.classes, size=arguments.batch_size * 2)
    dataset = tf.data.Dataset.from_tensor_slices((features, labels)).repeat().batch(arguments.batch_size, drop_remainder=True)
    return iter(dataset.prefetch(2))


def measure(train_function, iterator, steps):
    """Runs one call of `steps` steps; returns (working memory in bytes, seconds per step)."""
    from kerastrain.backend import tf

    tf.config.experimental.reset_memory_stats("CPU:0")
    before = tf.config.experimental.get_memory_info("CPU:0")["current"]
    started = time.perf_counter()
    logs = train_function(iterator)
    float(logs["loss"])  # waits for the steps
    seconds = (time.perf_counter() - started) / steps
    peak = tf.config.experimental.get_memory_info("CPU:0")["peak"]
    return peak - before, seconds


def compare(arguments, jit_compile):
    contenders = {}
    for name, checkpointing in (("without", False), ("with", True)):
        model, train_function = build(arguments, checkpointing, jit_compile)
        iterator = batches(arguments)
        for _ in range(2):  # traces and compiles, then settles the allocator
            train_function(iterator)
        contenders[name] = (model, train_function, iterator)
    results = {name: {"memory": [], "seconds": []} for name in contenders}
    order = list(contenders)
    for round_index in range(arguments.rounds):
        for name in order if round_index % 2 == 0 else order[::-1]:
            _, train_function, iterator = contenders[name]
            memory, seconds = measure(train_function, iterator, arguments.steps)
            results[name]["memory"].append(memory)
            results[name]["seconds"].append(seconds)
    weights = sum(int(np.prod(variable.shape)) for variable in contenders["without"][0].trainable_variables) * 4
    return results, weights


def report_lines(arguments, jit_compile, results, weights):
    # One activation of a hidden layer: batch x units float32 values.
    activation = arguments.batch_size * arguments.units * 4
    without, with_ = results["without"], results["with"]
    memory = {name: min(values["memory"]) for name, values in results.items()}
    seconds = {name: min(values["seconds"]) for name, values in results.items()}
    lines = [
        f"## XLA (jit_compile) {'on' if jit_compile else 'off'}: {arguments.hidden_layers} hidden layers of "
        f"{arguments.units}, batch {arguments.batch_size}, {arguments.input_dim} inputs, dropout {arguments.dropout}, "
        f"Adam; {arguments.rounds} alternating rounds of {arguments.steps} steps",
        f"weights: {weights / MIB:,.0f} MiB (their gradients as much again); one hidden activation: {activation / MIB:,.1f} MiB",
        f"{'contender':<28}{'working memory MiB':>20}{'seconds per step':>18}",
    ]
    for label, name in (("without checkpointing", "without"), ("with checkpointing", "with")):
        lines.append(f"{label:<28}{memory[name] / MIB:>20,.1f}{seconds[name]:>18.3f}")
    lines.append(
        f"checkpointing: working memory x{memory['with'] / memory['without']:.2f} "
        f"({(memory['without'] - memory['with']) / MIB:,.1f} MiB less, "
        f"{(memory['without'] - memory['with']) / activation:.1f} hidden activations), "
        f"step time x{seconds['with'] / seconds['without']:.2f}"
    )
    lines.append(
        "every round, MiB: without "
        + ", ".join(f"{value / MIB:,.1f}" for value in without["memory"])
        + "; with "
        + ", ".join(f"{value / MIB:,.1f}" for value in with_["memory"])
    )
    lines.append(
        "every round, s per step: without "
        + ", ".join(f"{value:.3f}" for value in without["seconds"])
        + "; with "
        + ", ".join(f"{value:.3f}" for value in with_["seconds"])
    )
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--hidden-layers", type=int, default=8)
    parser.add_argument("--units", type=int, default=2048)
    parser.add_argument("--batch-size", type=int, default=1024)
    parser.add_argument("--input-dim", type=int, default=784)
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--dropout", type=float, default=0.2)
    parser.add_argument("--steps", type=int, default=2, help="training steps per timed call")
    parser.add_argument("--rounds", type=int, default=3, help="timed calls per contender, alternating")
    parser.add_argument("--jit-compile", choices=("on", "off", "both"), default="both")
    parser.add_argument("--output", default=RESULTS, help="results file; empty prints only")
    arguments = parser.parse_args()
    from kerastrain.backend import tf

    tf.get_logger().setLevel("ERROR")
    lines = [provenance.line(), "# python benchmarks/gradient_checkpointing.py " + " ".join(
        f"--{name.replace('_', '-')} {value}" for name, value in vars(arguments).items() if name != "output"
    )]  # fmt: skip
    print("\n".join(lines), flush=True)
    modes = {"on": [True], "off": [False], "both": [True, False]}[arguments.jit_compile]
    for jit_compile in modes:
        results, weights = compare(arguments, jit_compile)
        part = report_lines(arguments, jit_compile, results, weights)
        print("\n".join(part), flush=True)
        lines += part
    maximum_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines.append(f"# process peak RSS, all contenders together: {maximum_rss:,.0f} MiB")
    print(lines[-1])
    if arguments.output:
        with open(arguments.output, "w") as file:
            file.write("\n".join(lines) + "\n")
        print(f"wrote {arguments.output}")


if __name__ == "__main__":
    main()
