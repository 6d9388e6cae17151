"""The tools KAN users reach for (pykan's habits) on SparseFuse layers: plot, prune, fit.

``KANLinear.plot`` / ``KAN.plot`` draw the learned edge functions, ``KAN.prune``
returns a smaller KAN without the hidden neurons that are inactive on data, and
:func:`fit` is a small training loop with a progress bar and a loss history.
Edge ``i -> o`` of a layer computes ``phi(x_i) = base_weight[o, i] * act(x_i) +
sum_t B_t(x_i) * scaled_spline_weight[o, i, t]``; a layer adds ``phi`` over ``i``.
"""

from __future__ import annotations

import copy
import math

import torch

from .checks import check_int, check_samples
from .regrid import edge_values
from .training import TrainResult, train_loop


def edge_activations(layer, x: torch.Tensor) -> torch.Tensor:
    """``phi`` of every edge on samples ``x [N, in]``: ``[N, in, out]``."""
    layer._check_x(x, two_d=True)
    base = layer.base_activation(x).unsqueeze(-1) * layer.base_weight.T
    return base + edge_values(layer.b_splines(x), layer.scaled_spline_weight)


@torch.no_grad()
def edge_scores(model, x: torch.Tensor) -> list[torch.Tensor]:
    """Mean ``|phi|`` of every edge on ``x`` (pykan's L1 activation norm), one ``[out, in]`` per layer."""
    scores = []
    h = x.reshape(-1, x.shape[-1])
    for layer in model.layers:
        scores.append(edge_activations(layer, h).abs().mean(0).T)
        h = layer(h)
    return scores


def _ranges(layer, x):
    """Per-input ``(lo, hi)`` to plot over: the range of ``x``, else the grid's ``[t_k, t_{G+k}]``."""
    if x is not None:
        x = x.reshape(-1, layer.in_features)
        return x.min(0).values, x.max(0).values
    k = layer.spline_order
    return layer.grid[:, k], layer.grid[:, -k - 1]


def _layout(layer, edges, cols=None):
    """``(pairs, columns)``: all edges as an out x in table (rows padded with ``None`` to ``cols``),
    or the chosen ones six to a row."""
    if edges is not None:
        return edges, min(len(edges), 6)
    cols = cols or layer.in_features
    pad = [None] * (cols - layer.in_features)
    return [p for o in range(layer.out_features) for p in [(o, i) for i in range(layer.in_features)] + pad], cols


@torch.no_grad()
def _draw(fig, layer, x, pairs, cols, n, title=None):
    """One panel per ``(out, in)`` edge of ``layer`` into ``fig`` (a Figure or SubFigure).

    With data ``x`` an edge's line fades with its mean ``|phi|`` on ``x`` (relative to the
    layer's strongest edge), as pykan draws it, and the title gives that score.
    """
    lo, hi = _ranges(layer, x)
    frac = torch.linspace(0, 1, n, dtype=layer.grid.dtype, device=layer.grid.device).unsqueeze(1)
    xs = lo + (hi - lo) * frac  # [n, in]
    phi = edge_activations(layer, xs).float().cpu()
    xs = xs.float().cpu()
    score = None if x is None else edge_activations(layer, x).abs().mean(0).float().cpu()  # [in, out]
    axes = fig.subplots(math.ceil(len(pairs) / cols), cols, squeeze=False)
    for ax, pair in zip(axes.flat, pairs + [None] * (axes.size - len(pairs))):
        if pair is None:
            ax.set_visible(False)
            continue
        o, i = pair
        alpha = 1.0 if score is None else max(0.15, float(score[i, o] / score.max().clamp_min(1e-30)))
        ax.plot(xs[:, i], phi[:, i, o], color="C0", lw=1.5, alpha=alpha)
        ax.set_title(f"x{i} → y{o}" + ("" if score is None else f"  |φ|={float(score[i, o]):.2g}"), fontsize=8)
        ax.tick_params(labelsize=6)
    if title:
        fig.suptitle(title, fontsize=9)


def _check_edges(layer, edges):
    if edges is None:
        return None
    pairs = [tuple(e) for e in edges]
    bad = [e for e in pairs if len(e) != 2 or not (0 <= e[0] < layer.out_features and 0 <= e[1] < layer.in_features)]
    if bad or not pairs:
        raise ValueError(f"edges: expected (out, in) pairs with out < {layer.out_features} and "
                         f"in < {layer.in_features}, got {bad or pairs!r}")
    return pairs


def plot_layer(layer, x=None, edges=None, n: int = 200, max_panels: int = 64, panel_size: float = 1.6):
    """The learned edges of a ``KANLinear``, one panel each (``edges``: a subset of ``(out, in)``).

    Over the range of ``x`` per input when given, else over the grid. Returns a
    ``matplotlib.figure.Figure`` (no pyplot state: a notebook shows it once).
    """
    from matplotlib.figure import Figure

    n, max_panels = check_int("n", n, 2), check_int("max_panels", max_panels)
    pairs, cols = _layout(layer, _check_edges(layer, edges))
    if len(pairs) > max_panels:
        raise ValueError(f"edges: {len(pairs)} panels exceed max_panels={max_panels}; pass a subset of "
                         "(out, in) pairs, or raise max_panels")
    rows = math.ceil(len(pairs) / cols)
    fig = Figure(figsize=(panel_size * cols + 0.5, panel_size * rows + 0.5), layout="constrained")
    _draw(fig, layer, None if x is None else check_samples(layer, x, "plot"), pairs, cols, n)
    return fig


def plot_kan(model, x=None, n: int = 200, max_panels: int = 64, panel_size: float = 1.6):
    """Every layer's edges, one row of panels per output neuron, layers top to bottom; a Figure.

    With ``x`` each layer is drawn over the range of its own input on ``x``.
    """
    from matplotlib.figure import Figure

    n, max_panels = check_int("n", n, 2), check_int("max_panels", max_panels)
    layers = list(model.layers)
    count = sum(m.in_features * m.out_features for m in layers)
    if count > max_panels:
        raise ValueError(f"max_panels: the model has {count} edges, more than max_panels={max_panels}; raise it, "
                         "or draw chosen edges of one layer with model.layers[i].plot(x, edges=[(out, in), ...])")
    rows = [m.out_features for m in layers]
    width = max(m.in_features for m in layers)
    fig = Figure(figsize=(panel_size * width + 0.5, panel_size * sum(rows) + 0.6 * len(layers)),
                 layout="constrained")
    subs = fig.subfigures(len(layers), 1, height_ratios=rows, squeeze=False)[:, 0]
    h = None if x is None else check_samples(layers[0], x, "plot")
    for li, (sub, layer) in enumerate(zip(subs, layers)):
        pairs, cols = _layout(layer, None, width)
        _draw(sub, layer, h, pairs, cols, n, title=f"layer {li}: {layer.in_features} → {layer.out_features}")
        if h is not None:
            with torch.no_grad():
                h = layer(h)
    return fig


@torch.no_grad()
def sub_layer(layer, keep_in, keep_out):
    """A copy of ``layer`` with only inputs ``keep_in`` and outputs ``keep_out`` (same settings and values)."""
    new = copy.deepcopy(layer)
    ii = torch.as_tensor(keep_in, dtype=torch.long, device=layer.grid.device)
    oo = torch.as_tensor(keep_out, dtype=torch.long, device=layer.grid.device)
    new.in_features, new.out_features = len(ii), len(oo)
    new.grid = layer.grid[ii].clone()
    for name in ("base_weight", "spline_weight", "spline_scaler"):
        p = getattr(layer, name, None)
        if p is not None:
            setattr(new, name, torch.nn.Parameter(p[oo][:, ii].clone(), requires_grad=p.requires_grad))
    return new


@torch.no_grad()
def prune(model, threshold: float, x: torch.Tensor):
    """A smaller KAN: hidden neurons whose incoming or outgoing edges all have mean ``|phi|`` on ``x``
    at most ``threshold`` are removed (their layers get fewer in/out features), and the remaining
    edges that weak are zeroed. Inputs and outputs are kept; so is the most active neuron of a
    hidden layer that would otherwise be empty. ``model`` is not changed.

    ``threshold`` is absolute, in the units of the edge outputs: an edge's score is the mean
    of ``|phi|`` over ``x`` (pykan's L1 norm), and ``edge_scores(model, x)`` lists them, one
    ``[out, in]`` tensor per layer. pykan's default 1e-2 assumes data of order one; for other
    scales look at the scores first (a quantile of them is a threshold that follows the data).
    """
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold < math.inf:
        raise ValueError(f"threshold: expected a finite number >= 0, got {threshold!r}")
    scores = edge_scores(model, check_samples(model.layers[0], x, "prune"))
    keep = [torch.arange(model.layers[0].in_features)]
    for s_in, s_out in zip(scores, scores[1:]):  # hidden neurons: outputs of s_in, inputs of s_out
        strength = torch.minimum(s_in.amax(1), s_out.amax(0)).cpu()
        alive = torch.nonzero(strength > threshold).flatten()
        keep.append(alive if len(alive) else strength.argmax().reshape(1))
    keep.append(torch.arange(model.layers[-1].out_features))
    new = copy.deepcopy(model)  # the container's own settings
    new.layers = torch.nn.ModuleList(sub_layer(layer, keep[li], keep[li + 1]) for li, layer in enumerate(model.layers))
    for layer, s, ki, ko in zip(new.layers, scores, keep, keep[1:]):
        weak = s[ko.to(s.device)][:, ki.to(s.device)] <= threshold
        layer.base_weight[weak] = 0
        layer.spline_weight[weak] = 0
    return new


def _split(data):
    """``(x, y, test)`` from ``(x, y)``, ``(x, y, x_test, y_test)`` or pykan's dataset dict."""
    if isinstance(data, dict):
        test = (data["test_input"], data["test_label"]) if "test_input" in data else None
        return data["train_input"], data["train_label"], test
    if isinstance(data, (tuple, list)) and len(data) in (2, 4):
        return data[0], data[1], (tuple(data[2:]) or None)
    raise ValueError("data: expected (x, y), (x, y, x_test, y_test) or a dict with train_input/train_label, "
                     f"got {type(data).__name__}")


def fit(model, data, steps: int, *, optimizer="adam", lr: float | None = None, loss_fn=None,
        batch_size: int | None = None, reg: float = 0.0, log_every: int = 1, progress: bool = True,
        desc: str = "fit") -> TrainResult:
    """Train ``model`` for ``steps`` optimizer steps; returns the :class:`TrainResult` with the loss history.

    ``optimizer``: "adam" (lr 1e-2), "lbfgs" (lr 1, strong Wolfe line search) or a
    ``torch.optim.Optimizer``. ``batch_size``: samples drawn per step (``None``: full
    batch). ``reg``: weight of ``model.regularization_loss()`` (pykan's ``lamb``).
    ``result.curve`` has ``step, time_s, loss`` (data loss, without the penalty) and
    ``test_loss`` when ``data`` holds a test split. A non-finite loss stops the run
    (``status="diverged"``).
    """
    x, y, test = _split(data)
    steps, log_every = check_int("steps", steps, 0), check_int("log_every", log_every)
    batch_size = None if batch_size is None else check_int("batch_size", batch_size)
    loss_fn = loss_fn or torch.nn.functional.mse_loss
    params = [p for p in model.parameters() if p.requires_grad]
    if isinstance(optimizer, torch.optim.Optimizer):
        opt = optimizer
    elif optimizer == "adam":
        opt = torch.optim.Adam(params, lr=1e-2 if lr is None else lr)
    elif optimizer == "lbfgs":
        opt = torch.optim.LBFGS(params, lr=1.0 if lr is None else lr, history_size=10, line_search_fn="strong_wolfe")
    else:
        raise ValueError(f"optimizer: expected 'adam', 'lbfgs' or a torch.optim.Optimizer, got {optimizer!r}")

    def step(i):
        idx = None if batch_size is None else torch.randint(0, x.shape[0], (batch_size,), device=x.device)
        xb, yb = (x, y) if idx is None else (x[idx], y[idx])
        data_loss = []

        def closure():
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            data_loss.append(loss.detach())
            (loss + reg * model.regularization_loss() if reg else loss).backward()
            return loss

        opt.step(closure)
        metrics = {"loss": float(data_loss[0])}
        if test is not None and (i % log_every == 0 or i == steps - 1):
            with torch.no_grad():
                metrics["test_loss"] = float(loss_fn(model(test[0]), test[1]))
        return metrics

    return train_loop(step, steps, desc=desc, progress=progress, log_every=log_every, device=x.device)
