"""dln from Python: runs in-process, run and sweep directories as pandas DataFrames, a Trainer
stepped by hand, the registries, verify and reproduce. docs/python.md documents every function.

The numbers come from the same C++ library as the command line (the extension dln._core); the
DataFrames hold exactly the values the command line writes to metrics.csv and runs.csv.
"""

import glob
import json
import math
import os
import re
import shutil
import tempfile
import tomllib
import warnings
import weakref

import numpy as np
import pandas as pd

from .errors import ConfigError, DataError, OutputError  # noqa: F401  (re-exported)

try:
    from . import _core
except ImportError as _e:  # the package without its compiled half (a sanitizer build)
    _core = None
    _core_error = _e


def _need_core():
    if _core is None:
        raise ImportError(
            "dln's compiled extension (dln/_core) is not built: run `make test` or `make run` in "
            f"the repository, or pip install ./python ({_core_error})")
    return _core


# --- Configs ------------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _toml_key(key):
    return key if _BARE_KEY.match(key) else json.dumps(key)


def _toml_value(value):
    """A Python value as TOML text (strings, numbers, bools, lists of them)."""
    if isinstance(value, bool) or isinstance(value, np.bool_):
        return "true" if value else "false"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
        return repr(v)
    if isinstance(value, (str, os.PathLike)):
        return json.dumps(os.fspath(value))  # JSON's escapes are TOML's basic-string escapes
    if isinstance(value, (list, tuple, np.ndarray)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    raise ConfigError(f"cannot write {type(value).__name__} {value!r} as a config value")


def _toml_text(config):
    """A config dict (the TOML file's structure: tables as dicts, [[arms]] as a list of dicts)
    as TOML text."""
    lines, tables = [], []

    def emit(prefix, table):
        scalars = {k: v for k, v in table.items() if not isinstance(v, dict)
                   and not (isinstance(v, list) and v and all(isinstance(x, dict) for x in v))}
        if prefix is not None and scalars:
            lines.append(f"[{prefix}]")
        for k, v in scalars.items():
            lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        for k, v in table.items():
            name = _toml_key(k) if prefix is None else f"{prefix}.{_toml_key(k)}"
            if isinstance(v, dict):
                tables.append((name, v))
            elif isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
                for item in v:
                    tables.append(("[" + name + "]", item))

    emit(None, config)
    while tables:
        name, table = tables.pop(0)
        if name.startswith("["):  # an array of tables
            lines.append(f"[{name}]")
            for k, v in table.items():
                lines.append(f"{_toml_key(k)} = {_toml_value(v)}")
        else:
            emit(name, table)
    return "\n".join(lines) + "\n"


def _override_list(overrides, kwargs):
    """key=value strings for the C++ parser: a dict of dotted keys and/or key__sub=value."""
    items = dict(overrides or {})
    for k, v in kwargs.items():
        items[k.replace("__", ".")] = v
    return [f"{k}={_toml_value(v)}" for k, v in items.items()]


def _config(config, overrides=None, kwargs=None, axes=None):
    core = _need_core()
    sets = _override_list(overrides, kwargs or {})
    sweeps = [f"{k}=" + ", ".join(_toml_value(v) for v in list(values))
              for k, values in (axes or {}).items()]
    if isinstance(config, dict):
        return core.parse_config(_toml_text(config), "<dict>", os.getcwd(), sets, sweeps)
    if isinstance(config, (str, os.PathLike)):
        return core.load_config(os.fspath(config), sets, sweeps)
    raise TypeError(f"config must be a TOML path or a dict, not {type(config).__name__}")


# --- Runs -----------------------------------------------------------------------------------------


class Run:
    """One run: ``metrics`` (DataFrame, a row per record), ``summary`` (dict), ``config`` (the
    resolved config, dict), ``weights`` (list of arrays (out, in): W_1 first) and ``path`` (its
    directory, or None for a run kept in memory). With record.weights_every, ``snapshots``
    ({step: layers}), ``snapshot(step)`` and ``snapshot_steps`` read the layers over time."""

    def __init__(self, metrics, summary, config, weights, path=None):
        self.metrics = metrics
        self.summary = summary
        self.config = config
        self.weights = weights
        self.path = path

    @property
    def snapshot_steps(self):
        """The steps of the run's weight snapshots (record.weights_every), in order."""
        folder = os.path.join(self.path, "snapshots") if self.path else None
        if not folder or not os.path.isdir(folder):
            return []
        return sorted(int(f[5:-4]) for f in os.listdir(folder)
                      if f.startswith("step_") and f.endswith(".npz"))

    def snapshot(self, step):
        """The layers at `step` (a snapshot step), as a list of arrays (out, in): W_1 first."""
        path = os.path.join(self.path or "", "snapshots",
                            f"step_{step:0{len(str(self.config['optimizer']['steps']))}d}.npz")
        if not self.path or not os.path.isfile(path):
            raise KeyError(f"no snapshot at step {step} (snapshots: {self.snapshot_steps})")
        with np.load(path) as z:
            return [z[f"W{i}"] for i in range(1, len(z.files) + 1)]

    @property
    def snapshots(self):
        """Every snapshot as {step: [W_1, ..., W_L]} (read from the run directory on use)."""
        return {k: self.snapshot(k) for k in self.snapshot_steps}

    @property
    def name(self):
        return self.summary.get("name", "")

    @property
    def status(self):
        return self.summary.get("status", "")

    def __repr__(self):
        where = f" at {self.path}" if self.path else ""
        return (f"<dln.Run {self.name!r} {self.status}: {len(self.metrics)} records, "
                f"final loss {self.summary.get('final_loss')}{where}>")


def _frame(columns, rows):
    frame = pd.DataFrame(np.asarray(rows), columns=list(columns))
    if "step" in frame:
        frame["step"] = frame["step"].astype(np.int64)
    return frame


def _read_csv(path):
    """A metrics.csv: the step as int64, every other column float64 (as in memory), the
    shortest round-trip numbers dln writes read back bit for bit."""
    frame = pd.read_csv(path, float_precision="round_trip")
    return frame.astype({c: np.int64 if c == "step" else np.float64 for c in frame.columns})


def _read_weights(path):
    files = glob.glob(os.path.join(path, "weights", "W*.npy"))
    # W1 ... WL, or an overparameterised net's factors W1_1, W1_2, ... in order.
    files.sort(key=lambda f: [int(x) for x in re.findall(r"\d+", os.path.basename(f))])
    return [np.load(f, allow_pickle=False) for f in files]


def load(path):
    """The run directory ``path`` as a Run (metrics.csv, summary.json, config.toml, weights)."""
    path = os.fspath(path)
    if not os.path.isfile(os.path.join(path, "metrics.csv")):
        raise DataError(f"{path}: is not a run directory (no metrics.csv)", file=path)
    metrics = _read_csv(os.path.join(path, "metrics.csv"))
    summary = {}
    if os.path.isfile(os.path.join(path, "summary.json")):
        with open(os.path.join(path, "summary.json"), encoding="utf-8") as f:
            summary = json.load(f)
    config = {}
    if os.path.isfile(os.path.join(path, "config.toml")):
        with open(os.path.join(path, "config.toml"), "rb") as f:
            config = tomllib.load(f)
    return Run(metrics, summary, config, _read_weights(path), path)


def run(config, out=None, *, force=False, jobs=None, callback=None, metrics=None,
        overrides=None, **kwargs):
    """Trains one run in-process and returns it as a Run.

    config: a TOML path or a dict of the same keys. Overrides: ``optimizer__lr=0.1`` or
    ``overrides={"optimizer.lr": 0.1}``. out: a directory to write (as ``dln run --out``), or
    None to keep everything in memory. callback(step, row, weights) is called at every record;
    returning a false value other than None (False, numpy.False_, 0) stops the run (status
    "stopped"). metrics: {"name": fn(weights) -> float}
    adds columns. Bad input raises ConfigError, DataError or OutputError, with nothing written.
    """
    cfg = _config(config, overrides, kwargs)
    if cfg.has_sweep:
        warnings.warn(f"{cfg.path}: the [sweep] table is ignored by dln.run (use dln.sweep)",
                      stacklevel=2)
    names = list(metrics or {})
    fns = [metrics[n] for n in names]
    if any(not callable(f) for f in fns):
        raise TypeError("metrics must map names to functions fn(weights) -> float")
    if callback is not None and not callable(callback):
        raise TypeError("callback must be callable as callback(step, row, weights)")
    answer = _need_core().run(cfg, None if out is None else os.fspath(out), force, jobs,
                              callback, names, fns)
    if out is not None:
        return load(answer["path"])
    return Run(_frame(answer["columns"], answer["rows"]), json.loads(answer["summary"]),
               tomllib.loads(answer["config"]), list(answer["weights"]), None)


# --- Sweeps -----------------------------------------------------------------------------------


def _list_keys():
    """The config keys whose values are lists (their runs.csv cells are joined lists)."""
    if _core is None:
        return set()
    return {k["key"] for k in _core.config_keys() if k["type"].startswith("array")}


def _cell_tuple(text):
    """A runs.csv list cell (10-8-6-3, or a;b;c) as a tuple of numbers or strings."""
    if not isinstance(text, str):
        return text
    parts = text.split(";") if ";" in text or not re.fullmatch(r"\d+(-\d+)*", text) \
        else text.split("-")
    out = []
    for p in parts:
        try:
            out.append(int(p))
        except ValueError:
            try:
                out.append(float(p))
            except ValueError:
                out.append(p)
    return tuple(out)


class Sweep:
    """A sweep, arms or [select] directory: ``runs`` (DataFrame: a row per run with its swept
    values as columns, lists as tuples, ``depth``, ``status``, ``steps`` and the final metrics),
    ``axes`` (the swept columns), ``metrics`` (long DataFrame: every record of every run, with
    the run's swept values on each row), ``path``, ``kind`` ("sweep", "arms" or "select";
    a select directory's rows carry ``phase`` "grid" or "best", and its ``selection`` is a
    DataFrame of every candidate with its aggregated score and ``selected``; None elsewhere).
    ``run(name)`` loads one.
    A Sweep made by ``dln.sweep(out=None)`` lives in a temporary directory removed when the
    Sweep is garbage-collected; load its runs (``run(name)``) while it lives."""

    def __init__(self, path, kind, runs, dirs, axes):
        self.path, self.kind, self.runs, self.axes = path, kind, runs, axes
        self.selection = None
        self._dirs = dirs  # each row's run directory, relative to path
        self._metrics = None

    def _remove_when_collected(self, directory):
        """Removes `directory` (dln.sweep's temporary one) when this object is collected."""
        weakref.finalize(self, shutil.rmtree, directory, True)

    @property
    def metrics(self):
        if self._metrics is None:
            frames = []
            keys = ["phase"] if "phase" in self.runs else []
            keys += ["run"] + [a for a in self.axes if a in self.runs] + ["depth", "status"]
            for (_, row), run_dir in zip(self.runs.iterrows(), self._dirs):
                m = _read_csv(os.path.join(self.path, run_dir, "metrics.csv"))
                for i, k in enumerate(keys):
                    if k in row:
                        m.insert(i, k, [row[k]] * len(m))
                frames.append(m)
            self._metrics = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
        return self._metrics

    def run(self, name, phase=None):
        """One run of the sweep as a Run (by its ``run`` value, e.g. "003" or an arm's name)."""
        hits = (self.runs["run"] == name).to_numpy()
        if phase is not None:
            hits &= (self.runs["phase"] == phase).to_numpy()
        if hits.sum() != 1:
            raise KeyError(f"{name!r} names {hits.sum()} runs of this sweep")
        return load(os.path.join(self.path, self._dirs[int(np.argmax(hits))]))

    def __repr__(self):
        counts = self.runs["status"].value_counts().to_dict() if len(self.runs) else {}
        return f"<dln.Sweep ({self.kind}) {len(self.runs)} runs over {self.axes}: {counts}>"


def _read_runs_csv(path, prefix=""):
    runs = pd.read_csv(os.path.join(path, "runs.csv"), float_precision="round_trip",
                       dtype={"run": str})
    fixed = {"run", "arm", "depth", "status", "steps"}
    cols = list(runs.columns)
    start = cols.index("status") if "status" in cols else len(cols)
    axes = [c for c in cols[1:start] if c not in fixed]
    list_keys = _list_keys()
    for a in axes:
        if a in list_keys or (runs[a].dtype == object and runs[a].astype(str).str.fullmatch(
                r"\d+(-\d+)+").all()):
            runs[a] = runs[a].map(_cell_tuple)
    if "arm" in runs:
        axes = ["arm"] + axes
    return runs, [os.path.join(prefix, r) for r in runs["run"]], axes


def load_sweep(path):
    """A sweep, arms or [select] directory (as written by ``dln sweep`` or ``dln run`` with
    [[arms]]) as a Sweep."""
    path = os.fspath(path)
    if os.path.isfile(os.path.join(path, "runs.csv")):
        runs, dirs, axes = _read_runs_csv(path)
        kind = "arms" if "arm" in runs else "sweep"
        return Sweep(path, kind, runs, dirs, axes)
    if os.path.isfile(os.path.join(path, "grid", "runs.csv")):
        grid, dirs, axes = _read_runs_csv(os.path.join(path, "grid"), "grid")
        grid.insert(0, "phase", "grid")
        parts = [grid]
        if os.path.isfile(os.path.join(path, "best", "runs.csv")):
            best, best_dirs, _ = _read_runs_csv(os.path.join(path, "best"), "best")
            best.insert(0, "phase", "best")
            parts.append(best)
            dirs = dirs + best_dirs
        out = Sweep(path, "select", pd.concat(parts, ignore_index=True), dirs, axes)
        chosen = os.path.join(path, "selection.csv")
        if os.path.isfile(chosen):
            out.selection = pd.read_csv(chosen, float_precision="round_trip")
        return out
    raise DataError(f"{path}: is not a sweep directory (no runs.csv, nor grid/runs.csv)",
                    file=path)


def sweep(config, out=None, *, axes=None, force=False, jobs=None, overrides=None, **kwargs):
    """Runs a config's [sweep] grid (or its [[arms]], or [select]) as ``dln sweep`` does and
    returns the Sweep. axes: {"optimizer.lr": [0.1, 0.2], ...} adds sweep axes (replacing the
    config's axis of the same key), as ``dln sweep --sweep``. out=None keeps the runs in a
    temporary directory that is removed when the Sweep is garbage-collected."""
    cfg = _config(config, overrides, kwargs, axes)
    temporary = tempfile.mkdtemp(prefix="dln-sweep-") if out is None else None
    try:
        target = os.path.join(temporary, "sweep") if out is None else os.fspath(out)
        answer = _need_core().sweep(cfg, target, force, jobs)
        result = load_sweep(answer["path"])
    except BaseException:
        if temporary:
            shutil.rmtree(temporary, ignore_errors=True)
        raise
    if temporary:
        result._remove_when_collected(temporary)
    return result


# --- Trainer ----------------------------------------------------------------------------------


class Trainer:
    """A run stepped by hand: ``step(n)`` takes n steps (recording as ``dln.run`` does, so that
    stepping to the end gives its metrics bit for bit). ``weights`` and ``gradients()`` are
    copies (NumPy arrays (out, in)); ``set_weights`` replaces the layers (the optimiser keeps its
    state). ``measure(probes)`` measures any metrics now without recording them."""

    def __init__(self, config, *, jobs=None, overrides=None, **kwargs):
        self._t = _need_core().Trainer(_config(config, overrides, kwargs), jobs)

    def step(self, n=1):
        """Takes up to n steps (fewer when the run ends); returns how many it took."""
        return self._t.step(int(n))

    @property
    def steps(self):
        return self._t.steps

    @property
    def done(self):
        return self._t.done

    @property
    def status(self):
        return self._t.status

    @property
    def loss(self):
        return self._t.loss

    @property
    def weights(self):
        return list(self._t.weights)

    def set_weights(self, weights):
        self._t.set_weights([np.asarray(w, dtype=np.float64) for w in weights])

    def gradients(self):
        return list(self._t.gradients())

    def measure(self, probes=None):
        if isinstance(probes, str):
            probes = [probes]
        return self._t.measure(probes)

    @property
    def metrics(self):
        m = self._t.metrics()
        return _frame(m["columns"], m["rows"])

    @property
    def summary(self):
        return json.loads(self._t.summary())

    @property
    def config(self):
        return tomllib.loads(self._t.config())

    def run(self):
        """The state so far as a Run (in memory)."""
        return Run(self.metrics, self.summary, self.config, self.weights, None)


# --- Registries, verify, reproduce ----------------------------------------------------------------


def metrics():
    """The metrics (probes) a config may record, with what each measures."""
    return pd.DataFrame(_need_core().metrics())


def optimizers():
    return pd.DataFrame(_need_core().optimizers())


def schedules():
    return pd.DataFrame(_need_core().schedules())


def losses():
    return pd.DataFrame(_need_core().losses())


def inits():
    return pd.DataFrame(_need_core().inits())


def datasets():
    return pd.DataFrame(_need_core().datasets())


def config_keys():
    """Every config key: type, default, when it applies, and what it means."""
    return pd.DataFrame(_need_core().config_keys())


def verify(quick=False, only=0):
    """``dln verify``: each theorem check as a row (id, check, setting, measured, threshold,
    holds)."""
    rows = _need_core().verify(bool(quick), int(only))
    return pd.DataFrame(rows, columns=["id", "check", "setting", "measured", "threshold", "holds"])


def reproductions():
    return pd.DataFrame(_need_core().reproductions(), columns=["name", "description"])


def reproduce(name, out=None, *, force=False, jobs=None, figures=True):
    """``dln reproduce NAME``: runs a paper's experiment into ``out`` (default runs/NAME), draws
    its figures and prints its claims; returns the directory."""
    path = _need_core().reproduce(name, "" if out is None else os.fspath(out), force, jobs)
    if figures:
        from . import paper_figures as figures_module
        figures_module.REPRODUCTIONS[name](path)
    return path
