"""The examples every ``--help`` ends with, one entry per command (``""`` is ``modelmeter``
itself, ``"hardware list"`` a subcommand), attached to the parsers once they are built. A
command whose module already writes an ``examples:`` epilog (generate, diff) keeps its own.
tests/commands/test_feel_cli.py checks that every parser reachable from ``build_parser()``
has examples and that each example line starts with ``modelmeter <that command>``."""

from __future__ import annotations

import argparse

EXAMPLES: dict[str, str] = {
    "": """\
  modelmeter analyze torchvision:resnet50 --hardware h100-sxm
  modelmeter generate hf:llama-2-7b --prompt 2048 --new 256
  modelmeter hardware list
  modelmeter -q analyze hf:gpt2 --sweep seq=128..8192 > sweep.txt   # no progress bar
  modelmeter completion bash > ~/.local/share/bash-completion/completions/modelmeter""",
    "analyze": """\
  modelmeter analyze torchvision:resnet50                     # table, depth 3
  modelmeter analyze hf:gpt2 --input 1x1024 --format json -o gpt2.json
  modelmeter analyze model.onnx --dim batch=8 --dim seq=128
  modelmeter analyze torchvision:vit_b_16 --batch 64 --dtype bf16 --hardware h100-sxm
  modelmeter analyze hf:llama-2-7b --hardware h100-sxm,a100-sxm-80gb,l4
  modelmeter analyze hf:gpt2 --sweep batch=1,2,4,8 --sweep seq=128..8192
  modelmeter analyze hf:gpt2 --formula
  modelmeter analyze torchvision:resnet50 --depth 1 -f csv --columns params,macs,flops""",
    "ops": """\
  modelmeter ops                 # every supported operator
  modelmeter ops conv            # those whose name, family or targets contain 'conv'
  modelmeter ops -f md > ops.md""",
    "measure": """\
  modelmeter measure torchvision:resnet18 --device cpu --batch 8 --per-module
  modelmeter measure torchvision:resnet50 --device cuda --batch 64 --hardware my_gpu.toml
  modelmeter measure model.onnx --dim batch=8 --hardware epyc-9654""",
    "calibrate": """\
  modelmeter calibrate --quick -o cpu.toml
  modelmeter calibrate --device cuda -o my_gpu.toml --dtypes fp32,tf32,bf16,fp16
  modelmeter calibrate --device cuda -o my_gpu.toml --quiet   # no progress bar
  modelmeter calibrate --runtime ort -o cpu-ort.toml   # onnxruntime's kernels (--runtime ort)""",
    "hardware": """\
  modelmeter hardware list
  modelmeter hardware show h100-sxm
  modelmeter hardware compare h100-sxm a100-sxm-80gb l4""",
    "hardware list": """\
  modelmeter hardware list
  modelmeter hardware list --format md --units iec""",
    "hardware show": """\
  modelmeter hardware show h100-sxm
  modelmeter hardware show my_chip.toml --format json""",
    "hardware compare": """\
  modelmeter hardware compare h100-sxm a100-sxm-80gb l4
  modelmeter hardware compare h100-sxm my_chip.toml -f md""",
    "utilization": """\
  modelmeter utilization torchvision:resnet50 --hardware hi3519av100 --latency 12ms
  modelmeter utilization resnet50.json --hardware l4 --latency 1.9ms""",
    "train": """\
  modelmeter train torchvision:resnet50 --batch 64 --optimizer sgd -f json
  modelmeter train hf:gpt2 --batch 4 --seq 1024 --optimizer adamw --precision bf16-mixed
  modelmeter train hf:llama-3-70b --seq 4096 --precision bf16-mixed --hardware h100-sxm
  modelmeter train hf:llama-3-8b --seq 4096 --precision bf16-mixed --optimizer adamw8bit --hardware h100-sxm
  modelmeter train hf:gpt2 --seq 1024 --batch 4 --devices 64 --zero 3 --shard-group node --hardware h100-sxm
  modelmeter train hf:gpt2 --seq 1024 --devices 16 --tp 4 --sequence-parallel --pp 2 \
      --micro-batches 8 --virtual-stages 2 --hardware h100-sxm
  modelmeter train hf:mixtral-8x7b --seq 4096 --precision bf16-mixed --devices 64 --tp 8 \
      --ep 8 --zero 1 --hardware h100-sxm""",
    "completion": """\
  modelmeter completion bash > ~/.local/share/bash-completion/completions/modelmeter
  modelmeter completion zsh > ~/.modelmeter.zsh    # then in ~/.zshrc: source ~/.modelmeter.zsh
  modelmeter completion fish > ~/.config/fish/completions/modelmeter.fish""",
}


class KeepLinesFormatter(argparse.HelpFormatter):
    """Wraps one-line descriptions as argparse does, keeps text with line breaks (examples,
    lists of model forms) as written."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        if "\n" in text.strip():
            return "".join(indent + line for line in text.splitlines(keepends=True))
        return super()._fill_text(text, width, indent)


def subparsers(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    """The parsers directly under ``parser`` (its subcommands), in order."""
    out: list[argparse.ArgumentParser] = []
    for action in parser._actions:  # noqa: SLF001 - argparse offers no public walk
        if isinstance(action, argparse._SubParsersAction):  # noqa: SLF001
            out.extend(dict.fromkeys(action.choices.values()))
    return out


def command_path(parser: argparse.ArgumentParser) -> str:
    """``"hardware list"`` for the parser of ``modelmeter hardware list``."""
    return " ".join(parser.prog.split()[1:])


def add_examples(parser: argparse.ArgumentParser) -> None:
    """Put each command's examples at the end of its epilog (after the list of model forms),
    here and below: every ``--help`` ends with them, as the README says."""
    epilog = parser.epilog or ""
    examples = EXAMPLES.get(command_path(parser))
    if examples is not None and "examples:" not in epilog:
        parser.epilog = (f"{epilog.rstrip()}\n\n" if epilog else "") + f"examples:\n{examples}\n"
        if parser.formatter_class is argparse.HelpFormatter:
            parser.formatter_class = KeepLinesFormatter
    for child in subparsers(parser):
        add_examples(child)
