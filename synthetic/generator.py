"""Synthetic landing-zone generator (`risk generate`).

Writes a landing directory that follows docs/data-contract.md section 1 exactly, with
ground truth beside it (`<out>_truth/`, columns in `synthetic.truth`) so back-tests know
what the models should find: distressed firms (decline, arrears, missing filings, court
events, stopped repayments, some recover) at different speeds (sudden defaults with no
precursor, fast, normal, slow over years), loan-fund diverters, an industry downturn and
bullet loans whose weakened borrowers cannot repay principal at maturity. The book is
calibrated like a real SME portfolio: ~4-6% of firms fall into distress (the downturn
industry clearly more), ~4-8% of loans ever default and the NPL ratio stays in the low
single digits, because the bank recovers defaulted loans: collateral sales and guarantee
claims settle secured loans 4-12 months after the default, unsecured ones get partial
recoveries (truth `loans.parquet`: recovery_date, recovery_type, recovery_amount). Loan
applications span the whole window so pre-lending screening can be back-tested: ~40% of the
loans contracted in the window have their application a few days to weeks earlier, other
firms apply and get no loan (more of them in or just before distress), and pending
applications fill the last 90 days; truth `applications.parquet` labels each on what was
known at its date and adds the later default outcome.

Healthy firms are not clean: besides the Chinese New Year dip and month-to-month noise, the
benign noise of `synthetic.noise` (on by default, each kind configurable with
`generate(..., noise=NoiseConfig(...))` and recorded in the truth) has firms that pay
installments, bills and tax late now and then, ratings that drift a notch and back, firms
shrinking for years, strongly seasonal businesses, one bad quarter, and modest related-party
and cash flows after disbursement, so a back-test on this data does not flatter the engine.

Everything is vectorised with numpy and generated in chunks of enterprises: each chunk is
written as its own file per table, so memory stays bounded at any scale. Money is computed
in integer fen and written as cents-exact numbers. Same arguments -> same files.

One module per concern, each adding its tables to a `common.Chunk` (`build_chunk` runs them
in order; they share the chunk's random stream, so the order is part of the output):
`firms` (enterprises, latent story, monthly revenue), `loans` (loans, schedules, repayments,
default days, recoveries), `network` (guarantees, related-party links, loan officers and
contagion between guarantors and related firms; `NetworkConfig`, on by default), `tax`,
`utility`, `events` (registry events), `fund_flows`, `applications` and `truth`; `noise`
holds the noise settings, `common` the shared helpers.
This module is the entry point: `generate` and the `GenerationSummary` it returns.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import polars as pl

from assets.contract import TABLES
from synthetic import (
    applications,
    events,
    firms,
    fund_flows,
    loans,
    network,
    tax,
    truth,
    utility,
)
from synthetic.calendar import Calendar
from synthetic.common import (
    BIG,
    DOWNTURN_INDUSTRY,
    DOWNTURN_MONTHS_BEFORE_END,
    Chunk,
    uscc_codes,
)
from synthetic.firms import BASE_DISTRESS_P, DOWNTURN_DISTRESS_P
from synthetic.fund_flows import DIVERTING_COUNTERPARTIES, NORMAL_COUNTERPARTIES
from synthetic.loans import RECOVERY_TYPES
from synthetic.network import NetworkConfig
from synthetic.noise import NoiseConfig

__all__ = [
    "BASE_DISTRESS_P",
    "BIG",
    "CHUNK_SIZE",
    "DIVERTING_COUNTERPARTIES",
    "DOWNTURN_DISTRESS_P",
    "DOWNTURN_INDUSTRY",
    "DOWNTURN_MONTHS_BEFORE_END",
    "NORMAL_COUNTERPARTIES",
    "NetworkConfig",
    "NoiseConfig",
    "RECOVERY_TYPES",
    "GenerationSummary",
    "build_chunk",
    "generate",
    "uscc_codes",
]

CHUNK_SIZE = 50_000


@dataclass
class GenerationSummary:
    """What `generate` wrote: rows per table, wall seconds, the landing and truth paths."""

    out_dir: Path
    truth_dir: Path
    rows: dict[str, int]
    seconds: float
    files: dict[str, list[Path]] = field(default_factory=dict)

    @property
    def total_rows(self) -> int:
        return sum(self.rows.values())

    def __str__(self) -> str:
        """Compact report for the CLI (the repr lists every file)."""
        lines = [f"wrote {self.out_dir} in {self.seconds:.1f}s (ground truth: {self.truth_dir})"]
        lines += [f"  {t:<20} {n:>13,}" for t, n in self.rows.items()]
        lines.append(f"  {'total':<20} {self.total_rows:>13,}")
        return "\n".join(lines)


def build_chunk(
    cal: Calendar, seed: int, chunk_no: int, offset: int, n: int,
    noise: NoiseConfig | None = None, network_config: NetworkConfig | None = None,
) -> Chunk:  # fmt: skip
    """Generate every table of enterprises [offset, offset + n) and their ground truth."""
    ch = Chunk(cal, seed, chunk_no, offset, n, noise, network_config)
    firms.build_enterprises(ch)
    loans.build_loans(ch)
    network.build(ch)  # guarantees, links, officers; contagion changes the stories
    firms.build_revenue(ch)
    tax.build(ch)
    utility.build(ch)
    events.build(ch)
    loans.build_repayments(ch)
    fund_flows.build(ch)
    applications.build(ch)
    truth.build(ch)
    return ch


# --- writing -----------------------------------------------------------------------------


def _write(df: pl.DataFrame, path: Path, fmt: str) -> None:
    table = TABLES[path.parent.name]
    # every contract column the chunk made (nullable ones may be absent: loans.officer_id
    # without the network)
    df = df.select([c for c in table.column_names if c in df.columns])
    if fmt == "csv":
        df.write_csv(path)
    else:
        df.write_parquet(path, compression="zstd", statistics=True)


def generate(
    out_dir: Path,
    n_enterprises: int,
    seed: int,
    fmt: str = "csv",
    end_month: str = "2026-10",
    months: int = 36,
    files_per_table: int | None = None,
    *,
    noise: NoiseConfig | None = None,
    network_config: NetworkConfig | None = None,
) -> GenerationSummary:
    """Write a contract-conformant landing directory to `out_dir` and ground truth to
    `<out_dir>_truth/`; deterministic for the same arguments.

    Enterprises are generated in chunks (CHUNK_SIZE, or n / files_per_table when given), one
    file per table per chunk, each chunk with its own random stream seeded by (seed, chunk):
    the chunking is part of "the same arguments". Previous `part-*` files in the table
    folders are replaced. Tax filings and utility payments may be dated up to 20 days after
    the end month (the delivery date); loan payments, fund flows, events, applications and
    disbursements never after its last day. Truth files: enterprises, loans, applications
    (parquet) and meta.json (window, CNY months, downturn industry and start, noise
    settings); their columns are documented in `synthetic.truth`.

    `noise` sets the benign noise (`synthetic.noise.NoiseConfig`; default: every kind on at
    its documented share; `NoiseConfig.off()` for none). It is drawn from its own random
    stream, so switching one kind off leaves the firms' stories and the other kinds as they
    were.

    `network_config` sets the guarantee and related-party network and its contagion
    (`synthetic.network.NetworkConfig`; default on; `NetworkConfig.off()` writes what the
    generator wrote before: no guarantees or links, no officer_id, the same stories). It is
    drawn from its own random stream.
    """
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"fmt must be 'csv' or 'parquet', got {fmt!r}")
    if n_enterprises < 1:
        raise ValueError("n_enterprises must be at least 1")
    t0 = time.perf_counter()
    noise = NoiseConfig() if noise is None else noise
    network_config = NetworkConfig() if network_config is None else network_config
    out_dir = Path(out_dir)
    truth_dir = out_dir.parent / (out_dir.name + "_truth")
    cal = Calendar(end_month, months)
    chunk = CHUNK_SIZE if files_per_table is None else math.ceil(n_enterprises / files_per_table)
    n_chunks = math.ceil(n_enterprises / chunk)

    for name in TABLES:
        folder = out_dir / name
        folder.mkdir(parents=True, exist_ok=True)
        for old in folder.glob("part-*"):
            old.unlink()
    truth_dir.mkdir(parents=True, exist_ok=True)

    rows = dict.fromkeys(TABLES, 0)
    files: dict[str, list[Path]] = {name: [] for name in TABLES}
    truth: dict[str, list[pl.DataFrame]] = {}
    for c in range(n_chunks):
        offset = c * chunk
        ch = build_chunk(
            cal, seed, c, offset, min(chunk, n_enterprises - offset), noise, network_config
        )
        for name, df in ch.tables.items():
            path = out_dir / name / f"part-{c:05d}.{fmt}"
            _write(df, path, fmt)
            rows[name] += df.height
            files[name].append(path)
        for name, df in ch.truth.items():
            truth.setdefault(name, []).append(df)
        del ch

    for name, parts in truth.items():
        pl.concat(parts).write_parquet(truth_dir / f"{name}.parquet")
    meta = {
        "seed": seed,
        "n_enterprises": n_enterprises,
        "end_month": end_month,
        "months": months,
        "window": [cal.label(0), cal.label(months - 1)],
        "downturn_industry": DOWNTURN_INDUSTRY,
        "downturn_start_month": cal.label(months - DOWNTURN_MONTHS_BEFORE_END),
        "cny_months": [cal.label(int(m)) for m in np.nonzero(
            cal.cny_month_mask(np.arange(months)))[0]],
        "diverting_counterparties": list(DIVERTING_COUNTERPARTIES),
        "snapshot_date": str(np.datetime64(cal.end_day + 20, "D")),
        "rows": rows,
        "noise": noise.as_dict(),
        "network": network_config.as_dict(),
    }  # fmt: skip
    (truth_dir / "meta.json").write_text(json.dumps(meta, indent=2))
    return GenerationSummary(
        out_dir=out_dir,
        truth_dir=truth_dir,
        rows=rows,
        seconds=time.perf_counter() - t0,
        files=files,
    )
