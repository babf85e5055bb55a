"""Cross-checks with other scanners (OpenSCAP SSG, Wazuh SCA): mapping as data, scanner runs,
the agreement table (crosscheck.json) and its report section."""

from __future__ import annotations
