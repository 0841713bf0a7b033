"""The playing partners: model-driven plugins that play with the performer.

* :class:`CallResponse` answers each phrase when the performer pauses;
* :class:`Continuation` plays on continuously, re-steered by every performer note;
* :class:`Harmonizer` adds one to three notes to each performer note, at once;
* :class:`Accompanist` plays a second voice (bass or counter-melody) on the tempo grid.

They share :mod:`.common` (the settings, the engine-thread half) and :mod:`.track` (the model
history on the inference worker, with the session memory of :mod:`.memory`), and the rule
that the engine thread never waits for the model.
"""

from .accompanist import Accompanist
from .call_response import CallResponse
from .common import ModelPartner
from .continuation import Continuation
from .harmonizer import Harmonizer
from .track import PlanSpec, Step, Track

__all__ = ["Accompanist", "CallResponse", "Continuation", "Harmonizer", "ModelPartner", "PlanSpec", "Step", "Track"]
