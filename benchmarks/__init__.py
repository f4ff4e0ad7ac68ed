"""Benchmarks of a podium node against the PRODUCT.md §5 figures, run by hand (``benchmarks.fanout``, ``benchmarks.floor``)."""
