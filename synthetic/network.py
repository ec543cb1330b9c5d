"""Risk that travels: guarantees, related parties and contagion (issue 13).

`NetworkConfig` switches the network on (the default) or off (`NetworkConfig.off()`). Off,
the generator writes what it wrote before the network existed, byte for byte: no
`guarantees` or `enterprise_links` rows, no `loans.officer_id` column, the same stories. On,
`build` runs right after the loans and, from its own random stream (seeded by
(seed, chunk, 2)), within each chunk of enterprises:

- **Guarantee circles**: `circles` (0.04) of the borrowers are cut into circles of 2-8 firms
  (a third mutual pairs); each member guarantees every loan of the next member, so the
  guarantee graph guarantor -> borrower has a cycle through them. Their loans become
  `third_party_company` with a guaranteed ratio of 50-100%.
- **Enterprise guarantors, chains**: every other `third_party_company` loan is guaranteed by
  a firm of the book (65%; a firm earlier in a random order of the chunk, so these never
  close a cycle, and a guarantor may itself be guaranteed: chains and trees) or by a firm
  outside the book (35%: a valid credit code with region 000000, in no `enterprises` file).
  Most borrowers have no guarantor or one.
- **Government funds**: every `guarantee_fund_loan` (`guarantee_type` government_fund) is
  guaranteed by the fund of its region, `GF` + region code, for its `guarantee_ratio`.
- **Individuals**: `personal` loans, and 10% of the enterprise-guaranteed ones as a second
  guarantor, by a person known only by a pseudonymous key (`P` + 16 hex digits).
- Guarantees start on the contract date and end 0-24 months after the loan's maturity (the
  guarantee period), except that `open_share` (0.7) of those on loans still running at the
  delivery have no end (open); 5% were released early (1-12 months after the start).
- **Related parties**: `groups` (0.08) of the firms form groups of 2-5: the parent is
  `shareholder_of` each member (share 20-100%; the member is `subsidiary_of` the parent
  when the share exceeds half), consecutive members have the `same_controller` (delivered
  once, or both ways 30% of the time), a fifth of the groups share a legal representative
  (`same_legal_rep`); `trade` (0.05) of the firms are a `major_supplier` or
  `major_customer` of another firm (30% outside the book). Links are valid from before the
  window; 10% end inside it.
- **Officers**: every loan gets a relationship manager of its branch (`officer_id`
  branch + `-RM` + 2 digits, null 5% of the time).
- **Contagion** (the ground truth): a firm of the chunk that defaults in the window
  (distressed and not recovering, or a defaulting diverter; its default month taken as its
  stop month + 3) raises the distress hazard of the firms that guarantee its loans
  (`contagion_circle` 0.5 for a circle member's guarantor, `contagion_guarantor` 0.25 for
  other guarantors) and of its close related parties (`contagion_related` 0.15: parent,
  members, same controller): a healthy firm hit falls into distress (normal speed, no
  recovery) 1-6 months after the default, if that is at least three months before the end
  of the window. Three rounds: a contagion default can spread further. Truth
  `contagion.parquet`: enterprise_id, source_enterprise_id, channel (guarantee_circle /
  guarantee / related_party), source_default_month, distress_start_month; truth
  `guarantee_circles.parquet`: enterprise_id, circle_no (unique over chunks), circle_size.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import polars as pl

from synthetic import noise as noise_mod
from synthetic.common import BIG, dates, money, randint, uscc_codes

if TYPE_CHECKING:
    from synthetic.common import Chunk

#: Sizes of guarantee circles and their odds (a third are mutual pairs).
CIRCLE_SIZES = np.array([2, 3, 4, 5, 6, 7, 8])
CIRCLE_P = np.array([0.34, 0.22, 0.16, 0.11, 0.08, 0.05, 0.04])
CHANNELS = ("guarantee_circle", "guarantee", "related_party")
CONTAGION_ROUNDS = 3


@dataclass(frozen=True)
class NetworkConfig:
    """Shares of the guarantee and related-party network (see the module docstring)."""

    enabled: bool = True
    circles: float = 0.04
    outside_guarantor: float = 0.35
    open_share: float = 0.7
    groups: float = 0.08
    trade: float = 0.05
    contagion_circle: float = 0.5
    contagion_guarantor: float = 0.25
    contagion_related: float = 0.15

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "enabled" and not 0.0 <= value <= 1.0:
                raise ValueError(f"NetworkConfig.{f.name} must be a share in [0, 1], got {value}")

    @classmethod
    def off(cls) -> NetworkConfig:
        """No network: the generator's output as before issue 13."""
        return cls(enabled=False)

    def as_dict(self) -> dict[str, float | bool]:
        return dataclasses.asdict(self)


def _outside_codes(rng: np.random.Generator, k: int) -> np.ndarray:
    """k valid credit codes of firms outside the book (region 000000: no book firm has it)."""
    first17 = np.zeros((k, 17), dtype=np.int64)
    first17[:, 0], first17[:, 1] = 9, 1
    first17[:, 8:] = rng.integers(0, 31, (k, 9))
    return uscc_codes(first17)


def _person_keys(seed: int, numbers: np.ndarray) -> pl.Series:
    """Pseudonymous person keys: P + 16 hex digits of a bijective mix of (seed, number)."""
    x = (numbers.astype(np.uint64) + np.uint64(seed % 2**32) * np.uint64(0x9E3779B1)) * np.uint64(
        0xBF58476D1CE4E5B9
    )
    x ^= x >> np.uint64(31)
    return pl.Series([f"P{v:016x}" for v in x.tolist()], dtype=pl.String)


def build(ch: Chunk) -> None:
    """Landing `guarantees`, `enterprise_links`, `loans.officer_id`; contagion in the stories."""
    cfg = ch.network
    if not cfg.enabled:
        return
    rng = np.random.default_rng([ch.seed, ch.chunk_no, 2])
    f, lo, cal, n, M = ch.firms, ch.loans, ch.cal, ch.n, ch.M
    loan_firm = lo["firm"]
    L = len(loan_firm)
    loans_df = ch.tables["loans"]
    ratio = loans_df["guarantee_ratio"].to_numpy().astype(np.float64)
    guar = lo["guar"].copy()

    # --- guarantee circles among borrowers -------------------------------------------------
    borrower = np.zeros(n, dtype=bool)
    borrower[loan_firm] = True
    cand = np.nonzero(borrower & (rng.random(n) < cfg.circles))[0]
    cand = cand[rng.permutation(len(cand))]
    sizes = rng.choice(CIRCLE_SIZES, size=max(len(cand), 1), p=CIRCLE_P)
    ends = np.cumsum(sizes)
    n_groups = int(np.searchsorted(ends, len(cand), side="right"))
    used = int(ends[n_groups - 1]) if n_groups else 0
    cand = cand[:used]
    group = np.repeat(np.arange(n_groups), sizes[:n_groups])
    starts = np.repeat(ends[:n_groups] - sizes[:n_groups], sizes[:n_groups])
    pos = np.arange(used) - starts
    nxt = cand[starts + (pos + 1) % np.repeat(sizes[:n_groups], sizes[:n_groups])]
    # member cand[i] guarantees every loan of nxt[i]: circle_guarantor[borrower] = guarantor
    circle_guarantor = np.full(n, -1)
    circle_guarantor[nxt] = cand
    circle_no = np.full(n, -1)
    circle_no[cand] = ch.chunk_no * 10**6 + group
    circle_size = np.zeros(n, dtype=np.int64)
    circle_size[cand] = np.repeat(sizes[:n_groups], sizes[:n_groups])

    ch.circle_guarantor = circle_guarantor  # offered guarantors of applications (below)
    in_circle = circle_guarantor[loan_firm] >= 0
    circle_ratio = np.round(rng.uniform(0.5, 1.0, L), 2)
    guar = np.where(in_circle, 2, guar)
    ratio = np.where(in_circle, circle_ratio, ratio)

    # --- other enterprise guarantors (a random order of the chunk: no cycles) ---------------
    rank = rng.permutation(n)
    order = np.argsort(rank)
    pick_u = rng.random(L)
    earlier = order[np.minimum((pick_u * rank[loan_firm]).astype(np.int64), n - 1)]
    outside = (rng.random(L) < cfg.outside_guarantor) | (rank[loan_firm] == 0)
    outside_code = pl.Series(_outside_codes(rng, L))
    ent = (guar == 2) & ~in_circle
    guarantor_firm = np.where(in_circle, circle_guarantor[loan_firm], np.where(ent, earlier, -1))
    book = (in_circle | (ent & ~outside)) & (guarantor_firm != loan_firm)
    second_person = (guar == 2) & (rng.random(L) < 0.10)

    # --- validity --------------------------------------------------------------------------
    u_end = rng.random(L)
    after_mat = randint(rng, 0, 730, L)
    released = randint(rng, 30, 365, L)
    start = lo["contract_day"]
    # a guarantee period of 0-24 months after maturity; open (no end recorded) for
    # `open_share` of the loans still running at the delivery
    running = lo["mat_day"] > ch.snapshot_day
    end = np.where(running & (u_end < cfg.open_share), -1, lo["mat_day"] + after_mat)
    end = np.where(u_end > 0.95, start + released, end)
    principal = lo["principal_c"]
    amount = np.maximum(np.round(principal * ratio), 100).astype(np.int64)

    ids_all = f.ids.to_numpy()
    region = ch.region_code[loan_firm]
    gov = guar == 1
    person = guar == 3
    rows = []

    def add(mask: np.ndarray, gtype: str, gid: pl.Series, amt: np.ndarray) -> None:
        idx = np.nonzero(mask)[0]
        rows.append(
            pl.DataFrame(
                {
                    "loan_id": lo["ids"].gather(idx),
                    "guarantor_type": pl.Series([gtype] * len(idx), dtype=pl.String),
                    "guarantor_id": gid.gather(idx),
                    "guaranteed_amount": money(amt[idx]),
                    "start_date": dates(start[idx]),
                    "end_date": dates(np.where(end[idx] < 0, 0, end[idx]), null=end[idx] < 0),
                    "_order": pl.Series(idx * 4 + len(rows), dtype=pl.Int64),
                }
            )
        )

    book_code = pl.Series(ids_all[np.maximum(guarantor_firm, 0)])
    ent_code = pl.select(
        pl.when(pl.Series(book)).then(book_code).otherwise(outside_code)
    ).to_series()
    add(in_circle | (ent & (guarantor_firm != loan_firm)), "enterprise", ent_code, amount)
    fund = pl.Series(["GF" + str(r) for r in region.tolist()], dtype=pl.String)
    add(gov, "government_fund", fund, amount)
    people = _person_keys(ch.seed, f.gidx[loan_firm])
    add(person, "individual", people, amount)
    add(second_person, "individual", people, np.maximum(amount // 2, 100))
    g = pl.concat(rows).sort("_order").drop("_order")
    ch.tables["guarantees"] = g.select(ch.row_ids("GU", g.height).alias("guarantee_id"), pl.all())

    # --- loans: guarantee type and ratio of circle loans, officers ---------------------------
    officer_no = rng.integers(1, 13, L)
    officer = pl.Series([f"-RM{k:02d}" for k in officer_no.tolist()], dtype=pl.String)
    no_officer = rng.random(L) < 0.05
    ch.tables["loans"] = loans_df.with_columns(
        pl.Series(
            "guarantee_type",
            np.array(["none", "government_fund", "third_party_company", "personal"])[guar],
        ),
        pl.Series("guarantee_ratio", np.where(in_circle, circle_ratio, ratio)),
        pl.when(pl.Series(no_officer))
        .then(None)
        .otherwise(pl.col("branch_id") + officer)
        .alias("officer_id"),
    )
    lo["guar"] = guar

    # --- related parties -------------------------------------------------------------------
    links, rel_src, rel_dst = _links(ch, rng, cfg)
    ch.tables["enterprise_links"] = links

    # --- contagion -------------------------------------------------------------------------
    edge_src = np.concatenate([loan_firm[book], rel_src])  # the defaulting firm
    edge_dst = np.concatenate([guarantor_firm[book], rel_dst])  # the firm exposed to it
    channel = np.concatenate(
        [np.where(in_circle[book], 0, 1), np.full(len(rel_src), 2, dtype=np.int64)]
    )
    keep = edge_src != edge_dst
    edge_src, edge_dst, channel = edge_src[keep], edge_dst[keep], channel[keep]
    p = np.array([cfg.contagion_circle, cfg.contagion_guarantor, cfg.contagion_related])[channel]
    rounds_u = rng.random((CONTAGION_ROUNDS, len(edge_src)))
    rounds_delay = randint(rng, 1, 6, (CONTAGION_ROUNDS, len(edge_src)))
    partial_lag = randint(rng, 3, 6, n)
    stop_lag = randint(rng, 1, 3, n)
    eligible = ~f.diverter & ~f.liquidity & (f.status == 0)
    records = []
    done = np.zeros(n, dtype=bool)
    for r in range(CONTAGION_ROUNDS):
        defaults = (f.distressed & (f.recover_at >= BIG)) | f.diverter_defaults
        dm = np.where(defaults & (f.stop_from < BIG), f.stop_from + 3, BIG)
        fresh = (dm < M) & ~done
        done |= fresh
        hit = fresh[edge_src] & (rounds_u[r] < p) & ~f.distressed[edge_dst] & eligible[edge_dst]
        onset = dm[edge_src] + rounds_delay[r]
        hit &= onset <= M - 3
        if not hit.any():
            continue
        idx = np.nonzero(hit)[0]
        idx = idx[np.lexsort((idx, onset[idx], edge_dst[idx]))]
        first = np.ones(len(idx), dtype=bool)
        first[1:] = edge_dst[idx][1:] != edge_dst[idx][:-1]
        idx = idx[first]  # one (earliest) source per newly distressed firm
        t = edge_dst[idx]
        s = onset[idx]
        f.distressed[t] = True
        f.start[t] = s
        f.visible[t] = s
        f.partial_from[t] = s + partial_lag[t]
        f.stop_from[t] = f.partial_from[t] + stop_lag[t]
        f.recovered[t] = False
        f.recover_at[t] = BIG
        f.pace[t] = 1.0
        f.noise.speed[t] = noise_mod.NORMAL
        records.append((t, edge_src[idx], channel[idx], dm[edge_src[idx]], s))

    def month_label(m: np.ndarray) -> pl.Series:
        return pl.Series([cal.label(int(i)) for i in m], dtype=pl.String)

    if records:
        t, src, chn, sdm, s = (np.concatenate(x) for x in zip(*records, strict=True))
    else:
        t = src = chn = sdm = s = np.zeros(0, dtype=np.int64)
    ch.truth["contagion"] = pl.DataFrame(
        {
            "enterprise_id": pl.Series(ids_all[t], dtype=pl.String),
            "source_enterprise_id": pl.Series(ids_all[src], dtype=pl.String),
            "channel": pl.Series(np.array(CHANNELS)[chn], dtype=pl.String),
            "source_default_month": month_label(sdm),
            "distress_start_month": month_label(s),
        }
    )
    ch.truth["guarantee_circles"] = pl.DataFrame(
        {
            "enterprise_id": pl.Series(ids_all[cand], dtype=pl.String),
            "circle_no": pl.Series(circle_no[cand], dtype=pl.Int64),
            "circle_size": pl.Series(circle_size[cand], dtype=pl.Int64),
        }
    )


#: Applications offering an enterprise guarantor, and among those the share offering a firm in
#: distress (in default, red or about to be) and, for an applicant in a guarantee circle, its
#: own circle guarantor; the rest offer a healthy firm of the book.
OFFERED_GUARANTOR_SHARE = 0.12
OFFERED_DISTRESSED_SHARE = 0.15
OFFERED_CIRCLE_SHARE = 0.5


def offered_guarantors(ch: Chunk, firm: np.ndarray) -> pl.Series:
    """`loan_applications.offered_guarantor_id` of applications by chunk firms `firm`: most
    offer none; some a healthy firm of the book; a few a firm in distress, or (a circle
    member) its own circle guarantor, which screening should reject. Own random stream: the
    other tables do not change."""
    rng = np.random.default_rng([ch.seed, ch.chunk_no, 3])
    k, n = len(firm), ch.n
    offered = rng.random(k) < OFFERED_GUARANTOR_SHARE
    u = rng.random(k)

    def pick(pool: np.ndarray) -> np.ndarray:
        return pool[rng.integers(0, len(pool), k)] if len(pool) else np.full(k, -1)

    pick_bad = pick(np.nonzero(ch.firms.distressed)[0])
    pick_good = pick(np.nonzero(~ch.firms.distressed)[0])
    circle = getattr(ch, "circle_guarantor", np.full(n, -1))[firm]
    guarantor = np.where(u < OFFERED_DISTRESSED_SHARE, pick_bad, pick_good)
    guarantor = np.where((circle >= 0) & (rng.random(k) < OFFERED_CIRCLE_SHARE), circle, guarantor)
    keep = offered & (guarantor >= 0) & (guarantor != firm)
    ids = ch.firms.ids.gather(np.maximum(guarantor, 0))
    return pl.select(
        pl.when(pl.Series(keep)).then(ids).otherwise(None).alias("offered_guarantor_id")
    ).to_series()


def _links(
    ch: Chunk, rng: np.random.Generator, cfg: NetworkConfig
) -> tuple[pl.DataFrame, np.ndarray, np.ndarray]:
    """Landing `enterprise_links` and the related pairs contagion travels along
    (defaulting firm, exposed firm), both directions."""
    n, cal = ch.n, ch.cal
    ids_all = ch.firms.ids.to_numpy()
    # groups of 2-5 firms: a parent (first) and its members
    cand = np.nonzero(rng.random(n) < cfg.groups)[0]
    cand = cand[rng.permutation(len(cand))]
    sizes = randint(rng, 2, 5, max(len(cand), 1))
    ends = np.cumsum(sizes)
    n_groups = int(np.searchsorted(ends, len(cand), side="right"))
    used = int(ends[n_groups - 1]) if n_groups else 0
    cand = cand[:used]
    gsize = sizes[:n_groups]
    starts = np.repeat(ends[:n_groups] - gsize, gsize)
    pos = np.arange(used) - starts
    parent = cand[starts]
    member = pos > 0
    share = np.round(rng.uniform(0.2, 1.0, used), 2)
    both_ways = rng.random(used) < 0.3
    legal_rep_group = np.repeat(rng.random(max(n_groups, 1))[:n_groups] < 0.2, gsize)
    src, dst, rel, shr = [], [], [], []

    def add(a: np.ndarray, b: np.ndarray, relation: str, s: np.ndarray | None = None) -> None:
        src.append(a)
        dst.append(b)
        rel.append(np.full(len(a), relation, dtype=object))
        shr.append(np.full(len(a), np.nan) if s is None else s)

    add(parent[member], cand[member], "shareholder_of", share[member])
    sub = member & (share > 0.5)
    add(cand[sub], parent[sub], "subsidiary_of", share[sub])
    sib = member & (pos >= 2)  # consecutive members (pos-1, pos), both children
    add(cand[np.nonzero(sib)[0] - 1], cand[sib], "same_controller")
    rev = sib & both_ways
    add(cand[rev], cand[np.nonzero(rev)[0] - 1], "same_controller")
    lr = member & (pos == 1) & legal_rep_group
    add(parent[lr], cand[lr], "same_legal_rep")
    # trade: a major supplier or customer, 30% outside the book
    traders = np.nonzero(rng.random(n) < cfg.trade)[0]
    other = rng.integers(0, n, len(traders))
    out = rng.random(len(traders)) < 0.3
    kind = rng.random(len(traders)) < 0.5
    in_book = ~out & (other != traders)
    book_pairs = (traders[in_book], other[in_book], kind[in_book])
    a = np.concatenate(src)
    b = np.concatenate(dst)
    relations = np.concatenate(rel)
    shares = np.concatenate(shr)
    ent = np.concatenate([ids_all[a], ids_all[book_pairs[0]], ids_all[traders[out]]])
    related = np.concatenate(
        [ids_all[b], ids_all[book_pairs[1]], _outside_codes(rng, int(out.sum()))]
    )
    trade_rel = np.where(kind, "major_supplier", "major_customer")
    relations = np.concatenate([relations, trade_rel[in_book], trade_rel[out]])
    shares = np.concatenate([shares, np.full(int(in_book.sum() + out.sum()), np.nan)])
    k = len(ent)
    valid_from = cal.start_day - randint(rng, 30, 3650, k)
    ended = rng.random(k) < 0.10
    valid_to = np.where(ended, cal.start_day + randint(rng, 0, cal.end_day - cal.start_day, k), 0)
    links = (
        pl.DataFrame(
            {
                "enterprise_id": pl.Series(ent, dtype=pl.String),
                "related_id": pl.Series(related, dtype=pl.String),
                "relation": pl.Series(relations.astype(str), dtype=pl.String),
                "share": pl.Series(shares).fill_nan(None).cast(pl.Decimal(18, 6)),
                "valid_from": dates(valid_from),
                "valid_to": dates(valid_to, null=~ended),
            }
        )
        .filter(pl.col("enterprise_id") != pl.col("related_id"))
        .unique(["enterprise_id", "related_id", "relation"], keep="first", maintain_order=True)
    )
    # contagion pairs: the group (parent <-> member, same controller) both ways
    grp_a = np.concatenate([parent[member], cand[member]])
    grp_b = np.concatenate([cand[member], parent[member]])
    sib_i = np.nonzero(sib)[0]
    grp_a = np.concatenate([grp_a, cand[sib_i - 1], cand[sib_i]])
    grp_b = np.concatenate([grp_b, cand[sib_i], cand[sib_i - 1]])
    return links, grp_a, grp_b
