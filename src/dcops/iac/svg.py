"""Topology diagram of both DCs and the WAN as plain SVG (no graphviz needed)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from dcops.model.site import Zone

from .plan import Plan, PlannedResource
from .zones import ZONE_LABELS

ZONE_COLOURS = {"dmz": "#f4a261", "app": "#8ecae6", "db": "#b5838d", "mgmt": "#90be6d",
                "devmgmt": "#43aa8b", "replication": "#cdb4db", "user": "#e9c46a"}
COL_W, ZONE_H, HEAD_H, PAD = 190, 46, 44, 16
PEER_W, PEER_ROW_H = 130, 44  # a WAN peer box (120 wide) and its gap; one row of boxes
DC_TITLES = {"primary": ("Primary DC", "Trung tâm dữ liệu chính"),
             "backup": ("Backup DC", "Trung tâm dữ liệu dự phòng")}


def _text(x: float, y: float, s: str, size: int = 12, weight: str = "normal",
          anchor: str = "start") -> str:
    return (f'<text x="{x:.0f}" y="{y:.0f}" font-size="{size}" font-weight="{weight}" '
            f'text-anchor="{anchor}">{escape(s)}</text>')


def _rect(x: float, y: float, w: float, h: float, fill: str, stroke: str = "#333",
          rx: int = 6) -> str:
    return (f'<rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}" rx="{rx}" '
            f'fill="{fill}" stroke="{stroke}"/>')


def _systems(p: Plan) -> list[tuple[str, str, list[PlannedResource]]]:
    """(system, level, zone networks) of a plan's tenants, WAN excluded."""
    out = []
    for proj in p.of_type("identity.Project"):
        if proj.system == "wan":
            continue
        nets = [r for r in p.of_type("networking.Network") if r.system == proj.system]
        order = {z.value: i for i, z in enumerate(Zone)}
        nets.sort(key=lambda r: order.get(r.zone, 99))
        out.append((proj.system, proj.tags.get("level", "?"), nets))
    return sorted(out)


def _dc(p: Plan, x: float, y: float) -> tuple[list[str], float, float]:
    """Draw one DC; returns (elements, width, height)."""
    systems = _systems(p)
    rows = max((len(n) for _, _, n in systems), default=1)
    w = max(len(systems), 1) * (COL_W + PAD) + PAD
    h = 56 + HEAD_H + rows * (ZONE_H + 6) + PAD
    en, vi = DC_TITLES.get(p.stack, (p.stack, p.stack))
    els = [_rect(x, y, w, h, "#fbfbfb", "#222", 10),
           _text(x + PAD, y + 24, f"{en} / {vi}: {p.site}", 15, "bold"),
           _text(x + PAD, y + 42, f"{len(p.resources)} resources", 11)]
    cidr = {(r.system, r.zone): r.props.get("cidr", "") for r in p.of_type("networking.Subnet")}
    vms = p.of_type("compute.Instance")
    for i, (system, level, nets) in enumerate(systems):
        cx, cy = x + PAD + i * (COL_W + PAD), y + 56
        els += [_rect(cx, cy, COL_W, HEAD_H + len(nets) * (ZONE_H + 6), "#ffffff", "#666"),
                _text(cx + 8, cy + 18, system, 13, "bold"),
                _text(cx + 8, cy + 34, f"level {level} / cấp độ {level}", 11)]
        for j, net in enumerate(nets):
            zy = cy + HEAD_H + j * (ZONE_H + 6)
            here = [v for v in vms if v.system == system and v.zone == net.zone]
            twins = sum(1 for v in here if v.tags.get("twin"))
            label = ZONE_LABELS.get(Zone(net.zone), (net.zone, net.zone))[0] \
                if net.zone in Zone.__members__.values() else net.zone
            vm_text = f"{len(here)} VM" + (f" ({twins} standby)" if twins else "")
            els += [_rect(cx + 6, zy, COL_W - 12, ZONE_H, ZONE_COLOURS.get(net.zone, "#ddd")),
                    _text(cx + 12, zy + 16, f"{label}", 11, "bold"),
                    _text(cx + 12, zy + 30, cidr.get((system, net.zone), ""), 10),
                    _text(cx + 12, zy + 42, vm_text, 10)]
    return els, w, h


def render(plans: Sequence[Plan], title: str = "dcops topology") -> str:
    """SVG of the given stacks (primary and/or backup) side by side and the WAN below them."""
    els: list[str] = []
    x, top = float(PAD), 50.0
    heights: list[float] = []
    wan_points: dict[str, tuple[float, float]] = {}
    for p in plans:
        dc_els, w, h = _dc(p, x, top)
        els += dc_els
        wan_points[p.site] = (x + w / 2, top + h)
        heights.append(h)
        x += w + 3 * PAD
    width = max(x, 900)
    wan_y = top + max(heights, default=100) + 90
    peers: dict[str, str] = {}
    crypto = ""
    for p in plans:
        for conn in p.of_type("vpnaas.SiteConnection"):
            peers.setdefault(conn.tags.get("peer", ""), conn.props.get("peerAddress", ""))
        for ike in p.of_type("vpnaas.IkePolicy"):
            crypto = "/".join(str(ike.props.get(k, "?")) for k in
                              ("encryptionAlgorithm", "authAlgorithm", "pfs"))
    offices = sorted(n for n in peers if n not in wan_points)  # communes (or districts)
    per_row = max(int((width - 2 * PAD) // PEER_W), 1)  # ~100 communes: rows, not one strip
    rows = max((len(offices) - 1) // per_row + 1, 1)
    step = (width - 2 * PAD) / max(min(len(offices), per_row), 1)
    spots = {d: (PAD + step * (i % per_row + 0.5), wan_y + 40 + (i // per_row) * PEER_ROW_H)
             for i, d in enumerate(offices)}
    lines: list[str] = []
    for p in plans:
        sx, sy = wan_points[p.site]
        for conn in p.of_type("vpnaas.SiteConnection"):
            peer = conn.tags.get("peer", "")
            if peer in spots:
                tx, ty = spots[peer]
                lines.append(f'<line x1="{sx:.0f}" y1="{sy:.0f}" x2="{tx:.0f}" y2="{ty - 14:.0f}" '
                             'stroke="#457b9d" stroke-width="1" stroke-opacity="0.6"/>')
    if len(wan_points) == 2:
        (ax, ay), (bx, by) = wan_points.values()
        mid = wan_y - 40
        lines.append(f'<path d="M{ax:.0f},{ay:.0f} C{ax:.0f},{mid:.0f} {bx:.0f},{mid:.0f} '
                     f'{bx:.0f},{by:.0f}" fill="none" stroke="#e63946" stroke-width="3"/>')
        lines.append(_text((ax + bx) / 2, mid + 8, "DC ↔ DC IPsec + replication", 11, "bold",
                           "middle"))
    for d, (dx, dy) in spots.items():
        els += [_rect(dx - 60, dy - 14, 120, 34, "#fff3b0"),
                _text(dx, dy + 1, d, 11, "bold", "middle"),
                _text(dx, dy + 14, peers[d], 9, anchor="middle")]
    height = wan_y + 110 + (rows - 1) * PEER_ROW_H
    head = [_text(PAD, 24, f"{title}: DCs and WAN / Trung tâm dữ liệu và mạng WAN", 16, "bold"),
            _text(PAD, height - 12, f"WAN (VPNaaS) crypto: {crypto or 'none'}; "
                  "lines: site connections (kết nối VPN)", 11)]
    body = "\n".join(head + lines + els)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="DejaVu Sans, sans-serif">\n'
            f'<title>{escape(title)}</title>\n{body}\n</svg>\n')


# --- The NOC's live WAN map (dcops.triage.noc colours it by state) ------------------------------

NOC_STATES = ("up", "down", "unknown")


@dataclass(frozen=True, slots=True)
class MapNode:
    """A box of the WAN map: a DC device, a site or a group of commune sites.

    `key` is stable (the device or site name, or ``group:NAME``): the element's id is
    ``node-<key>``, its class ``noc-node state-<state>``, so a page's CSS colours it and a test
    finds it.
    """

    key: str
    label: str
    detail: str
    state: str
    href: str = ""


def _attr(s: str) -> str:
    return escape(s, {'"': "&quot;"})


def _node(n: MapNode, x: float, y: float, w: float, h: float) -> str:
    state = n.state if n.state in NOC_STATES else "unknown"
    inner = (f'<g id="node-{_attr(n.key)}" class="noc-node state-{state}" '
             f'data-state="{state}"><title>{escape(n.label)}: {state}</title>'
             f'{_rect(x, y, w, h, "#eeeeee")}'
             f'{_text(x + w / 2, y + 15, n.label[:28], 11, "bold", "middle")}'
             f'{_text(x + w / 2, y + 29, n.detail[:34], 9, anchor="middle")}</g>')
    return f'<a href="{_attr(n.href)}">{inner}</a>' if n.href else inner


def wan_map(dcs: Sequence[tuple[MapNode, Sequence[MapNode]]], remotes: Sequence[MapNode],
            links: Sequence[tuple[str, str, str]], title: str = "WAN") -> str:
    """SVG of the DCs (their devices inside) above the WAN's remote sites and groups.

    `links` are (from key, to key, state) between DC and remote nodes; each line has id
    ``link-<from>--<to>`` and class ``noc-link state-<state>``. Drawn as in :func:`render`: DCs
    side by side, the DC-DC link as a curve, the WAN sites in rows below.
    """
    box_w, box_h, per_row = 150.0, 36.0, 7
    els: list[str] = []
    anchors: dict[str, tuple[float, float, float, float]] = {}  # key -> x, y, w, h
    x, top = float(PAD), 50.0
    dc_h = 0.0
    for dc, devices in dcs:
        cols = max(1, min(len(devices), 3))
        rows = -(-len(devices) // cols) if devices else 0
        w = cols * (box_w + PAD) + PAD
        h = 48 + rows * (box_h + 8) + PAD
        state = dc.state if dc.state in NOC_STATES else "unknown"
        els.append(f'<g id="node-{_attr(dc.key)}" class="noc-site state-{state}" '
                   f'data-state="{state}">{_rect(x, top, w, h, "#fbfbfb", "#222", 10)}'
                   f'{_text(x + PAD, top + 20, dc.label, 13, "bold")}'
                   f'{_text(x + PAD, top + 36, dc.detail, 10)}</g>')
        for i, d in enumerate(devices):
            dx = x + PAD + (i % cols) * (box_w + PAD)
            dy = top + 48 + (i // cols) * (box_h + 8)
            els.append(_node(d, dx, dy, box_w, box_h))
        anchors[dc.key] = (x, top, w, h)
        dc_h = max(dc_h, h)
        x += w + 3 * PAD
    wan_y = top + dc_h + 90
    width = max(x, PAD + per_row * (box_w + PAD) + PAD, 900)
    step = (width - 2 * PAD) / per_row
    for i, r in enumerate(remotes):
        rx = PAD + step * (i % per_row) + (step - box_w) / 2
        ry = wan_y + (i // per_row) * (box_h + 40)
        els.append(_node(r, rx, ry, box_w, box_h))
        anchors[r.key] = (rx, ry, box_w, box_h)
    lines: list[str] = []
    for a, b, given in links:
        if a not in anchors or b not in anchors:
            continue
        state = given if given in NOC_STATES else "unknown"
        ax, ay, aw, ah = anchors[a]
        bx, by, bw, _ = anchors[b]
        ident = f'id="link-{_attr(a)}--{_attr(b)}" class="noc-link state-{state}" ' \
                f'data-state="{state}"'
        if b in {dc.key for dc, _ in dcs}:  # DC <-> DC: the curve of render()
            mid = wan_y - 40
            sx, ex = ax + aw / 2, bx + bw / 2
            lines.append(f'<path {ident} d="M{sx:.0f},{ay + ah:.0f} C{sx:.0f},{mid:.0f} '
                         f'{ex:.0f},{mid:.0f} {ex:.0f},{by + ah:.0f}" fill="none" '
                         f'stroke="#457b9d" stroke-width="3"><title>{escape(a)} ↔ {escape(b)}: '
                         f'{state}</title></path>')
        else:
            lines.append(f'<line {ident} x1="{ax + aw / 2:.0f}" y1="{ay + ah:.0f}" '
                         f'x2="{bx + bw / 2:.0f}" y2="{by:.0f}" stroke="#457b9d" '
                         f'stroke-width="2"><title>{escape(a)} → {escape(b)}: {state}</title>'
                         '</line>')
    rows = -(-len(remotes) // per_row) if remotes else 0
    height = wan_y + rows * (box_h + 40) + 30
    head = [_text(PAD, 24, f"{title}: DCs and WAN / Trung tâm dữ liệu và mạng WAN", 16, "bold")]
    body = "\n".join(head + lines + els)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" id="wan-map" width="{width:.0f}" '
            f'height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
            f'font-family="DejaVu Sans, sans-serif">\n<title>{escape(title)}</title>\n{body}\n'
            '</svg>\n')
