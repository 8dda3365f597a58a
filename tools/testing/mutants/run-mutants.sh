#!/bin/bash
# Mutation testing: build vhost_blk.ko with one deliberate bug at a time and
# require the tests named for that bug to fail in a VM.
#
#   tools/testing/mutants/run-mutants.sh [--kver KVER] [--timeout SEC]
#                                        [--control] [--list] [--apply-only]
#                                        [--head] [NAME...]
#
# Each mutant is a file tools/testing/mutants/NN-NAME.mutant (bash, sourced
# by this script) that sets
#   DESC      one line: the bug
#   BINARIES  the selftest binaries the VM runs (VBLK_TESTS)
#   CATCH     the TAP test names (bash globs, e.g. "io.*.flush") that must
#             fail: each must match at least one result, and every result
#             it matches must be "not ok" (a SKIP is not a failure)
#   VMENV     optional: VAR=value words exported in the VM before run.sh
# and calls, once per change,
#   edit FILE COUNT 'PERL'
# PERL is a perl expression (normally s/.../.../g) run on the whole of
# FILE (relative to the repository top; the edit works on a copy under
# build/mutants/NAME/src) with $_ holding the file; it must return COUNT:
# the number of replacements.  A count that differs, or a copy that ends up
# equal to the original, is "the mutation no longer applies": the module
# changed under the anchor and the mutant file needs updating.
#
# For every mutant: copy the module's sources (one snapshot taken at start,
# shared by all mutants), apply the edits, build with
# scripts/build-module.sh, boot one VM through tools/testing/run-suite.sh
# running only BINARIES, and judge.  CAUGHT needs both:
#   - the VM finished: run-suite.sh printed the target's summary line, no
#     "FAIL:"/"could not run" line for it (boot failure, timeout, no
#     VBT-DONE), and the kernel log has no oops, BUG or panic (a crashed
#     kernel's test results prove nothing);
#   - every CATCH pattern matched results, all of them "not ok".
# Anything else is "not ok N mutant.NAME # ..." with the reason.
#
# --apply-only applies the edits and stops there (no build, no VM): one
# TAP line per mutant, "ok" when it still applies; its diff is in
# build/mutants/NAME/mutation.diff.
#
# --head takes the module's sources from git's HEAD instead of the working
# tree (the tests are always build/selftests, as built).
#
# --control also boots the unmodified snapshot with the union of the
# binaries and requires every CATCH pattern to match passing results only:
# the named tests fail because of the mutation, not on their own.
#
# stdout: TAP, one line per mutant (and the control), diagnostics as
# "# mutants: ..." comments, then "N passed, N failed".  Exit 0 only if
# every mutant was caught (and the control passed).  Logs: build/mutants/.
set -uo pipefail
shopt -s extglob

PROG=${0##*/}
TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
MDIR=$TOP/tools/testing/mutants
OUT=$TOP/build/mutants
SELFTESTS=$TOP/build/selftests

usage() { sed -n '2,/^set -uo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "$PROG: error: $*" >&2; exit 2; }

KVER='' TIMEOUT=600 CONTROL=0 LIST=0 APPLY_ONLY=0 HEAD=0 NAMES=()
while [ $# -gt 0 ]; do
	case "$1" in
	--kver) [ $# -ge 2 ] || die "$1 needs a value"; KVER=$2; shift 2 ;;
	--timeout) [ $# -ge 2 ] || die "$1 needs a value"; TIMEOUT=$2; shift 2 ;;
	--control) CONTROL=1; shift ;;
	--list) LIST=1; shift ;;
	--apply-only) APPLY_ONLY=1; shift ;;
	--head) HEAD=1; shift ;;
	-h|--help) usage; exit 0 ;;
	-*) die "unknown option $1 (see --help)" ;;
	*) NAMES+=("$1"); shift ;;
	esac
done
cd "$TOP" || exit 2

# NAME of a mutant file: NN-NAME.mutant
mutant_name() { local b=${1##*/}; b=${b%.mutant}; echo "${b#[0-9][0-9]-}"; }

FILES=()
if [ ${#NAMES[@]} -eq 0 ]; then
	for f in "$MDIR"/[0-9][0-9]-*.mutant; do FILES+=("$f"); done
else
	for n in "${NAMES[@]}"; do
		f=$(ls "$MDIR"/[0-9][0-9]-"$n".mutant 2>/dev/null | head -n1)
		[ -n "$f" ] || die "no mutant named $n in $MDIR"
		FILES+=("$f")
	done
fi
[ ${#FILES[@]} -gt 0 ] || die "no mutants in $MDIR"

if [ $LIST = 1 ]; then
	for f in "${FILES[@]}"; do
		( DESC='' BINARIES='' CATCH=''; edit() { :; }; . "$f"
		  printf '%-28s %s\n%-28s   tests: %s (%s)\n' "$(mutant_name "$f")" "$DESC" "" \
			"$CATCH" "$BINARIES" )
	done
	exit 0
fi

if [ -z "$KVER" ]; then
	KVER=$(scripts/kernels.sh 6.12) || die "cannot find the 6.12 kernel (scripts/kernels.sh)"
fi
[ $APPLY_ONLY = 1 ] || [ -x "$SELFTESTS/run.sh" ] || die "$SELFTESTS/run.sh missing: run 'make selftests'"

log() { echo "# mutants: $*"; }

# The sources every mutant starts from: one copy, so that all of them (and
# the control) test the same module while others edit the tree.
snapshot() {
	rm -rf "$OUT/orig"
	mkdir -p "$OUT/orig/src/drivers/vhost" "$OUT/orig/src/include/uapi/linux"
	if [ $HEAD = 1 ]; then
		git archive HEAD Kbuild drivers/vhost include/uapi/linux/vhost_blk.h |
			tar -x -C "$OUT/orig/src" || die "cannot take the sources from HEAD"
		return
	fi
	cp Kbuild "$OUT/orig/src/"
	cp drivers/vhost/*.[ch] "$OUT/orig/src/drivers/vhost/"
	cp include/uapi/linux/vhost_blk.h "$OUT/orig/src/include/uapi/linux/"
}

# build_module SRC OUTDIR LOG
build_module() {
	VHOST_BLK_SRC=$1 VHOST_BLK_OUT=$2 scripts/build-module.sh "$KVER" >"$3" 2>&1
}

# make_payload DIR "BINARIES" "VMENV": run.sh running only BINARIES.
# Prints why not and fails if a binary is missing.
make_payload() {
	local p=$1 bins=$2 env=$3 b
	rm -rf "$p"
	mkdir -p "$p"
	for b in $bins; do
		if [ ! -x "$SELFTESTS/$b" ]; then
			echo "test binary $b is not built (make selftests)"
			return 1
		fi
		cp "$SELFTESTS/$b" "$p/"
	done
	cp "$SELFTESTS/run.sh" "$p/run-selftests.sh"
	[ ! -f "$SELFTESTS/fuzz-seeds.txt" ] || cp "$SELFTESTS/fuzz-seeds.txt" "$p/"
	{
		echo '#!/bin/sh'
		for b in $env; do echo "export $b"; done
		echo "VBLK_TESTS=\"$bins\" exec \"\$(dirname \"\$0\")/run-selftests.sh\""
	} >"$p/run.sh"
	chmod +x "$p/run.sh"
}

# boot TARGET KO PAYLOAD RESULTS: one VM; its log in RESULTS.log
boot() {
	tools/testing/run-suite.sh --payload "$3" --results "$4" --timeout "$TIMEOUT" \
		--target "$1:/boot/vmlinuz-$KVER:$KVER:/:$2" >"$4.log" 2>&1
}

# vm_finished TARGET RESULTS: true if the VM ran to its end with a sane
# kernel; otherwise prints why not.
vm_finished() {
	local t=$1 r=$2 line
	line=$(grep -E "^$t: (FAIL|could not run)" "$r.log" | head -n1)
	if [ -n "$line" ]; then
		echo "VM did not finish: ${line#"$t: "}"
		return 1
	fi
	if ! grep -qE "^$t: [0-9]+ passed, [0-9]+ failed" "$r.log"; then
		echo "VM did not finish: no summary line in $r.log"
		return 1
	fi
	line=$(grep -aE 'Oops[:[:space:]]|kernel BUG at|BUG: |Kernel panic|general protection fault' \
		"$r/$t/console.log" 2>/dev/null | head -n1 | tr -d '\r')
	if [ -n "$line" ]; then
		echo "VM did not finish cleanly: the kernel crashed: ${line:0:120}"
		return 1
	fi
	return 0
}

# results TAPFILE: "ok|fail|skip NAME" for every result line, any depth.
results() {
	awk '{
		sub(/\r+$/, ""); sub(/^[ #]*/, "")
		if ($0 !~ /^(not )?ok [0-9]+ /) next
		notok = ($0 ~ /^not /); sub(/^(not )?ok [0-9]+ +(- )?/, "")
		dir = ""
		if (match($0, / #[ \t]*[A-Za-z]+/)) {
			dir = toupper(substr($0, RSTART, RLENGTH)); sub(/^ #[ \t]*/, "", dir)
			$0 = substr($0, 1, RSTART - 1)
		}
		st = (dir == "SKIP" || (notok && dir == "TODO")) ? "skip" : (notok ? "fail" : "ok")
		print st, $0
	}' "$1"
}

# judge TAPFILE WANT "PATTERNS": WANT is fail (a mutant) or ok (the control).
# Prints the matched names (success) or the reason (failure).
judge() {
	local tap=$1 want=$2 pat st name n bad='' hit=() all pats
	all=$(results "$tap")
	read -ra pats <<<"$3"	# not "for pat in $3": that would glob files
	for pat in "${pats[@]}"; do
		n=0
		while read -r st name; do
			[ -n "$name" ] || continue
			# shellcheck disable=SC2053 # a glob on purpose
			[[ "$name" == $pat ]] || continue
			n=$((n + 1))
			if [ "$st" != "$want" ]; then
				case "$st" in
				ok) bad+="${bad:+; }$name passed" ;;
				fail) bad+="${bad:+; }$name failed" ;;
				*) bad+="${bad:+; }$name was skipped" ;;
				esac
			else
				hit+=("$name")
			fi
		done <<<"$all"
		[ $n -gt 0 ] || bad+="${bad:+; }no result named $pat (the test did not run)"
	done
	if [ -n "$bad" ]; then
		echo "$bad"
		return 1
	fi
	echo "${hit[*]}"
}

snapshot
N=0 PASSED=0 FAILED=0
total=${#FILES[@]}
[ $CONTROL = 0 ] || [ $APPLY_ONLY = 1 ] || total=$((total + 1))
echo "TAP version 13"
echo "1..$total"

report() { # report OK NAME TEXT
	N=$((N + 1))
	if [ "$1" = 1 ]; then
		PASSED=$((PASSED + 1))
		echo "ok $N $2 # $3"
	else
		FAILED=$((FAILED + 1))
		echo "not ok $N $2 # $3"
	fi
}

# Apply and build every mutant first (host CPU), then boot them one by one.
declare -A M_ERR M_BIN M_CATCH M_ENV M_DESC
ALLBIN='' ALLCATCH='' ALLENV=''
for f in "${FILES[@]}"; do
	name=$(mutant_name "$f")
	d=$OUT/$name
	rm -rf "$d"
	mkdir -p "$d"
	cp -a "$OUT/orig/src" "$d/src"
	err=$(
		DESC='' BINARIES='' CATCH='' VMENV='' ERR=''
		edit() {
			local file=$1 want=$2 got
			if [ ! -f "$d/src/$file" ]; then
				ERR+="${ERR:+; }$file is not among the copied sources"
				return
			fi
			got=$(MUT_EXPR=$3 perl -0777 -i -ne '
				$n += eval $ENV{MUT_EXPR};
				die "bad edit: ", $@ =~ s/\s+/ /gr, "\n" if $@;
				print;
				END { print STDERR "count=", $n + 0, "\n" }' "$d/src/$file" 2>&1 |
				sed -n 's/^count=//p; /^bad edit/p' | tr '\n' ' ')
			got=${got% }
			[ "$got" = "$want" ] ||
				ERR+="${ERR:+; }$file: $want replacement(s) expected, ${got:-none} made"
		}
		. "$f"
		{ echo "DESC=${DESC@Q}"; echo "BINARIES=${BINARIES@Q}"
		  echo "CATCH=${CATCH@Q}"; echo "VMENV=${VMENV@Q}"; } >"$d/meta"
		[ -n "$BINARIES" ] && [ -n "$CATCH" ] ||
			ERR+="${ERR:+; }$f sets no BINARIES or no CATCH"
		echo "$ERR"
	)
	# shellcheck disable=SC1091
	. "$d/meta"
	M_DESC[$name]=$DESC M_BIN[$name]=$BINARIES M_CATCH[$name]=$CATCH M_ENV[$name]=$VMENV
	diff -ru "$OUT/orig/src" "$d/src" >"$d/mutation.diff"
	if [ -n "$err" ]; then
		M_ERR[$name]="the mutation no longer applies: $err: update ${f#"$TOP"/}"
		continue
	fi
	if [ ! -s "$d/mutation.diff" ]; then
		M_ERR[$name]="the mutation no longer applies: the copy equals the original: update ${f#"$TOP"/}"
		continue
	fi
	[ $APPLY_ONLY = 0 ] || continue
	if ! build_module "$d/src" "$d/$KVER" "$d/build.log"; then
		M_ERR[$name]="build failed: $(grep -m1 -E 'error|Error' "$d/build.log" | cut -c1-160) (see ${d#"$TOP"/}/build.log)"
		continue
	fi
	for b in $BINARIES; do
		case " $ALLBIN " in *" $b "*) ;; *) ALLBIN+="${ALLBIN:+ }$b" ;; esac
	done
	read -ra pats <<<"$CATCH"
	for b in "${pats[@]}"; do
		case " $ALLCATCH " in *" $b "*) ;; *) ALLCATCH+=" $b" ;; esac
	done
	ALLENV+="${VMENV:+ }$VMENV"
done

if [ $APPLY_ONLY = 1 ]; then
	for f in "${FILES[@]}"; do
		name=$(mutant_name "$f")
		if [ -n "${M_ERR[$name]:-}" ]; then
			report 0 "mutant.$name" "${M_ERR[$name]}"
		else
			report 1 "mutant.$name" "applies: $(grep -c '^[-+][^-+]' "$OUT/$name/mutation.diff") changed lines"
		fi
	done
	echo "$PASSED passed, $FAILED failed"
	[ "$FAILED" -eq 0 ]
	exit
fi

for f in "${FILES[@]}"; do
	name=$(mutant_name "$f")
	d=$OUT/$name
	tname="mutant.$name"
	log "$name: ${M_DESC[$name]}; runs ${M_BIN[$name]}; must fail: ${M_CATCH[$name]}"
	if [ -n "${M_ERR[$name]:-}" ]; then
		report 0 "$tname" "${M_ERR[$name]}"
		continue
	fi
	if ! why=$(make_payload "$d/payload" "${M_BIN[$name]}" "${M_ENV[$name]}"); then
		report 0 "$tname" "$why"
		continue
	fi
	boot "mutant-$name" "$d/$KVER/vhost_blk.ko" "$d/payload" "$d/results"
	summary=$(grep -E "^mutant-$name: [0-9]+ passed" "$d/results.log" | tail -n1)
	log "$name: ${summary#"mutant-$name: "}; log ${d#"$TOP"/}/results.log"
	if ! why=$(vm_finished "mutant-$name" "$d/results"); then
		report 0 "$tname" "not caught: $why"
		continue
	fi
	if why=$(judge "$d/results/mutant-$name/tap.txt" fail "${M_CATCH[$name]}"); then
		report 1 "$tname" "caught by $why"
	else
		report 0 "$tname" "not caught: $why"
	fi
done

if [ $CONTROL = 1 ]; then
	d=$OUT/control
	rm -rf "$d"
	mkdir -p "$d"
	log "control: the unmodified module; runs $ALLBIN; must pass:$ALLCATCH"
	if [ -z "$ALLBIN" ]; then
		report 0 control "no mutant was built: nothing to compare with"
	elif ! build_module "$OUT/orig/src" "$d/$KVER" "$d/build.log"; then
		report 0 control "the unmodified module does not build (see ${d#"$TOP"/}/build.log)"
	elif ! why=$(make_payload "$d/payload" "$ALLBIN" "$ALLENV"); then
		report 0 control "$why"
	else
		boot control "$d/$KVER/vhost_blk.ko" "$d/payload" "$d/results"
		if ! why=$(vm_finished control "$d/results"); then
			report 0 control "$why"
		elif why=$(judge "$d/results/control/tap.txt" ok "$ALLCATCH"); then
			report 1 control "the unmodified module passes every named test: $why"
		else
			report 0 control "the unmodified module fails named tests: $why"
		fi
	fi
fi

echo "$PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ]
