"""BokehJS asks the CSS cascade for a `--bk-*` variable every time it reads a line, fill or text property of a
plot (bokeh/bokeh#15286). Between the page's own style changes each ask makes the browser work out the styles
again: Monitoring, the view with the most plots, took 2.1 s to show instead of 1.8 s. This app sets no such
variable (a browser test checks that), so the asks are answered at once, empty, as the cascade would.

Each plot also asks for its own font size on every label it measures while laying out (`base_font_size`), again
a computed style: a view coming back into sight spent a tenth of its time there. The size is the page's and does
not change, so each plot keeps the first answer."""
from __future__ import annotations

from panel.custom import JSComponent


class NoCssVisuals(JSComponent):
    """Placed once on the page, in the sidebar, which never changes."""

    _esm = """
    export function render() {
      const visual = window.Bokeh?.require?.("core/visuals/visual");
      if (visual?.VisualProperties) visual.VisualProperties.prototype._get_css_value = () => "";
      const plot = window.Bokeh?.require?.("models/plots/plot_canvas")?.PlotView?.prototype;
      const size = plot && Object.getOwnPropertyDescriptor(plot, "base_font_size");
      if (size?.get && !plot.__font_size_kept) {
        plot.__font_size_kept = true;
        Object.defineProperty(plot, "base_font_size", {configurable: true, get() {
          // Not kept while unknown (a plot not yet in the page).
          return this.__font_size ??= size.get.call(this) ?? undefined;
        }});
      }
      return document.createElement("span");
    }
    """

    def __init__(self, **params):
        super().__init__(width=0, height=0, margin=0, **params)
