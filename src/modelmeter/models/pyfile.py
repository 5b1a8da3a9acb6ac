"""``path/to/file.py:FACTORY``: import a user's file by its path and call FACTORY().

This runs the user's code, as the spec says it will. FACTORY may return a module (or any
callable on tensors), a ``(module, inputs)`` pair or a ``(module, inputs, kwargs)`` triple;
FACTORY may also name a module object defined in the file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from typing import Any

from modelmeter.errors import InputError, ModelmeterError, ModelNotFound, ModelRunError
from modelmeter.models.loaded import LoadedModel, suggest


def load_file(path_text: str, factory: str) -> LoadedModel:
    path = Path(path_text).expanduser()
    if not _is_file(path, path_text):
        raise ModelNotFound(f"no such file: {path_text!r}")
    module = _import(path)
    obj: Any = module
    for part in factory.split("."):
        if not hasattr(obj, part):
            names = [
                n for n in dir(module) if not n.startswith("_") and callable(getattr(module, n))
            ]
            raise ModelNotFound(f"{path_text} has no {factory!r}{suggest(factory, names)}")
        obj = getattr(obj, part)
    label = f"{path.name}:{factory}"
    if _is_module_instance(obj):
        return LoadedModel(model=obj, label=label)
    if not callable(obj):
        raise InputError(f"{path_text}:{factory} is a {type(obj).__name__}, not a factory")
    try:
        result = obj()
    except ModelmeterError:
        raise
    except SystemExit as e:  # the user's code may not end modelmeter (nor exit 0 silently)
        raise ModelRunError(f"{path.name}:{factory}() {_exited(e)}") from None
    except Exception as e:  # noqa: BLE001  (the user's code: one clear line)
        raise ModelRunError(
            f"{path.name}:{factory}() failed: {type(e).__name__}: {_first(e)}"
        ) from e
    return _unpack(result, label)


def _unpack(result: Any, label: str) -> LoadedModel:
    if isinstance(result, LoadedModel):
        return result
    if isinstance(result, tuple) and len(result) in (2, 3) and callable(result[0]):
        kwargs = result[2] if len(result) == 3 else None
        if kwargs is not None and not isinstance(kwargs, dict):
            raise InputError(f"{label}: the third item FACTORY returns must be a dict of kwargs")
        return LoadedModel(model=result[0], inputs=result[1], kwargs=kwargs, label=label)
    if callable(result):
        return LoadedModel(model=result, label=label)
    raise InputError(
        f"{label} returned a {type(result).__name__}; return a module, or (module, inputs)"
    )


def _is_module_instance(obj: Any) -> bool:
    try:
        import torch
    except ImportError:
        return False
    return isinstance(obj, torch.nn.Module)


def _import(path: Path) -> Any:
    resolved = path.resolve()
    digest = hashlib.sha1(str(resolved).encode()).hexdigest()[:12]
    mod_name = f"_modelmeter_user_{resolved.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(mod_name, resolved)
    if spec is None or spec.loader is None:
        raise InputError(f"cannot import {str(path)!r} as Python")
    module = importlib.util.module_from_spec(spec)
    folder = str(resolved.parent)
    added = folder not in sys.path
    if added:
        sys.path.insert(0, folder)  # so that the file can import its neighbours
    sys.modules[mod_name] = module
    no_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True  # write nothing (no __pycache__) beside the user's file
    try:
        spec.loader.exec_module(module)
    except SystemExit as e:
        sys.modules.pop(mod_name, None)
        raise ModelRunError(f"importing {path.name}: the file {_exited(e)}") from None
    except Exception as e:  # noqa: BLE001
        sys.modules.pop(mod_name, None)
        raise ModelRunError(f"importing {path.name} failed: {type(e).__name__}: {_first(e)}") from e
    finally:
        sys.dont_write_bytecode = no_bytecode
        if added and folder in sys.path:
            sys.path.remove(folder)
    return module


def _is_file(path: Path, path_text: str) -> bool:
    """Whether ``path`` is a file; InputError when the file system refuses the name (too
    long, a loop of links, no permission to look)."""
    try:
        return path.is_file()
    except OSError as e:
        shown = path_text if len(path_text) <= 80 else path_text[:77] + "..."
        raise InputError(f"cannot open {shown!r}: {e.strerror or e}") from None


def _exited(e: SystemExit) -> str:
    return (
        f"called sys.exit({e.code!r}); a model file and its factory must return a model, "
        "not exit"
    )


def _first(e: BaseException) -> str:
    lines = str(e).strip().splitlines()
    return lines[0][:200] if lines else ""
