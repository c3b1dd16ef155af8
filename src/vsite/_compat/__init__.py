"""Version shims, one module per concern, each named for what it papers over."""
