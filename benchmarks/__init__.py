"""Benchmarks of a podium node against the PRODUCT.md §5 figures, run by hand.

``python -m benchmarks.suite`` runs S1–S7 (podium beside a python-socketio peer for S1, S2 and S5);
each scenario also runs on its own (``benchmarks.fanout``, ``rate``, ``joins``, ``sessions``,
``cross_node``, ``slow_readers``, ``votes``), as do ``floor``, ``grant_media`` and ``streaming``.
See benchmarks/README.md and docs/performance.md.
"""
