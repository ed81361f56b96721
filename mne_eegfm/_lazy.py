"""Lazy attributes of a package: public names imported on first use."""

from importlib import import_module


def lazy_attributes(package, names, extra=()):
    """Build a package's ``__getattr__`` and ``__dir__`` for lazily imported names.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    names : dict
        Public name -> submodule (relative to ``package``) that defines it.
    extra : sequence of str
        Other public names the package defines itself (listed after ``names``).

    Returns
    -------
    getattr_ : callable
        The module-level ``__getattr__``.
    dir_ : callable
        The module-level ``__dir__``: the sorted ``names``, then ``extra``.
    """
    public = sorted(names) + list(extra)

    def getattr_(name):
        if name in names:
            return getattr(import_module(f".{names[name]}", package), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def dir_():
        return list(public)

    return getattr_, dir_
