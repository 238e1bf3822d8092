"""Keyboard shortcuts: the browser sends the keys a view listens for, unless the analyst is typing."""
from __future__ import annotations

from typing import Callable

import panel as pn
import param
from panel.custom import JSComponent


class Keys(JSComponent):
    """The page's one key listener: calls `handler` with each key named in `keys`. Keys typed into a text box
    stay there, and keys with Ctrl, Alt or Cmd are the browser's. It sits in the sidebar, which never changes:
    placed in a view, its asynchronous first render kept a table added beside it from ever showing."""

    keys = param.List(default=[], item_type=str)

    _esm = """
    export function render({ model }) {
      const listen = (event) => {
        if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
        const target = event.composedPath()[0];
        const typing = target && (target.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(target.tagName));
        if (typing && event.key !== "Escape") return;
        if (!model.keys.includes(event.key)) return;
        event.preventDefault();
        if (typing) target.blur();
        model.send_msg(event.key);
      };
      document.addEventListener("keydown", listen);
      model.on("remove", () => document.removeEventListener("keydown", listen));
      return document.createElement("span");
    }
    """

    def __init__(self, handler: Callable[[str], None], **params):
        super().__init__(width=0, height=0, margin=0, **params)
        self._handler = handler

    def _handle_msg(self, key: str) -> None:
        if key in self.keys:
            self._handler(key)


def help_card(title: str, shortcuts: dict[str, str]) -> pn.Card:
    """The shortcuts of one view, folded away until wanted; `?` opens and closes it."""
    rows = "".join(f"<tr><td style='padding:2px 14px 2px 0'><kbd>{key}</kbd></td><td>{what}</td></tr>"
                   for key, what in shortcuts.items())
    return pn.Card(pn.pane.HTML(f"<table style='font-size:10.5pt'>{rows}</table>"), title=title, collapsed=True,
                   sizing_mode="stretch_width", margin=(5, 10))
