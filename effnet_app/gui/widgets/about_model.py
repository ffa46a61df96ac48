"""'About this model': where the chosen variant sits in the compound-scaled family."""

from __future__ import annotations

import html

from PySide6.QtWidgets import QTextBrowser, QWidget


class AboutModelPanel(QTextBrowser):
    """The chosen model's scaling paragraph, then the family as a table with it in bold."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenExternalLinks(False)
        self.setPlaceholderText("Loading the model list…")

    def show_model(self, catalog, key: str) -> None:
        info = catalog.model(key) if catalog else None
        if info is None:
            self.setHtml("")
            return
        paragraphs = "".join(
            "<p>" + html.escape(line).replace("^φ", "<sup>φ</sup>") + "</p>"
            for line in info.about.splitlines()
        )
        rows = []
        for m in catalog.models:
            cells = [
                m.name,
                f"{m.resolution}",
                f"{m.params / 1e6:.1f}",
                f"{m.gflops:.2f}" if m.gflops else "–",
                f"{m.top1:.1f}" if m.top1 else "–",
                f"{m.phi:.1f}",
            ]
            tag = "b" if m.key == key else "span"
            rows.append("<tr>" + "".join(f"<td><{tag}>{c}</{tag}></td>" for c in cells) + "</tr>")
        header = "".join(
            f"<th align='left'>{h}</th>"
            for h in ("Model", "Input px", "Params (M)", "GFLOPS", "Top-1 %", "φ")
        )
        self.setHtml(
            f"<h3>{html.escape(info.name)}</h3>{paragraphs}<p><b>The family</b></p>"
            f"<table cellspacing='0' cellpadding='3'><tr>{header}</tr>{''.join(rows)}</table>"
            "<p><small>Figures: torchvision's ImageNet-1k weights (B0–B7) and the "
            "EfficientNet-Lite release (Lite).</small></p>"
        )
