"""The fused kernels' process-wide switches, in one object whose ``key`` changes with them.

Tests, the tuner and the benchmarks force a strategy, poison kernel outputs, shrink the
streamed chunk budget or override a launch config.  Everything that memoises a decision
on them (the layer plan, :mod:`.layer`) keys it on ``settings.key``, a counter bumped by
every change, so nothing it remembers can outlive the switches it was made under.
"""

import contextlib
import os

STRATEGIES = ("auto", "streamed", "gather")
# kernel v2's names, still the method names of committed results (book chapter 2: "fused-dense")
_OLD_NAMES = {"dense": "streamed", "sparse": "gather"}


def strategy_name(name: str) -> str:
    """``name`` as one of :data:`STRATEGIES` (kernel v2's "dense"/"sparse" accepted); ValueError else."""
    name = _OLD_NAMES.get(name, name)
    if name not in STRATEGIES:
        raise ValueError(f"name: expected one of {STRATEGIES}, got {name!r}")
    return name


class Settings:
    """``strategy``: "auto" or one strategy for every primitive; ``poison``: kernel outputs start
    NaN (an element a kernel forgets to write then fails a test); ``chunk_bytes``: the streamed
    chunk budget instead of the config's; ``overrides``: {(primitive, strategy): launch config};
    ``lean_launch``: launch through the compiled kernel's launcher once compiled (:mod:`.launch`)."""

    def __init__(self):
        self.strategy = strategy_name(os.environ.get("SPARSEFUSE_STRATEGY", "auto"))
        self.poison = False
        self.chunk_bytes = None
        self.overrides = {}
        self.lean_launch = os.environ.get("SPARSEFUSE_LEAN_LAUNCH", "1") != "0"
        self.key = 0

    def touch(self):
        """Something a plan depends on changed (a config file was rewritten, say)."""
        self.key += 1

    @contextlib.contextmanager
    def changed(self, **values):
        """The given switches set for the duration of the block, then restored."""
        old = {name: getattr(self, name) for name in values}
        for name, value in values.items():
            setattr(self, name, value)
        self.touch()
        try:
            yield self
        finally:
            for name, value in old.items():
                setattr(self, name, value)
            self.touch()


settings = Settings()


def force_strategy(name: str):
    """Every primitive on one strategy ("streamed" or "gather"; "auto" restores the rule)."""
    return settings.changed(strategy=strategy_name(name))


def poison_outputs(enabled: bool = True):
    """Allocate kernel outputs filled with NaN instead of uninitialised memory."""
    return settings.changed(poison=bool(enabled))


def chunk_budget(nbytes: int):
    """Use ``nbytes`` as the streamed basis-chunk budget (tests force several chunks with it)."""
    if isinstance(nbytes, bool) or not isinstance(nbytes, int) or nbytes < 1:
        raise ValueError(f"nbytes: expected a positive int, got {nbytes!r}")
    return settings.changed(chunk_bytes=nbytes)
