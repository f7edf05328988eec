"""Long runs and real workflows end to end: [select] aggregates and re-drawn inits, data.path
lists, log-spaced records, snapshots, checkpoints and resuming, progress lines, sweeps from the
command line and the model.depth / model.width keys."""
import csv
import gzip
import json
import os
import signal
import subprocess
import time
import unittest
from pathlib import Path

import numpy as np

from support import DLN, TempDir, read_metrics, run_dln, write_config

ROOT = Path(__file__).resolve().parents[2]

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
