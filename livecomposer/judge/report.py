"""The judge's answer: a side-by-side table (machine, human reference) or JSON."""

from __future__ import annotations

from .figures import Figure


def cell(value: float | None, kind: str) -> str:
    if value is None:
        return "-"
    if kind == "share":
        return f"{100 * value:.1f} %"
    if kind == "bits":
        return f"{value:.2f} bits"
    if kind == "semitones":
        return f"{value:.1f} st"
    return f"{value:.2f}" if value != int(value) else str(int(value))


def table(title: str, rows: tuple[Figure, ...], machine: dict, human: dict) -> str:
    """Plain text: one figure per line, the machine's beside the human reference's."""
    width = max(len(f.label) for f in rows)
    lines = [title, f"{'':<{width}}  {'machine':>12}  {'human':>12}"]
    for f in rows:
        lines.append(f"{f.label:<{width}}  {cell(machine.get(f.key), f.kind):>12}  {cell(human.get(f.key), f.kind):>12}")
    return "\n".join(lines)


def markdown(rows: tuple[Figure, ...], machine: dict, human: dict) -> str:
    """The same table in Markdown, for the README."""
    lines = ["| figure | machine | human |", "|---|---:|---:|"]
    for f in rows:
        lines.append(f"| {f.label} | {cell(machine.get(f.key), f.kind)} | {cell(human.get(f.key), f.kind)} |")
    return "\n".join(lines)


def as_json(rows: tuple[Figure, ...], machine: dict, human: dict) -> dict:
    """``{key: {"label", "machine", "human"}}``; shares stay 0-1, None where a figure does not apply."""
    def r(v: float | None) -> float | None:
        return None if v is None else round(float(v), 6)

    return {f.key: {"label": f.label, "unit": f.kind, "machine": r(machine.get(f.key)), "human": r(human.get(f.key))} for f in rows}
