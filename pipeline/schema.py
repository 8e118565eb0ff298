"""The value types config keys are made of, and how a refused value becomes one line.

The config classes stay plain dataclasses (the engine reads attributes, the run
identity hashes `asdict`); their annotations carry the type and range of every
key, and pydantic checks a layered mapping against them in one pass. What is
allowed is read back from the same annotations (their JSON schema), so the
message a user sees cannot drift from the check that refused the value.
"""

from __future__ import annotations

import difflib
import functools
import math
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, Strict, TypeAdapter, ValidationError

from pipeline.errors import BadInput


def _no_bool(value: Any) -> Any:
    """YAML's `true` is not a number (pydantic's lax mode would take it as 1)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a number")
    return value


def _split_commas(value: Any) -> Any:
    """`--set style_layers=relu1_1,relu2_1` means a list, as in YAML's [relu1_1, relu2_1]."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def Int(**range_) -> Any:
    """An integer (not a float, string or boolean) with an optional range (gt/ge/lt/le)."""
    return Annotated[int, Strict(), Field(**range_)]


def Float(**range_) -> Any:
    """A finite number (NaN and ±inf refused; '1e-3' strings accepted) with an optional range."""
    return Annotated[float, BeforeValidator(_no_bool), Field(allow_inf_nan=False, **range_)]


PositiveInt = Int(gt=0)
NonNegativeInt = Int(ge=0)
NonNegative = Float(ge=0)
Positive = Float(gt=0)
OpenFraction = Float(gt=0, lt=1)   # (0, 1)
Fraction = Float(ge=0, le=1)       # [0, 1]
Layers = Annotated[list[str], BeforeValidator(_split_commas)]
Weights = Annotated[list[NonNegative], BeforeValidator(_split_commas)]


_UNITS = {"": 1, "b": 1, "k": 2**10, "kb": 10**3, "kib": 2**10, "m": 2**20, "mb": 10**6, "mib": 2**20,
          "g": 2**30, "gb": 10**9, "gib": 2**30, "t": 2**40, "tb": 10**12, "tib": 2**40}


def parse_memory(value: Any) -> Any:
    """'4G', '512MiB', '1.5GB' or a number of bytes -> bytes (K/M/G/T alone are binary, as in ulimit)."""
    if isinstance(value, bool):
        raise ValueError("a boolean is not a size")
    if isinstance(value, str):
        import re

        m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:[eE][0-9]+)?)\s*([A-Za-z]*)\s*", value)
        if not m or m.group(2).lower() not in _UNITS:
            raise ValueError("not a memory size")
        return int(float(m.group(1)) * _UNITS[m.group(2).lower()])
    return value


MemorySize = Annotated[int, BeforeValidator(parse_memory), Field(
    gt=0, description="a memory size such as 4G, 512MiB or a number of bytes")]


def choice(*values: str) -> Any:
    """One of a fixed set of strings."""
    return Literal[values]  # type: ignore[valid-type]


# ---------------------------------------------------------------- messages

def allowed(schema: dict) -> str:
    """A JSON-schema fragment in words: 'a positive integer', 'a finite number >= 0', ...; a type
    whose rule spans its items says it in its own `description`."""
    if "description" in schema:
        return schema["description"]
    if "anyOf" in schema:
        return " or ".join(allowed(s) for s in schema["anyOf"])
    if "const" in schema:
        return repr(schema["const"])
    if "enum" in schema:
        return "one of " + ", ".join(str(v) for v in schema["enum"])
    kind = schema.get("type")
    if kind == "null":
        return "null"
    if kind == "boolean":
        return "true or false"
    if kind == "string":
        return "a string"
    if kind == "array":
        return f"a list of {_plural(allowed(schema.get('items', {})))}"
    if kind in ("integer", "number"):
        noun = "an integer" if kind == "integer" else "a finite number"
        if kind == "integer" and _bounds(schema) == ["> 0"]:
            return "a positive integer"
        return " ".join([noun, *_bounds(schema)])
    return "a valid value"


def _bounds(schema: dict) -> list[str]:
    """['>= 0'], ['> 0 and < 1'], ...: JSON schema names, or pydantic's own where a validator
    runs before the constraint (it then leaves ge/gt/le/lt in the schema)."""
    def find(*names):
        return [schema[n] for n in names if n in schema]

    low = [f">= {v:g}" for v in find("minimum", "ge")] + [f"> {v:g}" for v in find("exclusiveMinimum", "gt")]
    high = [f"<= {v:g}" for v in find("maximum", "le")] + [f"< {v:g}" for v in find("exclusiveMaximum", "lt")]
    if low and high:
        return [f"{low[0]} and {high[0]}"]
    return low + high


def _plural(phrase: str) -> str:
    for single, many in (("a positive integer", "positive integers"), ("an integer", "integers"),
                         ("a finite number", "finite numbers"), ("a string", "strings")):
        if phrase.startswith(single):
            return many + phrase[len(single):]
    return phrase


@functools.lru_cache(maxsize=None)
def adapter(cls: type) -> TypeAdapter:
    return TypeAdapter(cls)


@functools.lru_cache(maxsize=None)
def field_schemas(cls: type) -> dict[str, dict]:
    """Each key's JSON schema, $refs resolved: what `allowed` describes."""
    schema = adapter(cls).json_schema()
    return schema.get("properties", {})


def unknown_key(key: str, known) -> BadInput:
    """'unknown config key' with the closest known key as a suggestion."""
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return BadInput(f"unknown config key {key!r}{hint}")


def validate_mapping(cls: type, values: dict, origins: dict[str, str] | None = None):
    """An instance of the dataclass `cls` from `values`, or BadInput naming the first bad key,
    its value, what is allowed and where the value came from (origins: key -> 'in FILE', '--set')."""
    try:
        return adapter(cls).validate_python(values)
    except ValidationError as exc:
        key = str(exc.errors()[0]["loc"][0])
        value = values.get(key)
        shown = repr(value) if not isinstance(value, float) or math.isfinite(value) else str(value)
        where = f" ({origins[key]})" if origins and key in origins else ""
        what = allowed(field_schemas(cls).get(key, {}))
        raise BadInput(f"{key} must be {what}, got {shown}{where}") from None
