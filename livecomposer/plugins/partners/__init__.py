"""The playing partners: model-driven plugins that play with the performer.

* :class:`CallResponse` answers each phrase when the performer pauses;
* :class:`Continuation` plays on continuously, re-steered by every performer note;
* :class:`Harmonizer` adds one to three notes to each performer note, at once;
* :class:`Accompanist` plays a second voice (bass or counter-melody) on the tempo grid.

They share :mod:`.common`: the settings, the model track on the inference worker, and the
rule that the engine thread never waits for the model.
"""

from .accompanist import Accompanist
from .call_response import CallResponse
from .common import ModelPartner, PlanSpec, Step, Track
from .continuation import Continuation
from .harmonizer import Harmonizer

__all__ = ["Accompanist", "CallResponse", "Continuation", "Harmonizer", "ModelPartner", "PlanSpec", "Step", "Track"]
