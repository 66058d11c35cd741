"""The desktop app: main window, caption overlay, history, settings.

`app.gui.worker` is the only module here that drives the engine (through `app.pipeline`); every
other module knows Qt and plain data only. Start it with `app.gui.app.main()`.
"""
