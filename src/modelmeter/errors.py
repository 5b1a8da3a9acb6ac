"""Errors the user can act on. The CLI prints them as one line and exits 2."""

from __future__ import annotations


class ModelmeterError(Exception):
    """Bad input: unknown model, wrong shape, corrupt file, bad spec. Exit code 2."""


class ModelNotFound(ModelmeterError):
    pass


class InputError(ModelmeterError):
    pass


class ReportFormatError(InputError, ValueError):
    """A saved JSON report that is not one (wrong schema, a missing or malformed entry)."""


class MissingDependency(ModelmeterError):
    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the '{package}' package: pip install 'modelmeter[{extra}]'"
        )
        self.package = package


class ModelRunError(ModelmeterError):
    """The model's own forward failed on the given inputs."""


class NeedsData(ModelRunError):
    """The forward failed on meta tensors (it needs data: ``.item()``, a data-dependent shape)
    and the model's own weights are on the meta device, so the tracer cannot fall back to a
    real run; ``weight_bytes``: what building it with real weights would allocate."""

    def __init__(self, message: str, weight_bytes: int) -> None:
        super().__init__(message)
        self.weight_bytes = weight_bytes


def require(module: str, extra: str, purpose: str):  # noqa: ANN201
    """Import an optional dependency or raise MissingDependency naming the extra."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise MissingDependency(module.split(".")[0], extra, purpose) from None


def first_line(e: BaseException | None, default: str | None = None) -> str:
    """The first non-empty line of an exception's message (at most 300 characters), for a
    one-line error; ``default`` when there is none (None: the exception's type name)."""
    for line in str(e if e is not None else "").splitlines():
        if line.strip():
            return line.strip()[:300]
    if default is not None or e is None:
        return default or ""
    return type(e).__name__
