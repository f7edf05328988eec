"""dln_plot: draws figures for the run and sweep directories written by dln.

    python3 -m dln_plot DIR    # writes DIR/figures/*.png and *.svg

Functions: plot_run(dir), plot_sweep(dir), plot_dir(dir) (either kind), main(argv).
"""

from .plot import InputError, main, plot_dir, plot_run, plot_sweep, read_metrics, read_summary

__all__ = ["InputError", "main", "plot_dir", "plot_run", "plot_sweep", "read_metrics", "read_summary"]
