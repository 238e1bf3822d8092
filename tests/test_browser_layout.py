"""Nothing clipped at 1280 px wide, the narrowest window the views are laid out for: every plot's title and axis
labels inside its canvas, its toolbar inside it and over no text, every table's columns inside the table."""
import json

import pytest

from conftest import Server, copy_of, run_cli
from fraud_app.features import reason_text
from fraud_app.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDE = {"width": 1280, "height": 900}

# Bokeh draws titles, axis labels and legends on the canvas, where no DOM box shows them: each visible plot's
# parts are measured from Bokeh's own views (its panels, a legend's box, and the texts' widths in the fonts it
# draws them with). The title starts at the frame's left edge; an axis label is centred on the frame. Returns
# what lies outside its canvas or under the toolbar.
CLIPPED_PLOTS = """() => {
  const ctx = document.createElement('canvas').getContext('2d');
  const width = (visual, text) => { ctx.font = visual.font_value(); return ctx.measureText(text).width; };
  const overlap = (a, b) => a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;
  const problems = [];
  for (const plot of Bokeh.index.query(v => v.model.type === "Figure" && v.el.offsetParent !== null)) {
    const canvas = {x0: 0, y0: 0, x1: plot.canvas_view.bbox.width, y1: plot.canvas_view.bbox.height};
    const frame = plot.frame.bbox, name = plot.model.title?.text || "a plot";
    const texts = [];
    let toolbar = null;
    for (const part of plot.renderer_views.values()) {
      const box = part.layout?.bbox, type = part.model.type;
      if (box == null) continue;
      if (type === "Legend") {
        texts.push(["legend", part.bbox]);
      } else if (type === "ToolbarPanel") {
        toolbar = {x0: box.x0, y0: box.y0, x1: box.x1, y1: box.y1};
      } else if (type === "Title" && part.model.text) {
        const x0 = box.x0 + part.model.offset;
        texts.push(["title", {x0, y0: box.y0, x1: x0 + width(part.visuals.text, part.model.text), y1: box.y1}]);
      } else if (part.model.axis_label) {
        const w = width(part.visuals.axis_label_text, part.model.axis_label), side = part.panel.side;
        texts.push([`${side} axis label`, side === "above" || side === "below"
          ? {x0: frame.hcenter - w / 2, y0: box.y0, x1: frame.hcenter + w / 2, y1: box.y1}
          : {x0: box.x0, y0: frame.vcenter - w / 2, x1: box.x1, y1: frame.vcenter + w / 2}]);
      }
    }
    const inside = b => b.x0 >= canvas.x0 - 0.5 && b.y0 >= canvas.y0 - 0.5 && b.x1 <= canvas.x1 + 0.5
                        && b.y1 <= canvas.y1 + 0.5;
    for (const [what, box] of texts) {
      if (!inside(box)) problems.push(`${name}: its ${what} runs out of the plot`);
      if (toolbar && overlap(box, toolbar)) problems.push(`${name}: the toolbar lies over its ${what}`);
    }
    if (toolbar && !inside(toolbar)) problems.push(`${name}: its toolbar runs out of the plot`);
  }
  return problems;
}"""

# Each visible table's header cells that end to the right of the table's own right edge (cut off, or
# reachable only by scrolling sideways).
CLIPPED_COLUMNS = """() => {
  const problems = [];
  const walk = root => root.querySelectorAll('*').forEach(e => {
    if (e.classList?.contains('tabulator') && e.offsetParent !== null) {
      const right = e.getBoundingClientRect().right;
      e.querySelectorAll('.tabulator-col').forEach(col => {
        const title = col.querySelector('.tabulator-col-title');
        if (col.offsetParent !== null && col.getBoundingClientRect().right > right + 1)
          problems.push(`column "${title ? title.innerText : '?'}" ends past the table's edge`);
      });
    }
    if (e.shadowRoot) walk(e.shadowRoot);
  });
  walk(document);
  return problems;
}"""


@pytest.fixture(scope="module")
def app(trained, tmp_path_factory):
    """A served, scored copy, and its alert with the longest reasons in words (`.longest`)."""
    tmp = tmp_path_factory.mktemp("layout")
    db = copy_of(trained, tmp)
    assert run_cli(tmp, "--db", str(db), "score").returncode == 0
    longest = longest_reasons(db)
    srv = Server(tmp, db)
    srv.longest = longest
    try:
        srv.wait("api/v1/health")
        yield srv
    finally:
        srv.stop()


def drawn(page) -> None:
    """Every visible plot has laid out its frame (Bokeh lays a plot out once its size is known)."""
    page.wait_for_function("""() => {
      const plots = [...Bokeh.index.query(v => v.model.type === "Figure" && v.el.offsetParent !== null)];
      return plots.length > 0 && plots.every(p => p.frame.bbox.width > 0 && p.frame.bbox.height > 0);
    }""", timeout=60_000)


def longest_reasons(db) -> str:
    """The alert whose reasons in words are the longest."""
    with Store(db) as store:
        rows = store.cursor().execute("SELECT transaction_id, reasons FROM scores WHERE decision <> 'approve' "
                                      "ORDER BY transaction_id").fetchall()
    longest = {tid: max((len(reason_text(r["feature"], float("nan") if r["value"] is None else r["value"]))
                         for r in json.loads(raw or "[]")), default=0) for tid, raw in rows}
    return max(longest, key=longest.get)


def test_investigates_plots_show_their_titles_labels_and_toolbars_whole_at_1280_px(app, page):
    tid = app.longest
    page.set_viewport_size(WIDE)
    page.goto(app.url)
    page.get_by_role("button", name="Investigate", exact=True).click()
    box = page.get_by_placeholder("id, then Enter")
    box.fill(tid)
    box.press("Enter")
    page.get_by_text(f"Transaction {tid}").first.wait_for(timeout=60_000)
    page.get_by_text("payments, newest first").first.wait_for(timeout=60_000)
    page.wait_for_function("""() => [...Bokeh.index.query(v => v.model.type === "Figure" && v.el.offsetParent !== null)]
                                    .length >= 4""", timeout=60_000)  # reasons, card, terminal, all
    drawn(page)
    assert page.evaluate(CLIPPED_PLOTS) == []


def test_the_model_views_versions_table_fits_1280_px(app, page):
    page.set_viewport_size(WIDE)
    page.goto(app.url)
    page.get_by_role("button", name="Model", exact=True).click()
    page.locator(".tabulator-col", has_text="decline at").first.wait_for(state="attached", timeout=60_000)
    page.get_by_text("Threshold simulator").first.wait_for(timeout=60_000)
    assert page.evaluate(CLIPPED_COLUMNS) == []
