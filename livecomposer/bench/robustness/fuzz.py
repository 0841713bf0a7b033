"""Random and malformed MIDI, reproducible from a seed.

:func:`messages` mixes, in roughly equal parts, what a healthy keyboard sends (notes, CCs,
bends, clock), what a broken cable or a buggy device sends (truncated messages, stray data
bytes, data bytes with the high bit set, undefined status bytes 0xF4/0xF5/0xF9/0xFD,
realtime bytes with trailing garbage, unterminated sysex, over-long messages) and plain
random bytes of random length, including the empty message.
"""

from __future__ import annotations

from typing import Iterator

import random

UNDEFINED_STATUS = (0xF4, 0xF5, 0xF9, 0xFD)
CHANNEL_LENGTH = {0x80: 2, 0x90: 2, 0xA0: 2, 0xB0: 2, 0xC0: 1, 0xD0: 1, 0xE0: 2}


def _valid(rng: random.Random) -> list[int]:
    high = (rng.choice([0x80, 0x90, 0x90, 0xA0, 0xB0, 0xC0, 0xD0, 0xE0]))
    status = high | rng.randrange(0, 16)
    data = [rng.randrange(128) for _ in range(CHANNEL_LENGTH[high])]
    if rng.random() < 0.1:
        return [(rng.choice([0xF8, 0xFA, 0xFB, 0xFC, 0xFE, 0xF6]))]
    return [status, *data]


def _malformed(rng: random.Random) -> list[int]:
    choice = rng.randrange(0, 9)
    high = (rng.choice(list(CHANNEL_LENGTH)))
    status = high | rng.randrange(0, 16)
    need = CHANNEL_LENGTH[high]
    if choice == 0:  # truncated
        return [status, *[rng.randrange(0, 128) for _ in range(rng.randrange(0, need))]]
    if choice == 1:  # too long
        return [status, *[rng.randrange(0, 128) for _ in range(need + rng.randrange(1, 6))]]
    if choice == 2:  # stray data bytes
        return [rng.randrange(0, 128) for _ in range(rng.randrange(1, 4))]
    if choice == 3:  # a data byte with the high bit set
        data = [rng.randrange(0, 128) for _ in range(need)]
        data[rng.randrange(0, need)] = rng.randrange(128, 256)
        return [status, *data]
    if choice == 4:  # undefined status
        return [(rng.choice(UNDEFINED_STATUS)), *[rng.randrange(0, 128) for _ in range(rng.randrange(0, 3))]]
    if choice == 5:  # realtime with trailing bytes
        return [(rng.choice([0xF8, 0xFA, 0xFB, 0xFC])), *[rng.randrange(0, 256) for _ in range(rng.randrange(1, 3))]]
    if choice == 6:  # unterminated or corrupt sysex
        body = [rng.randrange(0, 128) for _ in range(rng.randrange(0, 20))]
        if rng.random() < 0.5:
            body.append(rng.randrange(0x80, 0xF7))
        return [0xF0, *body]
    if choice == 7:  # song position / system common with the wrong length
        return [(rng.choice([0xF1, 0xF2, 0xF3])), *[rng.randrange(0, 256) for _ in range((rng.choice([0, 1, 3, 4])))]]
    return []  # empty


def _random_bytes(rng: random.Random) -> list[int]:
    return [rng.randrange(0, 256) for _ in range(rng.randrange(0, 12))]


def messages(n: int, seed: int = 0) -> Iterator[bytes]:
    """``n`` byte strings: a third valid, a third malformed on purpose, a third random."""
    rng = random.Random(seed)
    makers = (_valid, _malformed, _random_bytes)
    for i in range(n):
        yield bytes(makers[rng.randrange(0, 3)](rng))


def sendable(message: bytes) -> bool:
    """What python-rtmidi's ``send_message`` accepts (it refuses empty messages and
    non-sysex messages longer than 3 bytes); the rest we count as rejected by the sender."""
    return 0 < len(message) and (len(message) <= 3 or message[0] == 0xF0)
