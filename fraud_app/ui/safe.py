"""Text from data, files, users and errors, made safe to show in a Markdown or HTML pane.

Panel's Markdown panes pass raw HTML through (and its HTML panes run <script> tags), so a card id, a file name
or an error message that holds markup would otherwise run in the analyst's browser. Every such string goes
through `plain` before it joins the app's own Markdown or HTML. Tables need nothing: Tabulator's cells use
Bokeh's StringFormatter, which sets text, not HTML (so no column of data may get Tabulator's "html" formatter),
and Bokeh escapes the fields it puts in hover tooltips and draws titles on a canvas.
"""
from __future__ import annotations

import re
import string

# Every ASCII punctuation mark becomes a numeric character reference: no HTML tag or entity, no Markdown
# emphasis, link, code, heading or escape can be formed from it, and both Markdown and HTML show it as itself.
# Markdown panes also typeset TeX in the browser ($$...$$, \(...\), \[...\]) from the finished HTML, whatever
# the pane's disable_math says, so "$" and "\" each stand in an element of their own: no delimiter can form.
_REFERENCES = {ord(c): f"&#{ord(c)};" for c in string.punctuation} | {
    ord(c): f"<span>&#{ord(c)};</span>" for c in "$\\"}
_SPACE = re.compile(r"\s+")


def plain(value: object) -> str:
    """`value` as literal text inside Markdown or HTML element content (not an attribute value), on one line."""
    return _SPACE.sub(" ", str(value)).translate(_REFERENCES)
