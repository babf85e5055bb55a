"""The Debian mirror comes from this machine's apt configuration, in either format."""

from __future__ import annotations

from pathlib import Path

import pytest

from dcops.errors import LabError
from dcops.lab.mirror import (
    AptSource,
    debian_mirror,
    debian_sources,
    parse_deb822,
    parse_one_line,
    read_sources,
)

DEB822 = """\
Types: deb deb-src
# a comment inside the stanza
URIs: http://mirror.example.vn/debian/
Suites: bookworm bookworm-updates
Components: main contrib
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://security.example.vn/debian-security
Suites: bookworm-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://disabled.example.vn/debian
Suites: bookworm
Components: main
Enabled: no

Types: deb-src
URIs: http://src-only.example.vn/debian
Suites: bookworm
Components: main
"""


def test_deb822_keeps_enabled_deb_stanzas() -> None:
    sources = parse_deb822(DEB822)
    assert [s.uri for s in sources] == ["http://mirror.example.vn/debian",
                                        "http://security.example.vn/debian-security"]
    assert sources[0].suites == ("bookworm", "bookworm-updates")
    assert sources[0].signed_by == "/usr/share/keyrings/debian-archive-keyring.gpg"


def test_deb822_inline_key_is_not_a_keyring_path() -> None:
    text = ("Types: deb\nURIs: http://m.example/debian\nSuites: bookworm\nComponents: main\n"
            "Signed-By:\n -----BEGIN PGP PUBLIC KEY BLOCK-----\n .\n mQINBF\n")
    assert parse_deb822(text)[0].signed_by == ""


def test_one_line_format_with_options() -> None:
    text = ("# comment\ndeb [arch=amd64 signed-by=/k.gpg] http://m.example/debian bookworm main\n"
            "deb-src http://m.example/debian bookworm main\n"
            "deb http://m.example/debian-security bookworm-security main # trailing\n")
    sources = parse_one_line(text)
    assert sources == [
        AptSource("http://m.example/debian", ("bookworm",), ("main",), "/k.gpg"),
        AptSource("http://m.example/debian-security", ("bookworm-security",), ("main",)),
    ]


def test_mirror_is_the_source_carrying_the_suite() -> None:
    sources = parse_deb822(DEB822)
    mirror = debian_mirror(sources, "bookworm")
    assert mirror.uri == "http://mirror.example.vn/debian"
    assert mirror.suites == ("bookworm",)
    pockets = debian_sources(sources, "bookworm")
    assert [p.suites for p in pockets] == [("bookworm", "bookworm-updates"),
                                           ("bookworm-security",)]
    assert "deb [signed-by=" in pockets[1].one_line()


def test_no_debian_source_names_the_place_to_look() -> None:
    others = [AptSource("https://deb.nodesource.com/node_20.x", ("nodistro",), ("main",))]
    with pytest.raises(LabError, match="no apt source carries Debian suite 'bookworm'"):
        debian_mirror(others, "bookworm")


def test_read_sources_reads_both_files_and_ignores_other_suffixes(tmp_path: Path) -> None:
    (tmp_path / "sources.list.d").mkdir()
    (tmp_path / "sources.list").write_text("deb http://a.example/debian bookworm main\n")
    (tmp_path / "sources.list.d" / "debian.sources").write_text(DEB822)
    (tmp_path / "sources.list.d" / "old.list.disabled").write_text(
        "deb http://nope.example/debian bookworm main\n")
    uris = [s.uri for s in read_sources(tmp_path)]
    assert uris == ["http://a.example/debian", "http://mirror.example.vn/debian",
                    "http://security.example.vn/debian-security"]


def test_mirror_file_lists_resolve_to_their_first_mirror(tmp_path: Path) -> None:
    mirrors = tmp_path / "debian.list"
    mirrors.write_text("# cloud mirrors\nhttps://deb.example.vn/debian/\tpriority:1\n"
                       "https://other.example/debian\n")
    sources = [AptSource(f"mirror+file:{mirrors}", ("bookworm",), ("main",))]
    assert debian_mirror(sources, "bookworm").uri == "https://deb.example.vn/debian"
    missing = [AptSource(f"mirror+file:{tmp_path / 'nope.list'}", ("bookworm",), ("main",))]
    with pytest.raises(LabError, match=r"nope\.list: cannot read the apt mirror list"):
        debian_mirror(missing, "bookworm")
