"""Writes docs/images/html-report-resnet18-a100.png: the HTML report of
``modelmeter analyze torchvision:resnet18 --hardware a100-sxm-80gb --format html``, layer1
opened, in the headless Chromium the tests use (``make screenshot``)."""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "tests"))

from browser import launch, sync_playwright  # noqa: E402

from modelmeter.cli import main  # noqa: E402


def shoot(out: Path) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        page_file = Path(tmp) / "resnet18.html"
        argv = ["analyze", "torchvision:resnet18", "--hardware", "a100-sxm-80gb",
                "--format", "html", "-o", str(page_file)]  # fmt: skip
        if main(argv) != 0:
            raise SystemExit("modelmeter analyze failed")
        with sync_playwright() as p:
            browser = launch(p)
            page = browser.new_page(viewport={"width": 1320, "height": 900})
            page.goto(page_file.as_uri())
            page.locator('tr[data-name="layer1"] .mm-tog').click()
            page.screenshot(path=str(out), full_page=True)
            browser.close()


if __name__ == "__main__":
    shoot(HERE / "html-report-resnet18-a100.png")
