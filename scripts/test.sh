#!/usr/bin/env bash
# The test command (README, .ci/run): builds, runs every test (unit, Quarkus, conformance on ../shared/golden).
# Needs only a JDK 17, Maven and network access to Maven Central; installs nothing else by hand.
set -euo pipefail
cd "$(dirname "$0")/.."
export MAVEN_OPTS="${MAVEN_OPTS:--Xmx1g}"
# -Dsdserve.fuzz.skip=false: the Jazzer targets fuzz for 30 s each inside `verify` (longer: scripts/fuzz.sh)
exec mvn -B -ntp verify -Dsdserve.fuzz.skip=false "$@"
