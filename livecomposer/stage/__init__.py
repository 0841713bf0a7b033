"""Stage hardening: the generators and checkers behind the ``tests/test_stage_*`` tests and
``livecomposer bench --stage``.

- :mod:`.ledger`: does every note-on that reached the other end have its note-off?
- :mod:`.fuzz`: random and malformed MIDI byte sequences, reproducible from a seed.
- :mod:`.faults`: plugins and model wrappers that fail on purpose (fault injection around
  the real components, never in place of them).
- :mod:`.runs`: the flood and soak runs, parameterised by length so a CI test runs a few
  seconds of what the bench runs for a minute or an hour.
"""
