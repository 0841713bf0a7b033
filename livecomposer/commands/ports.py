"""``livecomposer ports``: which MIDI backend we would use, and the ports it sees."""

from __future__ import annotations

import argparse
import json

from . import CommandError
from ..ports.base import MIDI_APIS


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "ports",
        help="list MIDI inputs and outputs and the backend in use",
        description="List the MIDI ports livecomposer can receive from (inputs) and send to (outputs).",
    )
    p.add_argument("--api", choices=MIDI_APIS, default="auto", help="MIDI backend (default: auto)")
    p.add_argument("--json", action="store_true", help="print {backend, inputs, outputs} as JSON")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..ports.base import PortError
    from ..ports.listing import list_ports

    try:
        listing = list_ports(args.api)
    except PortError as exc:
        raise CommandError(str(exc), 1) from None
    if args.json:
        print(json.dumps({"backend": listing.backend, "inputs": listing.inputs, "outputs": listing.outputs}))
        return 0
    print(f"backend: {listing.backend}")
    for title, names in (("inputs", listing.inputs), ("outputs", listing.outputs)):
        print(f"{title}:")
        for name in names:
            print(f"  {name}")
        if not names:
            print("  (none)")
    return 0
