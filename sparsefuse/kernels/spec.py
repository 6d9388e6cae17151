"""One launch spec per (primitive, strategy): what it launches, the keys of its config, the
register tile a config implies and which configs cannot launch at all.

The dispatch validates configs against ``keys``, the tuner prunes candidates with ``tile``
and ``invalid``, the tests name kernels through ``kernels``: none of them repeats the
launchers' arithmetic.  The launch itself stays in the primitive's module (``fwd.py``,
``dx.py``, ``dw.py``: both strategies of each; the streamed basis writer in ``writer.py``).
"""

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class LaunchSpec:
    primitive: str
    strategy: str
    kernels: tuple          # the Triton kernels one launch runs
    keys: tuple             # config keys; num_stages may be absent
    tile: Callable          # cfg -> (register-tile elements of the largest tile, threads)
    invalid: Callable = lambda cfg: None  # cfg -> why it cannot launch, or None

    def per_thread(self, cfg) -> float:
        elems, threads = self.tile(cfg)
        return elems / threads


def _dot_dims(cfg):
    small = [k for k in ("BLOCK_N", "BLOCK_O", "WINDOW") if cfg.get(k, 16) < 16]
    return f"{small[0]} < 16: tl.dot needs 16 or more" if small else None


_WARPS = 32
SPECS = {
    ("fwd", "gather"): LaunchSpec(
        "fwd", "gather", ("_fwd_gather_kernel",), ("BLOCK_N", "BLOCK_O", "num_warps", "num_stages"),
        lambda c: (c["BLOCK_N"] * c["BLOCK_O"], _WARPS * c["num_warps"])),
    ("dx", "gather"): LaunchSpec(
        "dx", "gather", ("_dx_gather_kernel",), ("BLOCK_N", "BLOCK_I", "BLOCK_O", "num_warps", "num_stages"),
        lambda c: (c["BLOCK_N"] * c["BLOCK_I"] * c["BLOCK_O"], _WARPS * c["num_warps"])),
    ("dw", "gather"): LaunchSpec(
        "dw", "gather", ("_dw_sorted_kernel",), ("BLOCK_N", "BLOCK_O", "WINDOW", "num_warps", "num_stages"),
        lambda c: (c["BLOCK_N"] * max(c["BLOCK_O"], c["WINDOW"]), _WARPS * c["num_warps"]), _dot_dims),
    # the streamed strategy of every primitive: the basis writer (fwd, dw) and the active-column
    # reduction (dx) around cuBLAS, plus the chunking that sizes their buffers
    ("all", "streamed"): LaunchSpec(
        "all", "streamed", ("_basis_block_kernel", "_active_reduce_kernel"),
        ("chunk_mib", "dw_accumulate_ratio", "min_tile_elems", "save_basis_mib", "BASIS_BLOCK_N",
         "BASIS_BLOCK_I", "basis_warps", "REDUCE_BLOCK_N", "REDUCE_BLOCK_I", "reduce_warps"),
        lambda c: max((c["BASIS_BLOCK_N"] * c["BASIS_BLOCK_I"], _WARPS * c["basis_warps"]),
                      (c["REDUCE_BLOCK_N"] * c["REDUCE_BLOCK_I"], _WARPS * c["reduce_warps"]),
                      key=lambda t: t[0] / t[1])),
}
