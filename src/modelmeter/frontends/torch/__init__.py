"""The PyTorch frontend. :mod:`.frontend` is what the use cases see (``FRONTEND``: which
models it accepts, trace, run); :mod:`.tracing` traces one pass of a module or callable,
:mod:`.inputs` makes its inputs from an :class:`~modelmeter.inputs.InputRequest`, :mod:`.tracer`
records every ATen op. Importing this package imports nothing: torch loads when a model is
traced."""
