#!/usr/bin/env bash
# The whole test suite, as the README says: installs what it needs (Debian packages),
# builds with warnings as errors and runs every CTest case, then does the same again
# under AddressSanitizer + UndefinedBehaviorSanitizer. Each build has its own private
# PostgreSQL, started and stopped by the CTest fixture.
#   tests/run.sh            both builds
#   tests/run.sh --quick    the normal build only
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
jobs=$(nproc)

bash "$root/.ci/deps.sh" --test

run_suite() {
  local dir=$1; shift
  cmake -S "$root" -B "$dir" -DCLAIMD_WERROR=ON "$@" >/dev/null
  cmake --build "$dir" -j"$jobs"
  # The test PostgreSQL runs as 'postgres': say here, not hidden in a passing test's
  # output, which parent folders it needs made searchable.
  bash "$root/tests/pg.sh" reach "$dir/pgtest"
  # The image test (label image) is .ci/run's own step: it needs podman and minutes.
  # The caller may leave out more labels (a regex), e.g. ones that compile nothing.
  ctest --test-dir "$dir" -j"$jobs" --output-on-failure --timeout 300 -LE "${EXCLUDE:-image}"
  # Passed: the test databases and the cases' files (over a gigabyte) are not needed.
  # After a failure they stay, for a look. Said first: removing them takes a while.
  echo "== tests passed in $dir; removing its test databases and files (a gigabyte or more)"
  rm -rf "$dir/pgtest" "$dir/tmp"
  echo "== removed"
}

echo "== tests: release build"
run_suite "$root/build"
if [ "${1:-}" != "--quick" ]; then
  echo "== tests: AddressSanitizer + UndefinedBehaviorSanitizer build"
  # Leaks are errors too: claimd must exit clean after SIGTERM.
  # The Helm chart's checks (label helm) run no compiled code: the release run covers them.
  EXCLUDE='image|helm' ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1 \
    run_suite "$root/build-asan" -DCLAIMD_SANITIZE=ON -DCMAKE_BUILD_TYPE=Debug
fi
