"""Child: a fresh process reading the persistent index with one reader.

    reader.py MODULE FILE    import MODULE (marshal, json or pickle), read FILE, loads()

Reports the seconds from before the import to after ``loads``.
"""

from __future__ import annotations

import sys
import time

from measured import report  # its import starts the child's clock


def main(module: str, path: str) -> None:
    started = time.perf_counter()
    reader = __import__(module)
    with open(path, "rb") as stream:
        data = stream.read()
    reader.loads(data)
    report(time.perf_counter() - started)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
