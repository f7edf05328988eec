"""Figures for dln run and sweep directories.

A run directory (metrics.csv, summary.json) gives loss, norms and balance figures; a sweep
directory (runs.csv plus one run directory per row) gives one figure with every run's loss.
Figures are written to DIR/figures/ as PNG and SVG, and each written path is printed as
"dln: figure PATH". Only the standard library, numpy and matplotlib are used.
"""

import csv
import json
import os
import re
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (the backend must be chosen first)
import numpy as np  # noqa: E402

FORMATS = ("png", "svg")
DPI = 120
MANY_RUNS = 12  # above this, sweep curves get thin lines and a small legend outside the axes


class InputError(Exception):
    """A file or directory that cannot be read; str() is "PATH: what is wrong"."""


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


def read_summary(run_dir):
    """summary.json as a dict, or {} if it is missing or not valid JSON."""
    try:
        with open(os.path.join(run_dir, "summary.json"), encoding="utf-8") as f:
            summary = json.load(f)
    except (OSError, ValueError):
        return {}
    return summary if isinstance(summary, dict) else {}


def _indexed(columns, prefix):
    """[(l, values)] for the columns named "prefix.l", sorted by l."""
    found = []
    for name, values in columns.items():
        m = re.fullmatch(re.escape(prefix) + r"\.(\d+)", name)
        if m:
            found.append((int(m.group(1)), values))
    return sorted(found, key=lambda item: item[0])


def _points(step, values, positive=False):
    """(step, values) without the non-finite points, and without the non-positive ones when
    positive is set (for log axes); points are dropped so that isolated ones stay connected."""
    keep = np.isfinite(step) & np.isfinite(values)
    if positive:
        keep &= values > 0
    return step[keep], values[keep]


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


def _no_data(ax, what):
    ax.text(0.5, 0.5, f"no {what}", ha="center", va="center", transform=ax.transAxes)


def _legend_or_note(ax, **legend_kw):
    """A legend if any line has points, otherwise a "no finite values" note."""
    if any(len(line.get_xdata()) for line in ax.get_lines()):
        ax.legend(**legend_kw)
    else:
        _no_data(ax, "finite values")


def _run_title(summary, fallback):
    title = str(summary.get("name") or fallback)
    if summary.get("status"):
        title += f" ({summary['status']})"
    return title


def plot_run(run_dir):
    """Draws loss, norms and balance figures for a run directory; returns the written paths."""
    columns = read_metrics(os.path.join(run_dir, "metrics.csv"))
    if "step" not in columns:
        raise InputError(f"{os.path.join(run_dir, 'metrics.csv')}: no step column")
    step = columns["step"]
    title = _run_title(read_summary(run_dir), os.path.basename(os.path.normpath(run_dir)))
    written = []

    if "loss" in columns:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        x, y = _points(step, columns["loss"], positive=True)
        if len(y):
            ax.plot(x, y, lw=1.2)
            ax.set_yscale("log")
        else:
            _no_data(ax, "positive finite loss values")
        ax.set(xlabel="step", ylabel="loss", title=title)
        ax.grid(True, which="major", alpha=0.3)
        written += _save(fig, run_dir, "loss")

    fro = _indexed(columns, "fro")
    if fro or "e2e_fro" in columns:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        for l, values in fro:
            ax.plot(*_points(step, values), lw=1.2, label=rf"$\Vert W_{{{l}}}\Vert_F$")
        if "e2e_fro" in columns:
            ax.plot(*_points(step, columns["e2e_fro"]), "k--", lw=1.2, label=r"$\Vert W_e\Vert_F$")
        ax.set(xlabel="step", ylabel="Frobenius norm", title=f"{title}: weight norms")
        ax.grid(True, alpha=0.3)
        _legend_or_note(ax, fontsize="small")
        written += _save(fig, run_dir, "norms")

    balance = _indexed(columns, "balance")
    if balance:
        fig, ax = plt.subplots(figsize=(6.4, 4.2))
        # Log scale when there is anything positive to show; zeros and negatives are left out.
        use_log = any(len(_points(step, values, positive=True)[1]) for _, values in balance)
        for l, values in balance:
            ax.plot(*_points(step, values, positive=use_log), lw=1.2, label=f"({l}, {l + 1})")
        if use_log:
            ax.set_yscale("log")
        ax.set(xlabel="step", title=f"{title}: balance",
               ylabel=r"$\Vert W_{l+1}^T W_{l+1} - W_l W_l^T\Vert_F$")
        ax.grid(True, which="major", alpha=0.3)
        _legend_or_note(ax, title="layers", fontsize="small")
        written += _save(fig, run_dir, "balance")

    return written


def _sweep_labels(keys, rows):
    """One "key=value, ..." label per row; keys are cut to their last dotted part when the
    labels get long and the short names stay distinct."""
    short = [k.rsplit(".", 1)[-1] for k in keys]
    long_labels = [", ".join(f"{k}={v}" for k, v in zip(keys, vals)) for vals in rows]
    if max((len(s) for s in long_labels), default=0) <= 40 or len(set(short)) < len(short):
        return long_labels
    return [", ".join(f"{k}={v}" for k, v in zip(short, vals)) for vals in rows]


def plot_sweep(sweep_dir):
    """Draws every run's loss curve of a sweep directory on one axis; returns the written paths."""
    header, rows = _read_rows(os.path.join(sweep_dir, "runs.csv"))
    if header[0] != "run":
        raise InputError(f"{os.path.join(sweep_dir, 'runs.csv')}: first column is not 'run'")
    end = header.index("status") if "status" in header else len(header)
    keys = header[1:end]
    rows = [row for row in rows if row and row[0]]
    if keys == ["arm"]:  # arms of one config: the arm's name is the label
        labels = [row[1] for row in rows]
    else:
        labels = _sweep_labels(keys, [row[1:end] for row in rows])

    runs = []  # (label, columns)
    for row, label in zip(rows, labels):
        if not keys:
            label = row[0]
        status = row[end] if end < len(row) else ""
        if status and status != "completed":
            label += f" [{status}]"
        try:
            columns = read_metrics(os.path.join(sweep_dir, row[0], "metrics.csv"))
        except InputError as e:
            print(f"dln: warning: {e}; run skipped", file=sys.stderr)
            continue
        runs.append((label, columns))
    # Shared axes: continuous time t when every run records it (GD, e2e and flow side by side).
    x_name = "t" if runs and all("t" in c for _, c in runs) else "step"
    written = []
    for metric in ("loss", "e2e_fro"):
        curves = []
        for label, columns in runs:
            if x_name in columns and metric in columns:
                x, y = _points(columns[x_name], columns[metric], positive=metric == "loss")
                if len(y):
                    curves.append((label, x, y))
        if curves:
            written += _sweep_figure(sweep_dir, metric, x_name, curves)
        elif metric == "loss":
            print(f"dln: warning: {sweep_dir}: no run has positive finite loss values; "
                  "no loss figure drawn", file=sys.stderr)
    return written


def _sweep_figure(sweep_dir, metric, x_name, curves):
    """One figure with a curve per run: (label, x, y) each."""
    many = len(curves) > MANY_RUNS
    fig, ax = plt.subplots(figsize=(9.0 if many else 6.4, 4.8 if many else 4.2))
    colors = plt.cm.viridis(np.linspace(0, 0.95, len(curves))) if len(curves) > 10 else [None] * len(curves)
    for (label, step, loss), color in zip(curves, colors):
        ax.plot(step, loss, lw=0.7 if many else 1.2, color=color, label=label)
    if metric == "loss":
        ax.set_yscale("log")
    name = os.path.basename(os.path.normpath(sweep_dir))
    xlabel = "t (continuous time: η·step, or flow time)" if x_name == "t" else "step"
    ylabel = {"loss": "loss", "e2e_fro": r"$\Vert W_e\Vert_F$"}[metric]
    ax.set(xlabel=xlabel, ylabel=ylabel, title=f"{name}: {metric} ({len(curves)} runs)")
    ax.grid(True, which="major", alpha=0.3)
    if many:
        ax.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0),
                  ncol=1 + len(curves) // 30, frameon=False)
    else:
        ax.legend(fontsize="small")
    return _save(fig, sweep_dir, metric)


def plot_dir(path):
    """Plots a sweep directory (runs.csv) or a run directory (metrics.csv)."""
    if not os.path.exists(path):
        raise InputError(f"{path}: no such directory")
    if not os.path.isdir(path):
        raise InputError(f"{path}: not a directory")
    if not os.access(path, os.R_OK | os.X_OK):
        raise InputError(f"{path}: directory is not readable")
    if os.path.exists(os.path.join(path, "runs.csv")):
        return plot_sweep(path)
    if os.path.exists(os.path.join(path, "metrics.csv")):
        return plot_run(path)
    raise InputError(f"{path}: is not a run or sweep directory (no metrics.csv or runs.csv)")


USAGE = "usage: python3 -m dln_plot DIR...\n  draws DIR/figures/*.png and *.svg for dln run or sweep directories"


def main(argv=None):
    """Command line entry point; returns the exit status (0 ok, 2 bad input, 1 cannot write)."""
    args = sys.argv[1:] if argv is None else list(argv)
    if args and args[0] in ("-h", "--help"):
        print(USAGE)
        return 0
    if not args:
        print(USAGE, file=sys.stderr)
        return 2
    status = 0
    for path in args:
        try:
            plot_dir(path)
        except InputError as e:
            print(f"dln: error: {e}", file=sys.stderr)
            status = 2
        except OSError as e:
            print(f"dln: error: {path}: cannot write figures ({e})", file=sys.stderr)
            status = status or 1
    return status
