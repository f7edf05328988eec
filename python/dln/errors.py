"""The exceptions dln raises for bad input: the same one-line messages as the command line."""


class InputError(ValueError):
    """Bad input; ``str(e)`` is the command line's message ("file:line: key: what is wrong").

    Attributes: ``file`` (the file it came from, or ""), ``line`` (0 when unknown), ``key``
    (the config key, or "")."""

    def __init__(self, message, file="", line=0, key=""):
        super().__init__(message)
        self.file, self.line, self.key = file, line, key


class ConfigError(InputError):
    """A config that cannot be used: malformed TOML, an unknown key, a value out of range."""


class DataError(InputError):
    """A data file that cannot be read, or data that does not fit the config."""


class OutputError(InputError):
    """An output directory dln may not write: not its own, in use by another writer, '.', '..'."""
