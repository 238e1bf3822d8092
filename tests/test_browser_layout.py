"""Nothing clipped at 1280 px wide, the narrowest window the views are laid out for: in every view each plot's
title, axis labels and legend inside its canvas, its toolbar inside it and over none of them, and every table's
columns inside the table."""
import json

import pytest

from conftest import CASE_ROWS, QUEUE_ROWS, Server, copy_of, run_cli
from fraud_app.features import reason_text
from fraud_app.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow]

WIDE = {"width": 1280, "height": 900}

# Bokeh draws titles, axis labels and legends on the canvas, where no DOM box shows them: each visible plot's
# parts are measured from Bokeh's own views (its panels, a legend's box, and the texts' widths, line by line, in
# the fonts it draws them with). A title lies along its panel as aligned; an axis label is centred on the frame.
# Returns what lies outside its canvas or under the toolbar.
CLIPPED_PLOTS = """() => {
  const ctx = document.createElement('canvas').getContext('2d');
  const width = (visual, text) => {
    ctx.font = visual.font_value();
    return Math.max(...text.split('\\n').map(line => ctx.measureText(line).width));
  };
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
        const w = width(part.visuals.text, part.model.text), {align, offset} = part.model;
        const x0 = align === "left" ? box.x0 + offset : align === "right" ? box.x1 - offset - w : box.hcenter - w / 2;
        texts.push(["title", {x0, y0: box.y0, x1: x0 + w, y1: box.y1}]);
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
# reachable only by scrolling sideways), and headers whose words, line by line, run out of their box (cut, or
# an ellipsis) or under their sort arrow.
CLIPPED_COLUMNS = """() => {
  const problems = [];
  const meet = (a, b) => a.left < b.right - 1 && b.left < a.right - 1 && a.top < b.bottom && b.top < a.bottom;
  const walk = root => root.querySelectorAll('*').forEach(e => {
    if (e.classList?.contains('tabulator') && e.offsetParent !== null) {
      const right = e.getBoundingClientRect().right;
      e.querySelectorAll('.tabulator-col').forEach(col => {
        const title = col.querySelector('.tabulator-col-title');
        if (col.offsetParent === null || title === null) return;
        const name = title.innerText;
        if (col.getBoundingClientRect().right > right + 1) problems.push(`column "${name}" ends past the table's edge`);
        if (!name.trim()) return;  // the blank one beside the scroll bar
        if (getComputedStyle(title).textOverflow === 'ellipsis' && title.scrollWidth > title.clientWidth + 1)
          problems.push(`header "${name}" is cut`);
        const box = title.getBoundingClientRect(), arrow = col.querySelector('.tabulator-col-sorter');
        const under = arrow && arrow.offsetParent !== null ? arrow.getBoundingClientRect() : null;
        const words = document.createRange();
        words.selectNodeContents(title);
        for (const line of words.getClientRects()) {
          if (line.width === 0) continue;
          if (line.right > box.right + 1) problems.push(`header "${name}" is cut`);
          else if (under && under.width > 0 && meet(line, under))
            problems.push(`header "${name}" runs under its arrow`);
        }
      });
    }
    if (e.shadowRoot) walk(e.shadowRoot);
  });
  walk(document);
  return problems;
}"""

PLOTS = "() => [...Bokeh.index.query(v => v.model.type === 'Figure' && v.el.offsetParent !== null)]"
# Every visible plot has laid out its frame, at least `n` of them.
DRAWN = f"""n => {{
  const plots = ({PLOTS})();
  return plots.length >= n && plots.every(p => p.frame.bbox.width > 0 && p.frame.bbox.height > 0);
}}"""


def longest_reasons(db) -> str:
    """The alert whose reasons in words are the longest."""
    with Store(db) as store:
        rows = store.cursor().execute("SELECT transaction_id, reasons FROM scores WHERE decision <> 'approve' "
                                      "ORDER BY transaction_id").fetchall()
    longest = {tid: max((len(reason_text(r["feature"], float("nan") if r["value"] is None else r["value"]))
                         for r in json.loads(raw or "[]")), default=0) for tid, raw in rows}
    return max(longest, key=longest.get)


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


def _sidebar(page, view: str, shown: str) -> None:
    page.get_by_role("button", name=view, exact=True).click()
    page.get_by_text(shown).filter(visible=True).first.wait_for(timeout=120_000)


def _case(page) -> None:
    _sidebar(page, "Review queue", "Page 1 of")
    page.locator(QUEUE_ROWS).first.click(timeout=60_000)
    page.locator(CASE_ROWS).first.wait_for(timeout=60_000)


def _investigate(page, tid: str) -> None:
    _sidebar(page, "Investigate", "Type a transaction id above")
    box = page.get_by_placeholder("id, then Enter")
    box.fill(tid)
    box.press("Enter")
    page.get_by_text(f"Transaction {tid}").first.wait_for(timeout=60_000)
    page.get_by_text("payments, newest first").first.wait_for(timeout=60_000)


# view: how to open it, and how many plots it shows
VIEWS = {
    "Overview": (lambda page, app: None, 2),
    "Review queue": (lambda page, app: _sidebar(page, "Review queue", "Page 1 of"), 0),
    "a case": (lambda page, app: _case(page), 1),
    "Investigate": (lambda page, app: _investigate(page, app.longest), 4),  # reasons, card, terminal, all
    "Model": (lambda page, app: _sidebar(page, "Model", "Threshold simulator"), 3),
    "Monitoring": (lambda page, app: _sidebar(page, "Monitoring", "Score PSI"), 5),  # drift, computed meanwhile
    "Data": (lambda page, app: _sidebar(page, "Data", "Loads"), 0),
}


@pytest.mark.parametrize("view", VIEWS)
def test_every_plot_and_table_shows_whole_at_1280_px(app, page, view):
    page.set_viewport_size(WIDE)
    page.goto(app.url)
    page.get_by_text("Cards with the most alerts").first.wait_for(timeout=60_000)
    opened, plots = VIEWS[view]
    opened(page, app)
    if plots:
        page.wait_for_function(DRAWN, arg=plots, timeout=60_000)
    page.locator(".tabulator-col").filter(visible=True).first.wait_for(timeout=60_000)  # every view has a table
    assert page.evaluate(CLIPPED_PLOTS) + page.evaluate(CLIPPED_COLUMNS) == []
