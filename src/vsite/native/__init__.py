"""Native code: detection of entries that carry shared objects, and the symlink farm."""
