"""The early-warning signal catalog (`catalog.yml`): load, validate, and turn into DuckDB SQL.

Thresholds live only in the YAML; everything here is generic, so adding a signal is a YAML edit
(plus its test case). Public API, also used by pre-lending screening (`assets/screening/`):

- `load_catalog(path=None) -> Catalog`: read and validate (raises `CatalogError` naming the
  signal and the field). `parse_catalog(dict)` does the same for an in-memory mapping.
- `Catalog.signals`, `Catalog.signal(id)`, `Catalog.by_stage(stage)`: the `Signal`s.
- `signal_predicate_sql(signal, alias="f")`: boolean SQL (NULL-safe: NULL -> false) over a
  relation `alias` holding the feature columns (and `<feature>_chg_<N>m` change columns).
- `signal_reason_sql(signal, alias="f")`: VARCHAR SQL, the plain-language reason.
- `signal_sql(signal, relation, alias="f")`: a SELECT of the hits of one signal from a relation
  with `enterprise_id` and the features: enterprise_id, signal_id, dimension, severity, reason.
- `latest_features_sql(catalog, as_of, enterprises_sql=None)`: each enterprise's latest row of
  `marts.fct_enterprise_month_end` with month_end <= as_of, plus the change columns the
  catalog needs; optionally restricted to the enterprise ids a subquery returns.
- `signal_hits_sql(catalog, as_of, enterprises_sql=None)`: the hits of all signals as of a date.
- `tier_sql(catalog, ...)`, `dimension_score_sql(...)`, `risk_score_sql(...)`: tier and scores.
- `feature_columns(catalog)`: the feature-mart columns the catalog reads.
"""

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import yaml

CATALOG_PATH = Path(__file__).with_name("catalog.yml")
FEATURE_MART = "marts.fct_enterprise_month_end"

DIMENSIONS = ("credit", "moral", "operational", "market", "liquidity")
STAGES = ("pre_lending", "lending", "post_lending")
SEVERITIES = ("high", "medium", "low")
TIERS = ("red", "amber")
OPS = ("<", "<=", ">", ">=", "=", "!=", "in", "not_in")
_ID = re.compile(r"^[a-z][a-z0-9_]*$")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_CHG = re.compile(r"^(?P<feature>[a-z][a-z0-9_]*)_chg_(?P<n>\d+)m$")


class CatalogError(ValueError):
    """The catalog is invalid; the message names the signal (or section) and the field."""


@dataclass(frozen=True)
class Condition:
    feature: str
    op: str
    threshold: Any
    change_months: int | None = None

    @property
    def column(self) -> str:
        """Column of the features relation this condition reads."""
        if self.change_months:
            return f"{self.feature}_chg_{self.change_months}m"
        return self.feature


@dataclass(frozen=True)
class Signal:
    id: str
    dimension: str
    stage: str
    severity: str
    description: str
    conditions: tuple[Condition, ...]
    reason: str

    @property
    def features(self) -> list[str]:
        """Feature-mart columns the signal reads (conditions and reason)."""
        cols = [c.feature for c in self.conditions]
        for name in _PLACEHOLDER.findall(self.reason):
            cols.append(_placeholder_feature(name))
        return list(dict.fromkeys(cols))


@dataclass(frozen=True)
class Catalog:
    version: str
    signals: tuple[Signal, ...]
    tiers: dict[str, tuple[dict, ...]]
    severity_points: dict[str, int]
    dimension_weights: dict[str, float]
    max_share: float
    recommended_action: dict[str, str]
    exit_after_clear_refreshes: int
    pending_application_days: int
    source: str = field(default="", compare=False)

    def signal(self, signal_id: str) -> Signal:
        for s in self.signals:
            if s.id == signal_id:
                return s
        raise KeyError(signal_id)

    def by_stage(self, stage: str) -> list[Signal]:
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
# Loading and validation


def load_catalog(path: Path | str | None = None) -> Catalog:
    """Read and validate the catalog YAML (default: the one beside this module)."""
    path = Path(path) if path else CATALOG_PATH
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise CatalogError(f"{path}: not valid YAML: {exc}") from exc
    return parse_catalog(data, source=str(path))


def parse_catalog(data: Any, source: str = "<catalog>") -> Catalog:
    """Validate a catalog mapping; every error names the signal and field at fault."""
    if not isinstance(data, dict):
        raise CatalogError(f"{source}: the catalog must be a mapping")
    version = data.get("version")
    if not version or not isinstance(version, (str, int, float)):
        raise CatalogError(f"{source}: field 'version' is required (a string)")
    raw_signals = data.get("signals")
    if not isinstance(raw_signals, list) or not raw_signals:
        raise CatalogError(f"{source}: field 'signals' must be a non-empty list")
    signals: list[Signal] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_signals):
        sig = _parse_signal(raw, i)
        if sig.id in seen:
            raise CatalogError(f"signal '{sig.id}': field 'id': duplicate id")
        seen.add(sig.id)
        signals.append(sig)
    tiers = _parse_tiers(data.get("tiers"), {s.id: s for s in signals})
    scores = data.get("scores") or {}
    points = scores.get("severity_points") or {}
    if set(points) != set(SEVERITIES) or not all(
        isinstance(v, (int, float)) and 0 <= v <= 100 for v in points.values()
    ):
        raise CatalogError("scores: field 'severity_points' needs high, medium, low in 0..100")
    weights = scores.get("dimension_weights") or {}
    if set(weights) != set(DIMENSIONS) or abs(sum(weights.values()) - 1.0) > 1e-6:
        raise CatalogError(
            "scores: field 'dimension_weights' needs the five dimensions, summing to 1"
        )
    max_share = scores.get("max_share", 0.5)
    if not isinstance(max_share, (int, float)) or not 0 <= max_share <= 1:
        raise CatalogError("scores: field 'max_share' must be in 0..1")
    actions = data.get("recommended_action") or {}
    for tier in TIERS:
        if not isinstance(actions.get(tier), str) or not actions[tier].strip():
            raise CatalogError(f"recommended_action: field '{tier}' is required (text)")
    exit_after = data.get("exit_after_clear_refreshes")
    if not isinstance(exit_after, int) or isinstance(exit_after, bool) or exit_after < 1:
        raise CatalogError("field 'exit_after_clear_refreshes' must be an integer >= 1")
    pending = data.get("pending_application_days", 90)
    if not isinstance(pending, int) or pending < 0:
        raise CatalogError("field 'pending_application_days' must be an integer >= 0")
    return Catalog(
        version=str(version),
        signals=tuple(signals),
        tiers=tiers,
        severity_points={k: int(v) for k, v in points.items()},
        dimension_weights={k: float(v) for k, v in weights.items()},
        max_share=float(max_share),
        recommended_action={t: actions[t].strip() for t in TIERS},
        exit_after_clear_refreshes=exit_after,
        pending_application_days=pending,
        source=source,
    )


def _parse_signal(raw: Any, index: int) -> Signal:
    if not isinstance(raw, dict):
        raise CatalogError(f"signal #{index + 1}: must be a mapping")
    sid = raw.get("id")
    if not isinstance(sid, str) or not _ID.match(sid):
        raise CatalogError(f"signal #{index + 1}: field 'id' must be a snake_case text id")
    where = f"signal '{sid}'"
    for name, allowed in (("dimension", DIMENSIONS), ("stage", STAGES),
                          ("severity", SEVERITIES)):
        if raw.get(name) not in allowed:
            raise CatalogError(
                f"{where}: field '{name}' is {raw.get(name)!r}; expected one of {list(allowed)}"
            )
    conds = raw.get("conditions")
    if not isinstance(conds, list) or not conds:
        raise CatalogError(f"{where}: field 'conditions' must be a non-empty list")
    conditions = tuple(_parse_condition(c, where, j) for j, c in enumerate(conds))
    reason = raw.get("reason")
    if not isinstance(reason, str) or not reason.strip():
        raise CatalogError(f"{where}: field 'reason' is required (a text template)")
    reason = " ".join(reason.split())
    if reason.count("{") != reason.count("}"):
        raise CatalogError(f"{where}: field 'reason' has unbalanced braces")
    changes = {(c.feature, c.change_months) for c in conditions if c.change_months}
    for name in _PLACEHOLDER.findall(reason):
        if not _ID.match(name):
            raise CatalogError(f"{where}: field 'reason': bad placeholder {{{name}}}")
        m = _CHG.match(name)
        if m and (m["feature"], int(m["n"])) not in changes:
            raise CatalogError(
                f"{where}: field 'reason': placeholder {{{name}}} needs a condition on "
                f"{m['feature']} with change_months: {m['n']}"
            )
    return Signal(
        id=sid,
        dimension=raw["dimension"],
        stage=raw["stage"],
        severity=raw["severity"],
        description=" ".join(str(raw.get("description") or "").split()),
        conditions=conditions,
        reason=reason,
    )


def _parse_condition(raw: Any, where: str, j: int) -> Condition:
    at = f"{where}: conditions[{j}]"
    if not isinstance(raw, dict):
        raise CatalogError(f"{at}: must be a mapping with feature, op, threshold")
    feature = raw.get("feature")
    if not isinstance(feature, str) or not _ID.match(feature):
        raise CatalogError(f"{at}: field 'feature' must name a feature-mart column")
    op = raw.get("op")
    if op not in OPS:
        raise CatalogError(f"{at}: field 'op' is {op!r}; expected one of {list(OPS)}")
    if "threshold" not in raw:
        raise CatalogError(f"{at}: field 'threshold' is required")
    thr = raw["threshold"]
    if op in ("in", "not_in"):
        if not isinstance(thr, list) or not thr:
            raise CatalogError(f"{at}: field 'threshold' must be a non-empty list for {op}")
        if not all(isinstance(v, (str, int, float)) for v in thr):
            raise CatalogError(f"{at}: field 'threshold' list holds numbers or text only")
    elif op in ("<", "<=", ">", ">="):
        if isinstance(thr, bool) or not isinstance(thr, (int, float)):
            raise CatalogError(f"{at}: field 'threshold' must be a number for {op}")
    elif not isinstance(thr, (bool, int, float, str)):
        raise CatalogError(f"{at}: field 'threshold' must be a number, text or true/false")
    months = raw.get("change_months")
    if months is not None and (not isinstance(months, int) or isinstance(months, bool)
                               or not 1 <= months <= 24):
        raise CatalogError(f"{at}: field 'change_months' must be an integer 1..24")
    extra = set(raw) - {"feature", "op", "threshold", "change_months"}
    if extra:
        raise CatalogError(f"{at}: unknown field(s) {sorted(extra)}")
    return Condition(feature=feature, op=op, threshold=thr, change_months=months)


def _parse_tiers(raw: Any, signals: dict[str, Signal]) -> dict[str, tuple[dict, ...]]:
    if not isinstance(raw, dict) or set(raw) != set(TIERS):
        raise CatalogError("tiers: must define exactly 'red' and 'amber' rule lists")
    out = {}
    for tier in TIERS:
        rules = raw[tier]
        if not isinstance(rules, list) or not rules:
            raise CatalogError(f"tiers.{tier}: must be a non-empty list of rules")
        for k, rule in enumerate(rules):
            at = f"tiers.{tier}[{k}]"
            if not isinstance(rule, dict) or len(rule) != 1:
                raise CatalogError(f"{at}: a rule is one of {{min: ...}} or {{any_signal: [...]}}")
            if "min" in rule:
                counts = rule["min"]
                if (not isinstance(counts, dict) or not counts
                        or not set(counts) <= set(SEVERITIES)
                        or not all(isinstance(v, int) and v >= 1 for v in counts.values())):
                    raise CatalogError(f"{at}: field 'min' maps high/medium/low to counts >= 1")
                if tier == "red" and sum(counts.values()) < 2:
                    raise CatalogError(f"{at}: a red rule needs 2+ signals (one weak signal "
                                       "alone is never red)")
            elif "any_signal" in rule:
                ids = rule["any_signal"]
                if not isinstance(ids, list) or not ids:
                    raise CatalogError(f"{at}: field 'any_signal' must list signal ids")
                for sid in ids:
                    if sid not in signals:
                        raise CatalogError(f"{at}: field 'any_signal': unknown signal '{sid}'")
                    if tier == "red" and signals[sid].severity != "high":
                        raise CatalogError(f"{at}: field 'any_signal': signal '{sid}' is "
                                           f"{signals[sid].severity}; only high signals may "
                                           "make a firm red alone")
            else:
                raise CatalogError(f"{at}: unknown rule {sorted(rule)}")
        out[tier] = tuple(rules)
    return out


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


def _literal(value: Any) -> str:
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def condition_sql(cond: Condition, alias: str = "f") -> str:
    col = f"{alias}.{_quote(cond.column)}"
    if cond.op in ("in", "not_in"):
        values = ", ".join(_literal(v) for v in cond.threshold)
        return f"{col} {'IN' if cond.op == 'in' else 'NOT IN'} ({values})"
    return f"{col} {cond.op} {_literal(cond.threshold)}"


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
            parts.append(_literal(signal.reason[pos:m.start()]))
        name = m.group(1)
        chg = _CHG.match(name)
        if chg:
            expr = f"{alias}.{_quote(name)}"
            parts.append(_value_sql(f"round({expr}, 2)"))
        elif name.endswith("_pct"):
            expr = f"{alias}.{_quote(name[:-4])}"
            parts.append(
                f"coalesce(format('{{:.0f}}', abs(try_cast({expr} AS DOUBLE)) * 100), 'n/a')"
            )
        else:
            parts.append(_value_sql(f"{alias}.{_quote(name)}"))
        pos = m.end()
    if pos < len(signal.reason):
        parts.append(_literal(signal.reason[pos:]))
    return "concat(" + ", ".join(parts) + ")" if parts else "''"


def signal_sql(signal: Signal, relation: str, alias: str = "f") -> str:
    """SELECT of one signal's hits from `relation` (enterprise_id + feature columns)."""
    return (
        f"SELECT {alias}.enterprise_id, {_literal(signal.id)} AS signal_id, "
        f"{_literal(signal.dimension)} AS dimension, {_literal(signal.severity)} AS severity, "
        f"{_literal(signal.stage)} AS stage, {signal_reason_sql(signal, alias)} AS reason "
        f"FROM {relation} AS {alias} WHERE {signal_predicate_sql(signal, alias)}"
    )


def latest_features_sql(
    catalog: Catalog, as_of: date, enterprises_sql: str | None = None
) -> str:
    """Each enterprise's latest feature row with month_end <= as_of, plus change columns."""
    d = _literal(as_of.isoformat())
    restrict = f"AND enterprise_id IN ({enterprises_sql})" if enterprises_sql else ""
    joins, cols = [], []
    for k, (feature, months) in enumerate(catalog.change_columns):
        p = f"p{k}"
        joins.append(
            f"LEFT JOIN {FEATURE_MART} AS {p} ON {p}.enterprise_id = l.enterprise_id "
            f"AND {p}.month_end = last_day(l.month_end - INTERVAL {months} MONTH)"
        )
        cols.append(
            f"l.{_quote(feature)} - {p}.{_quote(feature)} AS {_quote(f'{feature}_chg_{months}m')}"
        )
    latest = (
        f"SELECT * FROM {FEATURE_MART} WHERE month_end <= DATE {d} {restrict} "
        "QUALIFY row_number() OVER (PARTITION BY enterprise_id ORDER BY month_end DESC) = 1"
    )
    return (
        f"SELECT l.*{''.join(', ' + c for c in cols)} FROM ({latest}) AS l "
        + " ".join(joins)
    )


def signal_hits_sql(catalog: Catalog, as_of: date, enterprises_sql: str | None = None) -> str:
    """All signals' hits as of a date: enterprise_id, signal_id, dimension, severity, stage,
    reason, month_end (of the feature row used), as_of_date, catalog_version."""
    features = latest_features_sql(catalog, as_of, enterprises_sql)
    unions = "\nUNION ALL\n".join(signal_sql(s, "features") for s in catalog.signals)
    return (
        f"WITH features AS ({features}), hits AS ({unions}) "
        f"SELECT DATE {_literal(as_of.isoformat())} AS as_of_date, h.*, f.month_end, "
        f"{_literal(catalog.version)} AS catalog_version "
        "FROM hits AS h JOIN features AS f USING (enterprise_id)"
    )


def tier_sql(
    catalog: Catalog, n_high: str = "n_high", n_medium: str = "n_medium", n_low: str = "n_low",
    signals: str = "signals",
) -> str:
    """CASE expression giving red/amber/green from severity counts and the signal id list."""
    counts = {"high": n_high, "medium": n_medium, "low": n_low}

    def rule_sql(rule: dict) -> str:
        if "min" in rule:
            return " AND ".join(f"{counts[s]} >= {n}" for s, n in rule["min"].items())
        ids = ", ".join(_literal(i) for i in rule["any_signal"])
        return f"list_has_any(coalesce({signals}, []::VARCHAR[]), [{ids}])"

    whens = " ".join(
        f"WHEN {' OR '.join(f'({rule_sql(r)})' for r in catalog.tiers[t])} THEN '{t}'"
        for t in TIERS
    )
    return f"CASE {whens} ELSE 'green' END"


def dimension_score_sql(catalog: Catalog, dimension: str, dim_col: str = "dimension",
                        sev_col: str = "severity") -> str:
    """Aggregate SQL: the 0-100 score of one dimension over a group of signal hits."""
    pts = " ".join(f"WHEN '{s}' THEN {p}" for s, p in catalog.severity_points.items())
    return (
        f"least(100, coalesce(sum(CASE {sev_col} {pts} END) "
        f"FILTER (WHERE {dim_col} = '{dimension}'), 0))"
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
