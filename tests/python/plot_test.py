"""dln.plot: the figures of runs, sweeps, arms and [select] directories, read back from the
Figure objects (panels, lines per panel, axis labels, limits, tick labels, titles, legends), and
`python3 -m dln.plot` writing them (PNG and SVG) or refusing bad input with one line and exit
status 2."""
import os
import subprocess
import sys
import unittest
from pathlib import Path

import numpy as np
import pandas as pd

from support import TempDir, run_dln, write_config

ROOT = Path(__file__).resolve().parents[2]
try:
    import dln
except ImportError:  # run from the source tree without PYTHONPATH (ctest)
    sys.path.insert(0, str(ROOT / "python"))
    import dln

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from dln.api import Run, load, load_sweep  # noqa: E402
from dln.plot import plot  # noqa: E402

PYTHONPATH = str(Path(dln.__file__).resolve().parents[1])

BASE = """
name = "{name}"
seed = 3
[data]
source = "synthetic.gaussian_mixture"
samples = 50
[model]
widths = [10, 6, 3]
[optimizer]
lr = 0.002
steps = 40
[record]
every = 10
"""

# 2 widths x 3 learning rates; lr = 3 diverges (its loss reaches 1e28 and 1e63).
SWEEP = BASE.format(name="grid") + """
[sweep]
"optimizer.lr" = [0.002, 0.01, 3.0]
"model.widths" = [[10, 6, 3], [10, 8, 6, 3]]
"""

ARMS = BASE.format(name="arms") + """
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
optimizer = { kind = "flow", time = 0.08 }
record = { every = 0.02, probes = ["loss", "t", "e2e_fro"] }
"""

SELECT = BASE.format(name="pick") + """
[sweep]
"init.scheme" = ["normal", "glorot_normal"]
"optimizer.lr" = [0.002, 0.01, 3.0]
[select]
over = ["optimizer.lr"]
metric = "loss"
[select.then]
"optimizer.steps" = 60
"""

RUN = BASE.format(name="solo").replace(
    "every = 10", 'every = 5\nprobes = ["loss", "fro", "balance", "e2e_fro", "t"]')


def titles(fig):
    """Every text of a figure: its title, the panels' titles, labels and legends."""
    return [t.get_text() for t in fig.findobj(Text)]


def labelled_ticks(ax):
    """The y tick labels that are drawn inside the y limits (after a draw)."""
    ax.figure.canvas.draw()
    low, high = sorted(ax.get_ylim())
    return [label.get_text() for label, value in zip(ax.get_yticklabels(), ax.get_yticks())
            if label.get_text() and low <= value <= high]


def legend_texts(ax):
    legend = ax.get_legend()
    return [t.get_text() for t in legend.get_texts()] if legend else []


def plot_cli(*args):
    """python3 -m dln.plot ARGS with the package under test."""
    return subprocess.run([sys.executable, "-m", "dln.plot", *map(str, args)], text=True,
                          capture_output=True, env={**os.environ, "PYTHONPATH": PYTHONPATH},
                          timeout=120)


class Directories(unittest.TestCase):
    """One run, sweep, arms and [select] directory shared by the tests (written once)."""

    @classmethod
    def setUpClass(cls):
        cls._tmp = TempDir()
        tmp = cls.tmp = cls._tmp.__enter__()
        for name, text, command in (("sweep", SWEEP, "sweep"), ("arms", ARMS, "run"),
                                    ("select", SELECT, "sweep"), ("run", RUN, "run")):
            config = write_config(tmp / f"{name}.toml", text)
            out = run_dln(command, config, "--out", tmp / name)
            assert out.returncode == 0, out.stderr

    @classmethod
    def tearDownClass(cls):
        cls._tmp.__exit__(None, None, None)

    def tearDown(self):
        plt.close("all")

    def assertLabelled(self, fig, x="step"):
        for ax in fig.axes:
            self.assertEqual(ax.get_xlabel().split(" ")[0], x, ax.get_title())
            self.assertTrue(ax.get_ylabel(), ax.get_title())


class RunFigures(Directories):
    def test_a_panel_per_probe_group_labelled_and_titled_by_the_run(self):
        fig = plot(self.tmp / "run")
        self.assertEqual([ax.get_title() for ax in fig.axes], ["loss", "norms", "balance"])
        self.assertLabelled(fig)
        self.assertIn("solo", fig._suptitle.get_text())
        lines = {ax.get_title(): len(ax.get_lines()) for ax in fig.axes}
        self.assertEqual(lines, {"loss": 1, "norms": 3, "balance": 1})  # fro.1, fro.2, e2e_fro

    def test_x_is_step_unless_t_is_asked(self):
        self.assertLabelled(plot(self.tmp / "run"), x="step")
        self.assertLabelled(plot(self.tmp / "run", x="t"), x="t")
        fig = plot(self.tmp / "run", metric="loss", logx=True)
        self.assertEqual(fig.axes[0].get_xscale(), "log")
        with self.assertRaisesRegex(dln.InputError, "did not record t"):
            plot(self.tmp / "sweep" / "000", x="t")

    def test_metric_picks_columns_and_groups(self):
        fig = plot(load(self.tmp / "run"), metric=["fro.2", "fro"])
        self.assertEqual([len(ax.get_lines()) for ax in fig.axes], [1, 2])
        with self.assertRaisesRegex(dln.InputError, "unknown metric 'nope'"):
            plot(self.tmp / "run", metric="nope")

    def test_log_axes_get_at_least_four_tick_labels(self):
        step = np.arange(0, 101, 10)
        for values, scale in ((np.geomspace(1e-3, 1e-1, 11), "log"),
                              (np.geomspace(2.0, 30.0, 11), "log"),
                              (np.r_[0.0, np.geomspace(1e-12, 1e-3, 10)], "symlog")):
            run = Run(pd.DataFrame({"step": step, "balance.1": values}), {"name": "b"}, {}, [])
            ax = plot(run).axes[0]
            self.assertEqual(ax.get_yscale(), scale)
            self.assertGreaterEqual(len(labelled_ticks(ax)), 4, labelled_ticks(ax))
        for ax in plot(self.tmp / "run").axes:
            self.assertGreaterEqual(len(labelled_ticks(ax)), 4, ax.get_title())

    def test_a_run_of_arms_is_titled_by_its_arm(self):
        fig = plot(self.tmp / "arms" / "deep")
        self.assertIn("arms / deep", fig._suptitle.get_text())


class SweepFigures(Directories):
    def test_hue_gives_colours_and_facet_gives_panels(self):
        fig = plot(self.tmp / "sweep", hue="optimizer.lr", facet="model.widths")
        self.assertEqual(len(fig.axes), 2)
        self.assertEqual([len(ax.get_lines()) for ax in fig.axes], [3, 3])
        self.assertLabelled(fig)
        self.assertEqual([ax.get_title() for ax in fig.axes],
                         ["loss, widths=10-6-3", "loss, widths=10-8-6-3"])
        for ax in fig.axes:
            colours = {tuple(line.get_color()) for line in ax.get_lines()}
            self.assertEqual(len(colours), 3)
            self.assertEqual(legend_texts(ax)[:3], ["lr=0.002", "lr=0.01", "lr=3"])

    def test_default_is_the_loss_coloured_by_the_first_axis(self):
        fig = plot(load_sweep(self.tmp / "sweep"))
        self.assertEqual(len(fig.axes), 1)
        ax = fig.axes[0]
        self.assertEqual(len(ax.get_lines()), 6)
        self.assertEqual(len({tuple(line.get_color()) for line in ax.get_lines()}), 2)
        self.assertEqual(legend_texts(ax)[:2], ["widths=10-6-3", "widths=10-8-6-3"])
        self.assertLabelled(fig)
        two = plot(self.tmp / "sweep", metric=["loss", "e2e_fro"], facet="optimizer.lr")
        self.assertEqual(len(two.axes), 6)  # a row per metric, a column per learning rate

    def test_diverged_runs_stay_out_of_the_limits_and_are_listed(self):
        sweep = load_sweep(self.tmp / "sweep")
        diverged = sweep.runs[sweep.runs["status"] == "diverged"]
        self.assertEqual(sorted(diverged["optimizer.lr"]), [3.0, 3.0])
        self.assertGreater(diverged["loss"].min(), 1e20)
        for facet in (None, "model.widths"):
            fig = plot(sweep, hue="optimizer.lr", facet=facet)
            for ax in fig.axes:
                low, high = ax.get_ylim()
                self.assertLess(high, 1e4)
                self.assertGreater(low, 0)
                listed = [t for t in legend_texts(ax) if t.startswith("diverged")]
                self.assertEqual(len(listed), 1, legend_texts(ax))
                self.assertIn("lr=3", listed[0])
            self.assertIn("diverged", fig._suptitle.get_text())
        self.assertIn("diverged: 2 runs", " ".join(legend_texts(plot(sweep).axes[0])))

    def test_best_by_keeps_the_best_run_of_each_colour(self):
        sweep = load_sweep(self.tmp / "sweep")
        fig = plot(sweep, hue="model.widths", best_by="loss")
        ax = fig.axes[0]
        self.assertEqual(len(ax.get_lines()), 2)
        self.assertEqual(legend_texts(ax), ["widths=10-6-3 (best: lr=0.01)",
                                            "widths=10-8-6-3 (best: lr=0.01)"])
        finals = sorted(line.get_ydata()[-1] for line in ax.get_lines())
        best = sweep.runs[sweep.runs["optimizer.lr"] == 0.01]["loss"]
        np.testing.assert_allclose(finals, sorted(best))
        with self.assertRaisesRegex(dln.InputError, "best_by"):
            plot(sweep, best_by="optimizer.lr")

    def test_unknown_axes_are_refused(self):
        with self.assertRaisesRegex(dln.InputError, "hue: unknown axis 'lr'"):
            plot(self.tmp / "sweep", hue="lr")
        with self.assertRaisesRegex(dln.InputError, "facet"):
            plot(self.tmp / "sweep", hue="optimizer.lr", facet="optimizer.lr")
        with self.assertRaisesRegex(dln.InputError, "phase"):
            plot(self.tmp / "sweep", phase="grid")

    def test_arms_get_a_panel_per_probe_and_a_line_per_arm(self):
        fig = plot(self.tmp / "arms")
        self.assertEqual([ax.get_title() for ax in fig.axes], ["loss", "e2e_fro", "e2e_dev"])
        self.assertLabelled(fig)
        for ax in fig.axes[:2]:
            self.assertEqual(len(ax.get_lines()), 3)
            self.assertEqual(legend_texts(ax), ["deep", "e2e", "flow"])
        self.assertEqual(legend_texts(fig.axes[2]), ["deep"])  # only deep records e2e_dev
        self.assertIn("deep, e2e, flow", fig._suptitle.get_text())
        by_t = plot(self.tmp / "arms", x="t", metric="loss")
        self.assertLabelled(by_t, x="t")
        ends = [line.get_xdata()[-1] for line in by_t.axes[0].get_lines()]
        np.testing.assert_allclose(ends, [0.08, 0.08, 0.08])

    def test_select_draws_its_best_runs_or_its_grid(self):
        best = plot(self.tmp / "select")
        self.assertEqual(len(best.axes[0].get_lines()), 2)
        self.assertIn("best", best._suptitle.get_text())
        self.assertLabelled(best)
        grid = plot(self.tmp / "select", phase="grid", hue="optimizer.lr")
        self.assertEqual(len(grid.axes[0].get_lines()), 6)
        self.assertIn("grid", grid._suptitle.get_text())
        self.assertLess(grid.axes[0].get_ylim()[1], 1e4)


class CommandLine(Directories):
    def test_writes_the_default_figures_and_named_ones_for_options(self):
        out = plot_cli(self.tmp / "sweep")
        self.assertEqual(out.returncode, 0, out.stderr)
        figures = self.tmp / "sweep" / "figures"
        for name in ("loss", "e2e_fro"):
            for ext in ("png", "svg"):
                self.assertIn(f"dln: figure {figures / name}.{ext}", out.stdout)
        self.assertTrue((figures / "loss.png").read_bytes().startswith(b"\x89PNG"))
        out = plot_cli(self.tmp / "sweep", "--metric", "loss", "e2e_fro", "--hue", "optimizer.lr",
                       "--facet", "model.widths", "--best-by", "loss", "--logx")
        self.assertEqual(out.returncode, 0, out.stderr)
        name = "loss+e2e_fro_logx_hue-optimizer.lr_facet-model.widths_best-loss"
        self.assertTrue((figures / f"{name}.png").is_file(), out.stdout)
        out = plot_cli(self.tmp / "run")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(sorted(p.name for p in (self.tmp / "run" / "figures").glob("*.png")),
                         ["balance.png", "loss.png", "norms.png"])

    def test_a_select_directory_plots(self):
        for args, name in (([self.tmp / "select"], "loss"),
                           ([self.tmp / "select", "--phase", "grid"], "loss_grid")):
            out = plot_cli(*args)
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertTrue((args[0] / "figures" / f"{name}.png").is_file(), out.stdout)
        out = run_dln("plot", self.tmp / "select", "--metric", "e2e_fro")  # the same module
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertTrue((self.tmp / "select" / "figures" / "e2e_fro.png").is_file(), out.stdout)

    def test_arms_get_a_figure_per_probe_group(self):
        out = plot_cli(self.tmp / "arms", "--x", "t")
        self.assertEqual(out.returncode, 0, out.stderr)
        names = sorted(p.name for p in (self.tmp / "arms" / "figures").glob("*.png"))
        self.assertEqual(names, ["e2e_dev_x-t.png", "e2e_fro_x-t.png", "loss_x-t.png"])

    def test_bad_input_is_one_line_and_status_2(self):
        (self.tmp / "empty").mkdir(exist_ok=True)
        for args, message in (([self.tmp / "missing"], "no such directory"),
                              ([self.tmp / "empty"], "not a run or sweep directory"),
                              ([self.tmp / "sweep", "--metric", "nope"], "unknown metric"),
                              ([self.tmp / "sweep", "--hue", "nope"], "unknown axis"),
                              ([self.tmp / "run", "--facet", "model.widths"], "not to a run"),
                              ([self.tmp / "sweep", "--x", "time"], "invalid choice"),
                              ([], "required")):
            out = plot_cli(*args)
            self.assertEqual(out.returncode, 2, (args, out.stderr))
            self.assertEqual(len(out.stderr.splitlines()), 1, out.stderr)
            self.assertTrue(out.stderr.startswith("dln: error: "), out.stderr)
            self.assertIn(message, out.stderr)
        self.assertFalse((self.tmp / "empty" / "figures").exists())


if __name__ == "__main__":
    unittest.main()
