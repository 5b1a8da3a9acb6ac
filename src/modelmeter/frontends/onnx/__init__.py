"""The ONNX frontend. :mod:`.frontend` is what the use cases see (``FRONTEND``: which models
it accepts, trace, run); :mod:`.tracing` turns a graph into the same events as the PyTorch
frontend. Importing this package imports nothing: onnx loads when a graph is read."""
