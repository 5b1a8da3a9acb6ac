"""A small Llama-shaped model's real generation on the CPU beside modelmeter's prediction.

Builds a Llama-shaped model with random weights (seeded) on the CPU, times transformers' own
``generate`` (greedy, eager, its DynamicCache): the prefill alone (``max_new_tokens=1``) and
the prefill plus G decode steps (``max_new_tokens=G+1``, since the prefill gives the first
token); per-token latency = (the whole - the prefill) / G. Median of ``--repeats`` runs after
a warm-up. Beside it: ``generate(model, prompt=P, new=G, batch=B, hardware=SPEC,
cache="dynamic")`` (the layout eager transformers runs) with a
chip file of this machine (``modelmeter calibrate --quick -o cpu.toml``).

    OMP_NUM_THREADS=1 modelmeter calibrate --quick -o cpu.toml
    OMP_NUM_THREADS=1 .venv/bin/python bench/generation_measured.py --hardware cpu.toml \
        --threads 1 [--prompt 128] [--new 64] [--batch 1] [--repeats 3]

(calibrate and measure with the same thread count). ``--hidden/--intermediate/--layers``
change the model's shape (a second shape to check figures fitted elsewhere on). The
prediction is printed twice when the chip file has the eager host figures (``[overhead]
module_call``/``step``, measured by ``calibrate`` on the CPU): without them
(the per-op figure alone) and with them.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from dataclasses import replace

CONFIG = {
    "hidden_size": 512, "intermediate_size": 1376, "num_attention_heads": 8,
    "num_key_value_heads": 4, "num_hidden_layers": 8, "vocab_size": 8000,
    "max_position_embeddings": 4096,
}  # fmt: skip


def _timed(fn, repeats: int, clock=time.perf_counter) -> float:  # noqa: ANN001
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hardware", required=True, help="a chip file of this CPU (calibrate)")
    p.add_argument("--prompt", type=int, default=128)
    p.add_argument("--new", type=int, default=64)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--hidden", type=int, default=CONFIG["hidden_size"])
    p.add_argument("--intermediate", type=int, default=CONFIG["intermediate_size"])
    p.add_argument("--layers", type=int, default=CONFIG["num_hidden_layers"])
    p.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                   help="wall time (default), or the process's CPU time: with one thread on a "
                   "shared machine, what the wall time would be without the other load")  # fmt: skip
    args = p.parse_args(argv)
    config = {**CONFIG, "hidden_size": args.hidden, "intermediate_size": args.intermediate,
              "num_hidden_layers": args.layers}  # fmt: skip

    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from modelmeter.hardware import load_spec
    from modelmeter.usecases.generate import generate

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**config)).eval()
    ids = torch.randint(0, config["vocab_size"], (args.batch, args.prompt))

    def run(n: int):  # noqa: ANN202
        def go() -> None:
            with torch.no_grad():
                model.generate(ids, max_new_tokens=n, min_new_tokens=n, do_sample=False,
                               pad_token_id=0)  # fmt: skip

        return go

    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    ttft = _timed(run(1), args.repeats, clock)
    whole = _timed(run(args.new + 1), args.repeats, clock)
    per_token = (whole - ttft) / args.new

    spec = load_spec(args.hardware)
    print(f"Llama-shaped {config}, {sum(x.numel() for x in model.parameters()):,} parameters, "
          f"float32; prompt {args.prompt}, {args.new} decode steps, batch {args.batch}; "
          f"{torch.get_num_threads()} threads; chip file {spec.name}; {args.clock} clock")  # fmt: skip
    specs = [("", spec)]
    if spec.module_call or spec.step_overhead:
        bare = replace(spec, module_call=None, step_overhead=None)
        specs = [(" (per-op figure alone)", bare), (" (with [overhead] module_call, step)", spec)]
    for label, chip in specs:
        # eager generate() runs the DynamicCache: compare like with like (its cat counted)
        g = generate(model, prompt=args.prompt, new=args.new, batch=args.batch, hardware=chip,
                     cache="dynamic")  # fmt: skip
        t = g.timing
        assert t is not None
        print(f"predicted{label}\n                      measured   predicted   predicted/measured")
        for name, m, q in (
            ("time to first token", ttft, t.ttft_s),
            ("per token (mean)", per_token, t.decode_mean_s),
            ("prefill + decode", whole, t.end_to_end_s),
        ):
            print(f"{name:<20} {m * 1e3:9.2f} ms {q * 1e3:9.2f} ms   {q / m:6.2f}")
        print(f"predicted bounds: prefill {t.prefill_bound}, decode {t.decode_first_bound}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
