#!/usr/bin/env bash
# Install what building and testing sim_metrics needs (Debian 12, as root).
# Installs only what is missing, so a second run is quick.
set -euo pipefail

PKGS=(build-essential postgresql-15 postgresql-server-dev-15
      libipc-run-perl valgrind libhiredis-dev redis-server postgresql-15-partman
      postgresql-15-pgtap prometheus-postgres-exporter curl)

missing=()
for p in "${PKGS[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing packages: ${missing[*]} (run as root, or: sudo apt-get install ${missing[*]})" >&2
        exit 1
    fi
    echo "installing: ${missing[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
id postgres >/dev/null 2>&1 || { echo "user postgres missing after install" >&2; exit 1; }
