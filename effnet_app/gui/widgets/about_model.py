"""'About this model': where the chosen variant sits in the compound-scaled family, or,
for a model the user trained, what it tells apart and how far to trust it."""

from __future__ import annotations

import html

from PySide6.QtWidgets import QTextBrowser, QWidget


def _paragraphs(text: str) -> str:
    return "".join(
        "<p>" + html.escape(line).replace("^φ", "<sup>φ</sup>") + "</p>"
        for line in text.splitlines()
    )


class AboutModelPanel(QTextBrowser):
    """The chosen model's scaling paragraph, then the family as a table with it in bold;
    a trained model's classes, accuracy, training data and calibration."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setOpenExternalLinks(False)
        self.setPlaceholderText("Loading the model list…")

    def show_model(self, catalog, key: str) -> None:
        info = catalog.model(key) if catalog else None
        if info is None:
            self.setHtml("")
        elif info.trained:
            self.setHtml(self._trained_html(info))
        else:
            self.setHtml(self._family_html(catalog, info))

    def _trained_html(self, info) -> str:
        folder = f"<p><small>Folder: {html.escape(str(info.path))}</small></p>" if info.path else ""
        return f"<h3>{html.escape(info.name)}</h3>{_paragraphs(info.about)}{folder}"

    def _family_html(self, catalog, info) -> str:
        rows = []
        for m in catalog.pretrained:
            cells = [
                m.name,
                f"{m.resolution}",
                f"{m.params / 1e6:.1f}",
                f"{m.gflops:.2f}" if m.gflops else "–",
                f"{m.top1:.1f}" if m.top1 else "–",
                f"{m.phi:.1f}",
            ]
            tag = "b" if m.key == info.key else "span"
            rows.append("<tr>" + "".join(f"<td><{tag}>{c}</{tag}></td>" for c in cells) + "</tr>")
        header = "".join(
            f"<th align='left'>{h}</th>"
            for h in ("Model", "Input px", "Params (M)", "GFLOPS", "Top-1 %", "φ")
        )
        return (
            f"<h3>{html.escape(info.name)}</h3>{_paragraphs(info.about)}"
            "<p><b>The family</b></p>"
            f"<table cellspacing='0' cellpadding='3'><tr>{header}</tr>{''.join(rows)}</table>"
            "<p><small>Figures: torchvision's ImageNet-1k weights (B0–B7) and the "
            "EfficientNet-Lite release (Lite).</small></p>"
        )
