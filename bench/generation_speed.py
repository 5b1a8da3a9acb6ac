"""How long a full generation analysis takes, as a multiple of one prefill analysis.

``generate(hf:llama-3-70b, prompt=4096, new=4096, hardware=h100-sxm)`` (prefill, the decode
steps traced to fit and check the curve, the cache fitted, the roofline at the sampled
contexts) against ``analyze`` of the same model on 4096 tokens (the prefill alone) and a
plain meta-device forward of the model on the same tokens under ``torch.no_grad()`` (the
least any shape-level tool spends). The model is built once on meta (timed apart); then the
three are timed in turn, ``--repeats`` rounds (median of each), in CPU seconds of this
process and wall seconds; peak RSS of the process at the end; the load average before and
after (other jobs on the machine inflate the wall times, not the CPU seconds).

    .venv/bin/python bench/generation_speed.py [--model hf:llama-3-70b] [--prompt 4096]
                                               [--new 4096] [--hardware h100-sxm] [--repeats 3]
"""

from __future__ import annotations

import os
import sys
from typing import Any

import speed_harness as sh


def main(argv: list[str] | None = None) -> int:
    args = sh.parse_args(__doc__, argv, prompt=4096, new=4096, batch=1)
    load_before = os.getloadavg()

    from modelmeter.usecases.analyze import analyze
    from modelmeter.usecases.generate import generate

    build, model, plain = sh.meta_build(args.model, args.batch, args.prompt)

    def prefill() -> object:
        return analyze(model, kwargs={"input_ids": f"{args.batch}x{args.prompt}:int64"})

    def gen() -> Any:
        return generate(model, prompt=args.prompt, new=args.new, batch=args.batch,
                        hardware=args.hardware)  # fmt: skip

    fns = {"plain": plain, "prefill": prefill, "generate": gen}
    med, last = sh.median_rounds(fns, args.repeats)
    rss = sh.peak_rss_mib()
    g = last.get("generate")
    assert g is not None
    print(f"model {args.model}: {g.prefill.total().params:,} parameters; prompt {args.prompt}, "
          f"new {args.new}, batch {args.batch}; median of {args.repeats}")  # fmt: skip
    labels = {"plain": "plain meta forward", "prefill": "analyze (prefill)", "generate": "generate"}
    sh.print_table(build, med, labels)
    sh.print_ratios(med, "generate", "prefill")
    print(f"({len(g.curve.traced)} decode steps traced, roofline at "
          f"{len(g.timing.evaluated) if g.timing else 0} contexts; decode total "
          f"{g.timing.decode_total_s if g.timing else 0!r} s)")  # fmt: skip
    sh.print_footer(rss, load_before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
