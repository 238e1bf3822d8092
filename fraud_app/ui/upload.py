"""The Data view's file upload.

Panel's FileInput sends a whole file, base64-encoded, in one websocket message: past Bokeh's 20 MB message limit
(a file of about 15 MB) the server closes the connection and the session is gone without a word. This input
refuses a file over the limit in the browser, before a byte is sent, and says why; a file within it travels in
1 MB messages. The server counts the bytes as well, so a page that ignores the limit gets no further.
"""
from __future__ import annotations

import param
from panel.custom import JSComponent

from ..store.limits import MAX_BATCH

CHUNK = 1_000_000


def size_text(n: float) -> str:
    """Bytes in words: 16.2 MB, 10 MB, 50 kB, 200 bytes."""
    if n < 1000:
        return f"{n:.0f} bytes"
    value, unit = (n / 1e6, "MB") if n >= 1e6 else (n / 1e3, "kB")
    return f"{value:.1f}".removesuffix(".0") + f" {unit}"


def too_big(name: str, size: float, limit: int) -> str:
    return (f"{name} is {size_text(size)}, over the {size_text(limit)} limit for files imported here. Import it "
            "on the server with the command fraud-app import FILE, or send its rows to the REST API "
            f"(POST /api/v1/score, up to {MAX_BATCH:,} a request).")


class Upload(JSComponent):
    accept = param.String(default="", doc="The file types the browser offers, as in <input accept>.")
    max_bytes = param.Integer(default=10_000_000, doc="A larger file is refused in the page.")
    chunk = param.Integer(default=CHUNK, constant=True, doc="Bytes a message.")
    filename = param.String(default="", doc="The file received in full and not yet taken; empty when none is.")
    refused = param.String(default="", doc="Why the last file chosen was refused, in words; empty if it was not.")

    _esm = """
export function render({model, el}) {
  const input = document.createElement("input")
  input.type = "file"
  input.accept = model.accept
  let current = 0
  input.addEventListener("change", async () => {
    const file = input.files[0]
    const id = ++current
    if (file == null) {
      return
    }
    if (file.size > model.max_bytes) {
      input.value = ""
      model.send_msg({kind: "refused", name: file.name, size: file.size})
      return
    }
    model.send_msg({kind: "start", id, name: file.name, size: file.size})
    for (let at = 0; at < file.size; at += model.chunk) {
      const data = await file.slice(at, at + model.chunk).arrayBuffer()
      if (id !== current) {
        return  // another file was chosen meanwhile
      }
      model.send_msg({kind: "part", id, data})
    }
    model.send_msg({kind: "end", id})
  })
  model.on("msg:custom", (msg) => {
    if (msg.kind === "clear") {
      input.value = ""
    }
  })
  el.append(input)
}
"""

    _stylesheets = [":host input { font: inherit; padding: 6px 0; }"]

    def __init__(self, **params):
        super().__init__(**params)
        self._reset()

    def _reset(self) -> None:
        self._id, self._name, self._parts, self._size, self._data = None, "", [], 0, None

    def _refuse(self, name: str, size: float) -> None:
        self._reset()
        self.filename = self.refused = ""  # the same file twice is news twice
        self.refused = too_big(name, size, self.max_bytes)

    def _handle_msg(self, msg) -> None:
        if not isinstance(msg, dict):
            return
        kind, size = msg.get("kind"), msg.get("size")
        if kind in ("refused", "start"):
            name = str(msg.get("name") or "")
            if kind == "refused" or not isinstance(size, (int, float)) or size > self.max_bytes:
                self._refuse(name, size if isinstance(size, (int, float)) else 0)
                return
            self._reset()
            self._id, self._name = msg.get("id"), name
            self.filename, self.refused = "", ""
        elif self._id is None or msg.get("id") != self._id:
            return  # parts of a file refused or replaced
        elif kind == "part" and isinstance(msg.get("data"), bytes):
            self._parts.append(msg["data"])
            self._size += len(msg["data"])
            if self._size > self.max_bytes:  # the page said the file was smaller: the bytes decide
                self._refuse(self._name, self._size)
        elif kind == "end":
            name, data = self._name, b"".join(self._parts)
            self._reset()
            self._data = data
            self.filename = name

    @property
    def file(self) -> tuple[str, bytes] | None:
        """The received file (name, content), if one is ready."""
        return (self.filename, self._data) if self.filename and self._data is not None else None

    def clear(self) -> None:
        """Forget the received file, here and in the page."""
        self._reset()
        self.filename = ""
        self._send_msg({"kind": "clear"})
