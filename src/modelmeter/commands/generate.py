"""``modelmeter generate MODEL --prompt P --new G [--batch B] [--hardware NAME]``: prefill,
decode steps and the whole generation of a language model with its KV cache; memory
against the chip (the use case is :mod:`modelmeter.usecases.generate`)."""

from __future__ import annotations

import argparse
from typing import Any

from modelmeter.analysis.cache_layout import DEFAULT, LAYOUTS
from modelmeter.commands.feel import note
from modelmeter.commands.options import (
    add_chip_options,
    add_output_options,
    count,
    progress_bar,
    quiet_libraries,
    spec_from_args,
    warn_unverified,
)
from modelmeter.commands.paths import check_command_outputs
from modelmeter.commands.plot_options import check_plot_args
from modelmeter.commands.pricing_options import pricing
from modelmeter.commands.storage_options import add_storage_options
from modelmeter.render.emit import emit, output_path
from modelmeter.render.formats import GENERATION_FORMATS

EPILOG = """examples:
  modelmeter generate hf:llama-2-7b --prompt 2048 --new 256 --batch 8
  modelmeter generate hf:llama-3-70b --prompt 4096 --new 4096 --hardware h100-sxm -f json
  modelmeter generate hf:llama-2-7b --prompt 2048 --new 256 --weights int4 --kv fp8
  modelmeter generate hf:llama-2-7b --prompt 2048 --new 256 --cache dynamic
  modelmeter generate hf:llama-2-7b --prompt 2048 --new 256 --cache static --max-cache-len 4096
  modelmeter generate hf:llama-2-7b --prompt 2049 --new 256 --cache paged --block-size 32
  modelmeter generate hf:llama-3-70b --prompt 2048 --new 256 --batch 8 --tp 8 --hardware h100-sxm
  modelmeter generate hf:llama-3-70b --prompt 2048 --new 256 --tp 4 --all-reduce custom --hardware h100-sxm
  modelmeter generate hf:llama-3-70b --prompt 2048 --new 256 --batch 8 --tp 8 --hardware h100-sxm --runtime graphs --fuse
"""


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "generate",
        parents=[common],
        help="LLM generation: prefill, decode steps with a KV cache, memory, tokens/s",
        description="Trace a decoder language model's prefill and decode steps with its own "
        "KV cache (on meta, no weights), fit a decode step's counts exactly in the context, "
        "sum them over the new tokens, and weigh weights + KV cache + activations against "
        "the chip's memory (with --hardware: TTFT, per-token latency, tokens/s).",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=EPILOG,
    )
    p.add_argument("model", help="a language model: hf:NAME (a preset), hf:path/config.json, "
                   "or file.py:FACTORY")  # fmt: skip
    p.add_argument("--prompt", "-P", type=count(1, "--prompt"), required=True, metavar="TOKENS",
                   help="prompt tokens per sequence (the prefill)")  # fmt: skip
    p.add_argument("--new", "-G", type=count(1, "--new"), required=True, metavar="TOKENS",
                   help="new tokens per sequence (decode steps)")  # fmt: skip
    p.add_argument("--batch", "-b", type=count(1, "--batch"), default=1, help="sequences (default 1)")
    p.add_argument("--convention", choices=("exact", "2mac"), default="exact",
                   help="FLOP convention (default exact)")  # fmt: skip
    p.add_argument("--plot", metavar="FILE", help="also chart per-token latency and tokens/s "
                   "against batch and against context, the memory limit drawn (.png, .pdf, "
                   ".svg; needs --hardware; the other batches and contexts priced from exact "
                   "formulas fitted on a few traces)")  # fmt: skip
    p.add_argument("--cache", choices=LAYOUTS, default=DEFAULT,
                   help="KV-cache layout: paged (default; vLLM-like, the new token written "
                   "into a block, the filled tokens read), static (transformers' StaticCache, "
                   "traced: attention over all --max-cache-len slots, the same cost at every "
                   "context), inplace (preallocated, written in place, the filled tokens "
                   "read) or dynamic (transformers' DynamicCache, whose cat copies the cache "
                   "every step)")  # fmt: skip
    p.add_argument("--block-size", type=count(1, "--block-size"), default=None, metavar="N",
                   help="tokens per block of a paged cache (default 16): memory counts whole "
                   "blocks, the last one's unused slots as padding")  # fmt: skip
    p.add_argument("--max-cache-len", type=count(1, "--max-cache-len"), default=None,
                   metavar="TOKENS", help="tokens a static or inplace cache is preallocated "
                   "to (default prompt + new; at least that)")  # fmt: skip
    p.add_argument("--tp", type=count(1, "--tp"), default=1, metavar="T",
                   help="tensor parallel degree: serve one replica over T GPUs of one node "
                   "(vLLM's --tensor-parallel-size; at most 8): weights, KV cache, "
                   "activations and times per device, the all-reduces over the chip's "
                   "intra-node link included (default 1)")  # fmt: skip
    p.add_argument("--all-reduce", choices=("ring", "custom"), default="ring",
                   help="with --tp: price the all-reduces on a ring (default; NCCL's) or as "
                   "vLLM's custom all-reduce (one-shot or two-shot direct reads up to 8 MB, a "
                   "ring above)")  # fmt: skip
    p.add_argument("--fuse", nargs="?", const="all", default=None, metavar="RULES",
                   help="also price the generation with its kernels fused as a compiling "
                   "runtime would (a what-if): kernels, bytes, TTFT and per-token latency "
                   "unfused -> fused. RULES: all (the default), none, or some of elementwise, "
                   "conv-bn-act, attention, cast, reduction, rotary (docs/generation.md, 'Fusion "
                   "what-if')")  # fmt: skip
    add_storage_options(p)
    add_output_options(p, GENERATION_FORMATS)
    add_chip_options(p)
    p.set_defaults(handler=run)


def _cache_sizes(args: argparse.Namespace) -> dict[str, Any]:
    """--block-size and --max-cache-len, given only where the layout has them (a size the
    layout lacks, or a cache shorter than prompt + new: one line, exit 2)."""
    from modelmeter.analysis.cache_layout import setup
    from modelmeter.errors import InputError

    block, length = getattr(args, "block_size", None), getattr(args, "max_cache_len", None)
    try:
        setup(args.cache, args.prompt + args.new, block, length)
    except InputError as e:
        flag = "--block-size" if "block size" in str(e) else "--max-cache-len"
        raise InputError(f"{flag}: {e}") from None
    return {"block_size": block, "max_cache_len": length}


def run(args: argparse.Namespace) -> int:
    from modelmeter.errors import InputError
    from modelmeter.render.generation import render_generation
    from modelmeter.usecases.generate import generate

    spec = spec_from_args(args)
    check_plot_args(args, spec)
    check_command_outputs(args, [("-o", args.output), ("--plot", args.plot)])
    out = output_path(args.output)
    kw = {"convention": args.convention, "weights": args.weights, "kv": args.kv,
          "cache": args.cache,
          "roofline_options": pricing(args)}  # fmt: skip
    if args.tp > 1:  # given only when > 1: the plot's fitted path knows no tensor_parallel
        kw["tensor_parallel"] = args.tp  # (its charts then run generate at every point)
        kw["all_reduce"] = args.all_reduce
    kw.update(_cache_sizes(args))
    if args.fuse is not None:  # given only when asked: the plot's fitted path knows no fuse
        if args.plot:
            raise InputError("--fuse draws no charts: leave out --plot")
        kw["fuse"] = args.fuse
    with quiet_libraries(args.debug), progress_bar(args.quiet, "generating") as progress:
        kw["progress"] = progress  # each trace n/N (the prefill, then the decode contexts)
        if args.plot:
            from modelmeter.render.generation_plot import save_generation_plot
            from modelmeter.usecases.generate_sweep import generation_sweeps

            sweeps = generation_sweeps(args.model, prompt=args.prompt, new=args.new,
                                       batch=args.batch, hardware=spec, **kw)  # fmt: skip
            result = sweeps.result
        else:
            result = generate(args.model, prompt=args.prompt, new=args.new, batch=args.batch,
                              hardware=spec, **kw)  # fmt: skip
    emit(render_generation(result, args.format), out)
    if args.plot:
        save_generation_plot(sweeps, args.plot)
        note(args, f"wrote {args.plot}")
    if spec is not None:
        warn_unverified(spec)
    return 0
