"""The one machine-readable line each benchmark ends with, and the parser run_all uses.

    RESULT name=backends.b0.bs16 value=1.02x goal=>=1.0x met=yes figure=auto_vs_best_fp32

Values hold no spaces (``_`` stands in); ``met`` is yes or no.
"""

from __future__ import annotations

import re

_FIELD = re.compile(r"(\w+)=(\S+)")


def result(name: str, value: str, goal: str, met: bool, figure: str = "") -> None:
    """Print the RESULT line for one figure."""
    fields = {"name": name, "value": value, "goal": goal, "met": "yes" if met else "no"}
    if figure:
        fields["figure"] = figure
    print("RESULT " + " ".join(f"{k}={str(v).replace(' ', '_')}" for k, v in fields.items()))


def parse_results(text: str) -> list[dict[str, str]]:
    """Every RESULT line in ``text`` as a dict of its fields."""
    return [
        dict(_FIELD.findall(line[len("RESULT ") :]))
        for line in text.splitlines()
        if line.startswith("RESULT ")
    ]
