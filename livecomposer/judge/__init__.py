"""``livecomposer judge``: how musical a preset's partner is, measured beside human music.

The same figures are computed for what the machine played and for the human music in the
same files (the reference), so a number is never read alone: :mod:`.metrics` holds the
definitions (pure functions on note lists), :mod:`.phrases` reads files and cuts them into
calls, :mod:`.run` renders them through the preset on the offline engine, and
:mod:`.report` prints the side-by-side table or JSON.
"""
