"""``modelmeter train MODEL --batch B --seq S --optimizer adamw --precision bf16-mixed
--accumulate k [--hardware CHIP]``: one training step traced (forward, backward, the real
optimizer's step), memory by category against the chip, cost and time per phase."""

from __future__ import annotations

import argparse
from typing import Any

from modelmeter.analysis.activation_split import SCHEDULES
from modelmeter.analysis.collectives import ALGORITHMS
from modelmeter.analysis.communication import OVERLAPS
from modelmeter.commands.feel import note
from modelmeter.commands.options import (
    MODEL_HELP,
    add_chip_options,
    add_output_options,
    add_units_option,
    count,
    progress_bar,
    quiet_libraries,
    spec_from_args,
    warn_unverified,
    with_units,
)
from modelmeter.commands.paths import check_command_outputs
from modelmeter.commands.plot_options import check_plot_args
from modelmeter.errors import InputError
from modelmeter.events import OPTIMIZERS, PRECISIONS, VARIANTS
from modelmeter.hardware.links import LINK_NAMES
from modelmeter.inputs import InputRequest
from modelmeter.render.emit import emit, output_path
from modelmeter.render.formats import TRAINING_FORMATS


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    t = subparsers.add_parser(
        "train",
        parents=[common],
        help="one training step: memory by category, cost and time per phase",
        description="One training step traced on meta copies of the model: the forward, the "
        "backward and the real torch.optim optimizer's step; memory by category (weights, "
        "master weights, gradients, optimizer states, activations) and the step's peak; "
        "MACs, FLOPs and bytes per phase; with a chip the step time, tokens/s and MFU.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=MODEL_HELP,
    )
    t.add_argument("model", metavar="MODEL", help="the model (forms below; not ONNX)")
    t.add_argument("--input", "-i", action="append", default=[], metavar="[NAME=]SHAPE[:DTYPE]",
                   help="an input shape such as 8x3x224x224 (default: the model's own)")  # fmt: skip
    t.add_argument("--batch", type=count(1, "batch"), metavar="B",
                   help="the micro-batch: replaces the first dimension of every input")  # fmt: skip
    t.add_argument("--seq", type=count(1, "sequence length"), metavar="S",
                   help="a language model's sequence length: its token input is B x S")  # fmt: skip
    t.add_argument("--optimizer", default="adamw", metavar="NAME",
                   help=f"one of {', '.join(OPTIMIZERS)} (default adamw; sgd has momentum 0.9; "
                   "adam8bit, adamw8bit: bitsandbytes' block-wise 8-bit states, "
                   "pip install modelmeter[train8bit])")  # fmt: skip
    t.add_argument("--variant", default="foreach", metavar="V",
                   help=f"the optimizer's implementation: {', '.join(VARIANTS)} (default "
                   "foreach; fused cannot run on meta and is counted as foreach)")  # fmt: skip
    t.add_argument("--precision", default="fp32", metavar="P",
                   help=f"one of {', '.join(PRECISIONS)} (default fp32; *-mixed: half weights "
                   "and gradients, fp32 master weights and optimizer states)")  # fmt: skip
    t.add_argument("--accumulate", type=count(1, "--accumulate", 10**6), default=1, metavar="K",
                   help="gradient accumulation over K micro-batches (default 1)")  # fmt: skip
    t.add_argument("--devices", type=count(1, "--devices", 10**7), default=1, metavar="N",
                   help="data-parallel devices: the model states per device (with --zero)")  # fmt: skip
    t.add_argument("--zero", type=count(0, "ZeRO stage", 3), default=0, metavar="STAGE",
                   help="ZeRO stage over --devices: 1 partitions the optimizer states, 2 also "
                   "the gradients, 3 also the weights (default 0: plain data parallel)")  # fmt: skip
    t.add_argument("--tp", type=count(1, "--tp", 10**4), default=1, metavar="T",
                   help="tensor parallel degree (Megatron column/row splits; must divide the "
                   "attention heads and the key/value heads)")  # fmt: skip
    t.add_argument("--pp", type=count(1, "--pp", 10**4), default=1, metavar="P",
                   help="pipeline stages (at most one per layer)")  # fmt: skip
    t.add_argument("--micro-batches", type=count(1, "--micro-batches", 10**6), metavar="M",
                   help="the pipeline's micro-batches per step (the same as --accumulate M)")  # fmt: skip
    t.add_argument("--gpus-per-node", type=count(1, "--gpus-per-node", 10**4), default=8,
                   metavar="G", help="devices per node: within one the chip's intra-node link "
                   "(NVLink), beyond it the NIC (default 8)")  # fmt: skip
    t.add_argument("--overlap", choices=OVERLAPS, default="none",
                   help="communication overlapped with compute: none (default: added to the "
                   "step) or full (only what the compute cannot hide is added)")  # fmt: skip
    t.add_argument("--intra", metavar="LINK", choices=LINK_NAMES,
                   help="the link within a node (default: the chip's own)")  # fmt: skip
    t.add_argument("--inter", metavar="LINK", choices=LINK_NAMES,
                   help="the link between nodes, one NIC per GPU (default: the chip's own)")  # fmt: skip
    t.add_argument("--checkpoint", action="store_true",
                   help="activation checkpointing of the repeated blocks (the children of an "
                   "nn.ModuleList): their forward runs again in the backward (phase "
                   "recompute); the model is not changed")  # fmt: skip
    t.add_argument("--max-batch", action="store_true",
                   help="search the largest micro-batch whose peak fits the chip (--hardware) "
                   "and show the step at it")  # fmt: skip
    t.add_argument("--plot", metavar="FILE",
                   help="also chart memory per device by category (the chip's capacity drawn) "
                   "and step time and tokens/s per device against 1, 2, 4, ... 1024 devices, "
                   "under the same plan, from the one trace (.png, .pdf, .svg; needs "
                   "--hardware)")  # fmt: skip
    t.add_argument("--convention", choices=("exact", "2mac"), default="exact",
                   help="FLOP convention (default exact)")  # fmt: skip
    _sharding_options(t)
    add_output_options(t, TRAINING_FORMATS)
    add_units_option(t)
    add_chip_options(t)
    t.set_defaults(handler=with_units(run))


def _sharding_options(t: argparse.ArgumentParser) -> None:
    """The plan's options beyond --devices/--zero/--tp/--pp: hybrid sharding, the collective
    algorithm, sequence parallelism and the pipeline's schedule."""
    t.add_argument("--shard-group", type=_shard_group, metavar="G|node",
                   help="hybrid sharding (FSDP HYBRID_SHARD): the ZeRO stage partitions within "
                   "groups of G data-parallel replicas ('node': one node's, or all of them when "
                   "fewer), replicated across the groups; needs --zero and G dividing the "
                   "replicas")  # fmt: skip
    t.add_argument("--collective", choices=ALGORITHMS, default="auto",
                   help="collective algorithm for groups spanning nodes: auto (default: "
                   "hierarchical where faster), ring (one flat ring at the slowest link) or "
                   "hierarchical (reduce-scatter in the node, across nodes, all-gather)")  # fmt: skip
    t.add_argument("--nics-per-node", type=count(1, "--nics-per-node", 10**4), default=0,
                   metavar="K", help="NICs per node for the traffic between nodes (default: "
                   "one per GPU)")  # fmt: skip
    t.add_argument("--sequence-parallel", action="store_true",
                   help="with --tp: also split what tensor parallelism leaves whole (norms, "
                   "residuals, dropouts) along the sequence; all-reduces become reduce-scatter "
                   "+ all-gather")  # fmt: skip
    t.add_argument("--schedule", choices=SCHEDULES, default="1f1b",
                   help="the pipeline's schedule: 1f1b (default; stage s holds min(p-s, m) "
                   "micro-batches) or gpipe (all m)")  # fmt: skip
    t.add_argument("--virtual-stages", type=count(1, "--virtual-stages", 10**4), default=1,
                   metavar="V", help="interleaved 1F1B with V model chunks per pipeline device "
                   "(bubble (p-1)/(V·m); the layers must split into p·V chunks)")  # fmt: skip
    t.add_argument("--ep", type=count(1, "--ep", 10**4), default=1, metavar="E",
                   help="expert parallelism for a mixture-of-experts model: each MoE layer's "
                   "experts spread over E of the data-parallel replicas (E must divide the "
                   "replicas and the experts; default 1)")  # fmt: skip


def _shard_group(text: str) -> int | str:
    """--shard-group: a whole number >= 1 or 'node'."""
    return "node" if text.strip().lower() == "node" else count(1, "--shard-group", 10**7)(text)


def _request(args: argparse.Namespace) -> InputRequest:
    inputs = list(args.input)
    if args.seq is not None:
        if inputs:
            raise InputError("give --seq or --input, not both")
        inputs = [f"{args.batch or 1}x{args.seq}"]  # the token ids keep the model's dtype
    return InputRequest.from_cli(inputs, batch=args.batch, dims=[], dtype=None)


def _priced(args: argparse.Namespace, spec: Any) -> Any:
    """The chip the step is priced on: its datasheet roofline with ``--ideal`` (the spec
    without attainable figures, every efficiency 1.0); ``--tf32`` and a runtime other than
    eager are refused (the step is priced with eager host times and no TF32)."""
    if getattr(args, "tf32", False) or getattr(args, "runtime", None) not in (None, "eager"):
        raise InputError("train prices the step with eager host times and float32 matmuls "
                         "without TF32: --tf32 and --runtime graphs/ort do not apply to it")  # fmt: skip
    return spec.ideal() if spec is not None and getattr(args, "ideal", False) else spec


def run(args: argparse.Namespace) -> int:
    from modelmeter.render.training import render_training
    from modelmeter.usecases.train import train

    if args.model.lower().endswith(".onnx"):
        raise InputError("train needs a PyTorch model (an ONNX file has no optimizer to run)")
    request = _request(args)
    spec = _priced(args, spec_from_args(args))
    check_plot_args(args, spec)
    if args.plot and args.max_batch:
        raise InputError("give --plot or --max-batch, not both")
    check_command_outputs(args, [("-o", args.output), ("--plot", args.plot)])
    out = output_path(args.output)
    kw = {"optimizer": args.optimizer, "variant": args.variant, "precision": args.precision,
          "accumulate": args.accumulate, "hardware": spec, "convention": args.convention,
          "devices": args.devices, "zero": args.zero, "checkpointing": args.checkpoint,
          "gpus_per_node": args.gpus_per_node, "overlap": args.overlap, "intra": args.intra,
          "inter": args.inter, "tensor": args.tp, "pipeline": args.pp,
          "micro_batches": args.micro_batches, "shard_group": args.shard_group,
          "collective": args.collective, "nics_per_node": args.nics_per_node,
          "sequence_parallel": args.sequence_parallel, "schedule": args.schedule,
          "virtual_stages": args.virtual_stages, "expert_parallel": args.ep}  # fmt: skip
    with quiet_libraries(args.debug), progress_bar(args.quiet, "training step") as progress:
        if args.plot:  # the trace, then each device count n/N
            from modelmeter.usecases.train import train_and_devices

            result, sweep = train_and_devices(args.model, request, progress=progress, **kw)
        else:
            result = train(args.model, request, max_batch=args.max_batch, progress=progress,
                           **kw)  # --max-batch: each trace of its search n/N
    emit(render_training(result, args.format), out)
    if args.plot:
        from modelmeter.render.device_plot import save_device_plot

        save_device_plot(sweep, args.plot)
        note(args, f"wrote {args.plot}")
    if spec is not None:
        warn_unverified(spec)
    return 0
