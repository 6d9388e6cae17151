"""The JHCG appendix: the hybrid MLP/KAN feed-forward block (:mod:`sparsefuse.jhcg`) measured.

``microbench`` and ``fastpath`` time the block alone; ``audit``, ``attribution`` and
``adaptation`` read MiniGPTs trained once each (``_lm``); ``compile_drift`` and
``nanochat`` test it under ``torch.compile`` and in another codebase. ``words`` makes
the sentences the appendix pages glue from their numbers.
"""
