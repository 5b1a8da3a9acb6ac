"""How long a training-step analysis of a large model takes, as a multiple of one forward
analysis (not a test).

``train(hf:llama-3-70b, "1x4096:int64", precision="bf16-mixed", zero=3, devices=64,
hardware=h100-sxm)`` (the forward, backward and AdamW step traced on meta, the memory by
category, the ZeRO plan and the step time) against ``analyze`` of the same model on the same
tokens (one forward) and a plain meta-device forward under ``torch.no_grad()``. The model is
built once on meta (timed apart); then the three are timed in turn, ``--repeats`` rounds
(median of each), in CPU seconds of this process and wall seconds; peak RSS of the process
at the end; the load average before and after (other jobs on the machine inflate the wall
times, not the CPU seconds).

    .venv/bin/python bench/train_speed.py [--model hf:llama-3-70b] [--seq 4096] [--repeats 3]
"""

from __future__ import annotations

import os
import sys
from typing import Any

import speed_harness as sh


def main(argv: list[str] | None = None) -> int:
    args = sh.parse_args(__doc__, argv, seq=4096, batch=1, devices=64, zero=3)
    load_before = os.getloadavg()

    from modelmeter.hardware import load_spec
    from modelmeter.usecases.analyze import analyze
    from modelmeter.usecases.train import train

    spec = load_spec(args.hardware)
    build, model, plain = sh.meta_build(args.model, args.batch, args.seq)
    tokens = f"{args.batch}x{args.seq}:int64"

    def forward() -> object:
        return analyze(model, tokens)

    def step() -> Any:
        return train(model, tokens, precision="bf16-mixed", zero=args.zero, hardware=spec,
                     devices=args.devices)  # fmt: skip

    med, last = sh.median_rounds({"plain": plain, "forward": forward, "train": step}, args.repeats)
    rss = sh.peak_rss_mib()
    r = last.get("train")
    assert r is not None
    print(f"model {args.model}: {r.params[0]:,} parameters; {tokens}, bf16-mixed AdamW, "
          f"ZeRO-{args.zero} over {args.devices} devices, {args.hardware}; median of "
          f"{args.repeats}")  # fmt: skip
    labels = {"plain": "plain meta forward", "forward": "analyze (forward)", "train": "train (one step)"}
    sh.print_table(build, med, labels)
    sh.print_ratios(med, "train", "forward")
    print(f"(peak of the step {r.peak.bytes:,} bytes at {r.peak.phase})")
    sh.print_footer(rss, load_before)
    return 0


if __name__ == "__main__":
    sys.exit(main())
