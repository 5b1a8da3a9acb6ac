"""The use cases: what a user asks modelmeter to do (analyse a model, measure it, calibrate a
chip), each in one module above the frontends. A use case turns what it was given into one
typed request, picks a frontend through :func:`modelmeter.frontends.frontend_for` and joins
the results; nothing below this layer imports it."""
