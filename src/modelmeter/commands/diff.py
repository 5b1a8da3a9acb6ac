"""``modelmeter diff OLD NEW``: what changed between two saved reports (or two models analysed
with the same inputs), and the budgets a change must stay within (for CI).

Exit codes: 0 no budget broken, 3 a budget broken (the list on stderr and in the output),
2 bad input (a file that is not a report, a bad budget), 1 internal error.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from typing import TYPE_CHECKING, Any

from modelmeter.commands.options import (
    MODEL_HELP,
    PROG,
    TABLE_WIDTH,
    add_chip_options,
    add_model_arguments,
    add_output_options,
    add_units_option,
    depth_arg,
    input_request,
    progress_bar,
    quiet_libraries,
    spec_from_args,
    warn_unverified,
    with_units,
)
from modelmeter.commands.paths import check_command_outputs, model_files
from modelmeter.commands.reports import is_report_file, read_report
from modelmeter.commands.table_options import table_width
from modelmeter.errors import InputError
from modelmeter.render.emit import emit, output_path
from modelmeter.render.formats import DIFF_FORMATS

if TYPE_CHECKING:
    from modelmeter.analysis.budgets import Budget
    from modelmeter.analysis.diff import Latencies
    from modelmeter.hardware import HardwareSpec
    from modelmeter.inputs import InputRequest
    from modelmeter.report import Report

BUDGET_BROKEN = 3  # the exit code when a budget is broken (2 is bad input, 1 a bug)

EXAMPLES = """\
examples:
  modelmeter diff old.json new.json                     # what changed
  modelmeter diff old.json new.json -f md -o comment.md --fail-if "flops>+2%" --fail-if "params>+0"
  modelmeter diff torchvision:resnet18 torchvision:resnet34 --input 1x3x224x224 --hardware l4
  modelmeter diff old.json new.json --budgets pyproject.toml   # [tool.modelmeter.budgets]

the reports, saved with analyze:
  modelmeter analyze m.py:build -f json -o old.json     # on the base branch
  modelmeter analyze m.py:build -f json -o new.json     # on the change

budgets: METRIC>LIMIT, broken when the metric goes over the limit
  flops>+2%        the relative change, in percent (exactly +2% holds, one FLOP more breaks)
  params>+0        the change (here: no new parameter)
  macs>4.2G        the new value
  metrics: params, macs, flops, bytes, bytes_read, bytes_written, activation_peak, weights,
  latency (needs --hardware, or reports written with one); units K M G T, B KB MB GB KiB MiB
  GiB, s ms us ns. A budget file (TOML): [budgets] macs = "4.2G", flops = "+2%".

exit codes: 0 no budget broken, 3 a budget broken, 2 bad input, 1 internal error

OLD and NEW are each a saved report (FILE.json, from 'analyze -f json') or a model:
"""


def _epilog() -> str:
    """The notes on reports, budgets and models, then the examples: --help ends with them."""
    examples, notes = EXAMPLES.split("\n\n", 1)
    return notes + MODEL_HELP.split("\n", 1)[1] + "\n\n" + examples + "\n"


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "diff",
        parents=[common],
        help="what changed between two reports or models; budgets for CI",
        description="Compare two saved reports (or two models analysed with the same inputs): "
        "the totals, each module (matched by name: added, removed, changed) and each operator "
        "type. With --fail-if or --budgets, exit 3 when a change breaks a budget.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_epilog(),
    )
    p.add_argument("old", metavar="OLD", help="the report or model before the change")
    p.add_argument("new", metavar="NEW", help="the report or model after the change")
    add_model_arguments(p, positional=False)
    add_output_options(p, DIFF_FORMATS, "the diff")
    p.add_argument("--all", dest="show_all", action="store_true",
                   help="also list the modules and operators that did not change")  # fmt: skip
    p.add_argument("--depth", type=depth_arg, default=None, metavar="N",
                   help="table and md: module rows down to depth N (top-level modules are 1; "
                   "default all; json has every row)")  # fmt: skip
    p.add_argument("--fail-if", action="append", default=[], metavar="BUDGET",
                   help='exit 3 when the change breaks BUDGET, e.g. "flops>+2%%", "params>+0", '
                   '"macs>4.2G", "latency>+5%%" (repeatable)')  # fmt: skip
    p.add_argument("--budgets", metavar="FILE",
                   help="a TOML file of budgets: its [budgets] table, or "
                   "[tool.modelmeter.budgets] of a pyproject.toml")  # fmt: skip
    add_chip_options(p)
    add_units_option(p)
    p.set_defaults(handler=with_units(run))


def _budgets(args: argparse.Namespace) -> list[Budget]:
    from modelmeter.analysis.budgets import load_budgets, parse_budget

    out = [parse_budget(text) for text in args.fail_if]
    return out + (load_budgets(args.budgets) if args.budgets else [])


def _side(
    spec: str, args: argparse.Namespace, request: InputRequest, chip: HardwareSpec | None
) -> tuple[Report, Latencies | None]:
    """One side's report, and its latency: on ``chip`` when given, else the one a saved
    report holds (None without)."""
    from modelmeter.analysis.diff import Latencies

    if is_report_file(spec):
        report, doc = read_report(spec)
        try:
            stored = Latencies.from_json(doc)
        except InputError as e:
            raise InputError(f"{spec} is not a modelmeter JSON report: {e}") from None
    else:
        from modelmeter.usecases.analyze import analyze

        with quiet_libraries(args.debug), progress_bar(args.quiet, f"analysing {spec}"):
            report = analyze(spec, request, mode=args.mode, convention=args.convention)
        stored = None
    if chip is None:
        return report, stored
    from modelmeter.analysis.roofline import roofline

    return report, Latencies.from_roofline(roofline(report, chip, tf32=args.tf32))


def _check_inputs_options(args: argparse.Namespace) -> None:
    given = args.input or args.batch or args.dim or args.dtype
    if given and is_report_file(args.old) and is_report_file(args.new):
        raise InputError(
            "--input, --batch, --dim and --dtype say how to analyse a model; OLD and NEW are "
            "saved reports (analyse again with them, or give models)"
        )


def run(args: argparse.Namespace) -> int:
    from modelmeter.analysis.budgets import check_budgets
    from modelmeter.analysis.diff import diff_reports
    from modelmeter.render.diff import broken_lines, render_diff

    budgets = _budgets(args)  # a bad budget fails before any model loads
    _check_inputs_options(args)
    request = input_request(args)
    extra = [*model_files(args.old), *model_files(args.new), args.budgets]
    check_command_outputs(args, [("-o", args.output)], *[f for f in extra if f])
    out = output_path(args.output)
    chip = spec_from_args(args)
    old, old_lat = _side(args.old, args, request, chip)
    new, new_lat = _side(args.new, args, request, chip)
    diff = diff_reports(old, new, old_label=args.old, new_label=args.new,
                        old_latency=old_lat, new_latency=new_lat)  # fmt: skip
    checks = check_budgets(diff, budgets)
    tty = out is None and sys.stdout.isatty()
    width = shutil.get_terminal_size((TABLE_WIDTH, 24)).columns if tty else table_width()
    text = render_diff(diff, args.format, checks=checks, show_all=args.show_all,
                       depth=args.depth, width=width)  # fmt: skip
    emit(text, out)
    if chip is not None:
        warn_unverified(chip)
    broken = broken_lines(checks)
    for line in broken:
        print(f"{PROG}: budget broken: {line}", file=sys.stderr)
    return BUDGET_BROKEN if broken else 0
