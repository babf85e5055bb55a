"""Topology diagram of both DCs and the WAN as plain SVG (no graphviz needed).

Readable at province scale (about a hundred commune sites): each DC's zones show the VPN
router's port in them and the host routes through it, drawn down to the DC's VPN router; the WAN
sites sit in labelled group panels (wards, communes, or a legacy grouping) joined to each DC's
VPN router by one trunk per group. Everything scales with the viewBox (zoom and pan in any
browser or SVG viewer); every box has an id and a tooltip (<title>) with its details.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from xml.sax.saxutils import escape

from dcops.model.site import SiteKind, SiteModel, Zone

from .plan import Plan, PlannedResource
from .zones import ZONE_LABELS

ZONE_COLOURS = {"dmz": "#f4a261", "app": "#8ecae6", "db": "#b5838d", "mgmt": "#90be6d",
                "devmgmt": "#43aa8b", "replication": "#cdb4db", "user": "#e9c46a"}
COL_W, ZONE_H, HEAD_H, PAD = 190, 58, 44, 16
PEER_W, PEER_H, PEER_GAP = 150, 34, 8  # a WAN site box and the gap between boxes
ROUTER_W, ROUTER_H = 300, 48  # a DC's VPN router
NAME_CHARS = 21  # longer site names are cut (the tooltip keeps the whole name)
DC_TITLES = {"primary": ("Primary DC", "Trung tâm dữ liệu chính"),
             "backup": ("Backup DC", "Trung tâm dữ liệu dự phòng")}
#: Group labels of commune sites by official type (admin_type).
TYPE_GROUPS = {"phường": "Wards / Phường", "xã": "Communes / Xã",
               "đặc khu": "Special zones / Đặc khu"}


def _text(x: float, y: float, s: str, size: int = 12, weight: str = "normal",
          anchor: str = "start") -> str:
    return (f'<text x="{x:.0f}" y="{y:.0f}" font-size="{size}" font-weight="{weight}" '
            f'text-anchor="{anchor}">{escape(s)}</text>')


def _rect(x: float, y: float, w: float, h: float, fill: str, stroke: str = "#333",
          rx: int = 6) -> str:
    return (f'<rect x="{x:.0f}" y="{y:.0f}" width="{w:.0f}" height="{h:.0f}" rx="{rx}" '
            f'fill="{fill}" stroke="{stroke}"/>')


def _attr(s: str) -> str:
    return escape(s, {'"': "&quot;"})


def _short(s: str, n: int = NAME_CHARS) -> str:
    return s if len(s) <= n else s[:n - 1] + "…"


def peer_groups(model: SiteModel) -> dict[str, str]:
    """WAN site -> the panel it is drawn in: its `parent` (a legacy grouping) when it has one,
    else its official type (wards, communes, special zones), else its kind."""
    out: dict[str, str] = {}
    for site in model.sites.values():
        parent = model.sites.get(site.parent) if site.parent else None
        if parent is not None:
            out[site.name] = f"{parent.display_name} / {parent.display_name_vi}"
        elif site.admin_type in TYPE_GROUPS:
            out[site.name] = TYPE_GROUPS[site.admin_type]
        elif site.kind is SiteKind.DISTRICT:
            out[site.name] = "Districts (legacy) / Huyện (cũ)"
        elif site.kind is SiteKind.COMMUNE:
            out[site.name] = "Communes and wards / Xã, phường"
    return out


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


@dataclass(frozen=True, slots=True)
class _Port:
    """The VPN router's port in a zone subnet and the host routes through it."""

    address: str
    routes: tuple[str, ...]


def _ports(p: Plan) -> dict[tuple[str, str], _Port]:
    routes: dict[tuple[str, str], list[str]] = {}
    for r in p.of_type("networking.SubnetRoute"):
        routes.setdefault((r.system, r.zone), []).append(str(r.props.get("destinationCidr", "")))
    out: dict[tuple[str, str], _Port] = {}
    for port in p.of_type("networking.Port"):
        ips = port.props.get("fixedIps") or [{}]
        out[(port.system, port.zone)] = _Port(str(ips[0].get("ipAddress", "")),
                                              tuple(routes.get((port.system, port.zone), ())))
    return out


def _dc(p: Plan, x: float, y: float) -> tuple[list[str], list[str], float, float]:
    """Draw one DC and its VPN router below it: (boxes, port lines, width, height)."""
    systems = _systems(p)
    rows = max((len(n) for _, _, n in systems), default=1)
    w = max(len(systems), 1) * (COL_W + PAD) + PAD
    h = 56 + HEAD_H + rows * (ZONE_H + 6) + PAD
    en, vi = DC_TITLES.get(p.stack, (p.stack, p.stack))
    els = [f'<g id="dc-{_attr(p.site)}">', _rect(x, y, w, h, "#fbfbfb", "#222", 10),
           _text(x + PAD, y + 24, f"{en} / {vi}: {p.site}", 15, "bold"),
           _text(x + PAD, y + 42, f"{len(p.resources)} resources", 11)]
    cidr = {(r.system, r.zone): r.props.get("cidr", "") for r in p.of_type("networking.Subnet")}
    vms = p.of_type("compute.Instance")
    ports = _ports(p)
    rx, ry = x + w / 2 - ROUTER_W / 2, y + h + 50  # the VPN router below the DC
    wires: list[str] = []
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
            port = ports.get((system, net.zone))
            if port is None:
                continue
            px, py = cx + COL_W - 6, zy + ZONE_H / 2
            gap = cx + COL_W + PAD / 2
            shown = ", ".join(port.routes[:6]) + (", …" if len(port.routes) > 6 else "")
            tip = (f"{system} {net.zone}: VPN router port {port.address}; "
                   f"{len(port.routes)} host routes via it ({shown})")
            els += [f'<g id="port-{_attr(p.site)}-{_attr(system)}-{_attr(net.zone)}" '
                    f'class="vpn-port"><title>{escape(tip)}</title>'
                    f'<circle cx="{px:.0f}" cy="{py:.0f}" r="5" fill="#1d3557"/>'
                    + _text(cx + 12, zy + 54, f"VPN {port.address} · {len(port.routes)} route"
                            + ("s" if len(port.routes) != 1 else ""),
                            9) + "</g>"]
            wires.append(f'<polyline class="vpn-route" points="{px:.0f},{py:.0f} {gap:.0f},'
                         f'{py:.0f} {gap:.0f},{y + h + 20:.0f} {rx + ROUTER_W / 2:.0f},{ry:.0f}" '
                         'fill="none" stroke="#1d3557" stroke-width="1" stroke-dasharray="4 3">'
                         f'<title>{escape(tip)}</title></polyline>')
    conns = p.of_type("vpnaas.SiteConnection")
    routes = sum(len(v.routes) for v in ports.values())
    transit = next((r.props.get("cidr", "") for r in p.of_type("networking.Subnet")
                    if r.system == "wan"), "")
    els += ["</g>", f'<g id="vpn-router-{_attr(p.site)}" class="vpn-router">'
            f'<title>{escape(p.site)} VPN router: {len(ports)} zone ports, {routes} host routes, '
            f'{len(conns)} site connections, transit {escape(str(transit))}</title>',
            _rect(rx, ry, ROUTER_W, ROUTER_H, "#dbe9f6", "#1d3557"),
            _text(rx + ROUTER_W / 2, ry + 18, "VPN router / Bộ định tuyến VPN", 12, "bold",
                  "middle"),
            _text(rx + ROUTER_W / 2, ry + 36, f"{len(ports)} ports · {routes} routes · "
                  f"{len(conns)} VPN · transit {transit}", 10, anchor="middle"), "</g>"]
    return els, wires, w, h + 50 + ROUTER_H


def _layout_groups(groups: dict[str, list[str]], width: float, top: float
                   ) -> tuple[dict[str, tuple[float, float, float, float, int]], float]:
    """Panels side by side, columns shared in proportion to their sites, wrapping into bands:
    group -> (x, y, w, h, columns); and the bottom of the last band."""
    step = PEER_W + PEER_GAP
    total_cols = max(int((width - 2 * PAD) // step), 1)
    count = sum(len(v) for v in groups.values()) or 1
    out: dict[str, tuple[float, float, float, float, int]] = {}
    x, y, band_h, used = float(PAD), top, 0.0, 0
    for name, members in groups.items():
        cols = min(max(1, round(total_cols * len(members) / count)), total_cols, len(members))
        if used and used + cols > total_cols:
            x, y, used, band_h = float(PAD), y + band_h + 30, 0, 0.0
        rows = math.ceil(len(members) / cols)
        w, h = cols * step + PEER_GAP, 30 + rows * (PEER_H + PEER_GAP) + PEER_GAP
        out[name] = (x, y, w, h, cols)
        x, used, band_h = x + w + PAD, used + cols, max(band_h, h)
    return out, y + band_h


def _wan_peers(plans: Sequence[Plan]) -> tuple[dict[str, tuple[str, str]], dict[str, str], str]:
    """WAN sites -> (peer address, link kind), their LANs, and the IKE crypto in words."""
    peers: dict[str, tuple[str, str]] = {}  # site -> (peer address, link)
    lans: dict[str, str] = {}
    crypto = ""
    for p in plans:
        for conn in p.of_type("vpnaas.SiteConnection"):
            peer = conn.tags.get("peer", "")
            peers.setdefault(peer, (str(conn.props.get("peerAddress", "")),
                                    conn.tags.get("link", "")))
        for ike in p.of_type("vpnaas.IkePolicy"):
            crypto = "/".join(str(ike.props.get(k, "?")) for k in
                              ("encryptionAlgorithm", "authAlgorithm", "pfs"))
        for eg in p.of_type("vpnaas.EndpointGroup"):
            name = str(eg.props.get("name", ""))
            if name.startswith("wan-peer-"):
                lans.setdefault(name[len("wan-peer-"):],
                                ", ".join(str(e) for e in eg.props.get("endpoints", [])))
    return peers, lans, crypto


def render(plans: Sequence[Plan], title: str = "dcops topology",
           groups: Mapping[str, str] | None = None) -> str:
    """SVG of the given stacks (primary and/or backup) side by side and the WAN below them.

    `groups` maps a WAN site to the panel it is drawn in (see :func:`peer_groups`); a site not
    in it goes to the panel of its link kind (commune, district).
    """
    els: list[str] = []
    wires: list[str] = []
    x, top = float(PAD), 50.0
    heights: list[float] = []
    routers: dict[str, tuple[float, float]] = {}  # site -> bottom centre of its VPN router
    for p in plans:
        dc_els, dc_wires, w, h = _dc(p, x, top)
        els += dc_els
        wires += dc_wires
        routers[p.site] = (x + w / 2, top + h)
        heights.append(h)
        x += w + 3 * PAD
    width = max(x, 900)
    wan_y = top + max(heights, default=100) + 110
    peers, lans, crypto = _wan_peers(plans)
    offices = sorted(n for n in peers if n not in routers)  # communes (or districts)
    grouped: dict[str, list[str]] = {}
    for name in offices:
        label = (groups or {}).get(name) or f"{peers[name][1] or 'WAN'} sites"
        grouped.setdefault(label, []).append(name)
    grouped = dict(sorted(grouped.items()))
    panels, bottom = _layout_groups(grouped, width, wan_y)
    for label, (gx, gy, gw, gh, cols) in panels.items():
        members = grouped[label]
        gid = "group-" + "".join(c if c.isalnum() else "-" for c in label.lower())
        els += [f'<g id="{_attr(gid)}" class="wan-group"><title>{escape(label)}: '
                f'{len(members)} sites</title>', _rect(gx, gy, gw, gh, "#fffdf0", "#b08900", 8),
                _text(gx + 10, gy + 20, f"{label} · {len(members)} sites / địa điểm", 13,
                      "bold")]
        for i, name in enumerate(members):
            bx = gx + PEER_GAP + (i % cols) * (PEER_W + PEER_GAP)
            by = gy + 30 + (i // cols) * (PEER_H + PEER_GAP)
            address = peers[name][0]
            tip = f"{name}: VPN peer {address}" + (f", LAN {lans[name]}" if name in lans else "")
            els += [f'<g id="site-{_attr(name)}" class="wan-site"><title>{escape(tip)}</title>'
                    f'{_rect(bx, by, PEER_W, PEER_H, "#fff3b0")}'
                    f'{_text(bx + PEER_W / 2, by + 15, _short(name), 11, "bold", "middle")}'
                    f'{_text(bx + PEER_W / 2, by + 28, address, 9, anchor="middle")}</g>']
        els.append("</g>")
        for p in plans:
            n = sum(1 for c in p.of_type("vpnaas.SiteConnection")
                    if c.tags.get("peer", "") in members)
            if not n:
                continue
            sx, sy = routers[p.site]
            tip = f"{p.site} → {label}: {n} IPsec site connections ({crypto or 'no policy'})"
            wires.append(f'<line class="vpn-trunk" x1="{sx:.0f}" y1="{sy:.0f}" '
                         f'x2="{gx + gw / 2:.0f}" y2="{gy:.0f}" stroke="#457b9d" '
                         f'stroke-width="{min(1 + n / 12, 6):.1f}" stroke-opacity="0.7">'
                         f'<title>{escape(tip)}</title></line>')
            mx, my = (sx + gx + gw / 2) / 2, (sy + gy) / 2
            wires.append(_text(mx, my, f"{n} VPN", 10, "bold", "middle"))
    if len(routers) == 2:
        (ax, ay), (bx, by) = routers.values()
        ay -= ROUTER_H / 2
        by -= ROUTER_H / 2
        mid = ay + 40
        ax += ROUTER_W / 2
        bx -= ROUTER_W / 2
        wires.append(f'<path id="dc-link" d="M{ax:.0f},{ay:.0f} C{ax + 80:.0f},{mid:.0f} '
                     f'{bx - 80:.0f},{mid:.0f} {bx:.0f},{by:.0f}" fill="none" stroke="#e63946" '
                     'stroke-width="3"><title>DC ↔ DC IPsec + replication</title></path>')
        wires.append(_text((ax + bx) / 2, mid + 4, "DC ↔ DC IPsec + replication", 11, "bold",
                           "middle"))
    height = bottom + 50
    head = [_text(PAD, 24, f"{title}: DCs and WAN / Trung tâm dữ liệu và mạng WAN", 16, "bold"),
            _text(PAD, height - 12, f"WAN (VPNaaS) crypto: {crypto or 'none'}; "
                  f"{len(offices)} WAN sites; dashed: VPN router ports and host routes (tuyến); "
                  "lines: site connections per group (kết nối VPN)", 11)]
    body = "\n".join(head + wires + els)
    return (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" preserveAspectRatio="xMidYMin meet" '
            f'font-family="DejaVu Sans, sans-serif">\n'
            f'<title>{escape(title)}</title>\n<g id="topology">\n{body}\n</g>\n</svg>\n')


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
