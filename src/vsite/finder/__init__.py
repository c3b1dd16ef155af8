"""Import-system side of vsite: the path-entry hook, union directories, metadata."""
