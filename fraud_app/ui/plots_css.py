"""BokehJS asks the CSS cascade for a `--bk-*` variable every time it reads a line, fill or text property of a
plot (bokeh/bokeh#15286). Between the page's own style changes each ask makes the browser work out the styles
again: Monitoring, the view with the most plots, took 2.1 s to show instead of 1.8 s. This app sets no such
variable (a browser test checks that), so the asks are answered at once, empty, as the cascade would."""
from __future__ import annotations

from panel.custom import JSComponent


class NoCssVisuals(JSComponent):
    """Placed once on the page, in the sidebar, which never changes."""

    _esm = """
    export function render() {
      const visual = window.Bokeh?.require?.("core/visuals/visual");
      if (visual?.VisualProperties) visual.VisualProperties.prototype._get_css_value = () => "";
      return document.createElement("span");
    }
    """

    def __init__(self, **params):
        super().__init__(width=0, height=0, margin=0, **params)
