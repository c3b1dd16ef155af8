"""Import-system side of vsite: the path-entry hook, union directories, metadata.

Runtime: imports only the standard library and the runtime's own modules (``vsite.*``
outside ``vsite.tools``).
"""
