"""Errors the user can act on. The CLI prints them as one line and exits 2."""

from __future__ import annotations


class ModelmeterError(Exception):
    """Bad input: unknown model, wrong shape, corrupt file, bad spec. Exit code 2."""


class ModelNotFound(ModelmeterError):
    pass


class InputError(ModelmeterError):
    pass


class MissingDependency(ModelmeterError):
    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package: pip install 'modelmeter[{extra}]'"
        )
        self.package = package


class ModelRunError(ModelmeterError):
    """The model's own forward failed on the given inputs."""


def require(module: str, extra: str, purpose: str):  # noqa: ANN201
    """Import an optional dependency or raise MissingDependency naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(module.split(".")[0], extra, purpose) from None
