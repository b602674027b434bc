#!/bin/bash
# Build the guest kernel: Debian's linux-source-6.1, `allnoconfig` plus our fragments.
#
#   build-kernel.sh [options] <outdir>      -> <outdir>/vmlinuz (bzImage), <outdir>/kernel.config
#
#   --check-only           merge and verify the configuration, compile nothing
#                          (<outdir> is optional; given, kernel.config is written there)
#   --extra-fragment FILE  merge FILE after the architecture fragment (repeatable)
#   --arch ARCH            x86_64 (default) or arm64 (arm64: --check-only only)
#   --clean                compile from an empty object directory (ignores the cached result)
#
# The merge uses the kernel's own scripts/kconfig/merge_config.sh. That script only warns
# when a requested value does not make it into the final .config (an unmet dependency makes
# an option vanish silently); this one fails and names every such option.
#
# Results are cached under $KATA_KERNEL_CACHE (default ~/.cache/kata-agent/kernel):
#   src/<package version>/   the extracted source, shared by every configuration
#   obj-<arch>/              the out-of-tree object directory (kbuild rebuilds what a new
#                            configuration changes)
#   <sha256>/                vmlinuz + kernel.config, keyed by the fragments, this script,
#                            the architecture, the source package version and the toolchain
# A cached result is copied to <outdir> without touching the source. Nothing is written
# inside the repository except <outdir>.
set -euo pipefail

readonly SRC_PACKAGE=linux-source-6.1
readonly SRC_TARBALL=${KERNEL_SOURCE_TARBALL:-/usr/src/linux-source-6.1.tar.xz}
readonly CACHE_ROOT=${KATA_KERNEL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kata-agent/kernel}
SCRIPT_PATH=$(readlink -f -- "${BASH_SOURCE[0]}")
FRAGMENT_DIR=$(dirname -- "$SCRIPT_PATH")/fragments
readonly SCRIPT_PATH FRAGMENT_DIR

# Reproducible build identity: the same inputs give the same vmlinuz.
export KBUILD_BUILD_TIMESTAMP='2023-01-01 00:00:00 UTC'
export KBUILD_BUILD_USER=kata
export KBUILD_BUILD_HOST=kata-agent
export KBUILD_BUILD_VERSION=1
export LOCALVERSION=
export LC_ALL=C
# The build must not depend on who calls it: no make flags or overrides from a parent make
# (`make kernel`), no kbuild/kconfig settings from the environment.
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES KCONFIG_CONFIG KCONFIG_ALLCONFIG KBUILD_OUTPUT \
	KBUILD_EXTMOD KCFLAGS KCPPFLAGS KAFLAGS CROSS_COMPILE LLVM O

usage() { # usage [STATUS]: the header above, to stderr unless asked for
	if [[ ${1:-2} == 0 ]]; then
		sed -n '2,11s/^# \{0,1\}//p' "$SCRIPT_PATH"
	else
		sed -n '2,11s/^# \{0,1\}//p' "$SCRIPT_PATH" >&2
	fi
	exit "${1:-2}"
}

check_only=false
clean=false
arch=x86_64
outdir=
extra_fragments=()
while [[ $# -gt 0 ]]; do
	case $1 in
	--check-only) check_only=true ;;
	--clean) clean=true ;;
	--extra-fragment)
		[[ $# -ge 2 ]] || usage
		extra_fragments+=("$(readlink -f -- "$2")")
		shift
		;;
	--extra-fragment=*) extra_fragments+=("$(readlink -f -- "${1#*=}")") ;;
	--arch)
		[[ $# -ge 2 ]] || usage
		arch=$2
		shift
		;;
	--arch=*) arch=${1#*=} ;;
	-h | --help) usage 0 ;;
	-*) echo "build-kernel: unknown option $1" >&2 && usage ;;
	*)
		[[ -z $outdir ]] || usage
		outdir=$1
		;;
	esac
	shift
done

case $arch in
x86_64) image=arch/x86/boot/bzImage ;;
arm64) image=arch/arm64/boot/Image ;;
*) echo "build-kernel: unsupported --arch $arch (x86_64 or arm64)" >&2 && exit 2 ;;
esac
if ! $check_only; then
	[[ -n $outdir ]] || usage
	if [[ $arch != x86_64 || $(uname -m) != x86_64 ]]; then
		echo "build-kernel: only x86_64 is built (natively); use --check-only for $arch" >&2
		exit 2
	fi
fi

fragments=("$FRAGMENT_DIR/common.config" "$FRAGMENT_DIR/$arch.config" "${extra_fragments[@]}")
for f in "${fragments[@]}"; do
	[[ -r $f ]] || { echo "build-kernel: cannot read fragment $f" >&2 && exit 2; }
done

# --- progress: one line per stage, with the seconds it took -------------------------------
t_start=$SECONDS
t_stage=$SECONDS
line_open=false
stage() { # stage NAME DETAIL: opens the line; stage_end closes it
	printf 'kernel: %-8s %s ... ' "$1" "$2"
	line_open=true
	t_stage=$SECONDS
}
stage_end() { # stage_end [NOTE]
	printf '%s%ds\n' "${1:+$1, }" $((SECONDS - t_stage))
	line_open=false
}
die() {
	$line_open && echo "FAILED"
	line_open=false
	echo "build-kernel: $*" >&2
	exit 1
}

# --- inputs and cache key -----------------------------------------------------------------
src_version=$(dpkg-query -W -f='${Version}' "$SRC_PACKAGE" 2>/dev/null) ||
	die "$SRC_PACKAGE is not installed (apt-get install $SRC_PACKAGE)"
[[ -r $SRC_TARBALL ]] || die "missing $SRC_TARBALL"

key=$({
	echo "source $SRC_PACKAGE $src_version"
	echo "arch $arch"
	# The compiler and linker versions end up in the image (the banner) and shape the code.
	echo "toolchain $(gcc -dumpfullversion) $(ld -v)"
	sha256sum <"$SCRIPT_PATH"
	for f in "${fragments[@]}"; do
		echo "fragment $(basename -- "$f")"
		sha256sum <"$f"
	done
} | sha256sum | cut -d' ' -f1)
result_dir=$CACHE_ROOT/$key

install_result() {
	mkdir -p -- "$outdir"
	cp -f -- "$result_dir/vmlinuz" "$outdir/vmlinuz.tmp.$$"
	cp -f -- "$result_dir/kernel.config" "$outdir/kernel.config.tmp.$$"
	mv -f -- "$outdir/vmlinuz.tmp.$$" "$outdir/vmlinuz"
	mv -f -- "$outdir/kernel.config.tmp.$$" "$outdir/kernel.config"
}

if ! $check_only && ! $clean && [[ -f $result_dir/vmlinuz && -f $result_dir/kernel.config ]]; then
	install_result
	size=$(stat -c %s -- "$outdir/vmlinuz")
	echo "kernel: done     $outdir/vmlinuz ($((size / 1024)) KiB, cached ${key:0:12}) ... 0s"
	exit 0
fi

mkdir -p -- "$CACHE_ROOT"
exec 9>"$CACHE_ROOT/.lock"

# --- extract (once per source package version) --------------------------------------------
srcdir=$CACHE_ROOT/src/$src_version
stage extract "$SRC_PACKAGE $src_version"
flock 9
if [[ ! -f $srcdir/Makefile ]]; then
	rm -rf -- "$CACHE_ROOT"/src/.extract.* # left by an interrupted run (we hold the lock)
	tmp=$CACHE_ROOT/src/.extract.$$
	mkdir -p -- "$tmp"
	tar -xJf "$SRC_TARBALL" -C "$tmp" || die "extracting $SRC_TARBALL failed"
	top=$(find "$tmp" -mindepth 1 -maxdepth 1 -type d | head -n1)
	[[ -f $top/Makefile ]] || die "$SRC_TARBALL: no kernel tree inside"
	rm -rf -- "$srcdir"
	mv -- "$top" "$srcdir"
	rm -rf -- "$tmp"
	stage_end
else
	stage_end "already extracted"
fi
# Only the build needs this lock from here on (it owns obj-<arch>); a check takes the lock
# of its own scratch directory.
$check_only && flock -u 9

# --- config: allnoconfig + fragments, then verify every requested value -------------------
# parse_config FILE: "CONFIG_X<TAB>value" for each assignment; "n" for "# CONFIG_X is not
# set". Anything else that is not a comment or blank is an error.
parse_config() {
	awk -v file="$1" '
		/^CONFIG_[A-Za-z0-9_]+=/ { i = index($0, "="); print substr($0, 1, i - 1) "\t" substr($0, i + 1); next }
		/^# CONFIG_[A-Za-z0-9_]+ is not set$/ { print $2 "\tn"; next }
		/^# CONFIG_/ { printf "%s:%d: malformed \"is not set\" line: %s\n", file, NR, $0 > "/dev/stderr"; bad = 1; next }
		/^[ \t]*(#.*)?$/ { next }
		{ printf "%s:%d: not a config line: %s\n", file, NR, $0 > "/dev/stderr"; bad = 1 }
		END { exit bad }' "$1"
}

# The requested value of each symbol: a later fragment overrides an earlier one, as in
# merge_config.sh. A symbol given twice in one fragment is a mistake.
requested=$(mktemp)
trap 'rm -f -- "$requested"' EXIT
for f in "${fragments[@]}"; do
	parsed=$(parse_config "$f") || die "bad fragment $f"
	dups=$(cut -f1 <<<"$parsed" | sort | uniq -d | tr '\n' ' ')
	[[ -z $dups ]] || die "$f sets ${dups% } more than once"
	printf '%s\n' "$parsed" >>"$requested"
done
requested_final=$(awk -F'\t' '{ v[$1] = $2; if (!($1 in seen)) { seen[$1] = 1; order[++n] = $1 } }
	END { for (i = 1; i <= n; i++) print order[i] "\t" v[order[i]] }' "$requested")
n_requested=$(wc -l <<<"$requested_final")

if $check_only; then
	# A scratch directory of its own (allnoconfig ignores any old .config in it), kept so
	# the next check does not rebuild the kconfig tools.
	objdir=$CACHE_ROOT/check-$arch
	exec 8>"$CACHE_ROOT/.check-$arch.lock"
	flock 8
else
	objdir=$CACHE_ROOT/obj-$arch
	$clean && rm -rf -- "$objdir"
fi
mkdir -p -- "$objdir"
log=$objdir/kernel-build.log
: >"$log"

kmake() { make -C "$srcdir" O="$objdir" ARCH="$arch" "$@"; }

stage config "$arch allnoconfig + $(basename -a -- "${fragments[@]}" | tr '\n' ' ' | sed 's/ $//')"
# merge_config.sh runs make from the current directory and leaves temporary files there.
(cd "$srcdir" && ARCH=$arch scripts/kconfig/merge_config.sh -n -O "$objdir" "${fragments[@]}") \
	>>"$log" 2>&1 || { tail -n 30 "$log" >&2; die "merge_config.sh failed (log: $log)"; }

# kconfig_depends FILE SYMBOL: the "depends on" clauses of SYMBOL's entry in FILE, joined
# with &&. (Conditions from an enclosing `if` or `menu` block are not shown.)
kconfig_depends() {
	awk -v sym="$2" '
		$1 ~ /^(menu)?config$/ { inside = ($2 == sym); next }
		inside && $1 == "depends" && $2 == "on" { sub(/^[ \t]*depends on[ \t]*/, ""); n++; c[n] = $0 }
		inside && ($1 == "help" || $1 ~ /^(endmenu|menu|if|endif|choice|endchoice|source|comment)$/) { inside = 0 }
		END { if (n == 1) print c[1]; else for (i = 1; i <= n; i++) printf "%s(%s)%s", (i > 1 ? " && " : ""), c[i], (i == n ? "\n" : "") }' "$1"
}

# Compare with the final .config. A symbol absent from it either does not exist in this
# source or sits behind a dependency that is off; say which.
failures=$(
	awk -F'\t' 'NR == FNR { have[$1] = $2; next }
		{ got = ($1 in have) ? have[$1] : ""; if (got != $2) print $1 "\t" $2 "\t" got }' \
		<(parse_config "$objdir/.config") - <<<"$requested_final"
)
if [[ -n $failures ]]; then
	$line_open && echo "FAILED"
	line_open=false
	count=0
	while IFS=$'\t' read -r sym want got; do
		count=$((count + 1))
		if [[ -n $got ]]; then
			echo "build-kernel: $sym: requested $want, final .config has $got" >&2
		else
			name=${sym#CONFIG_}
			where=$(grep -rlE --include='Kconfig*' "^[[:space:]]*(menu)?config ${name}[[:space:]]*\$" "$srcdir" |
				cut -c$((${#srcdir} + 2))- | head -n3 | tr '\n' ' ' || true)
			if [[ -z $where ]]; then
				echo "build-kernel: $sym: requested $want, but no such option in $SRC_PACKAGE $src_version (misspelled or removed?)" >&2
			else
				deps=$(kconfig_depends "$srcdir/${where%% *}" "$name")
				echo "build-kernel: $sym: requested $want, absent from the final .config: its dependencies are not met (${where% }: ${deps:+depends on $deps, plus }any enclosing if/menu)" >&2
			fi
		fi
	done <<<"$failures"
	die "$count requested option(s) did not make it into the $arch .config"
fi
stage_end "$n_requested options verified"

if $check_only; then
	if [[ -n $outdir ]]; then
		mkdir -p -- "$outdir"
		cp -f -- "$objdir/.config" "$outdir/kernel.config"
	fi
	echo "kernel: done     configuration OK ... total $((SECONDS - t_start))s"
	exit 0
fi

# --- compile ------------------------------------------------------------------------------
jobs=$(nproc)
stage compile "make -j$jobs $(basename -- "$image") (log: $log)"
kmake -j"$jobs" "$(basename -- "$image")" >>"$log" 2>&1 ||
	{ tail -n 40 "$log" >&2; die "kernel compile failed (log: $log)"; }
stage_end

# --- done: publish into the cache, then copy out ------------------------------------------
tmp_result=$CACHE_ROOT/.result.$$
rm -rf -- "$tmp_result"
mkdir -p -- "$tmp_result"
cp -- "$objdir/$image" "$tmp_result/vmlinuz"
cp -- "$objdir/.config" "$tmp_result/kernel.config"
rm -rf -- "$result_dir"
mv -- "$tmp_result" "$result_dir"
install_result
size=$(stat -c %s -- "$outdir/vmlinuz")
echo "kernel: done     $outdir/vmlinuz ($((size / 1024)) KiB, cache ${key:0:12}) ... total $((SECONDS - t_start))s"
