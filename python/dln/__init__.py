"""dln: the training dynamics of deep linear networks, from Python.

    import dln
    run = dln.run("experiments/quickstart.toml", optimizer__lr=0.001)   # in memory
    run.metrics.plot(x="step", y="loss", logy=True)
    sweep = dln.load_sweep("runs/my_sweep")                              # a DataFrame per table

Runs are trained in-process by the same C++ library as the `dln` command (the extension
dln._core); docs/python.md documents every function. dln.plot draws the figures of `dln plot`.
The API is imported on first use, so that `python3 -m dln.plot` does not load pandas.
"""

from .errors import ConfigError, DataError, InputError, OutputError

__version__ = "0.1.0"

_API = {
    "run", "load", "load_sweep", "sweep", "verify", "reproduce", "reproductions", "metrics",
    "optimizers", "schedules", "losses", "inits", "datasets", "config_keys", "Trainer", "Run",
    "Sweep",
}

__all__ = sorted(_API | {"ConfigError", "DataError", "InputError", "OutputError", "plot"})


def __getattr__(name):
    import importlib
    if name in _API:
        return getattr(importlib.import_module(".api", __name__), name)
    if name == "plot":
        return importlib.import_module(".plot", __name__)
    raise AttributeError(f"module 'dln' has no attribute {name!r}")


def __dir__():
    return __all__
