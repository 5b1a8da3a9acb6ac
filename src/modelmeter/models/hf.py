"""Hugging Face transformers models from a config only: a shipped preset (``hf:gpt2``), a
local ``config.json`` or a directory holding one, or a Hub id (needs the network). The model
is built on the meta device (no weights, no download of weights) in the config's dtype, with
the ``sdpa`` attention implementation (``eager`` where a model has no sdpa path)."""

from __future__ import annotations

import difflib
import json
import os
import socket
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from modelmeter.errors import InputError, ModelNotFound, first_line, require
from modelmeter.models.loaded import LoadedModel

DEFAULT_INPUT = "1x128:int64"
# transformers' integer inputs: a shape given for one without a dtype is int64, as tokenizers
# make them (attention_mask=1x128 is a mask of token positions, not a float tensor)
INTEGER_INPUTS = (
    "input_ids", "attention_mask", "token_type_ids", "position_ids", "labels",
    "decoder_input_ids", "decoder_attention_mask", "cache_position",
)  # fmt: skip


@lru_cache(maxsize=1)
def _presets() -> dict[str, Any]:
    root = resources.files("modelmeter") / "presets"
    out: dict[str, Any] = {}
    if root.is_dir():
        for entry in root.iterdir():
            if entry.name.endswith(".json"):
                out[entry.name[: -len(".json")]] = entry
    return out


def preset_names() -> list[str]:
    """Names of the configs shipped with modelmeter (``hf:NAME``)."""
    return sorted(_presets())


def preset_config(name: str) -> dict[str, Any]:
    """The JSON dict of a shipped preset."""
    return json.loads(_presets()[name].read_text(encoding="utf-8"))


def load_hf(spec: str) -> LoadedModel:
    if not spec:
        raise ModelNotFound(f"hf: needs a name or a config; presets: {', '.join(preset_names())}")
    path = Path(spec).expanduser()
    if spec.lower() in _presets():
        name = spec.lower()
        return _from_dict(preset_config(name), f"hf:{name}")
    if _is(path, "dir", spec):
        config_file = path / "config.json"
        if not _is(config_file, "file", spec):
            raise ModelNotFound(f"directory {spec!r} has no config.json")
        return _from_dict(_read_json(config_file), f"hf:{path.name or spec}")
    if path.suffix.lower() == ".json":
        if not _is(path, "file", spec):
            raise ModelNotFound(f"no such config file: {spec!r}")
        return _from_dict(_read_json(path), f"hf:{path.stem}")
    return _from_hub(spec)


def _is(path: Path, kind: str, spec: str) -> bool:
    """Whether ``path`` is a directory (``kind`` "dir") or a file; InputError when the file
    system refuses the name (too long, a loop of links, no permission)."""
    try:
        return path.is_dir() if kind == "dir" else path.is_file()
    except OSError as e:
        shown = spec if len(spec) <= 80 else spec[:77] + "..."
        raise InputError(f"cannot open hf:{shown}: {e.strerror or e}") from None


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise InputError(f"cannot read config {str(path)!r}: {e}") from None
    if not isinstance(data, dict):
        raise InputError(f"config {str(path)!r} is not a JSON object")
    return data


def _transformers() -> Any:
    return require("transformers", "hf", "hf: models")


def _from_dict(data: dict[str, Any], label: str) -> LoadedModel:
    tf = _transformers()
    data = {k: v for k, v in data.items() if not k.startswith("_")}  # provenance notes
    model_type = data.pop("model_type", None)
    if not model_type:
        raise InputError(f"config of {label} has no 'model_type'")
    dtype = data.pop("torch_dtype", None) or data.pop("dtype", None)
    data.pop("dtype", None)
    if not isinstance(model_type, str):
        raise InputError(f"config of {label}: 'model_type' must be a string (got {model_type!r})")
    known = _model_types(tf)
    if known and model_type not in known:
        close = difflib.get_close_matches(model_type, known, n=3)
        hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
        raise InputError(
            f"config of {label}: transformers {tf.__version__} knows no model_type "
            f"{model_type[:60]!r}{hint}"
        )
    try:
        config = tf.AutoConfig.for_model(model_type, **data)
    except Exception as e:  # noqa: BLE001  (any value the config library refuses: one line)
        raise InputError(f"config of {label}: {_why(e)}") from None
    return _build(config, label, dtype)


def _model_types(tf: Any) -> list[str]:
    """The model types this transformers knows (empty when it does not say)."""
    try:
        return list(tf.models.auto.configuration_auto.CONFIG_MAPPING_NAMES)
    except AttributeError:
        return []


def _why(e: BaseException) -> str:
    """An exception from transformers as one short line (type name and first line)."""
    return f"{type(e).__name__}: {first_line(e, '')}".rstrip(": ")


def _from_hub(model_id: str) -> LoadedModel:
    tf = _transformers()
    try:
        config = tf.AutoConfig.from_pretrained(model_id, local_files_only=True)
    except Exception:  # noqa: BLE001  (not cached: try the Hub below)
        config = None
    if config is None:
        close = difflib.get_close_matches(model_id.lower(), preset_names(), n=2)
        hint = (f"did you mean {', '.join('hf:' + n for n in close)}? " if close else "") + (
            f"Presets: {', '.join('hf:' + n for n in preset_names())}; "
            "or give a local config: hf:path/to/config.json or hf:path/to/dir"
        )
        if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on") or not (
            _hub_reachable()
        ):
            raise ModelNotFound(
                f"cannot fetch the config of {model_id!r}: the Hugging Face Hub is not "
                f"reachable (offline); {hint}"
            )
        try:
            config = tf.AutoConfig.from_pretrained(model_id)
        except Exception as e:  # noqa: BLE001
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            raise ModelNotFound(
                f"cannot load the config of {model_id!r} from the Hugging Face Hub: {first}; {hint}"
            ) from None
    dtype = getattr(config, "dtype", None) or getattr(config, "torch_dtype", None)
    return _build(config, f"hf:{model_id}", dtype)


def _hub_reachable(timeout: float = 3.0) -> bool:
    """A quick TCP check, so that an offline machine fails at once, not after retries."""
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host = url.hostname or "huggingface.co"
    port = url.port or (80 if url.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def _torch_dtype(dtype: Any) -> Any:
    import torch

    if dtype is None or isinstance(dtype, torch.dtype):
        return dtype
    name = str(dtype).removeprefix("torch.")
    dt = getattr(torch, name, None)
    if not isinstance(dt, torch.dtype):
        raise InputError(f"config dtype {dtype!r} is not a torch dtype")
    return dt


def _model_class(tf: Any, config: Any) -> Any:
    """The config's first listed architecture, else a causal LM, else the bare model."""
    archs = getattr(config, "architectures", None) or []
    if not isinstance(archs, (list, tuple)) or not all(isinstance(a, str) for a in archs):
        raise InputError(f"config 'architectures' must be a list of class names (got {archs!r})")
    for arch in archs:
        cls = getattr(tf, arch, None)
        if cls is not None:
            return cls
    for auto in ("AutoModelForCausalLM", "AutoModel"):
        try:
            mapping = getattr(tf, auto)._model_mapping
            return mapping[type(config)]
        except (KeyError, AttributeError):
            continue
    raise InputError(f"transformers has no model class for config type {type(config).__name__}")


def _build(config: Any, label: str, dtype: Any) -> LoadedModel:
    import torch

    tf = _transformers()
    cls = _model_class(tf, config)
    dt = _torch_dtype(dtype)
    dtype_kw = {}
    if dt is not None:
        major = int(tf.__version__.split(".")[0])
        dtype_kw = {"dtype" if major >= 5 else "torch_dtype": dt}
    model = None
    attn = "sdpa"
    for attn in ("sdpa", "eager"):
        try:
            with torch.device("meta"):
                model = cls._from_config(config, attn_implementation=attn, **dtype_kw)
            break
        except ValueError as e:  # the model has no sdpa implementation
            if attn == "eager":
                raise InputError(f"cannot build {label}: {_why(e)}") from None
        except Exception as e:  # noqa: BLE001  (a config value the model cannot be built with)
            raise InputError(f"cannot build {label} from its config: {_why(e)}") from None
    assert model is not None
    model.eval()
    kwargs: dict[str, Any] = {"input_ids": DEFAULT_INPUT}
    if getattr(config, "is_encoder_decoder", False):
        kwargs["decoder_input_ids"] = DEFAULT_INPUT
    return LoadedModel(
        model=model,
        inputs=None,
        kwargs=kwargs,
        label=f"{label} ({type(model).__name__}, {attn} attention)",
        dtypes=dict.fromkeys(INTEGER_INPUTS, "int64"),
        max_positions=_max_positions(config),
    )


def _max_positions(config: Any) -> int | None:
    value = getattr(config, "max_position_embeddings", None)
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None
