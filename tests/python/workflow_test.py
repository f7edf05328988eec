"""Long runs and real workflows end to end: [select] aggregates and re-drawn inits, data.path
lists, log-spaced records, snapshots, checkpoints and resuming, progress lines, sweeps from the
command line and the model.depth / model.width keys."""
import csv
import gzip
import json
import os
import random
import shutil
import signal
import subprocess
import time
import unittest
from pathlib import Path

import numpy as np

from support import (SYNTHETIC, DLN, TempDir, kill_once_written, read_metrics, run_dln,
                     write_config)

ROOT = Path(__file__).resolve().parents[2]
# Under the sanitizers dln runs some 20x slower: the long runs here take a tenth of the steps.
SCALE = 10 if os.environ.get("DLN_SANITIZED") == "1" else 1


def steps(n):
    return max(1, n // SCALE)

def table(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def weights(run_dir):
    w = Path(run_dir, "weights")
    return [np.load(w / f"W{i}.npy") for i in range(1, len(list(w.glob("W*.npy"))) + 1)]


class SelectAggregates(unittest.TestCase):
    GRID = SYNTHETIC.format(name="agg") + """
[sweep]
"optimizer.lr" = [0.001, 0.01, 0.1, 2.0]
"init.seed" = [1, 2, 3]
"model.widths" = [[10, 6, 3], [10, 3]]
[select]
over = ["optimizer.lr"]
across = ["init.seed"]
aggregate = "{aggregate}"
then_seeds = [7, 8]
[select.then]
"optimizer.steps" = 60
"""

    def check(self, aggregate, reduce):
        with TempDir() as tmp:
            cfg = write_config(tmp / "c.toml", self.GRID.format(aggregate=aggregate))
            out = run_dln("sweep", cfg, "--out", tmp / "s", "--jobs", "2")
            self.assertEqual(out.returncode, 0, out.stderr)
            grid = table(tmp / "s" / "grid" / "runs.csv")
            best = table(tmp / "s" / "best" / "runs.csv")
            selection = table(tmp / "s" / "selection.csv")
            self.assertEqual(len(grid), 24)
            self.assertEqual(len(selection), 8)
            # The selection computed here from the grid's table, independently of dln's.
            for widths in ("10-6-3", "10-3"):
                scores = {}
                for lr in ("0.001", "0.01", "0.1", "2"):
                    rows = [g for g in grid if g["model.widths"] == widths
                            and g["optimizer.lr"] == lr]
                    self.assertEqual(len(rows), 3)
                    ok = [float(g["loss"]) for g in rows if g["status"] != "diverged"]
                    if aggregate == "min":
                        scores[lr] = min(ok) if ok else np.inf
                    else:
                        scores[lr] = reduce(ok) if len(ok) == 3 else np.inf
                winner = min(scores, key=scores.get)  # the first of equal scores, as dln's rule
                self.assertTrue(np.isfinite(scores[winner]))
                # lr = 2 diverges for every seed and is never chosen.
                self.assertTrue(np.isinf(scores["2"]))
                chosen = [s for s in selection if s["model.widths"] == widths
                          and s["selected"] == "1"]
                self.assertEqual([c["optimizer.lr"] for c in chosen], [winner])
                self.assertAlmostEqual(float(chosen[0][f"loss_{aggregate}"]), scores[winner],
                                       delta=1e-12 * scores[winner])
                long = [b for b in best if b["model.widths"] == widths]
                self.assertEqual([b["init.seed"] for b in long], ["7", "8"])
                self.assertEqual({b["optimizer.lr"] for b in long}, {winner})
                self.assertEqual({b["steps"] for b in long}, {"60"})
            # The long phase re-draws the init: its run equals a plain run with that seed.
            b = best[0]
            plain = write_config(tmp / "p.toml", SYNTHETIC.format(name="plain"))
            out = run_dln("run", plain, "--out", tmp / "p", "--set", "init.seed=8",
                          "--set", f"optimizer.lr={b['optimizer.lr']}",
                          "--set", "optimizer.steps=60",
                          "--set", "model.widths=[" + b["model.widths"].replace("-", ",") + "]")
            self.assertEqual(out.returncode, 0, out.stderr)
            run8 = [x for x in best if x["model.widths"] == b["model.widths"]
                    and x["init.seed"] == "8"][0]
            for a, c in zip(weights(tmp / "p"), weights(tmp / "s" / "best" / run8["run"])):
                np.testing.assert_array_equal(a, c)

    def test_mean_over_restarts(self):
        self.check("mean", lambda v: float(np.mean(v)))

    def test_median_over_restarts(self):
        self.check("median", lambda v: float(np.median(v)))

    def test_min_over_restarts(self):
        self.check("min", min)

    def test_ties_go_to_the_first_value_given(self):
        # stop.loss = 1e-300 never fires: both candidates train alike, to the same loss.
        with TempDir() as tmp:
            for values, first in (("[1e-300, 0.0]", "1e-300"), ("[0.0, 1e-300]", "0")):
                cfg = write_config(tmp / "t.toml", SYNTHETIC.format(name="tie") +
                                   f'[sweep]\n"stop.loss" = {values}\n[select]\n')
                out = run_dln("sweep", cfg, "--out", tmp / "t", "--force")
                self.assertEqual(out.returncode, 0, out.stderr)
                sel = table(tmp / "t" / "selection.csv")
                self.assertEqual(sel[0]["loss_min"], sel[1]["loss_min"])
                self.assertEqual(table(tmp / "t" / "best" / "runs.csv")[0]["stop.loss"], first)

    def test_a_loss_that_rose_above_its_start_is_diverged_in_the_grid(self):
        # GD at lr 0.1 on this data grows for a few steps without reaching 1e12 x the start.
        text = SYNTHETIC.format(name="rise").replace("steps = 40", "steps = 3").replace(
            "every = 10", "every = 1")
        with TempDir() as tmp:
            cfg = write_config(tmp / "r.toml", text + '[sweep]\n"optimizer.lr" = [0.001, 0.1]\n'
                               '[select]\n')
            out = run_dln("sweep", cfg, "--out", tmp / "s")
            self.assertEqual(out.returncode, 0, out.stderr)
            grid = {g["optimizer.lr"]: g for g in table(tmp / "s" / "grid" / "runs.csv")}
            _, rows = read_metrics(tmp / "s" / "grid" / grid["0.1"]["run"])
            self.assertTrue(np.isfinite(rows[-1, 1]) and rows[-1, 1] > rows[0, 1],
                            "the test's premise: the loss rose and stayed finite")
            self.assertLess(rows[-1, 1], 1e12 * rows[0, 1])
            self.assertEqual(grid["0.1"]["status"], "diverged")
            self.assertEqual(grid["0.001"]["status"], "completed")
            summary = json.loads((tmp / "s" / "grid" / grid["0.1"]["run"] /
                                  "summary.json").read_text())
            self.assertEqual(summary["status"], "diverged")
            # Outside a [select] grid the same run completes (stop.rise is off by default).
            out = run_dln("run", write_config(tmp / "one.toml", text), "--out", tmp / "one",
                          "--set", "optimizer.lr=0.1")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(json.loads((tmp / "one" / "summary.json").read_text())["status"],
                             "completed")

    def test_bad_select_keys_are_refused(self):
        base = SYNTHETIC.format(name="bad") + '[sweep]\n"optimizer.lr" = [0.001]\nseed = [1]\n'
        cases = [
            ('[select]\naggregate = "max"\nacross = ["seed"]\n', "select.aggregate"),
            ('[select]\naggregate = "mean"\n', "select.aggregate"),
            ('[select]\nover = ["optimizer.lr"]\nacross = ["init.seed"]\n', "select.across"),
            ('[select]\nover = ["optimizer.lr"]\nacross = ["optimizer.lr"]\n', "select.across"),
            ('[select]\nthen_seeds = [-1]\n', "select.then_seeds"),
            ('[select]\nthen_seeds = []\n', "select.then_seeds"),
        ]
        with TempDir() as tmp:
            for text, key in cases:
                cfg = write_config(tmp / "b.toml", base + text)
                out = run_dln("sweep", cfg, "--out", tmp / "o")
                self.assertEqual(out.returncode, 2, text + out.stderr)
                self.assertIn(key, out.stderr)
                self.assertEqual(len(out.stderr.strip().splitlines()), 1, out.stderr)
                self.assertFalse((tmp / "o").exists())


class LibsvmPaths(unittest.TestCase):
    def test_data_path_takes_a_list_of_gzipped_files(self):
        rng = np.random.default_rng(0)
        with TempDir() as tmp:
            files = []
            for b in range(2):
                lines = []
                for i in range(20):
                    cls = 1 + (i % 3)
                    feats = " ".join(f"{j + 1}:{rng.standard_normal():.6f}" for j in range(4))
                    lines.append(f"{cls};{10.0 * b + i:.1f} {feats}")
                path = tmp / f"b{b}.dat.gz"
                with gzip.open(path, "wt") as f:
                    f.write("\n".join(lines) + "\n")
                files.append(path.name)
            body = """
[model]
widths = [4, 1]
[optimizer]
lr = 0.01
steps = 5
"""
            listed = "[" + ", ".join(f'"{f}"' for f in files) + "]"
            a = write_config(tmp / "a.toml", f'name = "a"\n[data]\nsource = "libsvm"\n'
                             f"path = {listed}\nclasses = [1]\nrecord = true\n" + body)
            b = write_config(tmp / "b.toml", f'name = "b"\n[data]\nsource = "libsvm"\n'
                             f"paths = {listed}\nclasses = [1]\n" + body)
            ra, rb = run_dln("run", a, "--out", tmp / "ra"), run_dln("run", b, "--out", tmp / "rb")
            self.assertEqual(ra.returncode, 2, "data.record is not a key")
            a.write_text(a.read_text().replace("record = true\n", ""))
            ra = run_dln("run", a, "--out", tmp / "ra")
            self.assertEqual(ra.returncode, 0, ra.stderr)
            self.assertEqual(rb.returncode, 0, rb.stderr)
            _, ma = read_metrics(tmp / "ra")
            _, mb = read_metrics(tmp / "rb")
            np.testing.assert_array_equal(ma[:, :-1], mb[:, :-1])
            out = run_dln("run", a, "--out", tmp / "rx", "--set", "record.data=true")
            self.assertEqual(out.returncode, 0, out.stderr)
            Y = np.load(tmp / "rx" / "data_Y.npy")  # class 1: 7 of each file's 20 lines
            np.testing.assert_array_equal(Y[:, 0], [float(i) for i in range(0, 20, 3)] +
                                          [10.0 + i for i in range(0, 20, 3)])
            # A list for another source, or both keys: exit 2 naming the key.
            c = write_config(tmp / "c.toml", f'name = "c"\n[data]\nsource = "npz"\n'
                             f"path = {listed}\n" + body)
            out = run_dln("run", c, "--out", tmp / "rc")
            self.assertEqual(out.returncode, 2)
            self.assertIn("data.path", out.stderr)
            d = write_config(tmp / "d.toml", a.read_text().replace(
                "classes", f"paths = {listed}\nclasses"))
            out = run_dln("run", d, "--out", tmp / "rd")
            self.assertEqual(out.returncode, 2)
            self.assertIn("data.path", out.stderr)


class DepthAndWidth(unittest.TestCase):
    SUGAR = SYNTHETIC.format(name="dw").replace("widths = [10, 6, 3]", "depth = 3\nwidth = 6")

    def test_depth_and_width_build_the_widths_from_the_data(self):
        with TempDir() as tmp:
            a = run_dln("run", write_config(tmp / "a.toml", self.SUGAR), "--out", tmp / "a")
            self.assertEqual(a.returncode, 0, a.stderr)
            b = run_dln("run", write_config(tmp / "b.toml", SYNTHETIC.format(name="dw")),
                        "--out", tmp / "b", "--set", "model.widths=[10, 6, 6, 3]")
            self.assertEqual(b.returncode, 0, b.stderr)
            for x, y in zip(weights(tmp / "a"), weights(tmp / "b")):
                np.testing.assert_array_equal(x, y)
            self.assertEqual(len(weights(tmp / "a")), 3)
            summary = json.loads((tmp / "a" / "summary.json").read_text())
            self.assertEqual(summary["widths"], [10, 6, 6, 3])

    def test_depth_and_width_are_separate_sweep_axes(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "a.toml", self.SUGAR)
            out = run_dln("sweep", cfg, "--out", tmp / "s", "--sweep", "model.depth=1..3",
                          "--sweep", "model.width=2,5")
            self.assertEqual(out.returncode, 0, out.stderr)
            rows = table(tmp / "s" / "runs.csv")
            self.assertEqual([(r["model.depth"], r["model.width"], r["depth"]) for r in rows],
                             [("1", "2", "1"), ("1", "5", "1"), ("2", "2", "2"), ("2", "5", "2"),
                              ("3", "2", "3"), ("3", "5", "3")])
            for r in rows:
                w = weights(tmp / "s" / r["run"])
                self.assertEqual(w[0].shape[1], 10)
                self.assertEqual(w[-1].shape[0], 3)
                for layer in w[:-1]:
                    self.assertEqual(layer.shape[0], int(r["model.width"]))

    def test_depth_with_explicit_widths_or_without_a_width_is_refused(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "a.toml", self.SUGAR)
            for override, key in (("model.widths=[10, 3]", "model.depth"),
                                  ("model.width=0", "model.width"),
                                  ("model.depth=-1", "model.depth")):
                out = run_dln("run", cfg, "--out", tmp / "o", "--set", override)
                self.assertEqual(out.returncode, 2, override)
                self.assertIn(key, out.stderr)
                self.assertFalse((tmp / "o").exists())
            plain = write_config(tmp / "b.toml", SYNTHETIC.format(name="dw"))
            out = run_dln("run", plain, "--out", tmp / "o", "--set", "model.width=4")
            self.assertEqual(out.returncode, 2)
            self.assertIn("model.width", out.stderr)


LONG = """
name = "long"
seed = 3
[data]
source = "synthetic.gaussian_mixture"
samples = 2000
dim = 60
targets = 10
[model]
widths = [60, 50, 50, 10]
[optimizer]
kind = "{kind}"
lr = {lr}
steps = {steps}
[record]
every = 500
checkpoint_every = {checkpoint}
weights_every = "log"
probes = ["loss", "fro", "balance", "loglog_slope", "basu_bound", "balance_drift", "time"]
"""


def without_time_column(path):
    lines = Path(path).read_text().splitlines()
    keep = [i for i, c in enumerate(lines[0].split(",")) if c != "time"]
    return [",".join(line.split(",")[i] for i in keep) for line in lines]


def summary_without_clock(path):
    s = json.loads(Path(path).read_text())
    for k in ("wall_seconds", "steps_per_second"):
        s.pop(k)
    s["final"].pop("time", None)
    return s


class Checkpoints(unittest.TestCase):
    def assert_same_run(self, a, b):
        self.assertEqual(without_time_column(a / "metrics.csv"),
                         without_time_column(b / "metrics.csv"))
        self.assertEqual(summary_without_clock(a / "summary.json"),
                         summary_without_clock(b / "summary.json"))
        for x, y in zip(sorted((a / "weights").iterdir()), sorted((b / "weights").iterdir())):
            self.assertEqual(x.read_bytes(), y.read_bytes(), x.name)
        if (a / "snapshots").is_dir():
            names = sorted(p.name for p in (a / "snapshots").iterdir())
            self.assertEqual(names, sorted(p.name for p in (b / "snapshots").iterdir()))
            for n in names:
                self.assertEqual((a / "snapshots" / n).read_bytes(),
                                 (b / "snapshots" / n).read_bytes(), n)

    def kill_midway(self, args, out, seconds, rng, kills=1):
        """Runs dln with `args` and kills it with SIGKILL at a random point while it works,
        `kills` times, each time after a checkpoint is on disk. `seconds` is how long an
        uninterrupted run took: a kill that comes too late (the run finished: the machine is
        faster now) or too early (no checkpoint yet) is tried again, sooner or later."""
        scale, done = 1.0, 0
        for attempt in range(12):
            if done == kills:
                return
            at = scale * rng.uniform(0.15, 0.35) * seconds
            p = subprocess.Popen([DLN, *map(str, args)], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            time.sleep(at)
            p.send_signal(signal.SIGKILL)
            p.wait()
            partial = Path(str(out) + ".partial")
            if out.exists():  # finished before the kill: start again and kill sooner
                shutil.rmtree(out)
                shutil.rmtree(partial, ignore_errors=True)
                scale *= 0.5
            elif any(partial.rglob("checkpoint.npz")):
                done += 1
                print(f"killed after {at:.2f} s", flush=True)
            else:
                scale *= 1.5
        self.fail(f"could not kill {args} midway {kills} times")

    def kill_twice_and_finish(self, cfg, out, seconds, rng):
        """Kills the run with SIGKILL at a random point, twice, then lets it finish; returns
        the last run's stderr (which says where it resumed)."""
        self.kill_midway(["run", cfg, "--out", out], out, seconds, rng, kills=2)
        last = run_dln("run", cfg, "--out", out)
        self.assertEqual(last.returncode, 0, last.stderr)
        return [last.stderr]

    def test_a_run_killed_twice_with_sigkill_resumes_bit_for_bit(self):
        rng = random.Random()
        for kind, lr in (("adam", 0.001), ("momentum", 0.0001)):
            with TempDir() as tmp:
                cfg = write_config(tmp / "c.toml", LONG.format(
                kind=kind, lr=lr, steps=steps(40000), checkpoint=steps(1000)))
                start = time.monotonic()
                out = run_dln("run", cfg, "--out", tmp / "whole")
                seconds = time.monotonic() - start
                self.assertEqual(out.returncode, 0, out.stderr)
                self.assertGreater(seconds, 0.5, "the run must last long enough to be killed")
                said = self.kill_twice_and_finish(cfg, tmp / "killed", seconds, rng)
                self.assertTrue(any("resuming from its checkpoint" in s for s in said), said)
                self.assert_same_run(tmp / "whole", tmp / "killed")
                self.assertFalse((tmp / "killed" / "checkpoint.npz").exists())
                self.assertFalse((tmp / "killed.partial").exists())

    def test_a_flow_resumes_bit_for_bit(self):
        text = LONG.format(kind="flow", lr=1, steps=1, checkpoint=20).replace(
            "lr = 1\nsteps = 1\n", f"time = {6.0 / SCALE}\n").replace(
            'every = 500', 'every = 0.01').replace('weights_every = "log"\n', "")
        with TempDir() as tmp:
            cfg = write_config(tmp / "f.toml", text)
            start = time.monotonic()
            out = run_dln("run", cfg, "--out", tmp / "whole")
            seconds = time.monotonic() - start
            self.assertEqual(out.returncode, 0, out.stderr)
            self.kill_midway(["run", cfg, "--out", tmp / "killed"], tmp / "killed", seconds,
                             random.Random())
            out = run_dln("run", cfg, "--out", tmp / "killed")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("resuming", out.stderr)
            self.assert_same_run(tmp / "whole", tmp / "killed")

    def test_another_config_or_force_starts_over(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "c.toml", LONG.format(kind="gd", lr=0.001, steps=steps(20000),
                                                     checkpoint=steps(500)))
            # Killed once the first checkpoint is on disk.
            kill_once_written(["run", cfg, "--out", tmp / "o"],
                              tmp / "o.partial" / "checkpoint.npz")
            self.assertTrue((tmp / "o.partial" / "checkpoint.npz").exists())
            # The checkpoint holds the state under the names docs/config.md gives.
            with np.load(tmp / "o.partial" / "checkpoint.npz") as z:
                self.assertTrue({"W.1", "W.2", "W.3", "steps", "csv_offset"} <= set(z.files))
                self.assertEqual(int(z["steps"][0, 0]) % steps(500), 0)
            out = run_dln("run", cfg, "--out", tmp / "o", "--set", "optimizer.steps=100")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertNotIn("resuming", out.stderr)
            self.assertEqual(read_metrics(tmp / "o")[1][-1, 0], 100)
            # A foreign file named like the partial directory is never touched.
            (tmp / "p.partial").write_text("mine")
            out = run_dln("run", cfg, "--out", tmp / "p", "--set", "optimizer.steps=10")
            self.assertEqual(out.returncode, 2)
            self.assertEqual((tmp / "p.partial").read_text(), "mine")

    def killed_with_a_checkpoint(self, cfg, out):
        partial = Path(str(out) + ".partial")
        kill_once_written(["run", cfg, "--out", out], partial / "checkpoint.npz")
        self.assertTrue((partial / "checkpoint.npz").exists())
        return partial

    def test_what_a_killed_run_was_writing_is_not_left_behind(self):
        # A kill while a file is written leaves its temporary sibling (".NAME.tmp-PID-N"); the
        # resumed run removes those of its own files and only those.
        with TempDir() as tmp:
            cfg = write_config(tmp / "c.toml", LONG.format(kind="gd", lr=0.001, steps=steps(20000),
                                                           checkpoint=steps(200)))
            out = run_dln("run", cfg, "--out", tmp / "whole")
            self.assertEqual(out.returncode, 0, out.stderr)
            partial = self.killed_with_a_checkpoint(cfg, tmp / "a")
            stale = [partial / ".metrics.csv.tmp-4000000-0", partial / "..dln.tmp-4000000-1",
                     partial / "snapshots" / ".step_00100.npz.tmp-4000000-2",
                     partial / "weights" / ".W1.npy.tmp-4000000-3"]
            (partial / "weights").mkdir(exist_ok=True)
            for f in stale:
                f.write_bytes(b"half")
            out = run_dln("run", cfg, "--out", tmp / "a")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("resuming", out.stderr)
            for f in stale:
                self.assertFalse((tmp / "a" / f.relative_to(partial)).exists(), f.name)
            self.assert_same_run(tmp / "whole", tmp / "a")
            # A name that only looks like one (no process id) is not dln's: no resume.
            partial = self.killed_with_a_checkpoint(cfg, tmp / "b")
            (partial / ".metrics.csv.tmp-mine").write_text("mine")
            out = run_dln("run", cfg, "--out", tmp / "b")
            self.assertEqual(out.returncode, 2)
            self.assertIn(".metrics.csv.tmp-mine", out.stderr)
            self.assertEqual((partial / ".metrics.csv.tmp-mine").read_text(), "mine")

    def test_a_sweep_killed_while_writing_is_resumed_without_its_temporaries(self):
        text = LONG.format(kind="gd", lr=0.001, steps=steps(20000), checkpoint=steps(500)) + \
            '[sweep]\n"optimizer.lr" = [0.001, 0.0005]\n'
        with TempDir() as tmp:
            cfg = write_config(tmp / "s.toml", text)
            out = run_dln("sweep", cfg, "--out", tmp / "whole")
            self.assertEqual(out.returncode, 0, out.stderr)
            partial = tmp / "killed.partial"
            kill_once_written(["sweep", cfg, "--out", tmp / "killed"],
                              partial / "000" / "checkpoint.npz")
            self.assertTrue((partial / "000" / "checkpoint.npz").exists())
            stale = [partial / ".progress.json.tmp-4000000-0", partial / ".runs.csv.tmp-4000000-1",
                     partial / "000" / "snapshots" / ".step_00001.npz.tmp-4000000-2",
                     partial / "000" / ".checkpoint.npz.tmp-4000000-3"]
            for f in stale:
                f.write_bytes(b"half")
            out = run_dln("sweep", cfg, "--out", tmp / "killed")
            self.assertEqual(out.returncode, 0, out.stderr)
            for f in stale:
                self.assertFalse((tmp / "killed" / f.relative_to(partial)).exists(), f.name)
            for run in ("000", "001"):
                self.assert_same_run(tmp / "whole" / run, tmp / "killed" / run)

    def test_what_dln_did_not_write_in_a_partial_directory_is_never_touched(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "c.toml", LONG.format(kind="gd", lr=0.001, steps=steps(20000),
                                                           checkpoint=steps(200)))
            # A user's file beside the run's files: no resume, no replacement, kept.
            partial = self.killed_with_a_checkpoint(cfg, tmp / "a")
            (partial / "notes.txt").write_text("mine")
            for extra in ([], ["--force"], ["--set", "optimizer.steps=10"]):
                out = run_dln("run", cfg, "--out", tmp / "a", *extra)
                self.assertEqual(out.returncode, 2, extra)
                self.assertIn("notes.txt", out.stderr)
                self.assertEqual((partial / "notes.txt").read_text(), "mine")
            # metrics.csv replaced by a link to a user's file: not followed, not truncated.
            partial = self.killed_with_a_checkpoint(cfg, tmp / "b")
            (tmp / "precious.csv").write_text("keep me\n")
            (partial / "metrics.csv").unlink()
            (partial / "metrics.csv").symlink_to(tmp / "precious.csv")
            out = run_dln("run", cfg, "--out", tmp / "b")
            self.assertEqual(out.returncode, 2)
            self.assertIn("symbolic link", out.stderr)
            self.assertEqual((tmp / "precious.csv").read_text(), "keep me\n")
            # A killed sweep's partial directory is not a run's: `dln run` leaves it alone.
            sweep = write_config(tmp / "s.toml", LONG.format(
                kind="gd", lr=0.001, steps=steps(20000), checkpoint=steps(200)) +
                '[sweep]\n"optimizer.lr" = [0.001, 0.0005]\n')
            p = subprocess.Popen([DLN, "sweep", str(sweep), "--out", str(tmp / "c"), "--jobs", "1"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for _ in range(2000):
                if list((tmp / "c.partial").glob("*/checkpoint.npz")):
                    break
                time.sleep(0.005)
            p.kill()
            p.wait()
            out = run_dln("run", cfg, "--out", tmp / "c")
            self.assertEqual(out.returncode, 2)
            self.assertIn("c.partial: holds ", out.stderr)
            self.assertIn("which is not a file of a dln run", out.stderr)
            self.assertTrue((tmp / "c.partial" / "points.txt").exists())
            out = run_dln("sweep", sweep, "--out", tmp / "c", "--jobs", "1")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("resuming", out.stderr)

    def test_a_metrics_file_with_other_columns_is_not_continued(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "c.toml", LONG.format(kind="gd", lr=0.001, steps=steps(20000),
                                                           checkpoint=steps(200)))
            partial = self.killed_with_a_checkpoint(cfg, tmp / "a")
            text = (partial / "metrics.csv").read_text()
            (partial / "metrics.csv").write_text(text.replace("step,loss", "step,other", 1))
            out = run_dln("run", cfg, "--out", tmp / "a")
            self.assertEqual(out.returncode, 2)
            self.assertIn("checkpoint.npz: cannot be continued (metrics.csv was started with "
                          "other columns); --force starts the run over", out.stderr)
            out = run_dln("run", cfg, "--out", tmp / "a", "--force")
            self.assertEqual(out.returncode, 0, out.stderr)

    def test_a_sweep_resumes_its_unfinished_runs_from_their_checkpoints(self):
        text = LONG.format(kind="gd", lr=0.001, steps=steps(20000),
                                                     checkpoint=steps(500)) + \
            '[sweep]\n"optimizer.lr" = [0.001, 0.0005]\n'
        with TempDir() as tmp:
            cfg = write_config(tmp / "s.toml", text)
            start = time.monotonic()
            out = run_dln("sweep", cfg, "--out", tmp / "whole", "--jobs", "2")
            seconds = time.monotonic() - start
            self.assertEqual(out.returncode, 0, out.stderr)
            self.kill_midway(["sweep", cfg, "--out", tmp / "killed", "--jobs", "2"],
                             tmp / "killed", seconds, random.Random())
            out = run_dln("sweep", cfg, "--out", tmp / "killed", "--jobs", "2")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("resuming", out.stderr)
            self.assertEqual((tmp / "whole" / "runs.csv").read_text(),
                             (tmp / "killed" / "runs.csv").read_text())
            for run in ("000", "001"):
                self.assert_same_run(tmp / "whole" / run, tmp / "killed" / run)

    def test_bad_checkpoint_and_snapshot_values_are_refused(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "c.toml", SYNTHETIC.format(name="c"))
            for bad in ("record.checkpoint_every=-1", "record.checkpoint_every=\"often\"",
                        "record.weights_every=-3", "record.weights_every=0.5",
                        "record.weights_every=\"lin\"", "record.weights_every=1e300"):
                out = run_dln("run", cfg, "--out", tmp / "o", "--set", bad)
                self.assertEqual(out.returncode, 2, bad)
                self.assertIn(bad.split("=")[0], out.stderr)
                self.assertEqual(len(out.stderr.strip().splitlines()), 1, out.stderr)
                self.assertFalse((tmp / "o").exists())


class Snapshots(unittest.TestCase):
    def test_snapshots_hold_the_layers_at_their_steps(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "c.toml", SYNTHETIC.format(name="snap"))
            out = run_dln("run", cfg, "--out", tmp / "s", "--set", "record.weights_every=15")
            self.assertEqual(out.returncode, 0, out.stderr)
            names = sorted(p.name for p in (tmp / "s" / "snapshots").iterdir())
            self.assertEqual(names, ["step_00.npz", "step_15.npz", "step_30.npz", "step_40.npz"])
            # Independently: a run stopped at that step ends with the snapshot's layers.
            for step in (15, 30):
                out = run_dln("run", cfg, "--out", tmp / f"r{step}", "--set",
                              f"optimizer.steps={step}")
                self.assertEqual(out.returncode, 0, out.stderr)
                with np.load(tmp / "s" / "snapshots" / f"step_{step}.npz") as z:
                    self.assertEqual(sorted(z.files), ["W1", "W2"])
                    for i, w in enumerate(weights(tmp / f"r{step}"), 1):
                        np.testing.assert_array_equal(z[f"W{i}"], w)
            with np.load(tmp / "s" / "snapshots" / "step_40.npz") as z:
                for i, w in enumerate(weights(tmp / "s"), 1):
                    np.testing.assert_array_equal(z[f"W{i}"], w)
            # "log": the steps record.every = "log" records at.
            out = run_dln("run", cfg, "--out", tmp / "l", "--set", 'record.weights_every="log"',
                          "--set", "record.per_decade=4")
            self.assertEqual(out.returncode, 0, out.stderr)
            steps = sorted(int(p.name[5:7]) for p in (tmp / "l" / "snapshots").iterdir())
            self.assertEqual(steps, [0, 1, 2, 3, 6, 10, 18, 32, 40])

    def test_a_run_that_stops_early_keeps_its_last_state(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "c.toml", SYNTHETIC.format(name="early"))
            out = run_dln("run", cfg, "--out", tmp / "s", "--set", "record.weights_every=100",
                          "--set", "optimizer.steps=1000", "--set", "optimizer.lr=0.5")
            self.assertEqual(out.returncode, 0, out.stderr)
            summary = json.loads((tmp / "s" / "summary.json").read_text())
            self.assertEqual(summary["status"], "diverged")
            last = f"step_{summary['steps']:04d}.npz"
            self.assertIn(last, [p.name for p in (tmp / "s" / "snapshots").iterdir()])


def stderr_through_a_terminal(args):
    """Runs dln with stderr on a pseudo-terminal; returns (returncode, stdout, what the
    terminal received)."""
    import pty
    master, slave = pty.openpty()
    p = subprocess.Popen([DLN, *map(str, args)], stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the other end closed
            break
        if not chunk:
            break
        seen += chunk
    out = p.communicate()[0]
    os.close(master)
    return p.returncode, out.decode(), seen.decode()


class Progress(unittest.TestCase):
    def test_a_terminal_gets_one_updating_line_and_a_pipe_gets_none(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "c.toml", LONG.format(kind="gd", lr=0.001, steps=steps(30000),
                                                           checkpoint=0))
            code, _, seen = stderr_through_a_terminal(["run", cfg, "--out", tmp / "t"])
            self.assertEqual(code, 0, seen)
            # A step loop that lasted long enough for a line (one is due after 0.25 s, checked
            # at the end of stretches of at most about 0.2 s); the process's own start-up
            # (the data, the statistics) does not count.
            loop = json.loads((tmp / "t" / "summary.json").read_text())["wall_seconds"]
            if loop > 0.6:
                self.assertIn("\r", seen)
                self.assertRegex(seen, rf"dln: long  step \d+/{steps(30000)} \(\d+%\)  "
                                       r".* steps/s  ETA .*  loss ")
                self.assertNotIn("\n", seen.replace("\r\n", ""), "one line, rewritten")
            piped = run_dln("run", cfg, "--out", tmp / "p")
            self.assertEqual(piped.returncode, 0, piped.stderr)
            self.assertEqual(piped.stderr, "")
            # The metrics are the same with or without the line (the clock aside).
            self.assertEqual(without_time_column(tmp / "t" / "metrics.csv"),
                             without_time_column(tmp / "p" / "metrics.csv"))
            # --quiet: nothing, even on a terminal.
            code, _, seen = stderr_through_a_terminal(["run", cfg, "--out", tmp / "q", "--quiet"])
            self.assertEqual(code, 0)
            self.assertEqual(seen, "")

    def test_progress_prints_plain_lines_for_logs(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "c.toml", SYNTHETIC.format(name="plain"))
            out = run_dln("run", cfg, "--out", tmp / "r", "--progress")
            self.assertEqual(out.returncode, 0, out.stderr)
            lines = out.stderr.splitlines()
            self.assertTrue(lines and "\r" not in out.stderr, out.stderr)
            self.assertRegex(lines[-1], r"^dln: plain  step 40/40 \(100%\)  .* steps/s  ETA 0 s"
                                        r"  loss [0-9.e+-]+$")
            out = run_dln("sweep", cfg, "--out", tmp / "s", "--progress", "--sweep",
                          "optimizer.lr=0.001,0.002,5.0")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertRegex(out.stderr.splitlines()[-1],
                             r"^dln: s  runs 3/3  0 running  1 diverged  .* runs/s  ETA 0 s$")
            self.assertEqual(run_dln("run", cfg, "--out", tmp / "x", "--progress",
                                     "--quiet").returncode, 2)

    def test_a_sweep_keeps_progress_json_current_while_it_works(self):
        text = LONG.format(kind="gd", lr=0.001, steps=steps(4000), checkpoint=0) + \
            '[sweep]\n"optimizer.lr" = [0.001, 0.0009, 0.0008, 0.0007, 0.0006, 0.0005]\n'
        with TempDir() as tmp:
            cfg = write_config(tmp / "s.toml", text)
            p = subprocess.Popen([DLN, "sweep", str(cfg), "--out", str(tmp / "s"), "--jobs", "1"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            seen = []
            while p.poll() is None:
                try:
                    seen.append(json.loads((tmp / "s.partial" / "progress.json").read_text()))
                except (OSError, ValueError):
                    pass
                time.sleep(0.02)
            self.assertEqual(p.returncode, 0)
            self.assertTrue(seen, "progress.json was never seen")
            for j in seen:
                self.assertEqual(set(j), {"total", "done", "running", "diverged",
                                          "elapsed_seconds", "runs_per_second", "eta_seconds",
                                          "unix_time"})
                self.assertEqual(j["total"], 6)
                self.assertLessEqual(j["done"] + j["running"], 6)
            done = [j["done"] for j in seen]
            self.assertEqual(done, sorted(done))
            self.assertFalse((tmp / "s" / "progress.json").exists())
            self.assertEqual(len(table(tmp / "s" / "runs.csv")), 6)


class SteinitzGas(unittest.TestCase):
    def test_steinitz_on_his_own_data(self):
        with TempDir() as tmp:
            start = time.monotonic()
            out = run_dln("reproduce", "steinitz-gas", "--out", tmp / "rep")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertLess(time.monotonic() - start, 120, "a loose bound: it takes seconds")
            claims = [l for l in out.stdout.splitlines() if l.startswith("claim:")]
            self.assertEqual(len(claims), 6, out.stdout)
            base = tmp / "rep" / "ethanol"
            selection = table(base / "selection.csv")
            self.assertEqual(len(selection), 5 * 14)
            self.assertEqual({s["runs"] for s in selection}, {"10"})
            self.assertEqual(sum(s["selected"] == "1" for s in selection), 5)
            best = table(base / "best" / "runs.csv")
            self.assertEqual(len(best), 15)
            self.assertEqual({b["init.seed"] for b in best}, {"11", "12", "13"})
            grid = table(base / "grid" / "runs.csv")
            self.assertEqual(len(grid), 700)
            # Ethanol is class 1: 1316 samples of 128 raw features.
            out = run_dln("run", ROOT / "experiments" / "papers" / "steinitz-gas" /
                          "ethanol.toml", "--out", tmp / "one", "--set", "record.data=true",
                          "--set", "optimizer.steps=1")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(np.load(tmp / "one" / "data_X.npy").shape, (1316, 128))
            # The long phase is recorded log-spaced: every step up to 10, the last one, ~20 a
            # decade.
            _, rows = read_metrics(base / "best" / "000")
            self.assertEqual(list(rows[:11, 0]), list(range(11)))
            self.assertEqual(rows[-1, 0], 30000)
            self.assertLess(len(rows), 100)
            self.assertTrue((tmp / "rep" / "figures" / "steinitz_gas.png").is_file())


if __name__ == "__main__":
    unittest.main()
