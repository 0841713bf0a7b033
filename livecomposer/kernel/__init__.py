"""The timing kernel: events, clocks, tempo, the scheduler and the engine.

The engine thread runs here: it parses what the inputs queued, runs the plugin graph and
sends what is due.  The kernel imports the port interfaces and the realtime helpers below
it (:mod:`livecomposer.ports`, :mod:`livecomposer.rt`) and the plugin base it drives;
nothing here knows about presets, screens or commands.
"""
