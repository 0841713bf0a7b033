"""Realtime (SCHED_FIFO) priorities of our threads, in one table, all below JACK's.

JACK runs every client's process callback at SCHED_FIFO, at the server's priority minus 5
(5 under jackd's default ``-P 10``; PipeWire's data threads run higher still).  Those
callbacks are our compiled MIDI and audio clients: they take microseconds and must never
wait.  A Python thread of ours at or above that priority makes them wait whenever it is
busy (the engine planning a phrase, the inference worker running a model step, a reader
handing over a burst); JACK then reports the client late, and in its default asynchronous
mode a late client's MIDI can be delivered twice or lost.  The audio monitor's renderer
at priority 8 was reported late hundreds of times a minute.  The input reader (12), the
engine (10) and the inference worker (5) once broke the same rule.  Below JACK's clients,
every one of our threads still preempts every normal process, which is what their timing
needs (sleep lateness p99 falls from several ms at normal priority to about 0.1 ms).
"""

from __future__ import annotations

import os

#: JACK's client threads under jackd's default ``-P 10``; everything below stays under it.
JACK_CLIENTS = 5
#: Input readers: hand each arriving message to the engine (stamps come from JACK's frames).
INPUT_READER = 4
#: The engine thread: sends what is due, runs the plugins.
ENGINE = 3
#: The audio monitor's renderer: keeps the audio ring filled a few blocks ahead.
AUDIO_RENDER = 2
#: The inference worker: model steps for the partners, handed over by the engine.
INFERENCE = 1


def make_realtime(priority: int) -> bool:
    """Ask for SCHED_FIFO ``priority`` for the calling thread; False (normal priority kept)
    where the system refuses it (no ``CAP_SYS_NICE``, ``ulimit -r`` too low, not Linux)."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(priority))
        return True
    except (AttributeError, PermissionError, OSError):
        return False
