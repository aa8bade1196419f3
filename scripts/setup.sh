#!/usr/bin/env bash
# Set up everything twomountains needs on a Debian machine, idempotently:
#   1. Debian packages (CJK font, HarfBuzz subsetting for fast PDFs, poppler for PDF checks);
#   2. a .venv with the pinned Python packages of requirements.lock, plus this project;
#   3. the reports' GB 2312 copy of the CJK font (evaluation/reporting/fonts.py: about 0.5 s).
# `setup.sh --test` (what `make test` runs) also installs the browser the portal's tests drive:
# Debian's chromium and chromium-driver (nothing downloads a browser).
# Re-running is cheap: each step is skipped when already done.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
VENV=${VENV:-.venv}
DEB_PACKAGES=(fonts-noto-cjk libharfbuzz-subset0 libharfbuzz-bin poppler-utils)
if [ "${1:-}" = "--test" ]; then
  DEB_PACKAGES+=(chromium chromium-driver)
fi

missing=()
for pkg in "${DEB_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
  missing+=("python3-venv")
fi
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "缺少系统软件包 / missing Debian packages: ${missing[*]}" >&2
    echo "请以 root 身份安装 / install them as root:" >&2
    echo "  sudo apt-get update && sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
  echo "==> apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

stamp="$VENV/.installed-$(cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  if [ ! -x "$VENV/bin/python" ]; then
    echo "==> creating $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  total=$(grep -cE '^[A-Za-z0-9]' requirements.lock || true)
  echo "==> installing $total pinned Python packages (requirements.lock; a few minutes the first time)"
  # pip's own lines, condensed to one per package fetched, so a long install is never silent
  # a pip configuration naming local package folders this machine lacks warns once per folder and package:
  # hundreds of lines that say nothing to the user (real warnings and errors still show)
  unlisted() { grep -v "^WARNING: Location '.*' is ignored: it is neither a file nor a directory" >&2 || true; }
  "$VENV/bin/python" -m pip install --disable-pip-version-check --progress-bar off -r requirements.lock \
    2> >(unlisted) | awk -v total="$total" '
        /^Collecting [^ ]+==/ { n++; printf "    [%d/%d] %s\n", n, total, $2; fflush(); next }
        /^Processing .*\.whl/ { k = split($2, path, "/"); split(path[k], part, "-")
                                n++; printf "    [%d/%d] %s==%s\n", n, total, part[1], part[2]; fflush(); next }
        /^Installing collected packages/ { print "    unpacking and installing …"; fflush(); next }
        /^Successfully installed/ { print "    done"; fflush(); next }'
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e . 2> >(unlisted)
  rm -f "$VENV"/.installed-*
  touch "$stamp"
fi

# The reports' font: Noto Sans CJK SC cut down to GB 2312 (a scorecard renders about a fifth faster).
"$VENV/bin/python" -m evaluation.reporting.fonts || true

# Prefect's local database: created once here, so the first `make demo` does not spend its time on
# Prefect's schema migrations. Skipped when PREFECT_API_DATABASE_CONNECTION_URL names another database.
prefect_home=${PREFECT_HOME:-$PWD/.prefect}
if [ -z "${PREFECT_API_DATABASE_CONNECTION_URL:-}" ] && [ ! -s "$prefect_home/prefect.db" ]; then
  echo "==> creating Prefect's local database in $prefect_home"
  mkdir -p "$prefect_home"
  PREFECT_HOME="$prefect_home" PREFECT_SERVER_ANALYTICS_ENABLED=false \
    "$VENV/bin/prefect" server database upgrade -y >/dev/null
fi
