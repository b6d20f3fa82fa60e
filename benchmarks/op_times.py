"""Sums a TensorFlow profile's op times by op type, to compare two setups.

`tf.profiler.experimental.start(LOGDIR)` ... `stop()` writes an XSpace file
under `LOGDIR/plugins/profile/`. This reads one or two such folders without
TensorBoard and prints, per op type, the total milliseconds and count, so that
the same ops can be set side by side (under parameter servers the same ops ran
slower, with no extra ops: see docs/design.md).

Usage:

    python benchmarks/parameter_server_overhead.py --mode default --no-ngrams --profile-dir /tmp/profile_default
    python benchmarks/parameter_server_overhead.py --mode parameter_server --workers 1 --no-ngrams --profile-dir /tmp/profile_ps
    python benchmarks/op_times.py /tmp/profile_default /tmp/profile_ps
"""

import argparse
import collections
import glob
import os


def op_times(profile_dir):
    """Total milliseconds and count of each op type in a profile folder.

    Args:
        profile_dir: the folder given to `tf.profiler.experimental.start`.

    Returns:
        Two `collections.Counter`s from op type to milliseconds and to count.
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from tensorflow.tsl.profiler.protobuf import xplane_pb2

    paths = sorted(glob.glob(os.path.join(profile_dir, "plugins", "profile", "*", "*.xplane.pb")))
    if not paths:
        raise SystemExit(f"No *.xplane.pb under {profile_dir}/plugins/profile/. Profile a run into it first.")
    space = xplane_pb2.XSpace()
    with open(paths[-1], "rb") as file:
        space.ParseFromString(file.read())
    milliseconds, counts = collections.Counter(), collections.Counter()
    for plane in space.planes:
        names = {key: metadata.name for key, metadata in plane.event_metadata.items()}
        for line in plane.lines:
            for event in line.events:
                name = names.get(event.metadata_id, "")
                # Executed ops are named "node/path:OpType"; other events are not.
                if "/" in name and ":" in name:
                    op_type = name.rsplit(":", 1)[1]
                    milliseconds[op_type] += event.duration_ps / 1e9
                    counts[op_type] += 1
    return milliseconds, counts


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("profile_dirs", nargs="+", help="One or two profile folders.")
    parser.add_argument("--top", type=int, default=25, help="Op types to print. Defaults to 25.")
    arguments = parser.parse_args()
    tables = [op_times(folder) for folder in arguments.profile_dirs]
    total = collections.Counter()
    for milliseconds, _ in tables:
        total.update(milliseconds)
    header = "".join(f" | {os.path.basename(os.path.normpath(folder))[:18]:>18} ms | {'n':>6}" for folder in arguments.profile_dirs)
    print(f"{'op type':<36}{header}")
    for op_type, _ in total.most_common(arguments.top):
        cells = "".join(f" | {milliseconds[op_type]:>21.1f} | {counts[op_type]:>6d}" for milliseconds, counts in tables)
        print(f"{op_type[:36]:<36}{cells}")
    sums = "".join(f" | {sum(milliseconds.values()):>21.1f} | {sum(counts.values()):>6d}" for milliseconds, counts in tables)
    print(f"{'all ops':<36}{sums}")


if __name__ == "__main__":
    main()
