#!/usr/bin/env bash
# Idempotent setup shared by `make demo` and `make test`: Debian packages, the virtualenv with the
# locked Python packages, the Ansible collections, and the lab's base image.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
ANSIBLE_BUNDLE_VERSION=12.3.0
log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }

# 1. Debian packages
mapfile -t pkgs < <(grep -v -e '^#' -e '^[[:space:]]*$' scripts/apt-packages.txt)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  # no daemon may start on install (the tests and the lab start what they need themselves)
  printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  rm -f /usr/sbin/policy-rc.d
fi

# 2. Python: uv and the locked environment
if ! command -v uv >/dev/null 2>&1; then
  log "installing uv"
  python3 -m pip install -q uv
fi
log "syncing the virtualenv from uv.lock"
uv sync --frozen --quiet
# the compiled detection reader (src/dcops/detect/_fastread.c), rebuilt only when out of date
.venv/bin/python scripts/build_ext.py

# 3. Ansible collections (playbooks/requirements.yml): Galaxy first, the PyPI bundle as fallback
COLL="$ROOT/collections"
wanted=$(.venv/bin/python -c 'import yaml,sys; print(" ".join(c["name"] for c in yaml.safe_load(open("playbooks/requirements.yml"))["collections"]))')
have_all=1
for c in $wanted; do [ -d "$COLL/ansible_collections/${c/.//}" ] || have_all=0; done
if [ "$have_all" = 0 ]; then
  if ! timeout 30 .venv/bin/ansible-galaxy collection install -r playbooks/requirements.yml -p "$COLL" >/dev/null 2>&1; then
    log "Galaxy unreachable: taking ${wanted} from the PyPI ansible ${ANSIBLE_BUNDLE_VERSION} bundle"
    cache="${XDG_CACHE_HOME:-$HOME/.cache}/dcops/pip"
    mkdir -p "$cache" "$COLL/ansible_collections"
    ls "$cache"/ansible-"${ANSIBLE_BUNDLE_VERSION}"-*.whl >/dev/null 2>&1 ||
      python3 -m pip download -q --no-deps -d "$cache" "ansible==${ANSIBLE_BUNDLE_VERSION}"
    whl=$(ls "$cache"/ansible-"${ANSIBLE_BUNDLE_VERSION}"-*.whl | head -1)
    .venv/bin/python - "$whl" "$COLL" $wanted <<'PY'
import sys, zipfile
whl, dest, names = sys.argv[1], sys.argv[2], sys.argv[3:]
prefixes = tuple(f"ansible_collections/{n.replace('.', '/')}/" for n in names)
with zipfile.ZipFile(whl) as z:
    members = [m for m in z.namelist() if m.startswith(prefixes)]
    z.extractall(dest, members)
print(f"extracted {len(members)} files for {', '.join(names)}")
PY
  fi
fi

# 4. The lab's base image (built once, cached outside the repository, rebuilt when its recipe changes)
if .venv/bin/dcops lab --help >/dev/null 2>&1 && .venv/bin/dcops lab image --help >/dev/null 2>&1; then
  log "lab base image"
  .venv/bin/dcops lab image
fi
log "ready"
