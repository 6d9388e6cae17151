"""Launch settings of the fused kernels: data files, run-time overrides, the strategy rule,
the settings object, and the streamed operands' layouts (writer, pack / unpack)."""

import os

import pytest
import torch

pytest.importorskip("triton")  # (conftest chose the interpreter on CPU before anything imported it)

from conftest import make_problem  # noqa: E402
from sparsefuse import kernels as sk  # noqa: E402
from sparsefuse.kernels import dispatch, layout, naive, writer  # noqa: E402
from sparsefuse.kernels import dw as kdw  # noqa: E402
from sparsefuse.kernels import dx as kdx  # noqa: E402
from sparsefuse.kernels import fwd as kfwd  # noqa: E402
from sparsefuse.kernels.geometry import geometry  # noqa: E402
from sparsefuse.kernels.naive import rel_err  # noqa: E402
from sparsefuse.kernels.settings import settings  # noqa: E402

DEV = "cuda" if torch.cuda.is_available() else "cpu"
pytestmark = [pytest.mark.skipif(not sk.available(DEV), reason="fused kernels unavailable here"),
              pytest.mark.usefixtures("poisoned")]


def case(seed, N, IN, OUT, G, k, kind="per_feature"):
    x, grid, C = make_problem(N, IN, OUT, G, k, seed=seed, kind=kind, spread=1.3)
    gen = torch.Generator().manual_seed(seed + 1)
    g, s = torch.randn(N, OUT, generator=gen, dtype=torch.float64), torch.randn(N, IN, generator=gen, dtype=torch.float64)
    grid, x, C, g, s = (t.float().to(DEV) for t in (grid, x, C, g, s))
    return grid, geometry(grid, torch.float32), x, C, g, s


class _LaunchSpy:
    """Stands in for a kernel: records each launch's grid and keywords, then launches."""

    def __init__(self, kernel):
        self.kernel, self.calls = kernel, []

    def __getitem__(self, grid):
        launch = self.kernel[grid]

        def run(*args, **kwargs):
            self.calls.append((tuple(grid), kwargs))
            return launch(*args, **kwargs)
        return run


def test_settings_object_key_changes_with_every_switch():
    key = settings.key
    with sk.force_strategy("gather"):
        assert settings.strategy == "gather" and settings.key > key
        with sk.chunk_budget(4096), sk.poison_outputs(False):
            assert settings.chunk_bytes == 4096 and not settings.poison
        with dispatch.override_config("fwd", "gather", BLOCK_N=16):
            assert settings.overrides[("fwd", "gather")]["BLOCK_N"] == 16
        assert not settings.overrides
    assert settings.strategy == "auto" and settings.key > key
    with sk.force_strategy("dense"):  # kernel v2's name, still what committed results call it
        assert settings.strategy == "streamed"
    with pytest.raises(ValueError, match="nbytes"):
        sk.chunk_budget(0)


def test_override_config_changes_the_launch_not_the_result(monkeypatch):
    grid, geo, x, C, g, s = case(11, 37, 6, 20, 5, 3)
    spy = _LaunchSpy(kfwd._fwd_gather_kernel)
    monkeypatch.setattr(kfwd, "_fwd_gather_kernel", spy)
    base = kfwd.fwd(x, grid, geo, C, None, 3, 0, strategy="gather")
    entry = dispatch.config("fwd", "gather", "ieee")  # float32 at "highest" precision
    with dispatch.override_config("fwd", "gather", BLOCK_N=16, num_stages=3) as cfg:
        assert dispatch.config("fwd", "gather", "ieee") == cfg
        tuned = kfwd.fwd(x, grid, geo, C, None, 3, 0, strategy="gather")
    after = kfwd.fwd(x, grid, geo, C, None, 3, 0, strategy="gather")
    (g0, kw0), (g1, kw1), (g2, kw2) = spy.calls
    assert kw1["BLOCK_N"] == 16 and g1[0] == 3 and kw1["num_stages"] == 3
    assert kw0 == kw2 and g0 == g2 and kw0["BLOCK_N"] == entry["BLOCK_N"]
    assert dispatch.config("fwd", "gather", "ieee") == entry
    torch.testing.assert_close(tuned, base, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(after, base, rtol=0, atol=0)
    assert rel_err(tuned, naive.fwd(x.double(), grid.double(), C.double(), 3, 0)) < 1e-4


def test_streamed_settings_change_the_launch_not_the_result(monkeypatch):
    grid, geo, x, C, g, s = case(12, 41, 6, 7, 5, 3)
    spy = _LaunchSpy(writer._basis_block_kernel)
    monkeypatch.setattr(writer, "_basis_block_kernel", spy)
    base = kfwd.fwd(x, grid, geo, C, s, 3, 0, strategy="streamed")
    with dispatch.override_config("all", "streamed", BASIS_BLOCK_N=16, BASIS_BLOCK_I=2):
        tuned = kfwd.fwd(x, grid, geo, C, s, 3, 0, strategy="streamed")
    (g0, kw0), (g1, kw1) = spy.calls
    assert (kw1["BLOCK_N"], kw1["BLOCK_I"], g1) == (16, 2, (3, 3))
    torch.testing.assert_close(tuned, base, rtol=1e-5, atol=1e-5)


def test_override_config_rejects_bad_keys():
    bad = [(("fwd", "gather"), dict(BLOCK_I=8), "BLOCK_I"),      # not a key of this launch
           (("dx", "gather"), dict(WINDOW=16), "WINDOW"),
           (("fwd", "gather"), dict(BLOCK_N=48), "BLOCK_N"),    # not a power of two
           (("dw", "gather"), dict(num_warps=0), "num_warps"),
           (("all", "streamed"), dict(BASIS_BLOCK_I=3), "BASIS_BLOCK_I"),
           (("all", "streamed"), dict(basis_scatter=1), "basis_scatter"),  # a retired key
           (("bwd", "gather"), dict(BLOCK_N=32), "primitive"),
           (("fwd", "auto"), dict(BLOCK_N=32), "strategy")]
    for (prim, strat), cfg, name in bad:
        with pytest.raises(ValueError, match=name):
            with dispatch.override_config(prim, strat, **cfg):
                pass
    assert not settings.overrides  # nothing left behind by a failed override


def test_config_files_lookup_order_and_atomic_write(monkeypatch, tmp_path):
    # A GPU's own file wins over default.json key by key; a class entry over the plain one;
    # write_gpu_table merges, validates and replaces the file atomically, and moves the key.
    monkeypatch.setattr(dispatch, "CONFIG_DIR", str(tmp_path))
    dispatch.load_table.cache_clear()
    try:
        key = settings.key
        path = dispatch.write_gpu_table("Test GPU", {
            "launch": {"fwd/gather/bf16": {"BLOCK_O": 32}},
            "streamed_max_bases": {"fwd/ieee": 3}}, "test")
        assert os.path.basename(path) == "Test_GPU.json" and settings.key > key
        tables = (dispatch.load_table("Test_GPU.json"), dispatch._DEFAULT)
        monkeypatch.setattr(dispatch, "tables", lambda device=None: tables)
        monkeypatch.setattr(dispatch, "_merged", {})
        assert dispatch.config("fwd", "gather", "bf16")["BLOCK_O"] == 32
        assert dispatch.config("fwd", "gather", "bf16")["BLOCK_N"] == dispatch._DEFAULT["launch"][
            ("fwd", "gather")]["BLOCK_N"]
        assert dispatch.choose("fwd", 4, "ieee") == "gather" and dispatch.choose("fwd", 3, "ieee") == "streamed"
        with pytest.raises(ValueError, match="BLOCK_O"):
            dispatch.write_gpu_table("Test GPU", {"launch": {"fwd/gather": {"BLOCK_O": 24}}}, "bad")
        assert dispatch.load_table("Test_GPU.json")["launch"][("fwd", "gather", "bf16")] == {"BLOCK_O": 32}
    finally:
        dispatch.load_table.cache_clear()


def test_num_stages_entry_is_accepted():
    # The interpreter ignores num_stages; on CUDA it reaches the compiler.
    grid, geo, x, C, g, s = case(13, 19, 5, 6, 3, 2, "adaptive")
    gd, xd, Cd, gdd = grid.double(), x.double(), C.double(), g.double()
    with dispatch.override_config("fwd", "gather", num_stages=2), \
            dispatch.override_config("dx", "gather", num_stages=2), \
            dispatch.override_config("dw", "gather", num_stages=2):
        assert dispatch.launch_options(dispatch.config("dw", "gather"))["num_stages"] == 2
        assert rel_err(kfwd.fwd(x, grid, geo, C, None, 2, 0, strategy="gather"), naive.fwd(xd, gd, Cd, 2, 0)) < 1e-4
        assert rel_err(kdx.dx(x, grid, geo, C, g, 2, 1, strategy="gather"), naive.dx(xd, gd, Cd, gdd, 2, 1)) < 1e-4
        assert rel_err(kdw.dw(x, grid, geo, g, None, 2, 0, 5, strategy="gather"), naive.dw(xd, gd, gdd, 2, 0)) < 1e-4
    with dispatch.override_config("fwd", "gather", num_stages=None) as cfg:
        assert "num_stages" not in cfg and "num_stages" not in dispatch.launch_options(cfg)


@pytest.mark.parametrize("budget", ["rows", "features8", "features16"])
def test_streamed_chunkings_match_naive(monkeypatch, budget):
    # row chunks, blocks of 8 or 16 features over all rows (column offsets 16-byte aligned):
    # forward and dW per chunk / block, dW accumulated or per block, dX per row chunk
    k, G, N, IN = 3, 5, 40, 21
    grid, geo, x, C, g, s = case(31, N, IN, 6, G, k, "adaptive")
    nbytes = {"rows": 3 * IN * (G + k) * 4, "features8": 8 * N * (G + k) * 4,
              "features16": 16 * N * (G + k) * 4}[budget]
    seen = []
    real = writer.write_basis
    monkeypatch.setattr(writer, "write_basis", lambda *a, **kw: seen.append(a[8]) or real(*a, **kw))
    for mod in (kfwd, kdw):
        monkeypatch.setattr(mod, "write_basis", writer.write_basis)
    gd, xd, Cd, gdd, sd = (t.double() for t in (grid, x, C, g, s))
    with sk.chunk_budget(nbytes):
        y = kfwd.fwd(x, grid, geo, C, s, k, 0, strategy="streamed")
        w = kdw.dw(x, grid, geo, g, s, k, 1, G + k, strategy="streamed")
        wb = kdw.dw(x, grid, geo, g.bfloat16(), s, k, 0, G + k, strategy="streamed")
        u = kdx.dx(x, grid, geo, C, g, k, 1, strategy="streamed")
    if budget.startswith("features"):
        step = int(budget[8:])
        assert sorted(set(seen)) == list(range(0, IN, step))  # the blocks' first features
    assert rel_err(y, naive.fwd(xd, gd, Cd, k, 0, sd)) < 1e-5
    assert rel_err(w, naive.dw(xd, gd, gdd, k, 1, sd)) < 1e-5
    assert rel_err(u, naive.dx(xd, gd, Cd, gdd, k, 1)) < 1e-5
    assert rel_err(wb, naive.dw(xd, gd, gdd, k, 0, sd)) < 2e-2


def test_launch_specs_name_real_kernels_and_check_configs():
    from sparsefuse.kernels.spec import SPECS

    modules = {"fwd": kfwd, "dx": kdx, "dw": kdw, "all": None}
    for (prim, strat), spec in SPECS.items():
        for name in spec.kernels:
            owners = (writer, kdx) if modules[prim] is None else (modules[prim],)
            assert any(hasattr(m, name) for m in owners), (prim, strat, name)
        cfg = dispatch.config(prim, strat, "ieee")
        assert set(cfg) <= set(spec.keys) and spec.per_thread(cfg) > 0
        assert dispatch.CONFIG_KEYS[(prim, strat)] == spec.keys
    bad = dict(dispatch.config("dw", "gather", "ieee"), WINDOW=8)
    assert "WINDOW" in SPECS[("dw", "gather")].invalid(bad)


def test_basis_writer_and_weight_layouts():
    # the writer fills a block basis-major (column t*F + i), any k, with and without the base
    # slot, features 3..9 of 11, over poisoned memory; pack / unpack put the parameters in
    # and out of the blocked layout of any block width (a partial last block included) and the
    # gather kernels' out-major one
    for k, G, kind in ((1, 3, "uniform"), (3, 5, "adaptive"), (5, 11, "random")):
        grid, geo, x, C, g, s = case(40 + k, 37, 11, 5, G, k, kind)
        M = G + k
        ref = naive.basis(x.double(), grid.double(), k, 1) * s.double()[..., None]
        for base in (False, True):
            MB = M + int(base)
            with dispatch.override_config("all", "streamed", BASIS_BLOCK_I=4, BASIS_BLOCK_N=16):
                cfg = dispatch.config("all", "streamed", "ieee")
                out = torch.full((37, 7 * MB), float("nan"), device=DEV)
                writer.write_basis(x, s, grid, geo, out, k, 1, M, 3, cfg, base)  # features 3..9
            got = out.view(37, MB, 7).transpose(1, 2)
            assert rel_err(got[..., int(base):], ref[:, 3:10]) < 1e-5, (k, base)
            if base:
                xs = x[:, 3:10].double()
                assert rel_err(got[..., 0], xs * torch.sigmoid(xs)) < 1e-6
    OUT, IN, M = 3, 11, 6
    sw, sc, bw = (torch.randn(OUT, IN, M, device=DEV), torch.randn(OUT, IN, device=DEV),
                  torch.randn(OUT, IN, device=DEV))
    full = torch.cat([bw[..., None], sw * sc[..., None]], dim=2)  # [out, in, MB], slot 0 the base
    for fb in (1, 4, 8, IN):
        W, Wfm = layout.pack(sw, sc, bw, torch.float32, fb, 1)
        assert torch.equal(Wfm, full.reshape(OUT, -1))
        for f0 in range(0, IN, fb):  # each block basis-major over its own features
            f1 = min(IN, f0 + fb)
            blk = W[:, f0 * (M + 1):f1 * (M + 1)].reshape(OUT, M + 1, f1 - f0).transpose(1, 2)
            assert torch.equal(blk, full[:, f0:f1])
        gbw, gsw, gsc = layout.unpack(W, fb, M, sw, sc, bw)
        assert torch.equal(gbw, bw) and rel_err(gsw, sw * sc[..., None] ** 2) < 1e-6
        assert rel_err(gsc, (sw * sc[..., None] * sw).sum(-1)) < 1e-6
        plain = layout.pack(sw, None, None, torch.float32, fb)
        assert torch.equal(layout.unpack(plain, fb, M, gsw=torch.empty_like(sw))[1], sw)
    om = layout.pack(sw, sc, bw, torch.float32, layout.OUT_MAJOR)
    assert torch.equal(om, full.reshape(OUT, -1).t())


def test_narrow_layers_use_the_gather_strategy_sooner():
    # the narrow rule caps G+k for layers with few outputs; the precision class's own
    # threshold still caps everything else; a malformed rule in a config file is refused
    below, cap = dispatch.narrow_rule()
    assert cap < dispatch.streamed_max_bases("fwd", "tf32")
    assert dispatch.choose("fwd", cap + 1, "tf32", out=below) == "streamed"
    assert dispatch.choose("fwd", cap + 1, "tf32", out=below - 1) == "gather"
    assert dispatch.choose("fwd", cap, "tf32", out=below - 1) == "streamed"
    assert dispatch.choose("fwd", cap + 1, "tf32") == "streamed"  # out unknown: the class threshold
    with pytest.raises(ValueError, match="narrow"):
        dispatch._parse({"narrow": {"out_below": 128}}, "test.json")
