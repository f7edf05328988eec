"""Figures of dln runs, sweeps, arms and [select] directories.

``plot(obj, ...)`` returns a matplotlib Figure (and writes nothing):

- a run: one panel per probe group (loss; norms: the layers' Frobenius norms with ||W_e||_F;
  balance; then every other recorded probe), a line per column, the run named in the title;
- a sweep: the loss (or the metrics asked), one colour per value of a swept axis (hue), one panel
  per value of another (facet); diverged runs are drawn dotted, kept out of the axis limits and
  listed in the legend;
- arms (``dln run`` on a config with [[arms]]): one panel per probe group, a line per arm;
- a [select] directory: its best runs, or its grid.

``python3 -m dln.plot DIR... [options]`` (what ``dln plot`` runs) writes those figures to
DIR/figures/NAME.png and NAME.svg and prints "dln: figure PATH" for each file. Without options a
run and arms get a figure per probe group (loss, norms, balance, ...) and a sweep or a [select]
directory gets loss and e2e_fro; with options, a figure named after them. A figure file that dln
did not write is never replaced. Data are read with dln.api (pandas is imported on first use).
"""

import argparse
import collections
import csv
import json
import math
import numbers
import os
import re
import sys
import textwrap

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import ticker
from matplotlib.lines import Line2D

from .errors import InputError

FORMATS = ("png", "svg")
DPI = 120
MANY_ENTRIES = 12  # above this many legend entries, the legend goes outside the axes
X_LABELS = {"step": "step", "t": "t (continuous time: η·step, or flow time)"}
NOT_PROBES = {"step", "time", "t"}  # metrics columns that are no probe group of their own
KEYS = {"phase", "run", "depth", "status"}  # sweep.metrics columns that describe the run
Y_LABELS = {
    "loss": "loss",
    "norms": "Frobenius norm",
    "fro": r"$\Vert W_l\Vert_F$",
    "balance": r"$\Vert W_{l+1}^T W_{l+1} - W_l W_l^T\Vert_F$",
    "e2e_fro": r"$\Vert W_e\Vert_F$",
}
STYLES = ("-", "--", "-.", (0, (5, 1, 1, 1, 1, 1)))  # one per column of a multi-column group


# --- Reading and writing (also used by dln.paper_figures) ----------------------------------


def _number(text):
    """float(text), or nan for an empty or malformed field (float accepts nan, inf, -inf)."""
    try:
        return float(text)
    except ValueError:
        return float("nan")


def _read_rows(path):
    """Header and rows of a CSV file (RFC 4180 quoting), raising InputError on failure."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
    except FileNotFoundError:
        raise InputError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError, csv.Error) as e:
        raise InputError(f"{path}: cannot read ({e})") from None
    if not rows or not rows[0]:
        raise InputError(f"{path}: empty file, no header")
    return rows[0], rows[1:]


def read_metrics(path):
    """metrics.csv as {column: float array}; missing trailing fields (a cut-off last row) are nan."""
    header, rows = _read_rows(path)
    columns = {name: np.full(len(rows), np.nan) for name in header}
    for i, row in enumerate(rows):
        for name, text in zip(header, row):
            columns[name][i] = _number(text)
    return columns


MARKER = ".dln"  # the file that marks a directory as dln's and lists what dln wrote there


def _marker(dir_arg):
    """The marker of a directory dln wrote, or None (no marker: written by an older dln, or not
    by dln at all)."""
    try:
        with open(os.path.join(dir_arg, MARKER), encoding="utf-8") as f:
            marker = json.load(f)
    except (OSError, ValueError):
        return None
    return marker if isinstance(marker, dict) and marker.get("written_by") == "dln" else None


def _write_atomically(path, write):
    """Calls write(tmp) for a temporary sibling of path, fsyncs it and renames it onto path, so
    that path holds the old or the new contents, never a mixture."""
    directory, base = os.path.split(path)
    tmp = os.path.join(directory, f".{base}.tmp-{os.getpid()}")
    try:
        write(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _save(fig, dir_arg, name):
    """Writes fig as DIR/figures/name.{png,svg}, prints each path, closes fig; returns the paths.
    A figure file that dln did not write is never replaced (InputError)."""
    out_dir = os.path.join(dir_arg, "figures")
    marker = _marker(dir_arg)
    listed = set(marker.get("entries", [])) if marker else None
    written = []
    try:
        for ext in FORMATS:
            rel = f"figures/{name}.{ext}"
            path = os.path.join(out_dir, f"{name}.{ext}")
            # Without a marker (an older dln's directory) figures/*.png and *.svg are dln's.
            if os.path.lexists(path) and listed is not None and rel not in listed:
                raise InputError(f"{path}: exists and was not written by dln; not replaced")
            if os.path.lexists(out_dir) and not os.path.isdir(out_dir):
                raise InputError(f"{out_dir}: exists and is not a directory")
        os.makedirs(out_dir, exist_ok=True)
        for ext in FORMATS:
            path = os.path.join(out_dir, f"{name}.{ext}")
            _write_atomically(path, lambda tmp, ext=ext: fig.savefig(
                tmp, format=ext, dpi=DPI, bbox_inches="tight"))
            print(f"dln: figure {path}")
            written.append(path)
    finally:
        plt.close(fig)
    if marker is not None:
        entries = set(marker.get("entries", [])) | {"figures"}
        entries |= {os.path.relpath(p, dir_arg).replace(os.sep, "/") for p in written}
        marker["entries"] = sorted(entries)
        text = json.dumps(marker, indent=1) + "\n"

        def write_marker(tmp):
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)

        _write_atomically(os.path.join(dir_arg, MARKER), write_marker)
    return written


# --- Loading ----------------------------------------------------------------------------------


def _is_sweep(data):
    """Whether data is a dln.Sweep (a Run has no runs table)."""
    return hasattr(data, "runs") and hasattr(data, "axes")


def _load(obj):
    """obj as a Run or a Sweep: a path is read with dln.api; bad input raises InputError."""
    if not isinstance(obj, (str, os.PathLike)):
        if _is_sweep(obj) or (hasattr(obj, "summary") and hasattr(obj, "metrics")):
            return obj
        raise TypeError(f"plot: expected a Run, a Sweep or a directory, not {type(obj).__name__}")
    path = os.fspath(obj)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such directory")
    if not os.path.isdir(path):
        raise InputError(f"{path}: not a directory")
    if not os.access(path, os.R_OK | os.X_OK):
        raise InputError(f"{path}: directory is not readable")
    from . import api
    try:
        if os.path.isfile(os.path.join(path, "metrics.csv")):
            return api.load(path)
        if any(os.path.isfile(os.path.join(path, *p, "runs.csv")) for p in ((), ("grid",))):
            return api.load_sweep(path)
    except InputError:
        raise
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"{path}: cannot read ({e})") from None
    raise InputError(f"{path}: is not a run or sweep directory "
                     "(no metrics.csv, runs.csv or grid/runs.csv)")


# --- Metrics and probe groups ---------------------------------------------------------------


def _group_of(column):
    """The probe group of a metrics column: its name up to the first dot (fro.2 -> fro)."""
    return column.split(".", 1)[0]


def _resolve(name, columns):
    """The columns a metric name draws: a column, a probe group (fro: fro.1, fro.2, ...), or
    norms (the fro group and e2e_fro)."""
    if name == "norms":
        return [c for c in columns if _group_of(c) == "fro" and c != "fro"] + \
            [c for c in columns if c == "e2e_fro"]
    if name in columns:
        return [name]
    return [c for c in columns if c.startswith(name + ".")]


def _default_groups(columns):
    """The names of every probe group recorded: loss, norms (fro.l and e2e_fro), balance, then
    the others in column order."""
    names = []
    for c in columns:
        if c in NOT_PROBES:
            continue
        group = _group_of(c)
        if group in ("fro", "e2e_fro"):
            group = "norms"
        if group not in names:
            names.append(group)
    first = [n for n in ("loss", "norms", "balance") if n in names]
    return first + [n for n in names if n not in first]


def _groups(metric, columns, default):
    """[(name, columns)] for metric (None: the names in default, a name, or a list of names);
    an unknown name raises InputError naming what is recorded."""
    names = default if metric is None else [metric] if isinstance(metric, str) else list(metric)
    groups = []
    for name in names:
        found = _resolve(name, columns)
        if not found:
            recorded = ", ".join(_default_groups(columns) + [c for c in columns if c == "t"])
            raise InputError(f"metric: unknown metric {name!r} (recorded: {recorded})")
        groups.append((name, found))
    return groups


def _column_label(column):
    """A legend label for one metrics column."""
    group, _, index = column.partition(".")
    if group == "fro" and index:
        return rf"$\Vert W_{{{index}}}\Vert_F$"
    if group == "balance" and index.isdigit():
        return f"layers ({index}, {int(index) + 1})"
    return Y_LABELS.get(column, column)


def _values(frame, column):
    """A column of a DataFrame as a float array (all nan when the column is missing)."""
    if column not in frame:
        return np.full(len(frame), np.nan)
    return frame[column].to_numpy(dtype=float, na_value=np.nan)


def _x_values(frame, x, who):
    """The x column (step or t) of a run's records; t must have been recorded to be asked for."""
    if x not in frame or not np.isfinite(_values(frame, x)).any():
        if x == "t":
            raise InputError(f"x: {who} did not record t (add \"t\" to record.probes)")
        raise InputError(f"{who}: no records")
    return _values(frame, x)


def _points(x, y, logx=False, logy=False):
    """(x, y) without the non-finite points, and without the non-positive ones on a log axis;
    points are dropped so that isolated ones stay connected."""
    keep = np.isfinite(x) & np.isfinite(y)
    if logx:
        keep &= x > 0
    if logy:
        keep &= y > 0
    return x[keep], y[keep]


# --- Scales, limits and ticks -----------------------------------------------------------------


def _extent(pairs, logx):
    """The x and y values, as flat arrays, of the records of (x, y) column pairs that can be
    shown on the x axis (finite x, and positive on a log x axis): what sets the axis limits."""
    xs, ys = [np.array([])], [np.array([])]
    for xv, yv in pairs:
        keep = np.isfinite(xv) & ((xv > 0) if logx else True)
        xs.append(xv[keep])
        ys.append(yv[keep])
    return np.concatenate(xs), np.concatenate(ys)


def _choose_scale(values):
    """("log", None) for positive values spanning a decade or more; ("symlog", linthresh) for
    values that also hold zeros or negatives and whose nonzero magnitudes span three decades;
    else ("linear", None)."""
    v = values[np.isfinite(values)]
    if not len(v):
        return "linear", None
    if (v > 0).all():
        return ("log", None) if v.max() >= 10 * v.min() else ("linear", None)
    mag = np.abs(v[v != 0])
    if len(mag) and (v > 0).any() and mag.max() >= 1e3 * mag.min():
        return "symlog", max(mag.min(), mag.max() * 1e-12)
    return "linear", None


def _transform(scale, linthresh):
    """(forward, inverse) of a scale, for padding limits by a fraction of the drawn range."""
    if scale == "log":
        return np.log10, lambda t: 10.0 ** t
    if scale == "symlog":
        return (lambda v: np.sign(v) * np.log10(1 + abs(v) / linthresh),
                lambda t: np.sign(t) * linthresh * (10.0 ** abs(t) - 1))
    return (lambda v: v), (lambda t: t)


def _span(values, scale, linthresh, pad):
    """(low, high) limits that show values on this scale with a margin of pad (a fraction of
    the range), or None when there is nothing to show."""
    v = values[np.isfinite(values)]
    if scale == "log":
        v = v[v > 0]
    if not len(v):
        return None
    forward, inverse = _transform(scale, linthresh)
    a, b = forward(v.min()), forward(v.max())
    d = (b - a) * pad if b > a else (abs(a) * 0.05 or 1.0)
    return float(inverse(a - d)), float(inverse(b + d))


def _log_ticks(axis, low, high, linthresh=None):
    """Labelled ticks at 1 (more than four decades), 1, 2, 5 (three or four), 1, 2, 3, 5 (two)
    or 1 to 9 (one or less) times the powers of ten: a log or symlog axis gets at least four
    labels whenever its span holds four such values."""
    top = max(abs(low), abs(high))
    bottom = linthresh if linthresh else min(abs(low), abs(high))
    decades = math.log10(top / bottom) if bottom > 0 else 1.0
    subs = ((1.0,) if decades > 4 else (1.0, 2.0, 5.0) if decades > 2 else
            (1.0, 2.0, 3.0, 5.0) if decades > 1 else tuple(range(1, 10)))
    if linthresh:
        axis.set_major_locator(ticker.SymmetricalLogLocator(linthresh=linthresh, base=10,
                                                            subs=subs))
    else:
        axis.set_major_locator(ticker.LogLocator(base=10, subs=subs, numticks=15))
        axis.set_minor_locator(ticker.LogLocator(base=10, subs="auto", numticks=15))
    axis.set_major_formatter(ticker.LogFormatterSciNotation(
        labelOnlyBase=False, minor_thresholds=(np.inf, np.inf), linthresh=linthresh))
    axis.set_minor_formatter(ticker.NullFormatter())


def _apply_scale(ax, which, scale, linthresh, values, pad):
    """Sets the scale, the limits (from values only) and the ticks of the x or y axis."""
    axis, set_scale, set_lim = ((ax.xaxis, ax.set_xscale, ax.set_xlim) if which == "x" else
                                (ax.yaxis, ax.set_yscale, ax.set_ylim))
    set_scale(scale, **({"linthresh": linthresh} if scale == "symlog" else {}))
    limits = _span(values, scale, linthresh, pad)
    if limits is None:
        return
    set_lim(*limits)
    if scale != "linear":
        _log_ticks(axis, *limits, linthresh)


def _ylabel(group, cols):
    """The y label of a panel: its one column's, or its group's."""
    if len(cols) > 1:
        return Y_LABELS.get(_group_of(group), group)
    column = cols[0]
    if column in Y_LABELS or _group_of(column) == "fro":
        return _column_label(column)
    return Y_LABELS.get(_group_of(column), column)


def _title(group, cols):
    """The title of a panel: its group, or its one column when that is not in the group's name
    (norms drawn as e2e_fro alone)."""
    return group if len(cols) > 1 or cols[0].startswith(group) else cols[0]


def _finish_panel(ax, title, ylabel, x, logx, xs, ys):
    """Titles, labels, scales and limits of a panel: xs and ys are the values that set the
    limits (the drawn lines may reach beyond them)."""
    ax.set(title=title, xlabel=X_LABELS[x], ylabel=ylabel)
    ax.grid(True, which="major", alpha=0.3)
    if not any(len(line.get_xdata()) for line in ax.get_lines()):
        ax.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=ax.transAxes)
    _apply_scale(ax, "x", "log" if logx else "linear", None, xs, 0.0)
    _apply_scale(ax, "y", *_choose_scale(ys), ys, 0.05)


def _legend(ax, handles):
    """A legend of the given handles; outside the axes on the right when they are many."""
    if not handles:
        return
    if len(handles) > MANY_ENTRIES:
        ax.legend(handles=handles, fontsize="x-small", loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), ncol=1 + len(handles) // 30, frameon=False)
    else:
        ax.legend(handles=handles, fontsize="small")


def _panels(n, rows=None):
    """A figure with n panels (rows x n/rows when rows is given, else up to three a row);
    returns (fig, axes) with the n axes in reading order."""
    if n == 1:
        fig, ax = plt.subplots(figsize=(6.4, 4.2), layout="constrained")
        return fig, [ax]
    ncols = n // rows if rows else min(n, 3)
    nrows = rows or math.ceil(n / ncols)
    fig, grid = plt.subplots(nrows, ncols, figsize=(5.0 * ncols, 3.8 * nrows), squeeze=False,
                             layout="constrained")
    axes = list(grid.ravel())
    for ax in axes[n:]:
        fig.delaxes(ax)
    return fig, axes[:n]


# --- A run --------------------------------------------------------------------------------


def _run_title(run):
    """The run's name (a run of a sweep or an arm adds its directory's name) and its status."""
    name = str(run.summary.get("name") or "")
    if run.path:
        base = os.path.basename(os.path.normpath(run.path))
        parent = os.path.dirname(os.path.normpath(run.path))
        if not name:
            name = base
        elif base != name and os.path.isfile(os.path.join(parent, "runs.csv")):
            name = f"{name} / {base}"
    title = name or "run"
    if run.summary.get("status"):
        title += f" ({run.summary['status']})"
    return title


def _plot_run(run, metric, x, logx):
    """One panel per probe group of a run, a line per column."""
    frame = run.metrics
    columns = list(frame.columns)
    groups = _groups(metric, columns, _default_groups(columns))
    title = _run_title(run)
    xv = _x_values(frame, x, run.path or title)
    fig, axes = _panels(len(groups))
    for ax, (group, cols) in zip(axes, groups):
        xs, ys = _extent([(xv, _values(frame, c)) for c in cols], logx)
        logy = _choose_scale(ys)[0] == "log"
        for c in cols:
            style = {"color": "k", "ls": "--"} if c == "e2e_fro" and len(cols) > 1 else {}
            ax.plot(*_points(xv, _values(frame, c), logx, logy), lw=1.2,
                    label=_column_label(c), **style)
        _finish_panel(ax, _title(group, cols), _ylabel(group, cols), x, logx, xs, ys)
        if len(cols) > 1:
            _legend(ax, ax.get_lines())
    fig.suptitle(title)
    return fig


# --- A sweep, arms or a [select] directory -----------------------------------------------------


def _order(value):
    """A sort key for swept values: numbers by value, lists by length then text, then text."""
    if isinstance(value, numbers.Real):
        return (0, float(value), "")
    if isinstance(value, tuple):
        return (1, float(len(value)), str(value))
    return (2, 0.0, str(value))


def _text(value):
    """A swept value as text: 0.01, 10-8-3 (widths), a;b (other lists)."""
    if isinstance(value, tuple):
        joiner = "-" if all(isinstance(v, numbers.Integral) for v in value) else ";"
        return joiner.join(_text(v) for v in value)
    if isinstance(value, numbers.Real) and not isinstance(value, numbers.Integral):
        return f"{value:g}"
    return str(value)


def _short_names(axes):
    """{axis: name in labels}: the last dotted part (optimizer.lr -> lr) when that stays unique."""
    short = {a: a.rsplit(".", 1)[-1] for a in axes}
    return short if len(set(short.values())) == len(short) else {a: a for a in axes}


def _label(row, axes, short):
    """"lr=0.1, widths=10-6-3" for a run's values on the axes (an arm's or a run's name alone)."""
    if axes in (["arm"], ["run"]):
        return _text(row[axes[0]])
    return ", ".join(f"{short[a]}={_text(row[a])}" for a in axes) or str(row["run"])


def _palette(values):
    """{value: colour}: tab10 or tab20 for few values, viridis by rank for many numbers."""
    n = len(values)
    if n > 20 or (n > 10 and all(isinstance(v, numbers.Real) for v in values)):
        cmap = matplotlib.colormaps["viridis"]
        return {v: cmap(0.95 * i / (n - 1)) for i, v in enumerate(values)}
    cmap = matplotlib.colormaps["tab10" if n <= 10 else "tab20"]
    return {v: cmap(i) for i, v in enumerate(values)}


def _axis(name, axes, option):
    """Checks that name is one of the sweep's axes (or depth or run); InputError otherwise."""
    allowed = list(axes) + [a for a in ("depth", "run") if a not in axes]
    if name not in allowed:
        raise InputError(f"{option}: unknown axis {name!r} (this sweep's axes: "
                         f"{', '.join(allowed)})")
    return name


def _selected_runs(sweep, phase):
    """The rows of sweep.runs to draw: a [select] directory's best runs unless phase="grid"."""
    if phase not in (None, "best", "grid"):
        raise InputError(f"phase: must be best or grid, not {phase!r}")
    if sweep.kind != "select":
        if phase is not None:
            raise InputError(f"phase: only a [select] directory has phases (this is a "
                             f"{sweep.kind} directory)")
        return sweep.runs
    runs = sweep.runs[sweep.runs["phase"] == (phase or "best")]
    if not len(runs):
        raise InputError(f"{sweep.path}: holds no {phase or 'best'} runs")
    return runs


def _run_frames(sweep, runs):
    """{row label of runs: that run's records (a DataFrame)}."""
    try:
        metrics = sweep.metrics
    except (OSError, ValueError, KeyError) as e:
        raise InputError(f"{sweep.path}: cannot read a run's metrics ({e})") from None
    if not len(metrics):
        return {}

    def tag(table):
        run = table["run"].astype(str)
        return table["phase"] + "/" + run if "phase" in table else run

    where = metrics.groupby(tag(metrics), sort=False).indices
    return {i: metrics.iloc[where[t]] for i, t in tag(runs).items() if t in where}


def _recorded(frames, skip):
    """The columns that hold a finite value in any of the runs' records, skip left out."""
    columns = []
    for frame in frames:
        columns += [c for c in frame.columns if c not in skip and c not in columns
                    and np.isfinite(_values(frame, c)).any()]
    return columns


def _diverged(status, frame, columns):
    """A run diverged when its status says so or a drawn column turns non-finite."""
    if status == "diverged":
        return True
    if frame is None:  # no records
        return False
    for c in columns:
        v = _values(frame, c)
        if not np.isnan(v).all() and not np.isfinite(v).all():  # all nan: not recorded
            return True
    return False


def _best(runs, metric, keys, diverged):
    """The labels of the runs to keep: per value of keys, the non-diverged run with the lowest
    final metric (all runs of a group where every run diverged)."""
    columns = list(runs.columns)
    finals = columns[columns.index("steps") + 1:] if "steps" in columns else []
    finals = [c for c in finals if c != "_dir"]
    if metric not in finals:
        raise InputError(f"best_by: {metric!r} is not a final metric of this sweep "
                         f"({', '.join(finals)})")
    best, losers = {}, {}
    for i, row in runs.iterrows():
        key = tuple(row[k] for k in keys)
        value = float(row[metric])
        if i in diverged or not math.isfinite(value):
            losers.setdefault(key, []).append(i)
        elif key not in best or value < best[key][0]:
            best[key] = (value, i)
    keep = {i for _, i in best.values()}
    keep |= {i for key, labels in losers.items() if key not in best for i in labels}
    return [i for i in runs.index if i in keep]


def _diverged_entry(labels):
    """The legend entry listing the diverged runs of a panel (wrapped to a narrow column)."""
    shown = "; ".join(labels[:3]) + ("; ..." if len(labels) > 3 else "")
    n = len(labels)
    text = f"diverged: {n} run{'s' if n > 1 else ''} ({shown})"
    return Line2D([], [], color="0.5", ls=":", label=textwrap.fill(text, 40))


def _sweep_default(kind, columns):
    """The metrics a sweep draws by default: every probe group of arms, else the loss (or the
    first group recorded when there is no loss)."""
    if kind == "arms":
        return _default_groups(columns)
    return ["loss"] if "loss" in columns else _default_groups(columns)[:1]


def _sorted_values(runs, axis):
    """The distinct values of a swept axis, in order."""
    return sorted(set(runs[axis]), key=_order)


def _where(runs, axis, value):
    """The runs whose axis has this value."""
    return runs[[v == value for v in runs[axis]]]


class _SweepPlot:
    """The runs of a sweep to draw, with their colours and labels."""

    def __init__(self, sweep, metric, x, hue, facet, best_by, phase):
        self.sweep, self.x, self.best_by = sweep, x, best_by
        runs = _selected_runs(sweep, phase)
        axes = list(sweep.axes)
        self.hue = _axis(hue, axes, "hue") if hue else (axes[0] if axes else "run")
        self.facet = _axis(facet, axes, "facet") if facet else None
        if self.facet == self.hue:
            raise InputError(f"facet: {facet!r} is the hue axis too")
        self.frames = _run_frames(sweep, runs)
        columns = _recorded(self.frames.values(), KEYS | set(axes))
        self.groups = _groups(metric, columns, _sweep_default(sweep.kind, columns))
        drawn = [c for _, cols in self.groups for c in cols]
        self.diverged = {i for i, row in runs.iterrows()
                         if _diverged(row["status"], self.frames.get(i), drawn)}
        if best_by:
            keys = [self.hue] + ([self.facet] if self.facet else [])
            runs = runs.loc[_best(runs, best_by, keys, self.diverged)]
        self.runs = runs
        for i in runs.index:
            if i in self.frames:
                _x_values(self.frames[i], x, f"run {runs.loc[i, 'run']}")
        self.others = [a for a in axes if a not in (self.hue, self.facet)]
        self.short = _short_names(axes + [a for a in ("depth", "run") if a not in axes])
        named = [a for a in axes if a != self.facet] or ["run"]  # the panel names the facet
        self.labels = {i: _label(row, named, self.short) for i, row in runs.iterrows()}
        self.hues = _sorted_values(runs, self.hue)
        self.colours = _palette(self.hues)
        self.facets = _sorted_values(runs, self.facet) if self.facet else [None]

    def value_label(self, axis, value):
        """"lr=0.1" (an arm's or a run's name alone)."""
        return _text(value) if axis in ("arm", "run") else f"{self.short[axis]}={_text(value)}"

    def in_panel(self, facet_value):
        """The runs of one facet value."""
        return self.runs if self.facet is None else _where(self.runs, self.facet, facet_value)

    def hue_entry(self, value, runs):
        """The legend entry of a hue value; with best_by it names the chosen values of the
        other axes."""
        label = self.value_label(self.hue, value)
        if self.best_by and self.others and len(runs) == 1:
            row = runs.iloc[0]
            label += " (best: " + ", ".join(self.value_label(a, row[a]) for a in self.others) + ")"
        return Line2D([], [], color=self.colours[value], lw=1.5, label=label)

    def extent(self, cols, logx):
        """What sets the axis limits: _extent of the columns of the non-diverged runs (of all
        runs when every run diverged)."""
        kept = [i for i in self.runs.index if i not in self.diverged and i in self.frames]
        kept = kept or [i for i in self.runs.index if i in self.frames]
        return _extent([(_values(self.frames[i], self.x), _values(self.frames[i], c))
                        for i in kept for c in cols], logx)

    def draw(self, ax, runs, cols, logx, logy):
        """Draws the runs' columns on ax: a colour per hue value, thin lines where a hue value
        has several runs, a line style per column, diverged runs dotted. Returns the drawn
        runs (those that recorded any of the columns)."""
        per_hue = collections.Counter(runs[self.hue])
        drawn = []
        for i, row in runs.iterrows():
            if i not in self.frames:  # no records
                continue
            thin = per_hue[row[self.hue]] > 1
            for j, c in enumerate(cols):
                x, y = _points(_values(self.frames[i], self.x), _values(self.frames[i], c),
                               logx, logy)
                if not len(x):
                    continue
                style = dict(color=self.colours[row[self.hue]], lw=0.8 if thin else 1.5,
                             alpha=0.8 if thin else 1.0, ls=STYLES[j % len(STYLES)])
                if i in self.diverged:
                    style.update(ls=":", lw=0.8, alpha=0.6)
                ax.plot(x, y, **style)
                drawn += [] if i in drawn else [i]
        return runs.loc[drawn]

    def legend(self, ax, drawn, runs, cols):
        """The hue values (colours) of the drawn runs, the columns (line styles) and the
        diverged runs of a panel."""
        handles = []
        for value in self.hues:
            of_value = _where(drawn, self.hue, value)
            if len(of_value):
                handles.append(self.hue_entry(value, of_value))
        if len(cols) > 1:
            handles += [Line2D([], [], color="0.3", ls=STYLES[j % len(STYLES)],
                               label=_column_label(c)) for j, c in enumerate(cols)]
        gone = [self.labels[i] for i in runs.index if i in self.diverged]
        if gone:
            handles.append(_diverged_entry(gone))
        _legend(ax, handles)

    def title(self):
        """The figure's title: the directory, what is drawn, how many runs diverged."""
        name = os.path.basename(os.path.normpath(self.sweep.path or "")) or "sweep"
        n = len(self.runs)
        if self.sweep.kind == "arms":
            what = "arms " + ", ".join(str(arm) for arm in self.runs["arm"])
        else:
            what = f"{n} run{'s' if n != 1 else ''}"
            if self.sweep.kind == "select":
                what = ("grid: " if self.runs["phase"].iloc[0] == "grid" else "best: ") + what
        if self.best_by:
            what += f", the best by final {self.best_by}"
        gone = sum(i in self.diverged for i in self.runs.index)
        return f"{name}: {what}" + (f" ({gone} diverged)" if gone else "")


def _plot_sweep(sweep, metric, x, logx, hue, facet, best_by, phase):
    """A row of panels per metric group (a panel per facet value), a colour per hue value;
    the y limits of a group are shared by its panels and set by the non-diverged runs."""
    s = _SweepPlot(sweep, metric, x, hue, facet, best_by, phase)
    n_groups, n_facets = len(s.groups), len(s.facets)
    fig, axes = _panels(n_groups * n_facets,
                        rows=n_groups if n_groups > 1 and n_facets > 1 else None)
    panels = iter(axes)
    for group, cols in s.groups:
        xs, ys = s.extent(cols, logx)
        logy = _choose_scale(ys)[0] == "log"
        for value in s.facets:
            ax = next(panels)
            runs = s.in_panel(value)
            drawn = s.draw(ax, runs, cols, logx, logy)
            title = _title(group, cols)
            if s.facet is not None:
                title += f", {s.value_label(s.facet, value)}"
            _finish_panel(ax, title, _ylabel(group, cols), x, logx, xs, ys)
            s.legend(ax, drawn, runs, cols)
    if len(s.hues) >= MANY_ENTRIES:  # room for the legends beside the panels
        fig.set_size_inches(fig.get_size_inches() + [2.5, 0.6])
    fig.suptitle(s.title())
    return fig


# --- The API and the command line ---------------------------------------------------------------


def plot(obj, metric=None, x="step", logx=False, hue=None, facet=None, best_by=None, phase=None):
    """A matplotlib Figure of a run, a sweep, arms or a [select] directory (nothing is written;
    close it with matplotlib.pyplot.close(fig) when done).

    obj: a dln.Run, a dln.Sweep, or the path of a run, sweep, arms or [select] directory.
    metric: a metrics column ("loss", "fro.1"), a probe group ("fro", "balance"; "norms" is fro
        with e2e_fro), or a list of them; each is a panel (a row of panels with facet). Default:
        every probe group for a run or arms, the loss for a sweep or a [select] directory.
    x: "step" (default) or "t" (continuous time, when the runs recorded it).
    logx: a logarithmic x axis (records at step 0 are left out).
    hue: the swept axis drawn as colours (default: the first swept axis; "arm" for arms); runs
        that differ only on other axes share their colour and are drawn thin.
    facet: the swept axis drawn as one panel per value (default: none).
    best_by: a final metric (a runs.csv column, e.g. "loss"): only the run with its lowest value
        among the non-diverged runs of each (hue, facet) value is drawn.
    phase: for a [select] directory, "best" (default: the runs trained after the selection) or
        "grid" (the grid it selected from).

    The y axis is logarithmic when the drawn values are positive and span a decade or more
    (symlog when they also hold zeros or negatives and span three), linear otherwise. Diverged
    runs (status diverged, or a drawn value that is not finite) are drawn dotted, set no axis
    limit and are listed in the legend. Bad input raises dln.InputError.
    """
    data = _load(obj)
    if x not in X_LABELS:
        raise InputError(f"x: must be step or t, not {x!r}")
    if _is_sweep(data):
        return _plot_sweep(data, metric, x, logx, hue, facet, best_by, phase)
    for option, value in (("hue", hue), ("facet", facet), ("best_by", best_by), ("phase", phase)):
        if value is not None:
            raise InputError(f"{option}: applies to a sweep, arms or [select] directory, "
                             "not to a run")
    return _plot_run(data, metric, x, logx)


def _default_figures(data, phase):
    """[(figure name, metric)] drawn without a metric: a figure per probe group for a run; loss
    and e2e_fro for a sweep or a [select] directory; for arms these and every other group."""
    if not _is_sweep(data):
        return [(g, g) for g in _default_groups(list(data.metrics.columns))]
    frames = _run_frames(data, _selected_runs(data, phase)).values()
    columns = _recorded(frames, KEYS | set(data.axes))
    names = [n for n in ("loss", "e2e_fro") if n in columns]
    if data.kind == "arms" or not names:
        drawn = [_resolve(n, columns) for n in names]
        names += [g for g in _default_groups(columns) if _resolve(g, columns) not in drawn]
    return [(n, n) for n in names]


def _figure_name(base, x, logx, hue, facet, best_by, phase):
    """A figure's file name: its metrics, then the options that differ from the defaults."""
    parts = [base]
    parts += [f"x-{x}"] if x != "step" else []
    parts += ["logx"] if logx else []
    parts += [f"hue-{hue}"] if hue else []
    parts += [f"facet-{facet}"] if facet else []
    parts += [f"best-{best_by}"] if best_by else []
    parts += [phase] if phase == "grid" else []
    return re.sub(r"[^A-Za-z0-9._+-]", "-", "_".join(parts))


def plot_dir(path, metric=None, x="step", logx=False, hue=None, facet=None, best_by=None,
             phase=None):
    """Draws the figures of a run, sweep, arms or [select] directory into DIR/figures/ (PNG
    and SVG, through _save); returns the written paths. The options are plot()'s; without
    metric the default figures are drawn (see _default_figures), with it one figure."""
    data = _load(path)
    options = dict(x=x, logx=logx, hue=hue, facet=facet, best_by=best_by, phase=phase)
    if metric is None:
        figures = _default_figures(data, phase)
    else:
        metrics = [metric] if isinstance(metric, str) else list(metric)
        figures = [("+".join(metrics), metrics)]
    drawn = [(name, plot(data, m, **options)) for name, m in figures]
    written = []
    try:
        for name, fig in drawn:
            written += _save(fig, path, _figure_name(name, **options))
    finally:  # _save closes what it wrote; a refused figure leaves the rest open
        for _, fig in drawn:
            plt.close(fig)
    return written


class _Parser(argparse.ArgumentParser):
    """argparse that reports bad arguments as InputError (one "dln: error:" line, status 2)."""

    def error(self, message):
        raise InputError(message)


def _parser():
    """The command line's options (plot()'s, and the directories)."""
    p = _Parser(prog="python3 -m dln.plot",
                description="Draws the figures of dln run, sweep, arms or [select] directories "
                            "into DIR/figures/ as PNG and SVG.")
    p.add_argument("dirs", nargs="+", metavar="DIR", help="a run, sweep, arms or [select] "
                   "directory (before the options)")
    p.add_argument("--metric", action="extend", nargs="+", metavar="M",
                   help="columns or probe groups to draw, a panel each (repeatable; default: "
                        "a figure per probe group of a run or arms, loss and e2e_fro of a sweep)")
    p.add_argument("--x", choices=tuple(X_LABELS), default="step",
                   help="the x axis: step (default) or t (continuous time)")
    p.add_argument("--logx", action="store_true", help="a logarithmic x axis")
    p.add_argument("--hue", metavar="AXIS", help="the swept axis drawn as colours "
                   "(default: the first)")
    p.add_argument("--facet", metavar="AXIS", help="the swept axis drawn as a panel per value")
    p.add_argument("--best-by", metavar="METRIC", help="only the run with the lowest final "
                   "METRIC per hue and facet value")
    p.add_argument("--phase", choices=("best", "grid"),
                   help="a [select] directory's runs to draw: best (default) or grid")
    return p


def main(argv=None):
    """Command line entry point; returns the exit status (0 ok, 2 bad input, 1 cannot write)."""
    matplotlib.use("Agg")
    try:
        args = _parser().parse_args(argv)
    except InputError as e:
        print(f"dln: error: {e}", file=sys.stderr)
        return 2
    except SystemExit as e:  # --help
        return e.code
    status = 0
    for path in args.dirs:
        try:
            plot_dir(path, args.metric, x=args.x, logx=args.logx, hue=args.hue,
                     facet=args.facet, best_by=args.best_by, phase=args.phase)
        except InputError as e:
            print(f"dln: error: {e}", file=sys.stderr)
            status = 2
        except OSError as e:
            print(f"dln: error: {path}: cannot write figures ({e})", file=sys.stderr)
            status = status or 1
    return status


if __name__ == "__main__":
    sys.exit(main())
