"""Helpers for the end-to-end tests: find the dln binary, write configs and arrays, run it."""
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

DLN = os.environ.get("DLN", "dln")

# A small run on Basu et al.'s mixture (format with name=...), shared by the suites.
SYNTHETIC = """
name = "{name}"
seed = 3
[data]
source = "synthetic.gaussian_mixture"
samples = 50
[model]
widths = [10, 6, 3]
[optimizer]
lr = 0.001
steps = 40
[record]
every = 10
"""


def run_dln(*args, cwd=None, timeout=300):
    """Runs dln with the given arguments; returns the CompletedProcess (text mode). The
    reproductions take a longer timeout: a minute or two alone, several on a loaded machine."""
    return subprocess.run([DLN, *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)


def write_config(path, text):
    Path(path).write_text(text)
    return Path(path)


def toml_list(values):
    return "[" + ", ".join(repr(v) if isinstance(v, str) else str(v) for v in values) + "]"


def read_metrics(run_dir):
    """metrics.csv as (header, float array of rows)."""
    lines = Path(run_dir, "metrics.csv").read_text().splitlines()
    header = lines[0].split(",")
    rows = np.array([[float(x) for x in line.split(",")] for line in lines[1:]])
    return header, rows


class TempDir:
    """A temporary directory as a context manager yielding a Path."""

    def __enter__(self):
        self._dir = tempfile.TemporaryDirectory(prefix="dln_test_")
        return Path(self._dir.name)

    def __exit__(self, *exc):
        self._dir.cleanup()


def kill_once_written(args, path, delay=0.0, timeout=600):
    """Starts dln with `args` and kills it with SIGKILL once `path` is on disk (`delay` seconds
    later); a dln that ends first (or outlives `timeout` seconds) is not waited for longer.
    Returns whether it was killed."""
    p = subprocess.Popen([DLN, *map(str, args)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    end = time.monotonic() + timeout
    while p.poll() is None and not Path(path).exists() and time.monotonic() < end:
        time.sleep(0.002)
    killed = p.poll() is None
    if killed:
        time.sleep(delay)
        p.send_signal(signal.SIGKILL)
    p.wait()
    return killed


def kill_at_first_checkpoint_then_resume(cfg, out, attempts=3):
    """Starts `dln run cfg --out out` and kills it with SIGKILL once its first checkpoint is on
    disk (a little later at each attempt, up to `attempts`), then runs it to the end. Returns
    (times killed, the last run's CompletedProcess)."""
    out = Path(out)
    check = out.parent / (out.name + ".partial") / "checkpoint.npz"
    killed = 0
    for _ in range(attempts):
        killed += kill_once_written(["run", cfg, "--out", out], check, delay=0.05 * killed)
        if out.exists():
            break
    return killed, run_dln("run", cfg, "--out", out)


def run_whole_then_killed_and_resumed(case, cfg, tmp):
    """Runs `cfg` uninterrupted into tmp/whole and, killed at its first checkpoint and resumed,
    into tmp/cut; asserts that it was killed, resumed and finished."""
    res = run_dln("run", cfg, "--out", tmp / "whole")
    case.assertEqual(res.returncode, 0, res.stderr)
    killed, res = kill_at_first_checkpoint_then_resume(cfg, tmp / "cut")
    case.assertGreater(killed, 0)
    case.assertEqual(res.returncode, 0, res.stderr)
    case.assertIn("resuming", res.stderr)
