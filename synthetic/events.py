"""Registry events (`registry_events`): benign background changes, the distress chain
(court judgment, enforcement, dishonest-debtor listing, abnormal operation), lawsuits against
defaulting diverters and status changes of failed firms."""

from __future__ import annotations

import numpy as np
import polars as pl

from assets.contract import EVENT_TYPES
from synthetic import names
from synthetic.common import BIG, Chunk, dates, group_positions, money, pick, randint

# Benign registry events and their weights.
_BENIGN_EVENTS = (
    ("address_change", 0.30),
    ("registered_capital_change", 0.20),
    ("shareholder_change", 0.20),
    ("legal_rep_change", 0.12),
    ("equity_pledge", 0.08),
    ("admin_penalty", 0.10),
)
_EV = {e: i for i, e in enumerate(EVENT_TYPES)}


def build(ch: Chunk) -> None:
    """Landing `registry_events`: benign background, the distress chain, status changes."""
    rng, f, n, M, cal = ch.rng, ch.firms, ch.n, ch.M, ch.cal
    firms_l, month_l, type_l, amount_l = [], [], [], []

    def add(firm: np.ndarray, month: np.ndarray, etype: np.ndarray, amount: np.ndarray):
        firms_l.append(firm)
        month_l.append(month)
        type_l.append(np.broadcast_to(etype, firm.shape).astype(np.int64))
        amount_l.append(np.broadcast_to(amount, firm.shape).astype(np.float64))

    # Benign background events.
    count = np.minimum(rng.poisson(0.5, n), 4)
    firm, _ = group_positions(count)
    k = len(firm)
    names_, w = zip(*_BENIGN_EVENTS, strict=True)
    et = np.array([_EV[e] for e in names_])[rng.choice(len(w), size=k, p=np.array(w))]
    cap = ch.tables["enterprises"]["registered_capital"].to_numpy()[firm]
    amt = np.full(k, np.nan)
    sel = et == _EV["registered_capital_change"]
    amt[sel] = np.round(cap[sel] * rng.uniform(1.2, 3.0, sel.sum()) / 1e4) * 1e4
    sel = et == _EV["equity_pledge"]
    amt[sel] = np.round(cap[sel] * rng.uniform(0.2, 0.8, sel.sum()) / 100) * 100
    sel = et == _EV["admin_penalty"]
    amt[sel] = np.round(rng.uniform(1e3, 5e4, sel.sum()) / 100) * 100
    add(firm, randint(rng, 0, M - 1, k), et, amt)

    # Distress chain: court judgment, enforcement, dishonest-debtor listing, abnormal
    # operation, from when distress shows and at the firm's pace (slow distress: later,
    # sudden defaults: only after the missed payments); recovered firms keep only what came
    # before recovery.
    d = np.nonzero(f.distressed)[0]
    s, R = f.visible[d], f.recover_at[d]
    pace = f.pace[d]

    def paced(lag: np.ndarray) -> np.ndarray:
        return np.maximum(1, np.rint(lag / pace)).astype(np.int64)

    rev = f.base_rev[d]
    court = s + paced(randint(rng, 2, 5, len(d)))
    has_court = rng.random(len(d)) < 0.85
    enf = court + paced(randint(rng, 1, 3, len(d)))
    has_enf = has_court & (rng.random(len(d)) < 0.7)
    dis = enf + paced(randint(rng, 1, 3, len(d)))
    has_dis = has_enf & (rng.random(len(d)) < 0.6)
    abn = s + paced(randint(rng, 3, 8, len(d)))
    has_abn = rng.random(len(d)) < 0.5
    claim = np.round(rev * rng.uniform(0.5, 3.0, len(d)) / 100) * 100
    for has, month, etype in (
        (has_court, court, "court_judgment_defendant"),
        (has_enf, enf, "enforcement_listed"),
        (has_dis, dis, "dishonest_debtor_listed"),
    ):
        sel = has & (month < R)
        add(d[sel], month[sel], _EV[etype], claim[sel])
    sel = has_abn & (abn < R)
    add(d[sel], abn[sel], _EV["abnormal_operation_listed"], np.nan)
    sel = sel & (R < BIG)
    add(d[sel], np.maximum(R[sel], abn[sel]) + randint(rng, 1, 2, sel.sum()),
        _EV["abnormal_operation_removed"], np.nan)  # fmt: skip
    dis_m = np.where(has_dis & (dis < R), dis, BIG)
    f.dishonest_m[d] = dis_m

    # Diverters that default get sued; failed firms get a status change.
    dd = np.nonzero(f.diverter_defaults & (rng.random(n) < 0.5))[0]
    add(dd, f.stop_from[dd] + randint(rng, 4, 8, len(dd)),
        _EV["court_judgment_defendant"],
        np.round(f.base_rev[dd] * rng.uniform(1, 4, len(dd)) / 100) * 100)  # fmt: skip
    st = np.nonzero((f.status > 0) & (f.active_until < BIG))[0]
    add(st, f.active_until[st], _EV["status_change"], np.nan)

    firm = np.concatenate(firms_l)
    month = np.concatenate(month_l)
    etype = np.concatenate(type_l)
    amount = np.concatenate(amount_l)
    day = cal.month_start(np.minimum(month, M + 12)) + randint(rng, 0, 27, len(firm))
    keep = (day <= cal.end_day) & (month >= 0)
    firm, etype, amount, day = firm[keep], etype[keep], amount[keep], day[keep]
    order = np.lexsort((day, firm))
    firm, etype, amount, day = firm[order], etype[order], amount[order], day[order]
    # Exact days the listing / status change reached the data (applications screen on them).
    ch.dishonest_day = np.full(n, BIG * 100, dtype=np.int64)
    sel = etype == _EV["dishonest_debtor_listed"]
    np.minimum.at(ch.dishonest_day, firm[sel], day[sel])
    ch.status_day = np.full(n, BIG * 100, dtype=np.int64)
    sel = etype == _EV["status_change"]
    np.minimum.at(ch.status_day, firm[sel], day[sel])
    desc = pl.Series(names.EVENT_TEXT).gather(etype)
    sc = np.nonzero(etype == _EV["status_change"])[0]
    if len(sc):
        desc = desc.scatter(sc, pl.Series(names.STATUS_TEXT).gather(f.status[firm[sc]]))
    ch.tables["registry_events"] = pl.DataFrame(
        {
            "event_id": ch.row_ids("EV", len(firm)),
            "enterprise_id": f.ids.gather(firm),
            "event_date": dates(day),
            "event_type": pick(EVENT_TYPES, etype),
            "amount": money(np.nan_to_num(np.round(amount * 100)), null=np.isnan(amount)),
            "description": desc,
        }
    )
