#!/usr/bin/env bash
# The integration tests .ci/run runs after `dotnet test`: the packages (scripts/package-test.sh:
# dotnet pack, the tool installed from a local folder, the library example) and the one-node SLURM
# cluster (scripts/slurm-test.sh, as root). Each prints its checks; this fails when either fails.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/package-test.sh
scripts/slurm-test.sh
