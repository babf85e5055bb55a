"""Review attack: example Vault key files renamed outside the `.vault-pass-*` pattern (where
Ansible no longer finds them, so nothing vaulted is decrypted) are still found by fingerprint."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from dcops.inventory import check_inventory

PRODUCTION = Path(__file__).resolve().parents[3] / "inventories" / "production"


def test_example_keys_renamed_anywhere_in_the_inventory_are_refused(tmp_path: Path) -> None:
    real = tmp_path / "real"
    shutil.copytree(PRODUCTION, real)
    main = real / "group_vars" / "all" / "main.yml"
    main.write_text(re.sub(r"^dcops_example: true\n", "", main.read_text(), flags=re.M))
    (real / ".vault-pass-EXAMPLE-ONLY").rename(real / ".vp")
    (real / ".vault-pass-collector-EXAMPLE-ONLY").rename(real / "group_vars" / "secret.txt")
    model, problems = check_inventory(real)
    assert not model.settings.example
    refused = {(p.kind, p.key, str(p.source)) for p in problems}
    assert ("example-secret", "vault key", ".vp") in refused, refused
    assert ("example-secret", "vault key", "group_vars/secret.txt") in refused, refused
