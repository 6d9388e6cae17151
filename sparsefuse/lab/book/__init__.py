"""The reproduction book's machinery: runner, result files, notebook helpers, explorer.

Command line: ``python -m sparsefuse.lab.book run|list|sync|site``.
"""
