"""The files an ONNX model file refers to: every external-data ``location`` of its tensors
(initializers, tensor attributes, subgraphs, sparse tensors), as paths in the model's folder.
Only the graph is parsed (no weights read); a file that does not parse refers to nothing here
(loading it reports why)."""

from __future__ import annotations

import os

from modelmeter.frontends.onnx.load import _tensor_sites, external_info, onnx_module


def data_files(path: str) -> list[str]:
    """The external data files ``path`` names, joined to its folder (not checked: loading
    refuses locations outside the folder)."""
    try:
        proto = onnx_module().load(path, load_external_data=False)
    except Exception:  # noqa: BLE001 - not a model: loading it reports why
        return []
    folder = os.path.dirname(os.path.abspath(path))
    out = []
    for t, _ in _tensor_sites(proto):
        location = external_info(t).get("location", "") if t.data_location == 1 else ""
        if location and "\0" not in location:
            out.append(os.path.join(folder, location))
    return sorted(set(out))
