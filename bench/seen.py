"""Waiting for what the analyst sees, checked in the page every few milliseconds.

Playwright's own waits (`locator.wait_for`, `expect`) look again after 0, 20, 50, 100 and 100 ms, then only
every 500 ms: a view drawn 0.3 s after the click was reported at 0.77 s, one drawn at 0.8 s at 1.27 s. These
checks run inside the page on a short fixed interval instead, so a figure is the analyst's wait, not the
polling's.

A spec is a dict:
- {"text": REGEX, "has": WORD}: some visible text on the page (one text node's words, whitespace squeezed)
  holds WORD and matches (made by text());
- {"css": SELECTOR}: the first visible element matching it, in any shadow root, exists; with "text", its
  words match too;
- either with "not": TEXT: ... and those words are not exactly TEXT (a cell or counter that must change);
- {"any": [SPEC, ...]}: one of these specs holds.
"""
from __future__ import annotations

import re

SEEN = """specs => {
  const roots = [document];
  for (let i = 0; i < roots.length; i++)
    roots[i].querySelectorAll('*').forEach(e => { if (e.shadowRoot) roots.push(e.shadowRoot); });
  const visible = e => !!e && e.checkVisibility() && e.getClientRects().length > 0;
  const words = s => s.replace(/\\s+/g, ' ').trim();
  const fits = (spec, text) => (!spec.text || new RegExp(spec.text).test(text)) && text !== spec.not;
  const holds = spec => {
    if (spec.any) return spec.any.some(holds);
    if (spec.css) {
      for (const root of roots) {
        const found = [...root.querySelectorAll(spec.css)].find(visible);
        if (found) return fits(spec, words(found.textContent));
      }
      return false;
    }
    // Only the roots, then the text nodes, holding the spec's word are looked at closely: a check of the
    // whole page every few milliseconds would itself slow the page it measures.
    for (const root of roots) {
      const whole = root === document ? document.body : root;
      if (!whole || !whole.textContent.includes(spec.has)) continue;
      const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
      for (let n = walker.nextNode(); n; n = walker.nextNode())
        if (n.nodeValue.includes(spec.has) && fits(spec, words(n.nodeValue)) && visible(n.parentElement)) return true;
    }
    return false;
  };
  return specs.every(holds);
}"""


def text(words: str, pattern: str | None = None) -> dict:
    """Visible text holding these words, or matching `pattern` (a JavaScript regular expression that takes
    these words, e.g. "^Page 2 of")."""
    return {"text": pattern or re.escape(words), "has": max(words.split(), key=len)}


async def seen(page, *specs: dict, timeout: float = 120, every: int = 40) -> None:
    """Until every spec holds on the page (checked every `every` ms), or Playwright's TimeoutError after `timeout`
    seconds."""
    await page.wait_for_function(SEEN, arg=list(specs), polling=every, timeout=timeout * 1000)
