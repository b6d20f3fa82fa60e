"""Where and when a benchmark ran: date, commit, machine and library versions.

Every benchmark prints `provenance.line()` first and stores `provenance.describe()`
in the JSON it writes, so that a table in the docs can say what it was measured
on. Nothing here imports TensorFlow: the versions come from the installed
packages' metadata.

Example:

```python
import provenance

print(provenance.line())
# measured 2026-11-21 15:03 UTC at commit b4dfb9d on AMD EPYC (2 logical CPUs, no GPU found), Linux ...
```
"""

import datetime
import importlib.metadata
import os
import platform
import shutil
import subprocess

REPOSITORY = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGES = ("tensorflow", "tf-keras", "keras")


def git_commit():
    """The repository's short commit, with `+changes` when the work tree differs from it."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPOSITORY, capture_output=True, text=True, check=True
        ).stdout.strip()
        changed = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=REPOSITORY, capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return commit + ("+changes" if changed else "")


def cpu_model():
    """The CPU's model name from /proc/cpuinfo, or what `platform` knows."""
    try:
        with open("/proc/cpuinfo") as file:
            for line in file:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def gpus():
    """The GPUs that `nvidia-smi` lists, or an empty list."""
    if shutil.which("nvidia-smi") is None:
        return []
    result = subprocess.run(
        ["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"], capture_output=True, text=True
    )
    return [name.strip() for name in result.stdout.splitlines() if name.strip()] if result.returncode == 0 else []


def describe():
    """The date, commit, machine and versions of this run.

    Returns:
        A dict with `date` (UTC), `commit`, `cpu`, `logical_cpus`, `gpus`,
        `system`, `python` and each of `PACKAGES`' installed version (or `None`).
    """
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = None
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": git_commit(),
        "cpu": cpu_model(),
        "logical_cpus": os.cpu_count(),
        "gpus": gpus(),
        "system": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        **versions,
    }


def line(description=None):
    """`describe()` as one comment line, to print before a benchmark's results."""
    facts = description or describe()
    devices = ", ".join(facts["gpus"]) if facts["gpus"] else "no GPU found"
    versions = ", ".join(f"{package} {facts[package]}" for package in PACKAGES if facts.get(package))
    return (
        f"# measured {facts['date']} at commit {facts['commit']} on {facts['cpu']} "
        f"({facts['logical_cpus']} logical CPUs, {devices}), {facts['system']}; Python {facts['python']}, {versions}"
    )


if __name__ == "__main__":
    print(line())
