"""The use cases (analyze, measure), above the frontends: each picks a frontend through
:func:`modelmeter.frontends.frontend_for` and never depends on which one it got."""
