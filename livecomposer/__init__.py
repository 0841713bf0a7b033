"""livecomposer: a real-time AI playing partner for MIDI keyboard players."""

__version__ = "0.1.0"
