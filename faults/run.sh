#!/usr/bin/env bash
# faults/run.sh — what `make faults` runs:
#   1. the fault scenarios (go test -tags faults ./faults): real `pagesend
#      worker` processes, private redis-servers, the fake Graph API;
#   2. every fuzz target for FUZZTIME (the Makefile's `fuzz` target);
#   3. govulncheck ./... (fails on a vulnerability in code we call);
# then one table. Exits non-zero if a scenario lost a job or failed, a fuzz
# target failed, or govulncheck found a called vulnerability.
#
# Environment: GO (go), MAKE (make), FUZZTIME (20s), GOVULNDB (a local
# vulnerability database for govulncheck -db, e.g. file:///srv/vulndb),
# FAULTS_REQUIRE_VULNCHECK=1 to fail when govulncheck cannot reach its
# database instead of reporting it as not run, FAULTS_RUN (a -run pattern
# to pick scenarios).
set -u
GO=${GO:-go}
MAKE=${MAKE:-make}
FUZZTIME=${FUZZTIME:-20s}
cd "$(dirname "$0")/.."

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
start=$(date +%s)
fail=0
extra="$work/extra.tsv" # rows after the scenarios'
: >"$extra"

row() { # name status took notes
	printf '%s\t-\t-\t-\t-\t-\t%s\t%s\t%s\n' "$1" "$2" "$3" "$4" >>"$extra"
}
since() { echo "$(($(date +%s) - $1))s"; }

echo "== faults: building pagesend"
if ! $GO build -o "$work/pagesend" ./cmd/pagesend; then
	echo "faults: build failed" >&2
	exit 1
fi
$GO vet -tags faults ./faults || fail=1

echo "== faults: scenarios"
t0=$(date +%s)
FAULTS_PAGESEND_BIN="$work/pagesend" FAULTS_TABLE="$work/scenarios.tsv" \
	$GO test -tags faults -count=1 -v -parallel 8 -timeout 13m ${FAULTS_RUN:+-run "$FAULTS_RUN"} ./faults 2>&1 |
	tee "$work/scenarios.log"
rc=${PIPESTATUS[0]}
if [ "$rc" -ne 0 ]; then
	fail=1
	row "go test ./faults" FAIL "$(since "$t0")" "exit $rc (see the log above)"
fi

echo "== faults: fuzz targets, $FUZZTIME each"
t0=$(date +%s)
$MAKE --no-print-directory fuzz FUZZTIME="$FUZZTIME" GO="$GO" 2>&1 | tee "$work/fuzz.log"
rc=${PIPESTATUS[0]}
# One note per target: "FuzzX N execs".
notes=$(awk '/^== Fuzz/ { if (t != "") printf "%s %s execs; ", t, e; t = $2; e = "?" }
	/execs:/ { for (i = 1; i <= NF; i++) if ($i == "execs:") e = $(i + 1) }
	END { if (t != "") printf "%s %s execs", t, e }' "$work/fuzz.log")
if [ "$rc" -eq 0 ]; then
	row "fuzz ($FUZZTIME per target)" ok "$(since "$t0")" "$notes"
else
	fail=1
	row "fuzz ($FUZZTIME per target)" FAIL "$(since "$t0")" "exit $rc; $notes; failing inputs are under the package's testdata/fuzz/"
fi

echo "== faults: govulncheck ./..."
t0=$(date +%s)
timeout 300 $GO run golang.org/x/vuln/cmd/govulncheck@latest ${GOVULNDB:+-db "$GOVULNDB"} ./... >"$work/vuln.log" 2>&1
rc=$?
cat "$work/vuln.log"
case $rc in
0)
	row "govulncheck ./..." ok "$(since "$t0")" "$(grep -m1 -E 'No vulnerabilities found|Your code is affected by 0' "$work/vuln.log" || echo 'no vulnerabilities in called code')"
	;;
3)
	fail=1
	row "govulncheck ./..." FAIL "$(since "$t0")" "$(grep -m1 'Your code is affected' "$work/vuln.log" || echo 'vulnerabilities in called code'): $(grep -oE 'GO-[0-9]{4}-[0-9]+' "$work/vuln.log" | sort -u | tr '\n' ' ')"
	;;
*)
	if grep -q 'fetching vulnerabilities' "$work/vuln.log" && [ "${FAULTS_REQUIRE_VULNCHECK:-0}" != 1 ]; then
		row "govulncheck ./..." "NOT RUN" "$(since "$t0")" "vulnerability database unreachable from this machine ($(grep -m1 -oE 'Get "[^"]+"' "$work/vuln.log")); set GOVULNDB to a local copy, FAULTS_REQUIRE_VULNCHECK=1 to fail"
	else
		fail=1
		row "govulncheck ./..." FAIL "$(since "$t0")" "exit $rc: $(tail -n1 "$work/vuln.log")"
	fi
	;;
esac

echo
echo "== faults: summary ($(since "$start") in all)"
{
	printf 'scenario\tsent\tdelivered\tduplicated\tlost\tdead-lettered\tstatus\ttook\tnotes\n'
	[ -f "$work/scenarios.tsv" ] && cat "$work/scenarios.tsv"
	cat "$extra"
} | column -t -s "$(printf '\t')"
if [ -f "$work/scenarios.tsv" ] && awk -F'\t' '$5 > 0 || $7 != "ok" { bad = 1 } END { exit !bad }' "$work/scenarios.tsv"; then
	fail=1
fi
if [ "$fail" -ne 0 ]; then
	echo "faults: FAILED" >&2
	exit 1
fi
echo "faults: ok — nothing lost"
