"""Lock-free single-producer, single-consumer rings shared by a realtime callback and Python.

A ring is two numpy arrays: ``header`` (int64: write position, read position, overflow
count) and ``data``.  Positions only grow; the slot is ``position & (capacity - 1)``.  The
producer writes the data, fences, then publishes the new write position; the consumer reads
the write position, fences, reads the data, fences, then publishes the new read position.
The fences (LLVM ``fence seq_cst``) keep both the compiler and weakly ordered CPUs (ARM)
from reordering the data accesses past the position that publishes them.

Every function here is numba-compiled: the same code runs inside the drivers' callbacks
(:mod:`.jack_midi`, :mod:`.jack_midi_out`, :mod:`.audio_out`), where there is no GIL,
and, called from Python, on the other side.  There they keep the GIL: each call takes
microseconds, and releasing the GIL mid-tick let another thread take it for up to a
switch interval (0.5 ms) before the engine got it back.
"""

from __future__ import annotations

import numpy as np
from numba import carray, njit, types
from numba.core import cgutils
from numba.extending import intrinsic

WRITE, READ, OVERFLOWS = 0, 1, 2
HEADER_SIZE = 8


@intrinsic
def fence(typingctx):
    """A full memory barrier (``fence seq_cst``)."""

    def codegen(context, builder, signature, args):
        builder.fence("seq_cst")
        return context.get_dummy_value()

    return types.void(), codegen


@intrinsic
def address_to_voidptr(typingctx, address):
    """An integer address as a ``void *`` (to view driver memory with :func:`numba.carray`)."""

    def codegen(context, builder, signature, args):
        return builder.inttoptr(args[0], cgutils.voidptr_t)

    return types.voidptr(address), codegen


def new_header() -> np.ndarray:
    return np.zeros(HEADER_SIZE, dtype=np.int64)


def check_capacity(capacity: int) -> int:
    if capacity < 2 or capacity & (capacity - 1):
        raise ValueError(f"ring capacity must be a power of two; got {capacity}")
    return capacity


# -- records of bytes (MIDI) --------------------------------------------------------------
#: A record: 8 bytes of time (little-endian int64), 4 of length, 4 spare, then the bytes.
RECORD_HEADER = 16


@njit(cache=True)
def put_u64(data, mask, position, value):
    for k in range(8):
        data[(position + k) & mask] = (value >> (8 * k)) & 0xFF


@njit(cache=True)
def get_u64(data, mask, position):
    value = 0
    for k in range(8):
        value |= np.int64(data[(position + k) & mask]) << (8 * k)
    return value


@njit(cache=True)
def record_write(header, data, time, payload_address, size):
    """Append one record whose bytes are at ``payload_address`` (producer side).  False,
    and the overflow counted, when it does not fit: a realtime producer never waits."""
    return record_write_from(header, data, time, address_to_voidptr(payload_address), size)


@njit(cache=True)
def record_write_from(header, data, time, payload, size):
    """:func:`record_write` for bytes at a ``void *``."""
    mask = data.size - 1
    write = header[WRITE]
    read = header[READ]
    fence()
    need = RECORD_HEADER + size
    if data.size - (write - read) < need:
        header[OVERFLOWS] += 1
        return False
    put_u64(data, mask, write, time)
    put_u64(data, mask, write + 8, size)
    source = carray(payload, size, np.uint8)
    for k in range(size):
        data[(write + RECORD_HEADER + k) & mask] = source[k]
    fence()
    header[WRITE] = write + need
    return True


@njit(cache=True)
def records_take(header, data, out):
    """Copy whole records into ``out`` (consumer side) and free their space; returns the
    number of bytes copied (records are laid out in ``out`` as in the ring)."""
    mask = data.size - 1
    write = header[WRITE]
    fence()
    read = header[READ]
    n = 0
    while read < write:
        size = get_u64(data, mask, read + 8)
        need = RECORD_HEADER + size
        if n + need > out.size:
            break
        for k in range(need):
            out[n + k] = data[(read + k) & mask]
        n += need
        read += need
    fence()
    header[READ] = read
    return n


# -- stereo float frames (audio) ----------------------------------------------------------
@njit(cache=True)
def frames_free(header, data):
    return data.shape[0] - (header[WRITE] - header[READ])


@njit(cache=True)
def frames_write(header, data, block):
    """Append ``block`` (frames x channels) if it fits whole (producer side); True if written."""
    capacity = data.shape[0]
    mask = capacity - 1
    write = header[WRITE]
    read = header[READ]
    fence()
    frames = block.shape[0]
    if capacity - (write - read) < frames:
        return False
    for i in range(frames):
        slot = (write + i) & mask
        for c in range(block.shape[1]):
            data[slot, c] = block[i, c]
    fence()
    header[WRITE] = write + frames
    return True


@njit(cache=True)
def frames_read(header, data, out):
    """Fill ``out`` (frames x channels) from the ring (consumer side); what is missing is
    silence.  Returns the number of frames that were there."""
    capacity = data.shape[0]
    mask = capacity - 1
    write = header[WRITE]
    fence()
    read = header[READ]
    frames = out.shape[0]
    have = min(frames, write - read)
    for i in range(have):
        slot = (read + i) & mask
        for c in range(out.shape[1]):
            out[i, c] = data[slot, c]
    for i in range(have, frames):
        for c in range(out.shape[1]):
            out[i, c] = 0.0
    fence()
    header[READ] = read + have
    return have


@njit(cache=True)
def record_peek(header, data, scratch):
    """The oldest record's (time, size), its bytes copied into ``scratch`` (consumer side,
    nothing freed); size -1 when the ring is empty.  Free it with :func:`record_drop`."""
    mask = data.size - 1
    write = header[WRITE]
    fence()
    read = header[READ]
    if read >= write:
        return 0, -1
    time = get_u64(data, mask, read)
    size = get_u64(data, mask, read + 8)
    for k in range(min(size, scratch.size)):
        scratch[k] = data[(read + RECORD_HEADER + k) & mask]
    return time, size


@njit(cache=True)
def record_drop(header, size):
    """Free the oldest record (of ``size`` bytes), after :func:`record_peek`."""
    fence()
    header[READ] = header[READ] + RECORD_HEADER + size
