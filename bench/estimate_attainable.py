"""Write the estimated [attainable] sections of the built-in NVIDIA GPU specs (not a test).

    python bench/estimate_attainable.py            # rewrite them from h100-sxm's
    python bench/estimate_attainable.py --check    # exit 1 if a file is out of date

Each chip in ESTIMATED gets h100-sxm's measured figures carried over by
``modelmeter.hardware.estimate.carry_over`` (the rule: docs/hardware.md, "Attainable
figures"), labelled ``basis = "estimated"`` with UNCERTAINTY. The section is the file's tail,
from the MARK comment (which states the rule) on; the rest of the file is left as it is.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from modelmeter.hardware import load_spec  # noqa: E402
from modelmeter.hardware.estimate import carry_over  # noqa: E402
from modelmeter.hardware.loader import attainable_toml  # noqa: E402

SPECS = Path(__file__).resolve().parents[1] / "src" / "modelmeter" / "hardware" / "specs"
MEASURED = "h100-sxm"
# NVIDIA data-centre and desktop GPUs (Jetson modules have another host: not carried over)
ESTIMATED = ["a10", "a100-pcie-80gb", "a100-sxm-40gb", "a100-sxm-80gb", "h100-pcie", "h200",
             "l4", "rtx-3090", "rtx-4090", "t4", "v100-pcie", "v100-sxm2"]
UNCERTAINTY = (
    "about 2x per model: h100-sxm's own held-out error (docs/hardware.md) plus the chip's "
    "kernels and host, which nobody measured here; older architectures (V100, T4) and "
    "consumer parts the least certain"
)
HEAD = "# Estimated attainable figures (bench/estimate_attainable.py writes this section)"
MARK = (
    HEAD + ": h100-sxm's\n"
    "# measured and fitted figures carried over by the ratio rule of hardware/estimate.py\n"
    "# (docs/hardware.md): each matrix peak and the bandwidth = this chip's datasheet figure x\n"
    "# (H100 attainable / H100 datasheet); the vector figures with vector.float32; host,\n"
    "# module-call and launch times, class efficiencies and depthwise exponents are H100's."
)


def section(name: str) -> str:
    target = load_spec(name)
    att = carry_over(load_spec(MEASURED), target, uncertainty=UNCERTAINTY)
    return MARK + "\n" + attainable_toml(att)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--check", action="store_true")
    args = p.parse_args()
    stale = []
    for name in ESTIMATED:
        path = SPECS / f"{name}.toml"
        text = path.read_text(encoding="utf-8")
        head = text.split(HEAD)[0].rstrip("\n") + "\n\n"
        new = head + section(name)
        if new != text:
            stale.append(name)
            if not args.check:
                path.write_text(new, encoding="utf-8")
    print(("out of date: " if args.check else "rewrote: ") + (", ".join(stale) or "none"))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
