"""The early-warning signal catalog (`catalog.yml`): load, validate, and turn into DuckDB SQL.

Thresholds live only in the YAML; everything here is generic, so adding a signal is a YAML edit
(plus its test case). The pydantic models below describe the file completely: they validate it
and generate `catalog.schema.json`, which editors use to check the YAML while typing
(regenerate it with `python -m assets.signals.catalog --write-schema`). Public API, also used
by pre-lending screening (`assets/screening/`):

- `load_catalog(path=None) -> Catalog`: read and validate (raises `CatalogError` naming the
  file, the signal, the field and the rule). `parse_catalog(dict)` does the same for a mapping.
- `Catalog.signals`, `Catalog.signal(id)`, `Catalog.by_stage(stage)`: the `Signal`s.
- `signal_predicate_sql(signal, alias="f")`: boolean SQL (NULL-safe: NULL -> false) over a
  relation `alias` holding the feature columns (and `<feature>_chg_<N>m` change columns).
- `signal_reason_sql(signal, alias="f")`: VARCHAR SQL, the plain-language reason.
- The feature rows, change columns and signal hits per firm and month end are built from these
  in `assets/signals/decisions.py` (one path for tonight and the back-test).
- `tier_sql(catalog, ...)`, `dimension_score_sql(...)`, `risk_score_sql(...)`: tier and scores.
- `feature_columns(catalog)`: the feature-mart columns the catalog reads.
- `RuleFileModel`, `rule_error`, `describe_validation_error`, `write_schema`: the pieces the
  screening rules (`assets/screening/rules.py`) share to validate their own file the same way.
"""

import argparse
import json
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StringConstraints,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
    with_config,
)
from pydantic_core import PydanticCustomError
from typing_extensions import TypedDict  # pydantic needs this TypedDict on Python < 3.12

from assets.core.sql import ident, literal, text
from assets.core.yaml_files import read_yaml

CATALOG_PATH = Path(__file__).with_name("catalog.yml")
SCHEMA_PATH = Path(__file__).with_name("catalog.schema.json")
FEATURE_MART = "marts.fct_enterprise_month_end"

Dimension = Literal["credit", "moral", "operational", "market", "liquidity"]
Stage = Literal["pre_lending", "lending", "post_lending"]
Severity = Literal["high", "medium", "low"]
Op = Literal["<", "<=", ">", ">=", "=", "!=", "in", "not_in"]
DIMENSIONS: tuple[str, ...] = get_args(Dimension)
STAGES: tuple[str, ...] = get_args(Stage)
SEVERITIES: tuple[str, ...] = get_args(Severity)
TIERS = ("red", "amber")
OPS: tuple[str, ...] = get_args(Op)
COMPARISON_OPS = ("<", "<=", ">", ">=")
LIST_OPS = ("in", "not_in")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_CHG = re.compile(r"^(?P<feature>[a-z][a-z0-9_]*)_chg_(?P<n>\d+)m$")
_SNAKE = r"^[a-z][a-z0-9_]*$"
#: Version labels are pasted into SQL and metadata: letters, digits, '.', '_', '-' only.
VERSION_PATTERN = r"^[0-9A-Za-z][0-9A-Za-z._-]*$"


class CatalogError(ValueError):
    """The catalog is invalid; the message names the file, the signal (or section), the field
    and the rule broken."""


# ---------------------------------------------------------------------------------------------
# Validation machinery shared by the rule files (this catalog and the screening access rules)


class RuleFileModel(BaseModel):
    """Base of the rule-file models: immutable, and an unknown key is an error (catches typos).

    Sequences are lists, not tuples: pydantic reports a too-short error on a tuple whose item
    failed validation, which would add a misleading second error to every broken item.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")


def rule_error(message: str, *at: str | int) -> PydanticCustomError:
    """A broken rule for a validator to raise. `at` extends the error's location, so a rule
    checked on a whole model still names the field at fault (e.g. `"signals", 3, "id"`)."""
    return PydanticCustomError("rule", "{message}", {"message": message, "at": at})


def describe_validation_error(
    exc: ValidationError, data: Any, source: str, labels: Mapping[str, str]
) -> str:
    """`<source>: <where>: field '<name>' <problem>`, one line per error.

    `labels` names the items of a top-level list by their id, so an error reads
    "signal 'tax_arrears': conditions[0]: field 'op': ..." rather than "signals.19.conditions.0".
    """
    lines = [_describe(err, data, labels) for err in exc.errors()]
    if len(lines) == 1:
        return f"{source}: {lines[0]}"
    return f"{source}: {len(lines)} problems:\n" + "\n".join(f"  - {line}" for line in lines)


def _describe(err: Any, data: Any, labels: Mapping[str, str]) -> str:
    loc = [*err["loc"], *(err.get("ctx") or {}).get("at", ())]
    if loc and loc[-1] == "[key]":  # a bad key of a mapping: the key is the field
        loc.pop()
    name = loc.pop() if loc and isinstance(loc[-1], str) else None
    segments: list[str] = []
    path = ""
    for k, key in enumerate(loc):
        label = _label(data, loc, k, labels)
        if label:
            segments.append(label)
            path = ""
        elif isinstance(key, int):
            path += f"[{key}]"
        else:
            path += f".{key}" if path else str(key)
    if path:
        segments.append(path)
    problem = _problem(err)
    if name is None:
        segments.append(problem)
    elif problem.startswith(("is ", "must ", "has ", "needs ")):
        segments.append(f"field '{name}' {problem}")
    else:
        segments.append(f"field '{name}': {problem}")
    return ": ".join(segments)


def _label(data: Any, loc: list, k: int, labels: Mapping[str, str]) -> str | None:
    """`signal 'x'` for loc ("signals", i): list items are named by their id when they have one."""
    if k != 1 or not isinstance(loc[1], int) or loc[0] not in labels or not isinstance(data, dict):
        return None
    items = data.get(loc[0])
    item = items[loc[1]] if isinstance(items, list) and loc[1] < len(items) else None
    rid = item.get("id") if isinstance(item, dict) else None
    return labels[loc[0]].format(id=rid) if isinstance(rid, str) and rid else None


def _problem(err: Any) -> str:
    if err["type"] == "missing":
        return "is required"
    if err["type"] == "extra_forbidden":
        return "is not a known field (a typo?)"
    value = err.get("input")
    if err["type"] != "rule" and isinstance(value, str | int | float) and len(repr(value)) < 60:
        return f"{err['msg']} (got {value!r})"
    return err["msg"]


def schema_text(model: type[BaseModel]) -> str:
    """The JSON Schema of a rule file, as committed beside it (editors check the YAML with it)."""
    return json.dumps(model.model_json_schema(by_alias=True), indent=2, ensure_ascii=False) + "\n"


def write_schema(model: type[BaseModel], path: Path, argv: list[str] | None = None) -> None:
    """Command line of a rule-file module: `--write-schema` regenerates its JSON Schema."""
    parser = argparse.ArgumentParser(description=f"JSON Schema of {model.__name__}")
    parser.add_argument("--write-schema", action="store_true", help=f"write {path.name}")
    if parser.parse_args(argv).write_schema:
        path.write_text(schema_text(model), encoding="utf-8")
        print(f"wrote {path}")
    else:
        print(schema_text(model), end="")


# ---------------------------------------------------------------------------------------------
# The catalog file

SnakeId = Annotated[str, StringConstraints(pattern=_SNAKE)]
Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
_SCALAR_SCHEMA = {"type": ["number", "string", "boolean"]}
_THRESHOLD_SCHEMA = {
    "description": "A number for < <= > >=; a number, text or true/false for = !=; a "
    "non-empty list of numbers or text for in / not_in.",
    "anyOf": [_SCALAR_SCHEMA, {"type": "array", "minItems": 1,
                               "items": {"type": ["number", "string"]}}],
}


def _when_op(ops: tuple[str, ...], threshold: dict) -> dict:
    return {"if": {"properties": {"op": {"enum": list(ops)}}},
            "then": {"properties": {"threshold": threshold}}}


class Condition(RuleFileModel):
    """One test on a feature column; a signal fires when all its conditions hold."""

    model_config = ConfigDict(json_schema_extra={"allOf": [
        _when_op(COMPARISON_OPS, {"type": "number"}),
        _when_op(("=", "!="), _SCALAR_SCHEMA),
        _when_op(LIST_OPS, _THRESHOLD_SCHEMA["anyOf"][1]),
    ]})

    feature: SnakeId = Field(description="A column of marts.fct_enterprise_month_end.")
    op: Op
    threshold: Annotated[Any, WithJsonSchema(_THRESHOLD_SCHEMA)]
    change_months: Annotated[StrictInt, Field(ge=1, le=24)] | None = Field(
        default=None,
        description="Compare the change of the feature over N month ends (value minus the "
        "value N month ends earlier) instead of the feature itself.",
    )

    @field_validator("feature")
    @classmethod
    def _known_feature(cls, feature: str, info: ValidationInfo) -> str:
        columns = (info.context or {}).get("columns")
        if columns is not None and feature not in columns:
            raise rule_error(f"unknown feature '{feature}' (not a column of {FEATURE_MART})")
        return feature

    @field_validator("threshold")
    @classmethod
    def _threshold_fits_op(cls, value: Any, info: ValidationInfo) -> Any:
        op = info.data.get("op")
        if op in LIST_OPS:
            if not isinstance(value, list) or not value or not all(
                isinstance(v, str | int | float) for v in value
            ):
                raise rule_error(f"must be a non-empty list of numbers or text for {op}")
            return tuple(value)
        if op in COMPARISON_OPS and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise rule_error(f"must be a number for {op}")
        if not isinstance(value, bool | int | float | str):
            raise rule_error(f"must be a number, text or true/false for {op}")
        return value

    @property
    def column(self) -> str:
        """Column of the features relation this condition reads."""
        if self.change_months:
            return f"{self.feature}_chg_{self.change_months}m"
        return self.feature


def _same_placeholders(reason: str, reason_zh: str) -> None:
    """A Chinese template (when given) quotes exactly the placeholders of the English one."""
    if reason_zh and set(_PLACEHOLDER.findall(reason_zh)) != set(_PLACEHOLDER.findall(reason)):
        raise rule_error(
            f"placeholders {sorted(set(_PLACEHOLDER.findall(reason_zh)))} differ from the "
            f"English reason's {sorted(set(_PLACEHOLDER.findall(reason)))}",
            "reason_zh",
        )


class Signal(RuleFileModel):
    """One early-warning signal: when it fires (all conditions) and what the analyst reads."""

    id: SnakeId = Field(description="Unique snake_case id, shown to analysts.")
    dimension: Dimension
    stage: Stage = Field(description="When in the loan life the signal is most telling.")
    severity: Severity
    topic: SnakeId | None = Field(
        default=None,
        description="What the signal is about (loan_arrears, tax_rating, revenue, ...): reasons "
        "on one topic are merged into one, the strongest kept. Default: the signal id.",
    )
    description: str = ""
    conditions: Annotated[list[Condition], Field(min_length=1)]
    reason: Annotated[str, Field(min_length=1)] = Field(
        description="Plain-language template: {feature} the value, {feature_pct} its magnitude "
        "in whole percent, {feature_chg_Nm} its change over N month ends (when a condition "
        "uses change_months: N)."
    )
    name_zh: str = Field(default="", description="Short Chinese name (reports, dim_signal).")
    description_zh: str = Field(default="", description="Chinese description.")
    reason_zh: str = Field(
        default="",
        description="Chinese reason template with exactly the placeholders of `reason` "
        "(reports for credit officers); empty = the English reason is shown.",
    )

    @field_validator("description", "reason", "description_zh", "reason_zh", mode="before")
    @classmethod
    def _one_line(cls, value: Any) -> Any:
        if value is None:
            return ""
        return " ".join(value.split()) if isinstance(value, str) else value

    @field_validator("reason")
    @classmethod
    def _placeholders_well_formed(cls, reason: str) -> str:
        if reason.count("{") != reason.count("}"):
            raise rule_error("has unbalanced braces")
        for name in _PLACEHOLDER.findall(reason):
            if not re.match(_SNAKE, name):
                raise rule_error(f"has a bad placeholder {{{name}}}")
        return reason

    @model_validator(mode="after")
    def _placeholders_exist(self, info: ValidationInfo) -> "Signal":
        changes = {(c.feature, c.change_months) for c in self.conditions if c.change_months}
        columns = (info.context or {}).get("columns")
        for name in _PLACEHOLDER.findall(self.reason):
            m = _CHG.match(name)
            if m and (m["feature"], int(m["n"])) not in changes:
                raise rule_error(
                    f"placeholder {{{name}}} needs a condition on {m['feature']} with "
                    f"change_months: {m['n']}",
                    "reason",
                )
            feature = _placeholder_feature(name)
            if columns is not None and feature not in columns:
                raise rule_error(
                    f"placeholder {{{name}}}: unknown feature '{feature}' (not a column of "
                    f"{FEATURE_MART})",
                    "reason",
                )
        _same_placeholders(self.reason, self.reason_zh)
        return self

    @property
    def features(self) -> list[str]:
        """Feature-mart columns the signal reads (conditions and reason)."""
        cols = [c.feature for c in self.conditions]
        for name in _PLACEHOLDER.findall(self.reason):
            cols.append(_placeholder_feature(name))
        return list(dict.fromkeys(cols))


Counts = Annotated[dict[Severity, Annotated[StrictInt, Field(ge=1)]], Field(min_length=1)]


class TierRule(RuleFileModel):
    """One way into a tier: at least `min` signals of each severity, or any of `any_signal`."""

    model_config = ConfigDict(json_schema_extra={"minProperties": 1, "maxProperties": 1})

    min: Counts | None = None
    any_signal: Annotated[list[SnakeId], Field(min_length=1)] | None = None

    @model_validator(mode="after")
    def _one_kind(self) -> "TierRule":
        if (self.min is None) == (self.any_signal is None):
            raise rule_error("a rule is one of {min: {...}} or {any_signal: [...]}")
        return self


@with_config(ConfigDict(extra="forbid"))
class Tiers(TypedDict):
    """Tier rules, first matching wins (red before amber; else green)."""

    red: Annotated[list[TierRule], Field(min_length=1)]
    amber: Annotated[list[TierRule], Field(min_length=1)]


Points = Annotated[StrictInt, Field(ge=0, le=100)]
Weight = Annotated[float, Field(strict=True, ge=0, le=1)]


@with_config(ConfigDict(extra="forbid"))
class SeverityPoints(TypedDict):
    """Points a triggered signal adds to its dimension's 0-100 score."""

    high: Points
    medium: Points
    low: Points


@with_config(ConfigDict(extra="forbid"))
class DimensionWeights(TypedDict):
    """Weights of the dimension scores in the risk score's weighted mean (they sum to 1)."""

    credit: Weight
    moral: Weight
    operational: Weight
    market: Weight
    liquidity: Weight


class Scores(RuleFileModel):
    """risk_score = round(max_share * worst dimension score + (1 - max_share) * weighted mean)."""

    severity_points: SeverityPoints
    dimension_weights: DimensionWeights
    max_share: Weight = 0.5

    @field_validator("dimension_weights")
    @classmethod
    def _weights_sum_to_one(cls, weights: DimensionWeights) -> DimensionWeights:
        total = sum(weights.values())
        if abs(total - 1.0) > 1e-6:
            raise rule_error(f"must sum to 1 (they sum to {total:g})")
        return weights


@with_config(ConfigDict(extra="forbid"))
class RecommendedAction(TypedDict):
    """What the relationship manager does about a red or amber firm."""

    red: Text
    amber: Text


class PdTiers(RuleFileModel):
    """PD cut-offs (12-month probability of default from the scorecard) of the two tiers."""

    amber: Annotated[float, Field(gt=0, lt=1)] = Field(description="Amber from this PD.")
    red: Annotated[float, Field(gt=0, lt=1)] = Field(description="Red from this PD.")

    @model_validator(mode="after")
    def _ordered(self) -> "PdTiers":
        if self.red <= self.amber:
            raise rule_error("red must be above amber", "red")
        return self


class FeatureReason(RuleFileModel):
    """How a scorecard feature reads as a reason when it adds risk for a firm."""

    topic: SnakeId = Field(description="Merged with signal reasons of the same topic.")
    reason: Annotated[str, Field(min_length=1)] = Field(
        description="Template: {value} the firm's value, {value_pct} its magnitude in percent, "
        "{value_change} 'down N%' or 'up N%'."
    )
    reason_zh: str = Field(
        default="",
        description="Chinese template with exactly the placeholders of `reason`; empty = the "
        "English reason is shown.",
    )
    reason_missing: str = Field(
        default="",
        description="The reason when the firm has no value (the scorecard's missing bin adds "
        "the risk), without placeholders; empty = `reason` with the value shown as n/a.",
    )
    reason_missing_zh: str = Field(
        default="", description="Chinese text of `reason_missing`; empty = the English shown."
    )
    reason_zero: str = Field(
        default="",
        description="The reason when the firm's value is 0 (a bin of low values adds the risk "
        "and '0 months' would read oddly), without placeholders; empty = `reason` with 0.",
    )
    reason_zero_zh: str = Field(
        default="", description="Chinese text of `reason_zero`; empty = the English shown."
    )

    @model_validator(mode="after")
    def _zh_placeholders(self) -> "FeatureReason":
        _same_placeholders(self.reason, self.reason_zh)
        for kind in ("missing", "zero"):
            english, chinese = getattr(self, f"reason_{kind}"), getattr(self, f"reason_{kind}_zh")
            for name, text_ in ((f"reason_{kind}", english), (f"reason_{kind}_zh", chinese)):
                if _PLACEHOLDER.search(text_):
                    raise rule_error("has no value to show: no {placeholder} allowed", name)
            if chinese and not english:
                raise rule_error(f"needs the English reason_{kind}", f"reason_{kind}_zh")
        return self

    @field_validator("reason")
    @classmethod
    def _known_placeholders(cls, reason: str) -> str:
        for name in _PLACEHOLDER.findall(reason):
            if name not in ("value", "value_pct", "value_change"):
                raise rule_error(f"unknown placeholder {{{name}}} (value, value_pct, value_change)")
        return reason


class Catalog(RuleFileModel):
    """The early-warning signal catalog (`assets/signals/catalog.yml`)."""

    model_config = ConfigDict(title="Early-warning signal catalog")

    version: Annotated[str, Field(pattern=VERSION_PATTERN, coerce_numbers_to_str=True)] = Field(
        description="Bump on every change: stamped on every signal hit and watchlist row."
    )
    dimensions: list[Dimension] | None = Field(
        default=None, description="The five risk dimensions (documentation; all five)."
    )
    signals: Annotated[list[Signal], Field(min_length=1)]
    tiers: Tiers
    scores: Scores
    recommended_action: RecommendedAction
    recommended_action_zh: dict[Literal["red", "amber"], Text] = Field(
        default_factory=dict, description="The actions in Chinese (reports for credit officers)."
    )
    exit_after_clear_month_ends: Annotated[StrictInt, Field(ge=1)] = Field(
        description="A listed firm leaves the watchlist once it has been below the tier rules "
        "at this many consecutive month ends (a rule in time: the same facts give the same "
        "watchlist whatever refreshes ran in between)."
    )
    status_window_months: Annotated[StrictInt, Field(ge=2, le=60)] = Field(
        default=12,
        description="Month ends of decision history each refresh recomputes to derive statuses "
        "and first_flagged_date (an episode older than this starts at the window's start).",
    )
    pending_application_days: Annotated[StrictInt, Field(ge=0)] = Field(
        default=90, description="Firms with an application this many days up to D are monitored."
    )
    pd_tiers: PdTiers = Field(
        description="Tier cut-offs on the scorecard's PD (used whenever a champion model exists)."
    )
    hard_triggers: dict[SnakeId, Literal["red", "amber"]] = Field(
        default_factory=dict,
        description="Signals that list a firm in this tier whatever its PD.",
    )
    max_reasons: Annotated[StrictInt, Field(ge=1, le=10)] = Field(
        default=4, description="At most this many reasons per firm (after merging topics)."
    )
    min_reason_logit: Annotated[float, Field(ge=0)] = Field(
        default=0.1,
        description="A scorecard feature is a reason when it adds at least this much to the "
        "log-odds of default (against the book's average).",
    )
    feature_reasons: dict[SnakeId, FeatureReason] = Field(
        default_factory=dict, description="Reason templates of the scorecard's features."
    )
    signal_check_band: Annotated[float, Field(gt=1)] = Field(
        default=2.0,
        description="A signal check warns when the signal's hit rate is outside [expected / "
        "band, expected x band], expected = its hit rate in the latest back-test.",
    )

    @field_validator("dimensions")
    @classmethod
    def _all_dimensions(cls, dims: list[str] | None) -> list[str] | None:
        if dims is not None and sorted(dims) != sorted(DIMENSIONS):
            raise rule_error(f"must list the five dimensions {list(DIMENSIONS)} once each")
        return dims

    @model_validator(mode="after")
    def _cross_references(self) -> "Catalog":
        seen: set[str] = set()
        for i, sig in enumerate(self.signals):
            if sig.id in seen:
                raise rule_error("duplicate id (signal ids are unique)", "signals", i, "id")
            seen.add(sig.id)
        severity = {s.id: s.severity for s in self.signals}
        for tier in TIERS:
            for k, rule in enumerate(self.tiers[tier]):
                if rule.min is not None and tier == "red" and sum(rule.min.values()) < 2:
                    raise rule_error("a red rule needs 2+ signals (one weak signal alone is "
                                     "never red)", "tiers", tier, k)
                for sid in rule.any_signal or ():
                    if sid not in severity:
                        raise rule_error(f"unknown signal '{sid}'", "tiers", tier, k,
                                         "any_signal")
                    if tier == "red" and severity[sid] != "high":
                        raise rule_error(f"signal '{sid}' is {severity[sid]}; only high signals "
                                         "may make a firm red alone", "tiers", tier, k,
                                         "any_signal")
        for sid in self.hard_triggers:
            if sid not in severity:
                raise rule_error(f"unknown signal '{sid}'", "hard_triggers", sid)
        return self

    def topic(self, signal_id: str) -> str:
        """The reason topic of a signal (its id when the catalog names none)."""
        return self.signal(signal_id).topic or signal_id

    @property
    def severity_points(self) -> dict[str, int]:
        """`scores.severity_points`, kept at the top for the SQL builders and their callers."""
        return dict(self.scores.severity_points)

    @property
    def dimension_weights(self) -> dict[str, float]:
        """`scores.dimension_weights` (see `severity_points`)."""
        return dict(self.scores.dimension_weights)

    @property
    def max_share(self) -> float:
        """`scores.max_share` (see `severity_points`)."""
        return self.scores.max_share

    def signal(self, signal_id: str) -> Signal:
        """The signal with this id (KeyError if none)."""
        for s in self.signals:
            if s.id == signal_id:
                return s
        raise KeyError(signal_id)

    def by_stage(self, stage: str) -> list[Signal]:
        """Signals most telling at one loan stage (pre_lending, lending, post_lending)."""
        return [s for s in self.signals if s.stage == stage]

    @property
    def change_columns(self) -> list[tuple[str, int]]:
        """(feature, months) pairs needing a change column."""
        out = {(c.feature, c.change_months) for s in self.signals for c in s.conditions
               if c.change_months}
        for s in self.signals:
            for name in _PLACEHOLDER.findall(s.reason):
                m = _CHG.match(name)
                if m:
                    out.add((m["feature"], int(m["n"])))
        return sorted(out)


# ---------------------------------------------------------------------------------------------
# Loading


def load_catalog(
    path: Path | str | None = None, columns: Collection[str] | None = None
) -> Catalog:
    """Read and validate the catalog YAML (default: the one beside this module). With
    `columns`, every feature a signal reads must be one of them (the feature mart's columns)."""
    path = Path(path) if path else CATALOG_PATH
    data = read_yaml(path, CatalogError)
    return parse_catalog(data, source=str(path), columns=columns)


def parse_catalog(
    data: Any, source: str = "<catalog>", columns: Collection[str] | None = None
) -> Catalog:
    """Validate a catalog mapping; every error names the file, signal, field and rule."""
    try:
        return Catalog.model_validate(data, context={"columns": columns})
    except ValidationError as exc:
        message = describe_validation_error(exc, data, source, {"signals": "signal '{id}'"})
        raise CatalogError(message) from None


def _placeholder_feature(name: str) -> str:
    m = _CHG.match(name)
    if m:
        return m["feature"]
    return name[: -len("_pct")] if name.endswith("_pct") else name


def feature_columns(catalog: Catalog) -> list[str]:
    """Feature-mart columns the catalog reads (conditions and reason templates)."""
    return list(dict.fromkeys(c for s in catalog.signals for c in s.features))


# ---------------------------------------------------------------------------------------------
# SQL generation


def condition_sql(cond: Condition, alias: str = "f") -> str:
    """SQL of one condition; numbers keep their YAML form (repr), text is quoted."""
    col = f"{alias}.{ident(cond.column)}"
    if cond.op in ("in", "not_in"):
        values = ", ".join(literal(v) for v in cond.threshold)
        return f"{col} {'IN' if cond.op == 'in' else 'NOT IN'} ({values})"
    return f"{col} {cond.op} {literal(cond.threshold)}"


def signal_predicate_sql(signal: Signal, alias: str = "f") -> str:
    """Boolean SQL: all conditions hold (a NULL feature means not triggered)."""
    inner = " AND ".join(f"({condition_sql(c, alias)})" for c in signal.conditions)
    return f"coalesce({inner}, FALSE)"


def _value_sql(expr: str) -> str:
    num = f"try_cast({expr} AS DOUBLE)"
    return (
        f"CASE WHEN {expr} IS NULL THEN 'n/a' "
        f"WHEN {num} IS NULL THEN CAST({expr} AS VARCHAR) "
        f"WHEN abs({num}) >= 1000 THEN format('{{:,.0f}}', {num}) "
        f"WHEN {num} = round({num}) THEN format('{{:.0f}}', {num}) "
        f"ELSE format('{{:.2f}}', {num}) END"
    )


def signal_reason_sql(signal: Signal, alias: str = "f") -> str:
    """VARCHAR SQL rendering the reason template with the firm's own values."""
    parts: list[str] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(signal.reason):
        if m.start() > pos:
            parts.append(text(signal.reason[pos:m.start()]))
        name = m.group(1)
        chg = _CHG.match(name)
        if chg:
            expr = f"{alias}.{ident(name)}"
            parts.append(_value_sql(f"round({expr}, 2)"))
        elif name.endswith("_pct"):
            expr = f"{alias}.{ident(name[:-4])}"
            parts.append(
                f"coalesce(format('{{:.0f}}', abs(try_cast({expr} AS DOUBLE)) * 100), 'n/a')"
            )
        else:
            parts.append(_value_sql(f"{alias}.{ident(name)}"))
        pos = m.end()
    if pos < len(signal.reason):
        parts.append(text(signal.reason[pos:]))
    return "concat(" + ", ".join(parts) + ")" if parts else "''"


#: Topics of the signals about the firms around a firm (issue 13): never read as another
#: firm's own facts.
NETWORK_TOPICS = ("guarantee_network", "related_parties")


def red_fact_predicates(catalog: Catalog, alias: str = "f") -> dict[str, str]:
    """{signal id: SQL predicate over a feature row `alias`} of the red hard triggers, for
    the network features' "another firm on red" (int_enterprise_month__network, dbt var
    `red_hard_triggers`). A hard trigger lists a firm red whatever its PD or tier, so a firm
    meeting one is red under either engine, read from facts without any decision. Network
    signals are left out (they read other firms, not the firm's own facts)."""
    out = {}
    for signal_id, tier in catalog.hard_triggers.items():
        signal = catalog.signal(signal_id)
        if tier != "red" or catalog.topic(signal_id) in NETWORK_TOPICS:
            continue
        if any(c.change_months for c in signal.conditions):
            raise CatalogError(
                f"hard trigger '{signal_id}': a red hard trigger is evaluated for other firms on "
                "their facts at one month end, so it cannot use change_months"
            )
        out[signal_id] = signal_predicate_sql(signal, alias)
    return out


def tier_sql(
    catalog: Catalog, n_high: str = "n_high", n_medium: str = "n_medium", n_low: str = "n_low",
    signals: str = "signals",
) -> str:
    """CASE expression giving red/amber/green from severity counts and the signal id list."""
    counts = {"high": n_high, "medium": n_medium, "low": n_low}

    def rule_sql(rule: TierRule) -> str:
        if rule.min is not None:
            return " AND ".join(f"{counts[s]} >= {n}" for s, n in rule.min.items())
        ids = ", ".join(text(i) for i in rule.any_signal or ())
        return f"list_has_any(coalesce({signals}, []::VARCHAR[]), [{ids}])"

    whens = " ".join(
        f"WHEN {' OR '.join(f'({rule_sql(r)})' for r in catalog.tiers[t])} THEN {text(t)}"
        for t in TIERS
    )
    return f"CASE {whens} ELSE 'green' END"


def dimension_score_sql(catalog: Catalog, dimension: str, dim_col: str = "dimension",
                        sev_col: str = "severity") -> str:
    """Aggregate SQL: the 0-100 score of one dimension over a group of signal hits."""
    pts = " ".join(f"WHEN {text(s)} THEN {p}" for s, p in catalog.severity_points.items())
    return (
        f"least(100, coalesce(sum(CASE {sev_col} {pts} END) "
        f"FILTER (WHERE {dim_col} = {text(dimension)}), 0))"
    )


def risk_score_sql(catalog: Catalog, score_cols: dict[str, str] | None = None) -> str:
    """Overall 0-100 score from the five `<dimension>_score` columns."""
    cols = score_cols or {d: f"{d}_score" for d in DIMENSIONS}
    mean = " + ".join(f"{catalog.dimension_weights[d]} * {cols[d]}" for d in DIMENSIONS)
    worst = "greatest(" + ", ".join(cols[d] for d in DIMENSIONS) + ")"
    return (
        f"CAST(round({catalog.max_share} * {worst} + {1 - catalog.max_share} * ({mean}))"
        " AS INTEGER)"
    )


if __name__ == "__main__":
    write_schema(Catalog, SCHEMA_PATH)
