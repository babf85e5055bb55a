"""Topology diagram of both DCs and the WAN as plain SVG (no graphviz needed)."""

from __future__ import annotations

from collections.abc import Sequence
from xml.sax.saxutils import escape

from dcops.model.site import Zone

from .plan import Plan, PlannedResource
from .zones import ZONE_LABELS

ZONE_COLOURS = {"dmz": "#f4a261", "app": "#8ecae6", "db": "#b5838d", "mgmt": "#90be6d",
                "devmgmt": "#43aa8b", "replication": "#cdb4db", "user": "#e9c46a"}
COL_W, ZONE_H, HEAD_H, PAD = 190, 46, 44, 16
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
    districts = sorted(n for n in peers if n not in wan_points)
    step = (width - 2 * PAD) / max(len(districts), 1)
    spots = {d: (PAD + step * (i + 0.5), wan_y + 40) for i, d in enumerate(districts)}
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
    height = wan_y + 110
    head = [_text(PAD, 24, f"{title}: DCs and WAN / Trung tâm dữ liệu và mạng WAN", 16, "bold"),
            _text(PAD, height - 12, f"WAN (VPNaaS) crypto: {crypto or 'none'}; "
                  "lines: site connections (kết nối VPN)", 11)]
    body = "\n".join(head + lines + els)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="DejaVu Sans, sans-serif">\n'
            f'<title>{escape(title)}</title>\n{body}\n</svg>\n')
