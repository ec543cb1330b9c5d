"""A guarantee circle as a small static SVG (hand-written: a few nodes and arrows need no
chart library, and the picture must open offline without JavaScript).

Members sit on a ring in the order given, numbered 1..n (the report's table beside the picture
names them); an arrow runs from guarantor to borrower, curved so that a mutual pair shows two
arrows; the fill says the member's state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from html import escape

#: Fill per member state (the report's legend uses the same colours).
STATE_COLORS = {
    "default": "#7b1e1e",
    "red": "#c0392b",
    "past_due": "#e67e22",
    "amber": "#e6a23c",
    "ok": "#5b8c5a",
}
SIZE = 220
NODE_R = 14
BEND = 14  # how far an arrow bows out of the straight line, px


def circle_svg(
    members: Sequence[Mapping[str, object]],
    edges: Sequence[tuple[str, str]],
    *,
    title: str = "",
) -> str:
    """SVG markup of one circle: `members` dicts with enterprise_id, name and state (a key of
    STATE_COLORS), `edges` (guarantor_id, borrower_id) pairs among them."""
    n = max(len(members), 1)
    c, ring = SIZE / 2, SIZE / 2 - NODE_R - 12
    pos: dict[str, tuple[float, float]] = {}
    for i, m in enumerate(members):
        angle = -math.pi / 2 + 2 * math.pi * i / n
        pos[str(m["enterprise_id"])] = (c + ring * math.cos(angle), c + ring * math.sin(angle))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {SIZE} {SIZE}" width="{SIZE}" '
        f'height="{SIZE}" role="img" aria-label="{escape(title)}">',
        f"<title>{escape(title)}</title>",
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" '
        'fill="#555"/></marker></defs>',
    ]
    for src, dst in edges:
        if src not in pos or dst not in pos or src == dst:
            continue
        (x1, y1), (x2, y2) = pos[src], pos[dst]
        dx, dy = x2 - x1, y2 - y1
        dist = math.hypot(dx, dy) or 1.0
        ux, uy = dx / dist, dy / dist
        # start and end on the node rims; bow to the right of the direction of travel
        sx, sy = x1 + ux * NODE_R, y1 + uy * NODE_R
        ex, ey = x2 - ux * (NODE_R + 2), y2 - uy * (NODE_R + 2)
        mx, my = (sx + ex) / 2 - uy * BEND, (sy + ey) / 2 + ux * BEND
        parts.append(
            f'<path d="M{sx:.1f},{sy:.1f} Q{mx:.1f},{my:.1f} {ex:.1f},{ey:.1f}" fill="none" '
            'stroke="#555" stroke-width="1.4" marker-end="url(#arrow)"/>'
        )
    for i, m in enumerate(members, start=1):
        x, y = pos[str(m["enterprise_id"])]
        fill = STATE_COLORS.get(str(m.get("state")), STATE_COLORS["ok"])
        label = f"{m.get('name') or ''} {m['enterprise_id']}".strip()
        parts.append(
            f'<g><title>{escape(label)}</title><circle cx="{x:.1f}" cy="{y:.1f}" r="{NODE_R}" '
            f'fill="{fill}" stroke="#fff" stroke-width="2"/><text x="{x:.1f}" y="{y + 4:.1f}" '
            f'text-anchor="middle" font-size="12" font-weight="bold" fill="#fff" '
            f'font-family="sans-serif">{i}</text></g>'
        )
    parts.append("</svg>")
    return "".join(parts)
