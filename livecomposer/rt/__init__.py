"""Code that runs on audio and MIDI drivers' realtime threads, compiled so it needs no GIL.

A Python callback on JACK's or PortAudio's thread must take the GIL first; with the engine
or the model worker holding it, the driver's cycle waits, and JACK reports an xrun (seen:
``client = livecomposer-monitor was not finished``).  Here the driver calls machine code
compiled by numba (:func:`numba.cfunc`) that only moves bytes between the driver's
buffers and lock-free single-producer single-consumer rings (:mod:`.ring`); Python
threads fill or drain the other end of each ring.
"""
