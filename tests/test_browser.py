"""The built book in headless Chromium: offline, images, links, and a working explorer.

Needs the HTML built first (`make html`); `make test` does that before running
these. Without a browser the tests skip loudly, except under CI=true, where a
missing browser or a missing build is a failure.
"""
from __future__ import annotations

import functools
import http.server
import os
import shutil
import threading
from pathlib import Path
from urllib.parse import urljoin, urlparse

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
HTML = Path(os.environ.get("SPARSEFUSE_BOOK_HTML", ROOT / "_build" / "html"))
IN_CI = os.environ.get("CI", "").lower() == "true"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-quic",
               "--disable-dev-shm-usage"]
# sphinx-thebe writes its script twice on every page; the second copy throws.
KNOWN_PAGE_ERRORS = ("Identifier 'THEBE_JS_URL' has already been declared",)


def _unavailable(reason: str):
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    print(f"\n*** SKIPPING BROWSER TESTS: {reason} ***")
    pytest.skip(f"SKIPPED LOUDLY: {reason}")


def _chromium() -> str | None:
    for name in (os.environ.get("SPARSEFUSE_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                 shutil.which("chromium-browser")):
        if name and Path(name).exists():
            return name
    return None


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site():
    if not (HTML / "index.html").exists():
        _unavailable(f"no built book at {HTML} (run `make html`)")
    handler = functools.partial(_Quiet, directory=str(HTML))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory):
    exe = _chromium()
    if exe is None:
        _unavailable("chromium is not installed (`apt-get install chromium`, or run `make test` as root)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("the playwright Python package is not installed")
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=exe,
            headless=True, args=LAUNCH_ARGS, service_workers="block")
        yield context
        context.close()


def _is_local(url: str) -> bool:
    parsed = urlparse(url)
    if parsed.scheme in ("data", "blob", "about", "file"):
        return True
    return parsed.hostname in ("127.0.0.1", "localhost")


class PageVisit:
    """Open one page, recording off-host requests (aborted) and page errors."""

    def __init__(self, context, url: str):
        self.offhost: list[str] = []
        self.errors: list[str] = []
        self.failed: list[str] = []
        self.page = context.new_page()
        self.page.route("**/*", self._route)
        self.page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        self.page.on("requestfailed", lambda req: self.failed.append(req.url) if _is_local(req.url) else None)
        self.page.goto(url, wait_until="load")
        self.page.wait_for_load_state("networkidle")

    def _route(self, route):
        if _is_local(route.request.url):
            route.continue_()
        else:
            self.offhost.append(route.request.url)
            route.abort()

    def unexpected_errors(self) -> list[str]:
        return [e for e in self.errors if not any(k in e for k in KNOWN_PAGE_ERRORS)]


# Lazy images load only when near the viewport: make each eager, wait for it, then judge.
IMAGES_LOADED = """async () => {
  const imgs = [...document.images];
  await Promise.all(imgs.map(i => {
    i.loading = "eager";
    if (i.complete) return null;
    return new Promise(done => { i.addEventListener("load", done); i.addEventListener("error", done);
                                 setTimeout(done, 10000); });
  }));
  return imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => (i.getAttribute("src") || "").slice(0, 80));
}"""


def _internal_pages(site: str) -> list[str]:
    """Every .html file of the book that a reader reaches from the index."""
    pages = []
    for path in sorted(HTML.rglob("*.html")):
        rel = path.relative_to(HTML).as_posix()
        if rel.startswith(("_static/", "_sources/", "_images/")):
            continue
        pages.append(urljoin(site, rel))
    return pages


def test_every_page_loads_offline_with_images_and_links(site, browser_context):
    pages = _internal_pages(site)
    assert any("executed/" in p for p in pages), "no notebook page was built"
    problems = []
    for url in pages:
        visit = PageVisit(browser_context, url)
        page = visit.page
        name = url[len(site):]
        if visit.offhost:
            problems.append(f"{name}: off-host requests {sorted(set(visit.offhost))[:5]}")
        if visit.failed:
            problems.append(f"{name}: failed local requests {visit.failed[:5]}")
        if visit.unexpected_errors():
            problems.append(f"{name}: page errors {visit.unexpected_errors()[:3]}")
        broken_images = page.evaluate(IMAGES_LOADED)
        if broken_images:
            problems.append(f"{name}: images that did not load {broken_images}")
        hrefs = page.evaluate("() => [...document.querySelectorAll('a[href]')].map(a => a.href)")
        for href in hrefs:
            if not href.startswith(site):
                continue
            target = urlparse(href).path[1:] or "index.html"
            file = HTML / target
            if file.is_dir():
                file = file / "index.html"
            if not file.exists():
                problems.append(f"{name}: broken link {href}")
        page.close()
    assert not problems, "\n".join(problems)


def test_explorer_sliders_change_the_readout(site, browser_context):
    url = urljoin(site, "book/executed/01_layer_microbenchmarks.html")
    visit = PageVisit(browser_context, url)
    page = visit.page
    readout = page.locator(".sf-readout").first
    readout.wait_for(state="visible", timeout=30_000)
    before = readout.inner_text()
    assert "G = " in before
    g_slider = page.locator(".sf-slider-G").first
    last = g_slider.get_attribute("max")
    g_slider.fill(last)
    after = readout.inner_text()
    assert after != before, "moving the G slider did not change the readout"
    d_slider = page.locator(".sf-slider-density").first
    d_slider.fill(d_slider.get_attribute("max"))  # densest point = smallest G
    assert page.locator(".sf-slider-G").first.input_value() == "0"
    assert readout.inner_text() == before
    assert page.locator(".sf-plot circle").count() > 0
    assert not visit.offhost, visit.offhost
    page.close()


LOCAL_RUN = "checks that the code runs, numbers not comparable"


@pytest.mark.parametrize("stem", ["02_sparse_vs_dense", "03_grid_scaling"])
def test_evidence_first_and_the_explorer_names_its_data(site, browser_context, stem):
    """A smoke build leads with the committed GPU reference, its own run collapsed; explorers say whose data."""
    visit = PageVisit(browser_context, urljoin(site, f"book/executed/{stem}.html"))
    page = visit.page
    first = page.locator(".sparsefuse-evidence").first
    kind = first.get_attribute("data-evidence")
    local = page.locator("details.sparsefuse-local-run")
    if local.count():  # this page's own run is not its evidence (a smoke build)
        assert kind == "reference", f"{stem}: the local run is collapsed but the page does not lead with the reference"
        assert local.first.get_attribute("open") is None, f"{stem}: the local run is not collapsed"
        assert LOCAL_RUN in local.first.locator("summary").inner_text()
        assert page.locator(".sparsefuse-provenance").first.inner_text().startswith("Reference:")
    source = page.locator(".sf-source").first
    source.wait_for(state="visible", timeout=30_000)
    text = source.inner_text()
    assert text.startswith("data: "), text
    if kind == "reference":
        assert "reference:" in text and "smoke" not in text, text
    assert not visit.offhost, visit.offhost
    page.close()


# ---------------------------------------------------------------- every chapter against its evidence

def _chapter_results() -> dict[str, list]:
    """stem -> the committed GPU references the notebook published (from their provenance)."""
    from sparsefuse.lab.book import results

    out: dict[str, list] = {}
    for r in results.iter_results(results.reference_root()):
        stem = r.meta.get("notebook")
        if stem and r.is_gpu:
            ref = results.reference(r.name)
            if ref is not None and ref.folder == r.folder:
                out.setdefault(stem, []).append(ref)
    return out


def _evidence(name: str, side: tuple[str, ...] = ()):
    """The table a CPU build's page leads with for result ``name``, side tables attached as the notebook does."""
    import pandas as pd

    from sparsefuse.lab.book import notebook as nb
    from sparsefuse.lab.book import verdict

    empty = pd.DataFrame({"status": []})
    ev = verdict.evidence(name, empty, profile="smoke", device="cpu")
    return nb.evidence_frame(ev, empty, side=list(side), name=name)


def _headline(stem: str):
    """The first table each chapter shows (``tables.show``), rebuilt from the committed reference; None: no table."""
    from sparsefuse.lab.experiments import (approximation, compile_checkpoint, cross_basis,
                                            grid_extension_symbolic_tabular, grid_scaling, heatmaps, matrixkan,
                                            minigpt, pinns, sparse_vs_dense, vit)

    first = {
        "02_sparse_vs_dense": lambda: sparse_vs_dense.headline(_evidence(sparse_vs_dense.NAME)),
        "03_grid_scaling": lambda: grid_scaling.headline(_evidence(grid_scaling.NAME)),
        "04_compile_checkpoint": lambda: compile_checkpoint.headline(_evidence(compile_checkpoint.NAME)),
        "05_heatmaps": lambda: heatmaps.headline(_evidence(heatmaps.NAME)),
        "06_cross_basis": lambda: cross_basis.headline(_evidence(cross_basis.NAME))["cost (ms)"],
        "07_matrixkan": lambda: matrixkan.headline(_evidence(matrixkan.NAME)),
        "08_pinns": lambda: pinns.curves(_evidence(pinns.NAME, ("curves",))).groupby(["problem", "model"]).tail(1),
        "09_minigpt_kan": lambda: minigpt.summary(_evidence(minigpt.NAME)),
        "10_vit_kan": lambda: vit.summary(_evidence(vit.NAME)),
        "11_approximation": lambda: approximation.fitted_rates(_evidence(approximation.NAME)),
        "12_grid_extension_symbolic_tabular": lambda: grid_extension_symbolic_tabular.tables(
            _evidence(grid_extension_symbolic_tabular.NAME, ("curves",))).get("symbolic"),
    }
    return first[stem]() if stem in first else None


# figures are saved at 110 dpi with no text below 9 pt (experiments/_page.py): on screen that text stays
# at 10 px or more as long as the page shows the figure at no less than this share of its natural width
MIN_FIGURE_SCALE = 10 / (9 * 110 / 72)
FIGURE_SCALES = """() => [...document.querySelectorAll('.sparsefuse-result img, .cell_output img')]
  .filter(i => i.naturalWidth > 0 && i.offsetParent !== null)
  .map(i => [i.getBoundingClientRect().width / i.naturalWidth, (i.alt || '').slice(0, 60)])"""


def _chapters() -> list[str]:
    from sparsefuse.lab.book import layout

    return [p.stem for p in layout.notebooks()]


@pytest.mark.parametrize("stem", _chapters())
def test_every_chapter_leads_with_its_gpu_reference(site, browser_context, stem):
    """Each chapter at 1280 px: the verdict, the first table and the explorer come from the committed GPU
    reference the page names, and its figures are shown large enough for 10 px text."""
    from sparsefuse.lab.book import tables

    refs = _chapter_results().get(stem)
    assert refs, f"{stem}: no committed GPU reference names this notebook"
    gpu = refs[0].meta["gpu_name"]
    commit = str(refs[0].meta["git_commit"])[:7]
    visit = PageVisit(browser_context, urljoin(site, f"book/executed/{stem}.html"))
    page = visit.page
    page.set_viewport_size({"width": 1280, "height": 900})
    evidence = page.locator(".sparsefuse-evidence").first
    assert evidence.get_attribute("data-evidence") == "reference", f"{stem}: a CPU build must lead with the reference"
    assert gpu in evidence.inner_text() and commit in evidence.inner_text()
    verdict_text = page.locator("p", has_text="Verdict here").first.inner_text()
    assert f"committed reference run (profile quick on {gpu}, commit {commit})" in verdict_text, verdict_text[:300]
    assert "nan" not in verdict_text.lower().replace("nanochat", ""), verdict_text
    expected = _headline(stem)
    if expected is not None:
        want = tables.frame(expected)
        shown = page.locator("table.sf-table").first
        cells = shown.locator("tbody tr").evaluate_all(
            "rows => rows.map(r => [...r.querySelectorAll('td')].map(td => td.innerText.trim()))")
        assert cells == [[str(v) for v in row] for row in want.itertuples(index=False)], \
            f"{stem}: the first table is not the committed reference's"
    for source in page.locator(".sf-source").all():
        assert f"reference: profile quick on {gpu}, commit {commit}" in source.inner_text(), source.inner_text()
    page.evaluate(IMAGES_LOADED)
    small = [(round(s, 2), alt) for s, alt in page.evaluate(FIGURE_SCALES) if s < MIN_FIGURE_SCALE]
    assert not small, f"{stem}: figures shown below {MIN_FIGURE_SCALE:.2f} of their size (text under 10 px): {small}"
    assert not visit.offhost, visit.offhost
    page.close()
