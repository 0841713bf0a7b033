"""The live GAN visualizer: music features -> latent walk -> a small GAN -> a local web page.

Public entry points (imported lazily, so importing this package costs nothing):
``start_visualizer(config) -> VisualizerHandle`` (``handle.observer`` goes to the engine),
``render_contact_sheet(events, path)`` and ``render_frames(events, dir)`` for offline
renders, ``VisualConfig`` / ``parse_visual`` for presets.
"""

from __future__ import annotations

from typing import Any

__all__ = ["start_visualizer", "render_contact_sheet", "render_frames", "VisualConfig", "parse_visual"]


def __getattr__(name: str) -> Any:
    if name == "start_visualizer":
        from .process import start_visualizer

        return start_visualizer
    if name in ("render_contact_sheet", "render_frames"):
        from . import offline

        return getattr(offline, name)
    if name in ("VisualConfig", "parse_visual"):
        from . import config

        return getattr(config, name)
    raise AttributeError(name)
