"""The landing-zone contract (data-contract.md section 1) as data: one place for every rule.

Everything that needs a contract rule reads it from here: the DuckDB ingestion (which turns
each rule into a SQL predicate), the pandera schemas (built from the same specs), the
synthetic generator and the tests. Change a rule here and every consumer follows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Literal

# --- Unified social credit code (GB 32100-2015) -------------------------------------------

USCC_ALPHABET = "0123456789ABCDEFGHJKLMNPQRTUWXY"
USCC_WEIGHTS = (1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28)


def uscc_check_char(first17: str) -> str:
    """Check character for the first 17 characters of a USCC (31 - sum mod 31; 31 reads 0)."""
    total = sum(USCC_ALPHABET.index(c) * w for c, w in zip(first17, USCC_WEIGHTS, strict=True))
    return USCC_ALPHABET[(31 - total % 31) % 31]


def uscc_valid_sql(v: str) -> str:
    """DuckDB SQL for "v is a valid USCC": alphabet, length 18 and the GB 32100 check character.

    The same rule as `is_valid_uscc`, for the ingestion and for row rules that check a code
    only on some rows (a guarantor's id when guarantor_type = 'enterprise').
    """
    terms = " + ".join(
        f"(strpos('{USCC_ALPHABET}', substr({v}, {i + 1}, 1)) - 1) * {w}"
        for i, w in enumerate(USCC_WEIGHTS)
    )
    check = f"substr('{USCC_ALPHABET}', ((31 - (({terms}) % 31)) % 31) + 1, 1)"
    return f"(regexp_full_match({v}, '[{USCC_ALPHABET}]{{18}}') AND substr({v}, 18, 1) = {check})"


def is_valid_uscc(code: str | None) -> bool:
    """True when `code` is 18 characters from the alphabet with a correct check character."""
    if code is None or len(code) != 18 or any(c not in USCC_ALPHABET for c in code):
        return False
    return uscc_check_char(code[:17]) == code[17]


# --- Column and table specs ----------------------------------------------------------------

Kind = Literal["text", "uscc", "date", "month", "money", "decimal", "int", "enum"]

#: DuckDB type each kind is stored as in `raw`. Money is exact to the fen, never DOUBLE.
SQL_TYPES: dict[str, str] = {
    "text": "VARCHAR",
    "uscc": "VARCHAR",
    "date": "DATE",
    "month": "VARCHAR",  # 'YYYY-MM' as delivered; staging derives period start/end dates
    "money": "DECIMAL(18,2)",
    "decimal": "DECIMAL(18,6)",
    "int": "INTEGER",
    "enum": "VARCHAR",
}


# --- Plausibility bounds (every column of a kind, on top of its own rule) -------------------

#: Largest plausible amount of money in any landing column, CNY. An SME bank's largest single
#: figure (registered capital, a loan, a year's revenue) is far below 1e12 CNY (one trillion
#: yuan); beyond it a value is a unit or typing error, and 10,000 such values would overflow
#: the DECIMAL(18,2) of the marts' sums. A row above it is quarantined with column, value and
#: bound in its reason.
MONEY_MAX = 10**12

#: Plausible dates in any landing date column: from the founding of the People's Republic
#: (1949-10-01) to the end of 2100. Outside it a date is a typing or default-value error
#: (0001-01-01, 9999-12-31) and is quarantined.
DATE_MIN = date(1949, 10, 1)
DATE_MAX = date(2100, 12, 31)


@dataclass(frozen=True)
class Column:
    """One landing column and its rule. `nullable` columns may also be absent from a file."""

    name: str
    kind: Kind = "text"
    nullable: bool = False
    values: tuple[str, ...] = ()  # allowed values for kind='enum'
    ge: float | None = None  # inclusive lower bound
    gt: float | None = None  # exclusive lower bound
    le: float | None = None  # inclusive upper bound
    lt: float | None = None  # exclusive upper bound
    pattern: str | None = None  # regular expression the text must fully match
    pii: bool = False  # personal data: stays in raw, never in metadata, logs or past staging
    #: For a pii column: the raw column ingestion fills with a keyed hash (HMAC-SHA256) of the
    #: value, so models can tell "same person" without seeing who (`assets.core.secrets`).
    pseudonym: str | None = None

    @property
    def sql_type(self) -> str:
        return SQL_TYPES[self.kind]

    def rule_text(self) -> str:
        """Plain-language rule, used in quarantine reasons and docs."""
        parts: list[str] = []
        if self.kind == "enum":
            parts.append("one of " + "/".join(self.values))
        elif self.kind == "uscc":
            parts.append("an 18-character USCC with a valid check character")
        elif self.kind == "date":
            parts.append("an ISO date YYYY-MM-DD")
        elif self.kind == "month":
            parts.append("a month YYYY-MM")
        elif self.kind in ("money", "decimal"):
            parts.append("a decimal number")
        elif self.kind == "int":
            parts.append("a whole number")
        bounds = [
            f"{op} {bound:g}"
            for op, bound in ((">=", self.ge), (">", self.gt), ("<=", self.le), ("<", self.lt))
            if bound is not None
        ]
        if bounds:
            parts.append(" and ".join(bounds))
        if self.pattern:
            parts.append(f"matching {self.pattern}")
        return " ".join(parts) if parts else "text"


@dataclass(frozen=True)
class RowRule:
    """A rule across columns of one row, as a SQL predicate that must hold (NULLs pass)."""

    rule_id: str
    sql: str
    text: str


@dataclass(frozen=True)
class Table:
    name: str
    primary_key: tuple[str, ...]
    columns: tuple[Column, ...]
    foreign_keys: tuple[tuple[str, str], ...] = ()  # (column, parent table); parent PK same name
    row_rules: tuple[RowRule, ...] = ()
    description: str = ""
    depends_on: tuple[str, ...] = field(default=())

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def pii_columns(self) -> tuple[str, ...]:
        """Personal data: never shown in previews, metadata, logs or past staging."""
        return tuple(c.name for c in self.columns if c.pii)

    @property
    def pseudonym_columns(self) -> dict[str, str]:
        """{raw column ingestion computes: the pii column it is the keyed hash of}."""
        return {c.pseudonym: c.name for c in self.columns if c.pseudonym}

    @property
    def required_columns(self) -> tuple[str, ...]:
        """Columns a file must carry; nullable ones may be absent (read as all NULL)."""
        return tuple(c.name for c in self.columns if not c.nullable)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


INDUSTRY_SECTIONS = tuple("ABCDEFGHIJKLMNOPQRST")  # GB/T 4754 sections A-T
PRODUCTS = (
    "tax_credit_loan",
    "guarantee_fund_loan",
    "mortgage_loan",
    "working_capital_loan",
    "equipment_loan",
)
PURPOSES = (
    "working_capital",
    "equipment_purchase",
    "raw_materials",
    "expansion",
    "refinancing",
    "other",
)
EVENT_TYPES = (
    "legal_rep_change",
    "shareholder_change",
    "registered_capital_change",
    "address_change",
    "abnormal_operation_listed",
    "abnormal_operation_removed",
    "court_judgment_defendant",
    "enforcement_listed",
    "dishonest_debtor_listed",
    "admin_penalty",
    "equity_pledge",
    "status_change",
)
COUNTERPARTY_TYPES = (
    "supplier",
    "payroll",
    "tax",
    "utility",
    "own_account",
    "related_party",
    "individual",
    "real_estate",
    "securities",
    "other_loan_repayment",
    "cash",
)

GUARANTOR_TYPES = ("government_fund", "enterprise", "individual")
RELATIONS = (
    "shareholder_of",
    "subsidiary_of",
    "same_legal_rep",
    "same_controller",
    "major_supplier",
    "major_customer",
)
#: Relations that read the same both ways: a link and its reverse are one link.
UNDIRECTED_RELATIONS = ("same_legal_rep", "same_controller")

_ENTERPRISE_FK = (("enterprise_id", "enterprises"),)
_LOAN_FK = (("loan_id", "loans"),)


def _uscc(name: str = "enterprise_id") -> Column:
    return Column(name, "uscc")


def _uscc_optional(name: str) -> Column:
    """A credit code that may be empty, or absent from a file (an extension column)."""
    return Column(name, "uscc", nullable=True)


TABLES: dict[str, Table] = {
    t.name: t
    for t in (
        Table(
            "enterprises",
            ("enterprise_id",),
            (
                _uscc(),
                Column("name"),
                Column("industry_code", "enum", values=INDUSTRY_SECTIONS),
                Column("region_code", pattern=r"[0-9]{6}"),
                Column("established_date", "date"),
                Column("registered_capital", "money", ge=0),
                Column("employees", "int", nullable=True, ge=0),
                Column("size_class", "enum", nullable=True, values=("micro", "small", "medium")),
                Column("status", "enum", values=("active", "suspended", "revoked", "cancelled")),
                Column("legal_rep_name", pii=True),
                Column("legal_rep_id_number", pii=True, pseudonym="legal_rep_key"),
            ),
            description="Enterprise registry: one row per borrower or applicant.",
        ),
        Table(
            "registry_events",
            ("event_id",),
            (
                Column("event_id"),
                _uscc(),
                Column("event_date", "date"),
                Column("event_type", "enum", values=EVENT_TYPES),
                Column("amount", "money", nullable=True, ge=0),
                Column("description", nullable=True),
            ),
            foreign_keys=_ENTERPRISE_FK,
            description="Registry, court and administrative events about an enterprise.",
        ),
        Table(
            "tax_filings",
            ("enterprise_id", "period", "tax_type"),
            (
                _uscc(),
                Column("period", "month"),
                Column("tax_type", "enum", values=("vat", "cit")),
                Column("taxable_revenue", "money", ge=0),
                Column("tax_payable", "money", ge=0),
                Column("tax_paid", "money", ge=0),
                Column("filed_date", "date", nullable=True),
            ),
            foreign_keys=_ENTERPRISE_FK,
            description="Monthly VAT and quarterly CIT filings.",
        ),
        Table(
            "tax_ratings",
            ("enterprise_id", "year"),
            (
                _uscc(),
                Column("year", "int", ge=1900, le=2999),
                Column("rating", "enum", values=("A", "B", "M", "C", "D")),
            ),
            foreign_keys=_ENTERPRISE_FK,
            description="Annual tax credit rating (A best, D worst).",
        ),
        Table(
            "utility_bills",
            ("enterprise_id", "period", "utility"),
            (
                _uscc(),
                Column("period", "month"),
                Column("utility", "enum", values=("electricity", "water", "gas")),
                Column("consumption", "decimal", ge=0),
                Column("amount_billed", "money", ge=0),
                Column("amount_paid", "money", ge=0),
                Column("paid_date", "date", nullable=True),
            ),
            foreign_keys=_ENTERPRISE_FK,
            description="Monthly electricity, water and gas bills.",
        ),
        Table(
            "loans",
            ("loan_id",),
            (
                Column("loan_id"),
                _uscc(),
                Column("branch_id"),
                Column("product", "enum", values=PRODUCTS),
                Column("purpose", "enum", values=PURPOSES),
                Column("contract_date", "date"),
                Column("disbursement_date", "date"),
                Column("maturity_date", "date"),
                Column("principal", "money", gt=0),
                Column("annual_rate", "decimal", gt=0, lt=0.36),
                Column(
                    "repayment_method", "enum", values=("equal_installment", "interest_only_bullet")
                ),
                Column(
                    "collateral_type",
                    "enum",
                    values=("none", "real_estate", "equipment", "receivables", "deposit"),
                ),
                Column("collateral_value", "money", nullable=True, ge=0),
                Column(
                    "guarantee_type",
                    "enum",
                    values=("none", "government_fund", "third_party_company", "personal"),
                ),
                Column("guarantee_ratio", "decimal", ge=0, le=1),
                Column("officer_id", nullable=True),
            ),
            foreign_keys=_ENTERPRISE_FK,
            row_rules=(
                RowRule(
                    "loan_date_order",
                    "contract_date <= disbursement_date AND disbursement_date <= maturity_date",
                    "contract_date <= disbursement_date <= maturity_date",
                ),
            ),
            description="Loan contracts.",
        ),
        Table(
            "repayment_schedule",
            ("loan_id", "installment_no"),
            (
                Column("loan_id"),
                Column("installment_no", "int", ge=1),
                Column("due_date", "date"),
                Column("principal_due", "money", ge=0),
                Column("interest_due", "money", ge=0),
            ),
            foreign_keys=_LOAN_FK,
            description="Contractual installments of each loan.",
        ),
        Table(
            "repayments",
            ("payment_id",),
            (
                Column("payment_id"),
                Column("loan_id"),
                Column("payment_date", "date"),
                Column("amount", "money", gt=0),
            ),
            foreign_keys=_LOAN_FK,
            description="Payments received on loans.",
        ),
        Table(
            "fund_flows",
            ("flow_id",),
            (
                Column("flow_id"),
                Column("loan_id"),
                Column("txn_date", "date"),
                Column("amount", "money", gt=0),
                Column("counterparty_type", "enum", values=COUNTERPARTY_TYPES),
                Column("counterparty_id", nullable=True),
            ),
            foreign_keys=_LOAN_FK,
            description="Where disbursed loan money went (supervision of loan-fund use).",
        ),
        Table(
            "loan_applications",
            ("application_id",),
            (
                Column("application_id"),
                _uscc(),
                Column("application_date", "date"),
                Column("requested_amount", "money", gt=0),
                Column("requested_term_months", "int", ge=1, le=120),
                Column("requested_product", "enum", nullable=True, values=PRODUCTS),
                Column("purpose", "enum", values=PURPOSES),
                # extension (issue 13): an enterprise offered as guarantor; may be absent
                _uscc_optional("offered_guarantor_id"),
            ),
            foreign_keys=_ENTERPRISE_FK,
            description="Loan applications awaiting a pre-lending decision.",
        ),
        Table(
            "guarantees",
            ("guarantee_id",),
            (
                Column("guarantee_id"),
                Column("loan_id"),
                Column("guarantor_type", "enum", values=GUARANTOR_TYPES),
                Column("guarantor_id"),
                Column("guaranteed_amount", "money", gt=0),
                Column("start_date", "date"),
                Column("end_date", "date", nullable=True),
            ),
            foreign_keys=_LOAN_FK,
            row_rules=(
                RowRule(
                    "guarantor_credit_code",
                    "guarantor_type <> 'enterprise' OR " + uscc_valid_sql("guarantor_id"),
                    "guarantor_id is an 18-character USCC with a valid check character "
                    "when guarantor_type is enterprise",
                ),
                RowRule(
                    "guarantee_date_order",
                    "start_date <= end_date",
                    "start_date <= end_date",
                ),
            ),
            description="Guarantees of loans: who guarantees how much, from when to when.",
        ),
        Table(
            "enterprise_links",
            ("enterprise_id", "related_id", "relation"),
            (
                _uscc(),
                _uscc("related_id"),
                Column("relation", "enum", values=RELATIONS),
                Column("share", "decimal", nullable=True, ge=0, le=1),
                Column("valid_from", "date"),
                Column("valid_to", "date", nullable=True),
            ),
            foreign_keys=_ENTERPRISE_FK,
            row_rules=(
                RowRule(
                    "link_date_order",
                    "valid_from <= valid_to",
                    "valid_from <= valid_to",
                ),
            ),
            description="Related parties: shareholders, subsidiaries, common control, trade.",
        ),
    )
}

#: Load order: parents before children, so foreign keys can be checked.
LOAD_ORDER: tuple[str, ...] = tuple(TABLES)

#: Lineage columns ingestion adds to every raw table (not part of the landing contract).
LINEAGE_COLUMNS: dict[str, str] = {
    "_source_file": "VARCHAR",
    "_source_row": "BIGINT",
    "_file_mtime": "TIMESTAMP",
}


def raw_table_ddl(table: Table, schema: str = "raw") -> str:
    """CREATE TABLE statement for a raw table: contract columns, then lineage columns."""
    cols = [f'"{c.name}" {c.sql_type}' for c in table.columns]
    cols += [f'"{name}" VARCHAR' for name in table.pseudonym_columns]
    cols += [f"{name} {typ}" for name, typ in LINEAGE_COLUMNS.items()]
    return f"CREATE TABLE IF NOT EXISTS {schema}.{table.name} (\n  " + ",\n  ".join(cols) + "\n)"


def pandera_schema(table_name: str):  # -> pandera.polars.DataFrameSchema
    """A pandera (polars backend) schema for typed rows of `table_name`, built from the spec.

    Used to validate generator output and to cross-check the SQL quarantine rules: both are
    derived from the same Column specs above.
    """
    import pandera.polars as pa
    import polars as pl

    table = TABLES[table_name]
    dtypes = {
        "text": pl.Utf8,
        "uscc": pl.Utf8,
        "enum": pl.Utf8,
        "month": pl.Utf8,
        "date": pl.Date,
        "money": pl.Decimal(18, 2),
        "decimal": pl.Decimal(18, 6),
        "int": pl.Int32,
    }
    columns = {}
    for c in table.columns:
        checks = []
        if c.kind == "enum":
            checks.append(pa.Check.isin(list(c.values)))
        if c.kind == "uscc":
            checks.append(pa.Check.str_matches(f"^[{USCC_ALPHABET}]{{18}}$"))
            checks.append(
                pa.Check(
                    lambda data: data.lazyframe.select(
                        pl.col(data.key).map_elements(is_valid_uscc, return_dtype=pl.Boolean)
                    ),
                    name="uscc_check_character",
                )
            )
        if c.kind == "month":
            checks.append(pa.Check.str_matches(r"^[0-9]{4}-(0[1-9]|1[0-2])$"))
        if c.pattern:
            checks.append(pa.Check.str_matches(f"^{c.pattern}$"))
        for name, bound in (("ge", c.ge), ("gt", c.gt), ("le", c.le), ("lt", c.lt)):
            if bound is not None:
                checks.append(getattr(pa.Check, name)(bound))
        if c.kind == "money":
            checks.append(pa.Check.le(MONEY_MAX))
        if c.kind == "date":
            checks.append(pa.Check.in_range(DATE_MIN, DATE_MAX))
        columns[c.name] = pa.Column(dtypes[c.kind], checks=checks, nullable=c.nullable)

    def frame_check(rule: RowRule):  # -> pandera.polars.Check
        expr = _polars_row_rule(rule.rule_id).fill_null(True)
        return pa.Check(lambda data: data.lazyframe.select(expr), name=rule.rule_id)

    frame_checks = [frame_check(rule) for rule in table.row_rules]
    return pa.DataFrameSchema(
        columns, checks=frame_checks, unique=list(table.primary_key), name=table_name
    )


def _polars_row_rule(rule_id: str):  # -> polars.Expr
    """The row rule `rule_id` as a polars expression (pandera's frame check), the same rule
    as its SQL in TABLES."""
    import polars as pl

    if rule_id == "loan_date_order":
        return (pl.col("contract_date") <= pl.col("disbursement_date")) & (
            pl.col("disbursement_date") <= pl.col("maturity_date")
        )
    if rule_id == "guarantor_credit_code":
        return (pl.col("guarantor_type") != "enterprise") | pl.col("guarantor_id").map_elements(
            is_valid_uscc, return_dtype=pl.Boolean
        )
    if rule_id == "guarantee_date_order":
        return pl.col("start_date") <= pl.col("end_date")
    if rule_id == "link_date_order":
        return pl.col("valid_from") <= pl.col("valid_to")
    raise KeyError(f"no polars form of row rule {rule_id}")
