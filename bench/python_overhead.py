"""The Python package's overhead on W1 (`small`, recording loss, fro and balance every step):
dln.run in memory against `dln run` on the same config, and a callback at every record against
a NumPy copy of the weights. Prints one JSON object; bench/run.py puts it in the table.

    PYTHONPATH=python /usr/bin/python3 bench/python_overhead.py [--repetitions N]
"""
import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "python"))
import dln  # noqa: E402

DLN = ROOT / "build" / "release" / "dln"
W1 = ROOT / "bench" / "configs" / "w1_small.toml"


def median_of(reps, fn):
    return statistics.median(fn() for _ in range(reps))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repetitions", type=int, default=5)
    reps = parser.parse_args().repetitions
    steps = 20000

    def cli():
        with tempfile.TemporaryDirectory() as tmp:
            start = time.perf_counter()
            subprocess.run([DLN, "run", W1, "--out", Path(tmp) / "r", "--jobs", "1"], check=True,
                           capture_output=True)
            whole = time.perf_counter() - start
            loop = json.loads((Path(tmp) / "r" / "summary.json").read_text())["wall_seconds"]
            return whole, loop

    def python(callback=None):
        start = time.perf_counter()
        run = dln.run(W1, jobs=1, callback=callback)
        return time.perf_counter() - start, run.summary["wall_seconds"]

    cli_whole = median_of(reps, lambda: cli()[0])
    cli_loop = median_of(reps, lambda: cli()[1])
    py_whole = median_of(reps, lambda: python()[0])
    py_loop = median_of(reps, lambda: python()[1])
    cb_loop = median_of(reps, lambda: python(lambda step, row, weights: None)[1])
    copy_loop = median_of(reps, lambda: python(
        lambda step, row, weights: [w.copy() for w in weights])[1])
    weights = dln.run(W1, optimizer__steps=1).weights
    n = 20000
    start = time.perf_counter()
    for _ in range(n):
        [w.copy() for w in weights]
    copy_us = (time.perf_counter() - start) / n * 1e6
    print(json.dumps({
        "steps": steps,
        "cli_steps_per_s": steps / cli_loop, "python_steps_per_s": steps / py_loop,
        "cli_whole_s": cli_whole, "python_whole_s": py_whole,
        "callback_us_per_record": (cb_loop - py_loop) / steps * 1e6,
        "callback_copy_us_per_record": (copy_loop - py_loop) / steps * 1e6,
        "numpy_copy_us": copy_us,
    }))


if __name__ == "__main__":
    main()
