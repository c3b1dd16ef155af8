"""Child side of one measurement; every probe imports it first.

Its import marks the start: ``START_CPU`` is the child's CPU time when the probe began
(interpreter start, ``site`` and, under vsite's boot path, the activation).
``report(check)`` prints the line the bench's ``spawn.Runner`` reads: that start, the
CPU time now, the peak RSS in KiB and the check value's repr.
"""

from __future__ import annotations

import time

START_CPU = time.process_time()


def report(check: object) -> None:
    cpu = time.process_time()
    # Peak RSS of this image: ru_maxrss would carry the spawning parent's over exec.
    with open("/proc/self/status", "rb") as status:
        hwm = [line.split()[1] for line in status if line.startswith(b"VmHWM:")]
    print(START_CPU, cpu, int(hwm[0]) if hwm else 0, repr(check))
