"""The application: what assembles the kernel, plugins and ports into a performance.

Presets (YAML to a plugin graph), the live session, offline rendering, recording, the
status screen, OSC and Ableton Link control surfaces, and the doctor.  Commands
(:mod:`livecomposer.commands`) call into this layer; nothing below imports it.
"""
