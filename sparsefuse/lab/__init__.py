"""The lab: what reproduces the paper, apart from the library a ``pip install`` user needs.

The experiments (one per chapter of the book), the models they train, the data
they load, the book's machinery (runner, result files, pages) and the helpers the
benchmarks share. It imports the library (``sparsefuse.KANLinear``, bases, grids,
paths, kernels, JHCG); nothing outside ``sparsefuse.lab`` imports it.
"""
