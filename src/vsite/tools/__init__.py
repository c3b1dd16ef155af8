"""The tooling: the ``vsite`` command line and what its commands do.

``cli`` parses the command line, prints and picks exit codes (the only module that
does); ``check``, ``check_bytecode``, ``compose``, ``run``, ``scripts`` and the
``install`` package hold the commands' logic and return data or raise
:class:`vsite.VsiteError`.

May import: the standard library, ``packaging``, ``installer`` and the runtime
(``vsite.*``). The runtime never imports this package.
"""
