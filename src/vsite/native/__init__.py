"""Native code: detection of entries that carry shared objects, and the symlink farm.

Runtime: imports only the standard library and the runtime's own modules (``vsite.*``
outside ``vsite.tools``).
"""
