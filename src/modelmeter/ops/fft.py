"""Fast Fourier transforms: ``torch.fft.*`` (and ``torch.stft``) reach the tracer as
``_fft_r2c`` (real to complex), ``_fft_c2r`` (complex to real) and ``_fft_c2c``.

The count is the classic radix-2 estimate, in real FLOPs: a complex FFT of length n costs
``5 n log2 n`` (n/2 log2 n butterflies of one complex multiply, 6, and two complex adds, 4),
a real-input (or real-output) FFT half of that, ``2.5 n log2 n``. It is exact for the
radix-2 algorithm on power-of-two lengths and the customary nominal figure for other lengths
(FFTW's benchmarks report the same), whose real cost depends on the factorisation (mixed
radix, Bluestein). A transform over several dimensions runs one pass per dimension: a
c2c pass along a dimension of length n over an array of N elements costs 5 N log2 n, so a
c2c over all of an N-element array costs 5 N log2 N; r2c transforms the last dimension from
real (2.5 X log2 n_last for X real inputs) and then runs c2c passes over the half spectrum;
c2r the reverse. Each pass is rounded to an integer. Normalisation (``norm="ortho"`` or the
1/n of the inverse) multiplies every output element by a constant: 2 FLOPs per complex
output, 1 per real one. 0 MACs.
"""

from __future__ import annotations

import math

from modelmeter.registry import OpCall, Work, register_op

# _fft_* ``normalization``: 0 none, 1 by 1/sqrt(n), 2 by 1/n
_NONE = 0


def _passes(numel: int, lengths: list[int], per: float) -> int:
    """``per * numel * log2 n`` summed over the passes of lengths n, each rounded."""
    return sum(round(per * numel * math.log2(n)) for n in lengths if n > 1)


def _dims(call: OpCall, ndim: int) -> list[int]:
    dims = call.arg("dim", ())
    if isinstance(dims, int):
        dims = (dims,)
    return [int(d) % ndim for d in dims] if ndim else []


def _scale(call: OpCall, per_element: int) -> int:
    if int(call.arg("normalization", _NONE)) == _NONE:
        return 0
    return per_element * call.out.numel


@register_op("fft_c2c", family="fft", aten=["_fft_c2c"])
def fft_c2c(call: OpCall) -> Work:
    """Complex-to-complex FFT (``fft``, ``ifft``, ``fft2``, ``fftn`` of complex input; the
    inner passes of the real transforms) over the dims ``dim`` of an N-element tensor:
    5 N log2 n per transformed dimension of length n (5 N log2 N over all of it) + 2 per
    output when normalised."""
    x = call.inputs[0]
    lengths = [x.shape[d] for d in _dims(call, x.ndim)]
    return Work(flops=_passes(x.numel, lengths, 5.0) + _scale(call, 2))


@register_op("fft_r2c", family="fft", aten=["_fft_r2c"])
def fft_r2c(call: OpCall) -> Work:
    """Real-to-complex FFT (``rfft``, ``rfft2``, ``rfftn``, and ``fft`` of real input) of an
    X-element real tensor over ``dim``: the last transformed dimension (length n) real to
    complex, 2.5 X log2 n; then c2c passes over the half spectrum H = X/n*(n//2 + 1):
    5 H log2 m for each other dimension of length m. ``onesided=False`` (``fft`` of a real
    tensor) fills the other half by conjugate symmetry: 1 negation per mirrored element.
    + 2 per complex output when normalised."""
    x = call.inputs[0]
    dims = _dims(call, x.ndim)
    if not dims:
        return Work()
    last = x.shape[dims[-1]]
    flops = _passes(x.numel, [last], 2.5)
    half = x.numel // last * (last // 2 + 1) if last else 0
    flops += _passes(half, [x.shape[d] for d in dims[:-1]], 5.0)
    if not call.arg("onesided", True):
        flops += max(0, call.out.numel - half)
    return Work(flops=flops + _scale(call, 2))


@register_op("fft_c2r", family="fft", aten=["_fft_c2r"])
def fft_c2r(call: OpCall) -> Work:
    """Complex-to-real FFT (``irfft``, ``irfft2``, ``irfftn``, ``hfft``): c2c passes over the
    H-element half spectrum for every transformed dimension but the last (5 H log2 m each),
    then the last dimension complex to real, 2.5 Y log2 n for Y real outputs of length
    n = ``last_dim_size``. + 1 per real output when normalised."""
    x, out = call.inputs[0], call.out
    dims = _dims(call, x.ndim)
    if not dims:
        return Work()
    flops = _passes(x.numel, [x.shape[d] for d in dims[:-1]], 5.0)
    n = int(call.arg("last_dim_size", out.shape[dims[-1]] if out.ndim else 1))
    flops += _passes(out.numel, [n], 2.5)
    return Work(flops=flops + _scale(call, 1))
