"""Pure analyses over a Report (roofline, utilization): new values, never a changed Report."""

from __future__ import annotations

from modelmeter.analysis.roofline import ModuleTime, OpTime, Roofline, roofline

__all__ = ["roofline", "Roofline", "ModuleTime", "OpTime"]
