"""The Python package against the command line: dln.run in memory equals `dln run`'s files bit
for bit; load and load_sweep round-trip; a Trainer stepped by hand equals dln.run; callbacks
see the weights that are saved and can stop a run; user metrics add columns; every class of bad
input raises its exception with the command line's message and writes nothing.

Run with pytest. DLN names the command line binary; the package is the one on sys.path (the
in-tree python/ folder, or an installed copy when DLN_EXPECT_INSTALLED=1).
"""
import os
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import dln

DLN = os.environ.get("DLN", "dln")
ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "experiments" / "quickstart.toml"

SMALL = {
    "name": "small",
    "seed": 3,
    "data": {"source": "synthetic.gaussian_mixture", "samples": 50},
    "model": {"widths": [10, 6, 3]},
    "optimizer": {"lr": 0.001, "steps": 40},
    "record": {"every": 10, "probes": ["loss", "fro", "balance", "e2e_fro"]},
}


def cli(*args, cwd=None):
    out = subprocess.run([DLN, *map(str, args)], capture_output=True, text=True, cwd=cwd)
    return out


def without_time(frame):
    return frame.drop(columns=[c for c in ("time",) if c in frame])


def test_the_package_is_the_one_expected():
    if os.environ.get("DLN_EXPECT_INSTALLED") == "1":
        assert "site-packages" in dln.__file__, dln.__file__
    else:
        assert Path(dln.__file__).resolve().parent == ROOT / "python" / "dln"


def test_quickstart_in_memory_equals_the_command_line_bit_for_bit(tmp_path):
    out = cli("run", QUICKSTART, "--out", tmp_path / "q")
    assert out.returncode == 0, out.stderr
    disk = pd.read_csv(tmp_path / "q" / "metrics.csv", float_precision="round_trip")
    run = dln.run(QUICKSTART)
    assert run.path is None
    assert list(run.metrics.columns) == list(disk.columns)
    # Exact: the same library, and CSV numbers in shortest round-trip form.
    pd.testing.assert_frame_equal(without_time(run.metrics), without_time(disk), check_exact=True)
    for l, W in enumerate(run.weights, start=1):
        np.testing.assert_array_equal(W, np.load(tmp_path / "q" / "weights" / f"W{l}.npy"))
    assert run.summary["status"] == "completed"
    assert run.summary["final_loss"] == disk["loss"].iloc[-1]
    assert run.config["optimizer"]["lr"] == 0.002


def test_a_relu_net_on_the_torch_engine_in_memory_equals_the_command_line(tmp_path):
    config = dict(SMALL, model={"widths": [10, 6, 3], "activation": "relu", "bias": True},
                  record={"every": 10, "probes": ["loss", "fro", "active", "growth_mismatch"]})
    run = dln.run(config)
    assert run.summary["engine"] == "torch"
    written = dln.run(config, out=tmp_path / "r")
    pd.testing.assert_frame_equal(without_time(run.metrics), without_time(written.metrics),
                                  check_exact=True)
    for a, b in zip(run.weights, written.weights):
        np.testing.assert_array_equal(a, b)
    assert [W.shape for W in run.weights] == [(6, 10), (3, 6)]
    assert (tmp_path / "r" / "weights" / "b1.npy").is_file()
    with pytest.raises(ValueError, match="torch engine"):
        dln.Trainer(config)
    with pytest.raises(ValueError, match="torch engine"):
        dln.run(config, metrics={"x": lambda w: 0.0})


def test_load_round_trips_what_run_wrote(tmp_path):
    written = dln.run(SMALL, tmp_path / "r")
    assert written.path == str(tmp_path / "r")
    memory = dln.run(SMALL)
    again = dln.load(tmp_path / "r")
    pd.testing.assert_frame_equal(without_time(again.metrics), without_time(memory.metrics),
                                  check_exact=True)
    assert again.summary["final_loss"] == memory.summary["final_loss"]
    assert again.config == memory.config
    for a, b in zip(again.weights, memory.weights):
        np.testing.assert_array_equal(a, b)
    assert [W.shape for W in again.weights] == [(6, 10), (3, 6)]


def test_overrides_as_keywords_and_as_dotted_keys():
    a = dln.run(SMALL, optimizer__lr=0.002, optimizer__steps=20)
    b = dln.run(SMALL, overrides={"optimizer.lr": 0.002, "optimizer.steps": 20})
    assert a.summary["steps"] == 20 and a.config["optimizer"]["lr"] == 0.002
    pd.testing.assert_frame_equal(without_time(a.metrics), without_time(b.metrics))


def test_a_trainer_stepped_by_hand_equals_run():
    whole = dln.run(QUICKSTART)
    trainer = dln.Trainer(QUICKSTART)
    for n in (1, 2, 7, 90, 400, 10_000):  # uneven chunks, the last beyond the end
        trainer.step(n)
    assert trainer.done and trainer.steps == 1000 and trainer.status == "completed"
    pd.testing.assert_frame_equal(without_time(trainer.metrics), without_time(whole.metrics),
                                  check_exact=True)
    for a, b in zip(trainer.weights, whole.weights):
        np.testing.assert_array_equal(a, b)
    assert trainer.loss == whole.summary["final_loss"]


def test_trainer_measures_sets_weights_and_gives_gradients():
    trainer = dln.Trainer(SMALL)
    assert trainer.status == "running"
    trainer.step(5)
    row = trainer.measure()
    assert row["loss"] == trainer.loss
    # Measuring by hand leaves the recorded run alone.
    trainer.step(35)
    whole = dln.run(SMALL)
    pd.testing.assert_frame_equal(without_time(trainer.metrics), without_time(whole.metrics),
                                  check_exact=True)
    # The gradient against a central finite difference of the loss (h = 1e-6: truncation
    # error ~h^2 * third derivative, round-off ~eps * loss / h; both far below 1e-5 relative).
    W = trainer.weights
    G = trainer.gradients()
    h = 1e-6
    for l, (i, j) in ((0, (2, 3)), (1, (1, 4))):
        plus = [w.copy() for w in W]
        minus = [w.copy() for w in W]
        plus[l][i, j] += h
        minus[l][i, j] -= h
        trainer.set_weights(plus)
        lp = trainer.loss
        trainer.set_weights(minus)
        lm = trainer.loss
        fd = (lp - lm) / (2 * h)
        assert abs(fd - G[l][i, j]) <= 1e-5 * max(1.0, abs(fd)), (l, fd, G[l][i, j])
    trainer.set_weights(W)
    assert trainer.measure(["fro"])["fro.1"] == pytest.approx(np.linalg.norm(W[0]), rel=1e-14)
    with pytest.raises(ValueError, match="shape"):
        trainer.set_weights([np.zeros((2, 2)), W[1]])
    with pytest.raises(ValueError, match="no metric"):
        trainer.measure(["no_such_metric"])


def test_callbacks_see_the_saved_weights_and_the_row(tmp_path):
    seen = {}

    def callback(step, row, weights):
        seen[step] = (dict(row), [w.copy() for w in weights])

    run = dln.run(SMALL, tmp_path / "r", callback=callback)
    assert sorted(seen) == list(run.metrics["step"])
    last = run.metrics["step"].iloc[-1]
    for l, W in enumerate(seen[last][1], start=1):
        np.testing.assert_array_equal(W, np.load(tmp_path / "r" / "weights" / f"W{l}.npy"))
    for _, r in run.metrics.iterrows():
        row = seen[int(r["step"])][0]
        assert row["loss"] == r["loss"] and row["fro.2"] == r["fro.2"]
    # Layer norms at each record from the callback's weights.
    for step, (row, weights) in seen.items():
        assert row["fro.1"] == pytest.approx(np.linalg.norm(weights[0]), rel=1e-13)


def test_a_callback_returning_false_stops_the_run():
    run = dln.run(SMALL, callback=lambda step, row, w: step < 20)
    assert run.summary["status"] == "stopped"
    assert list(run.metrics["step"]) == [0, 10, 20]
    assert run.summary["steps"] == 20
    # numpy's False stops too; None goes on.
    run = dln.run(SMALL, callback=lambda step, row, w: np.float64(row["loss"]) > 1e9)
    assert run.summary["status"] == "stopped" and list(run.metrics["step"]) == [0]
    run = dln.run(SMALL, callback=lambda step, row, w: None)
    assert run.summary["status"] == "completed" and run.summary["steps"] == 40


def test_an_exception_in_a_callback_ends_the_run_names_the_step_and_writes_nothing(tmp_path):
    def callback(step, row, weights):
        if step == 30:
            raise RuntimeError("my callback failed")

    with pytest.raises(RuntimeError, match="my callback failed") as info:
        dln.run(SMALL, tmp_path / "r", callback=callback)
    assert any("step 30" in note for note in getattr(info.value, "__notes__", []))
    assert not (tmp_path / "r").exists()
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == []


def test_a_user_metric_adds_a_column_on_disk_and_in_memory(tmp_path):
    fns = {"w1_norm": lambda W: float(np.linalg.norm(W[0])), "depth": lambda W: len(W)}
    run = dln.run(SMALL, tmp_path / "r", metrics=fns)
    assert "w1_norm" in run.metrics and "depth" in run.metrics
    np.testing.assert_allclose(run.metrics["w1_norm"], run.metrics["fro.1"], rtol=1e-13)
    assert (run.metrics["depth"] == 2).all()
    memory = dln.run(SMALL, metrics=fns)
    pd.testing.assert_frame_equal(without_time(memory.metrics), without_time(run.metrics),
                                  check_exact=True)
    with pytest.raises(TypeError, match="not a number"):
        dln.run(SMALL, metrics={"bad": lambda W: "text"})


BAD = [
    # (config change, exception, words in the message)
    ({"model": {"widths": [10, 4294967296, 3]}}, dln.ConfigError, "model.widths"),
    ({"optimizer": {"lr": -1.0, "steps": 10}}, dln.ConfigError, "optimizer.lr"),
    ({"optimizer": {"lrr": 0.1}}, dln.ConfigError, "unknown key"),
    ({"data": {"source": "npy", "x": "no_such_file.npy", "y": "no_such.npy"}}, dln.DataError,
     "no_such_file.npy"),
]


@pytest.mark.parametrize("change,error,words", BAD)
def test_bad_input_raises_its_class_with_the_command_line_message(tmp_path, change, error, words):
    config = {k: (dict(v) if isinstance(v, dict) else v) for k, v in SMALL.items()}
    for section, values in change.items():
        config[section] = dict(values) if section == "data" and "source" in values \
            else {**config.get(section, {}), **values}
    os.chdir(tmp_path)
    with pytest.raises(error) as info:
        dln.run(config, tmp_path / "out")
    assert isinstance(info.value, ValueError)
    message = str(info.value)
    assert words in message and "\n" not in message
    assert not (tmp_path / "out").exists()
    # The same line as the command line's, once the config is a file.
    path = tmp_path / "bad.toml"
    path.write_text(dln.api._toml_text(config))
    out = cli("run", path, "--out", tmp_path / "out2")
    assert out.returncode == 2
    with pytest.raises(error) as again:
        dln.run(path, tmp_path / "out2")
    assert out.stderr.strip() == f"dln: error: {again.value}"


def test_malformed_toml_and_output_refusals(tmp_path):
    path = tmp_path / "broken.toml"
    path.write_text("name = \n")
    with pytest.raises(dln.ConfigError, match="broken.toml:1"):
        dln.run(path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep me")
    with pytest.raises(dln.OutputError, match="not written by dln"):
        dln.run(SMALL, tmp_path / "mine", force=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "keep me"
    os.chdir(tmp_path / "mine")
    with pytest.raises(dln.OutputError):
        dln.run(SMALL, ".", force=True)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "keep me"


SWEEP = dict(SMALL, sweep={"optimizer.lr": [0.001, 0.002], "model.widths": [[10, 6, 3],
                                                                             [10, 8, 6, 3]]})


def test_load_sweep_gives_proper_columns_and_a_long_metrics_table(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(dln.api._toml_text(SWEEP))
    out = cli("sweep", path, "--out", tmp_path / "s")
    assert out.returncode == 0, out.stderr
    # runs.csv is plain for every CSV reader: no quoted cells.
    text = (tmp_path / "s" / "runs.csv").read_text()
    assert '"' not in text and "10-8-6-3" in text
    table = np.genfromtxt(tmp_path / "s" / "runs.csv", delimiter=",", names=True, dtype=None,
                          encoding="utf-8")
    assert len(table) == 4
    sweep = dln.load_sweep(tmp_path / "s")
    # Axes in key order, the first varying slowest.
    assert sweep.kind == "sweep" and sweep.axes == ["model.widths", "optimizer.lr"]
    assert list(sweep.runs["model.widths"]) == [(10, 6, 3)] * 2 + [(10, 8, 6, 3)] * 2
    assert list(sweep.runs["depth"]) == [2, 2, 3, 3]
    assert sweep.runs["optimizer.lr"].dtype == np.float64
    long = sweep.metrics
    assert len(long) == 4 * 5 and {"run", "optimizer.lr", "model.widths", "depth"} <= set(long)
    one = sweep.run("001")
    np.testing.assert_array_equal(long[long["run"] == "001"]["loss"].to_numpy(),
                                  one.metrics["loss"].to_numpy())
    # dln.sweep gives the same table, in a temporary directory.
    again = dln.sweep(SWEEP)
    pd.testing.assert_frame_equal(again.runs, sweep.runs, check_exact=True)
    path = again.path
    assert os.path.isdir(path)
    del again
    import gc
    gc.collect()
    assert not os.path.exists(path)  # the temporary directory goes with the Sweep


def test_sweep_axes_from_python_equal_the_same_axes_in_the_config():
    a = dln.sweep(SMALL, axes={"optimizer.lr": [0.001, 0.002],
                               "model.widths": [[10, 6, 3], [10, 8, 6, 3]]})
    b = dln.sweep(SWEEP)
    pd.testing.assert_frame_equal(a.runs, b.runs, check_exact=True)
    with pytest.raises(dln.ConfigError, match="is also a sweep axis"):
        dln.sweep(SWEEP, optimizer__lr=0.1)


def test_load_sweep_reads_a_select_directory(tmp_path):
    config = dict(SMALL, sweep={"optimizer.lr": [0.001, 0.002, 0.004], "seed": [1, 2]},
                  select={"over": ["optimizer.lr"], "metric": "loss", "across": ["seed"],
                          "aggregate": "mean", "then_seeds": [5, 6],
                          "then": {"optimizer.steps": 60}})
    sweep = dln.sweep(config, tmp_path / "sel")
    assert sweep.kind == "select"
    assert set(sweep.runs["phase"]) == {"grid", "best"}
    assert (sweep.runs["phase"] == "grid").sum() == 6 and (sweep.runs["phase"] == "best").sum() == 2
    assert len(sweep.metrics) > 0
    # One candidate per rate, scored by the mean over the two seeds; the winner trains again
    # from the inits of seeds 5 and 6.
    sel = sweep.selection
    assert list(sel.columns) == ["optimizer.lr", "loss_mean", "runs", "diverged", "selected"]
    grid = sweep.runs[sweep.runs["phase"] == "grid"]
    means = grid.groupby("optimizer.lr")["loss"].mean()
    np.testing.assert_allclose(sel.set_index("optimizer.lr")["loss_mean"], means, rtol=1e-14)
    winner = sel.loc[sel["selected"] == 1, "optimizer.lr"].item()
    assert winner == means.idxmin()
    best = sweep.runs[sweep.runs["phase"] == "best"]
    assert list(best["init.seed"]) == [5, 6] and set(best["optimizer.lr"]) == {winner}


def test_registries_and_verify_are_dataframes():
    m = dln.metrics()
    assert {"name", "description"} <= set(m) and "loss" in set(m["name"])
    assert "gd" in set(dln.optimizers()["name"])
    keys = dln.config_keys()
    assert {"key", "type", "default", "doc"} <= set(keys) and "optimizer.lr" in set(keys["key"])
    checks = dln.verify(quick=True, only=1)
    assert list(checks.columns) == ["id", "check", "setting", "measured", "threshold", "holds"]
    assert len(checks) == 1 and bool(checks["holds"].iloc[0])


def test_the_readme_python_lines_run(capsys):
    text = (ROOT / "README.md").read_text()
    block = text.split("```python\n", 1)[1].split("```", 1)[0]
    cwd = os.getcwd()
    os.chdir(ROOT)  # the README's paths are relative to the repository
    try:
        exec(compile(block, "README.md", "exec"), {})
    finally:
        os.chdir(cwd)
    assert "stopped" in capsys.readouterr().out
