"""The bench's sections, one module each, run by ``bench/run.py`` in this order.

Each module's ``run(ctx)`` measures side by side and adds its tables to ``ctx.report``
(RESULTS.md), what it prints at the end to ``ctx.console``, its missed targets to
``ctx.misses``.
"""
