"""`scorecard.yml` as a pydantic model: what the PD scorecard fit may use and how it decides.

The settings live in the YAML so a risk analyst changes candidates, sample size or the
promotion rule without touching code; the model rejects unknown keys and impossible values
with the file and field named.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    model_validator,
)

from assets.core.yaml_files import read_yaml

SPEC_PATH = Path(__file__).with_name("scorecard.yml")

#: The network features about another firm on red (issue 13): by a hard trigger
#: (int_enterprise_month__network: *_on_red, *_red_trigger) or by its PD from the champion
#: scorecard (fct_enterprise_month_end_network_pd: *_red_by_pd, its PD, the cut-off, the
#: model). Never candidates: a PD scored from another firm's PD is circular.
NETWORK_ON_RED = re.compile(
    r"(_on_red|_red_trigger|_red_by_pd|_party_pd|_guarantor_pd)$|^(red_pd_cutoff|pd_model_version)$"
)

# A feature name is pasted into SQL as an identifier and into struct labels: keep it plain.
FeatureName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]*$", max_length=63)]


class SpecError(ValueError):
    """scorecard.yml is not valid; the message names the file and the field."""


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class FeatureSpec(_Model):
    """One candidate feature: its column, the mart it comes from, numerical or categorical."""

    name: FeatureName
    mart: Literal["enterprise", "trends"]
    dtype: Literal["numerical", "categorical"] = "numerical"


class SampleSpec(_Model):
    """All defaults plus at most `max_non_defaults` non-defaults, drawn by a seeded hash."""

    max_non_defaults: int = Field(default=400_000, gt=0)
    seed: int = 0


class BinningSpec(_Model):
    """optbinning options shared by every feature."""

    monotonic_trend: Literal[
        "ascending_or_descending", "auto", "auto_heuristic", "auto_asc_desc", "ascending",
        "descending", "peak", "valley", "convex", "concave",
    ] = Field(
        default="ascending_or_descending",
        description="optbinning's trend for numerical features, or `ascending_or_descending`: "
        "each feature binned both ways, keeping the trend with the higher information value.",
    )
    max_n_bins: int = Field(default=6, ge=2)
    min_bin_size: float = Field(default=0.05, gt=0, lt=0.5)
    max_n_prebins: int = Field(default=20, ge=2)
    min_prebin_size: float = Field(
        default=0.05, gt=0, lt=0.5,
        description="Smallest pre-bin (share of the sample): below 0.05 a rare risky tail "
        "(e.g. dpd over 30) can become a bin of its own.",
    )
    split_digits: int = Field(default=4, ge=0, le=8)
    min_iv: float = Field(default=0.02, ge=0)
    max_features: int = Field(
        default=40, ge=1,
        description="At most this many features, those of highest information value.",
    )


class LogisticSpec(_Model):
    C: float = Field(default=1.0, gt=0)
    max_iter: int = Field(default=1000, ge=10)
    # Newton-Cholesky: few features, many rows; converges in a handful of iterations.
    solver: Literal["newton-cholesky", "lbfgs"] = "newton-cholesky"


class ScalingSpec(_Model):
    """score = offset - factor * log-odds; `odds` good:bad scores `base_points`."""

    pdo: float = Field(default=20, gt=0)
    odds: float = Field(default=50, gt=0)
    base_points: float = 600


class ChampionChallengerSpec(_Model):
    """A challenger is promoted when its OOT AUC >= the champion's on the same window - drop."""

    metric: Literal["auc_oot"] = "auc_oot"
    max_auc_drop: float = Field(default=0.0, ge=0, le=0.5)


class ScorecardSpec(_Model):
    """The whole file."""

    model_config = ConfigDict(frozen=True, extra="forbid", title="PD scorecard specification")

    version: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z._-]+$")] = "1"
    min_defaults: int = Field(default=50, ge=1)
    holdout_months: int = Field(default=12, ge=1, le=36)
    min_holdout_months: int = Field(default=6, ge=1, le=36)
    min_train_months: int = Field(default=6, ge=1, le=36)
    train_months: int | None = Field(default=36, ge=6)
    history_warmup_months: int = Field(default=12, ge=0, le=36)
    max_missing_excess: float = Field(default=0.5, ge=0, le=1)
    sample: SampleSpec = SampleSpec()
    binning: BinningSpec = BinningSpec()
    logistic_regression: LogisticSpec = LogisticSpec()
    scaling: ScalingSpec = ScalingSpec()
    champion_challenger: ChampionChallengerSpec = ChampionChallengerSpec()
    calibration_bands: int = Field(default=10, ge=2, le=50)
    features: tuple[FeatureSpec, ...] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique_features(self) -> ScorecardSpec:
        names = [f.name for f in self.features]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"features listed twice: {', '.join(dup)}")
        return self

    @model_validator(mode="after")
    def _no_network_on_red(self) -> ScorecardSpec:
        bad = [f.name for f in self.features if NETWORK_ON_RED.search(f.name)]
        if bad:
            raise ValueError(
                f"features {', '.join(bad)}: another firm on red (by a hard trigger or by its "
                "PD from this scorecard) is never a candidate: the PD would depend on other "
                "firms' PDs"
            )
        return self

    @model_validator(mode="after")
    def _holdout_floor(self) -> ScorecardSpec:
        if self.min_holdout_months > self.holdout_months:
            raise ValueError(
                f"min_holdout_months ({self.min_holdout_months}) is above holdout_months "
                f"({self.holdout_months})"
            )
        return self

    def feature(self, name: str) -> FeatureSpec:
        for f in self.features:
            if f.name == name:
                return f
        raise KeyError(name)

    @property
    def categorical(self) -> list[str]:
        return [f.name for f in self.features if f.dtype == "categorical"]


def parse_spec(data: object, source: str = "<scorecard spec>") -> ScorecardSpec:
    """Validate a mapping; errors name the source and the field path."""
    try:
        return ScorecardSpec.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors()
        )
        raise SpecError(f"{source}: {problems}") from None


def load_spec(path: Path | str | None = None) -> ScorecardSpec:
    """Read and validate scorecard.yml (default: the one beside this module)."""
    path = Path(path) if path else SPEC_PATH
    data = read_yaml(path, SpecError)
    return parse_spec(data, source=str(path))
