"""Tables that ride along a result table: loss curves, predicted fields, learned edges.

A chapter's result is one table (one CSV, one page); what its figure also needs is
attached to it in ``DataFrame.attrs`` and saved beside it as ``<name>_<side>.csv``.
"""

from __future__ import annotations

from typing import Mapping

import pandas as pd

__all__ = ["curves_to_frame", "attach_tables", "attached_table"]


def curves_to_frame(curves: Mapping[str, pd.DataFrame] | list[tuple[dict, pd.DataFrame]]) -> pd.DataFrame:
    """Stack per-run loss curves into one long table, tagging each with its run keys."""
    parts = []
    items = curves.items() if isinstance(curves, Mapping) else curves
    for key, curve in items:
        tags = key if isinstance(key, Mapping) else {"run": key}
        parts.append(curve.assign(**tags))
    if not parts:
        return pd.DataFrame(columns=["step", "time_s", "loss"])
    return pd.concat(parts, ignore_index=True)


class _Tables(dict):
    """Side tables riding in ``DataFrame.attrs``.

    pandas deep-copies ``attrs`` on nearly every operation; this holder copies
    as itself (the tables are never mutated) so a results frame with long loss
    curves attached stays as fast as one without.
    """

    def __deepcopy__(self, memo):
        return self

    def __copy__(self):
        return self

    def __eq__(self, other):
        return self is other

    __hash__ = object.__hash__


def attach_tables(df: pd.DataFrame, **tables: pd.DataFrame) -> pd.DataFrame:
    """Attach named side tables (loss curves, predicted fields) to a results frame; returns ``df``."""
    held = dict(df.attrs.get("tables", {}))
    held.update(tables)
    df.attrs["tables"] = _Tables(held)
    return df


def attached_table(df: pd.DataFrame, name: str) -> pd.DataFrame:
    """A side table attached by :func:`attach_tables`, or an empty frame when there is none."""
    t = df.attrs.get("tables", {}).get(name)
    return t.copy() if t is not None else pd.DataFrame()
