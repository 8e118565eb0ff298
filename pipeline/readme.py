"""The README's tables that code can render: config parameters and exit statuses.

`python -m pipeline.readme` rewrites them in place between their markers
(`<!-- parameters -->` ... `<!-- /parameters -->`, `<!-- exit-statuses -->` ... `<!-- /exit-statuses -->`);
tests/unit/test_readme_tables.py fails when the README differs from what this renders.
Sources: StyleConfig's fields and the `default` preset (pipeline/config.py, configs/default.yaml), and
EXIT_MEANINGS (pipeline/errors.py).
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def _value(v) -> str:
    if v is None:
        return "`null`"
    if isinstance(v, bool):
        return f"`{str(v).lower()}`"
    if isinstance(v, float):
        return f"{v:g}"
    if isinstance(v, list):
        return "`[" + ", ".join(_value(x).strip("`") for x in v) + "]`"
    return f"`{v}`"


def parameter_table() -> str:
    from pipeline.config import PARAMETER_HELP, StyleConfig, build_config

    cfg = build_config(StyleConfig, preset="default")
    rows = ["| key | default (`configs/default.yaml`) | meaning |", "| --- | --- | --- |"]
    for f in dataclasses.fields(StyleConfig):
        rows.append(f"| `{f.name}` | {_value(getattr(cfg, f.name))} | {PARAMETER_HELP[f.name]} |")
    return "\n".join(rows)


def exit_table() -> str:
    from pipeline.errors import EXIT_MEANINGS

    rows = ["| exit status | meaning |", "| --- | --- |"]
    rows += [f"| {code} | {meaning} |" for code, meaning in sorted(EXIT_MEANINGS.items())]
    return "\n".join(rows)


TABLES = {"parameters": parameter_table, "exit-statuses": exit_table}


def render(text: str) -> str:
    """`text` with every marked table replaced by what the code renders now."""
    for name, make in TABLES.items():
        pattern = re.compile(rf"(<!-- {name} -->\n)(?:.*?\n)?(<!-- /{name} -->)", re.S)
        if not pattern.search(text):
            raise ValueError(f"README has no <!-- {name} --> ... <!-- /{name} --> block")
        text = pattern.sub(lambda m: m.group(1) + make() + "\n" + m.group(2), text)
    return text


def main(path: Path = README) -> int:
    text = path.read_text()
    new = render(text)
    if new != text:
        path.write_text(new)
        print(f"{path}: tables re-rendered", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
