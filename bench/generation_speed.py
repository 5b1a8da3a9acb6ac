"""How long a full generation analysis takes, as a multiple of one prefill analysis.

``generate(hf:llama-3-70b, prompt=4096, new=4096, hardware=h100-sxm)`` (prefill, the decode
steps traced to fit and check the curve, the cache fitted, the roofline at the sampled
contexts) against ``analyze`` of the same model on 4096 tokens. Each timed in a fresh state
after the model is built once (the build is timed apart); peak RSS of the process at the end.

    .venv/bin/python bench/generation_speed.py [--model hf:llama-3-70b] [--prompt 4096]
                                               [--new 4096] [--hardware h100-sxm]
"""

from __future__ import annotations

import argparse
import resource
import sys
import time


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="hf:llama-3-70b")
    p.add_argument("--prompt", type=int, default=4096)
    p.add_argument("--new", type=int, default=4096)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--hardware", default="h100-sxm")
    args = p.parse_args(argv)

    from modelmeter.models import load
    from modelmeter.usecases.analyze import analyze
    from modelmeter.usecases.generate import generate

    t0, c0 = time.perf_counter(), time.process_time()
    model = load(args.model).model
    build_s, build_cpu = time.perf_counter() - t0, time.process_time() - c0

    t0, c0 = time.perf_counter(), time.process_time()
    analyze(model, kwargs={"input_ids": f"{args.batch}x{args.prompt}:int64"})
    prefill_s, prefill_cpu = time.perf_counter() - t0, time.process_time() - c0

    t0, c0 = time.perf_counter(), time.process_time()
    g = generate(model, prompt=args.prompt, new=args.new, batch=args.batch,
                 hardware=args.hardware)  # fmt: skip
    generate_s, generate_cpu = time.perf_counter() - t0, time.process_time() - c0
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux -> MiB

    print(f"model {args.model}: {g.prefill.total().params:,} parameters; prompt {args.prompt}, "
          f"new {args.new}, batch {args.batch}")  # fmt: skip
    print("                    wall s   CPU s")
    print(f"build on meta      {build_s:7.2f} {build_cpu:7.2f}")
    print(f"analyze (prefill)  {prefill_s:7.2f} {prefill_cpu:7.2f}")
    print(f"generate           {generate_s:7.2f} {generate_cpu:7.2f}  = "
          f"{generate_cpu / prefill_cpu:.1f} x one prefill "
          f"analysis ({len(g.curve.traced)} decode steps traced, roofline at "
          f"{len(g.timing.evaluated) if g.timing else 0} contexts)")  # fmt: skip
    print(f"peak RSS           {rss:7.0f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
