#!/usr/bin/env bash
# Runs a command in a fresh, minimal Debian root (debootstrap --variant=minbase)
# in which only one PostgreSQL major version's server is installed, the way a
# fresh machine is: every other package the command needs, its own scripts
# must install.  Run as root on a Debian host (debootstrap is installed if
# missing).
#
#   bash test/roots.sh N [-- CMD [ARG...]]
#       N = 15 (Debian bookworm), 17 (trixie), 18 (sid), 19 (experimental on
#       top of sid); 16 has no Debian package and is refused.  Creates the
#       root, copies this tree into it as /finlive (the committed files plus
#       the working tree's changes and new files, without .git, build products
#       or tmp dirs), runs CMD there as root in /finlive (default:
#       bash test/run.sh), then removes the root.  The exit status is CMD's;
#       2 for a usage error, 3 when the root could not be made or prepared.
#   bash test/roots.sh --create DIR N
#       only create the root in DIR (a new directory); nothing stays mounted.
#       For overlapping the creation of one root with work in another.
#   bash test/roots.sh --run DIR [-- CMD [ARG...]]
#       run CMD in a root made by --create, then remove it.
#   bash test/roots.sh --remove DIR
#       unmount whatever is left mounted in DIR and remove it.
#
# Environment:
#   FINLIVE_ROOT_KEEP=1    keep the root afterwards (unmounted); its path is printed
#   FINLIVE_ROOT_BASE      where roots are made (default /var/tmp/finlive-roots)
#   FINLIVE_ROOT_CACHE     downloaded .deb files (default /var/cache/finlive-roots),
#                          one directory per suite for debootstrap and one for
#                          apt: each root's debootstrap --cache-dir and
#                          /var/cache/apt/archives start as hard links to them,
#                          and what the root downloaded is linked back when it
#                          is done (so roots of one suite can run at the same
#                          time without contending for apt's lock).  Only .deb
#                          files are kept between runs, never a root's
#                          installed state.
#   FINLIVE_ROOT_MIRROR    the Debian mirror (default: the debian URI of the host's
#                          apt sources, else http://deb.debian.org/debian)
#   FINLIVE_ROOT_DEB_SRC=1 add deb-src lines (apt-get source works inside)
#   FINLIVE_ROOT_OUT=DIR   a host directory, bind-mounted at /out in the root
#   FINLIVE_ROOT_ENV="A B" more variables to pass into the root.  Always passed:
#                          CI, TERM, SUITES and every FINLIVE_*, CHAOS_*, FUZZ_*,
#                          ASAN_*, PROVE_* variable; inside, HOME=/root,
#                          LANG=C.UTF-8, a standard PATH, and FINLIVE_ROOT_VERSION=N.
#
# Inside the root: apt works without flags (for sid and experimental, whose
# Release files on a frozen mirror are past their Valid-Until, an apt.conf.d
# file turns that check off; for 19 an apt pin takes postgresql-19,
# postgresql-client-19, postgresql-server-dev-19, libpq-dev and libpq5 from
# experimental and everything else from sid); services are not started
# (policy-rc.d); /proc, /dev, /dev/pts and a tmpfs /dev/shm are mounted for the
# command and always unmounted afterwards, also on failure or Ctrl-C.  The
# user "postgres" exists (postgresql-common creates it).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
base_dir=${FINLIVE_ROOT_BASE:-/var/tmp/finlive-roots}
cache=${FINLIVE_ROOT_CACHE:-/var/cache/finlive-roots}

say() { echo "roots: $*"; }
usage() {
	sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//' >&2
	exit 2
}
now() { date +%s; }

# -- versions and suites ------------------------------------------------------
suite_of() {
	case $1 in
	15) echo bookworm ;;
	17) echo trixie ;;
	18) echo sid ;;
	19) echo experimental ;;
	16)
		echo "roots: PostgreSQL 16 has no Debian package (bookworm has 15, trixie 17," >&2
		echo "roots: sid 18, experimental 19): there is no root for 16" >&2
		exit 2 ;;
	*)
		echo "roots: unknown PostgreSQL version '$1' (use 15, 17, 18 or 19)" >&2
		exit 2 ;;
	esac
}

# The debian URI the host's apt sources name (one-line and deb822 formats).
host_mirror() {
	local f uri
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -f "$f" ] || continue
		uri=$(awk '$1 == "deb" || $1 == "deb-src" {
				for (i = 2; i <= NF; i++) {
					if ($i ~ /^\[/) { while ($i !~ /\]$/ && i < NF) i++; continue }
					print $i; break
				}
			}' "$f" | grep -E '^https?://[^ ]*/debian/?$' | head -n 1)
		[ -n "$uri" ] && { echo "${uri%/}"; return; }
	done
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		uri=$(awk 'tolower($1) == "uris:" { for (i = 2; i <= NF; i++) print $i }' "$f" |
			grep -E '^https?://[^ ]*/debian/?$' | head -n 1)
		[ -n "$uri" ] && { echo "${uri%/}"; return; }
	done
	echo http://deb.debian.org/debian
}

# -- the .deb cache -----------------------------------------------------------------
# link_debs FROM TO: every .deb of FROM that TO lacks, as a hard link (a copy
# across file systems).  A hard link appears whole at once.
link_debs() {
	mkdir -p "$2/partial"
	[ -d "$1" ] || return 0
	find "$1" -maxdepth 1 -name '*.deb' -type f -exec cp -l -n -t "$2" {} + 2>/dev/null ||
		find "$1" -maxdepth 1 -name '*.deb' -type f -exec cp -n -t "$2" {} + || true
}
# What the root downloaded, back into the cache (its suite is in the marker).
save_debs() {
	local r=$1 suite
	suite=$(sed -n 's/^suite=//p' "$r/etc/finlive-root" 2>/dev/null || true)
	[ -n "$suite" ] && [ -d "$r/var/cache/apt/archives" ] || return 0
	link_debs "$r/var/cache/apt/archives" "$cache/apt/$suite"
}

# -- mounts and cleanup -----------------------------------------------------------
# Every mount under a root, deepest first (from the kernel's table, so also
# mounts that something inside the root made).
mounts_under() {
	awk -v r="$1" '$5 == r || index($5, r "/") == 1 { print $5 }' /proc/self/mountinfo | sort -r
}
unmount_all() {
	local r=$1 m
	for m in $(mounts_under "$r"); do
		umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "cannot unmount $m"
	done
}
# Processes whose root directory is the root: what the command started there
# and left running (a server, a stuck client).
kill_in_root() {
	local r=$1 p pids=() i
	for i in 1 2 3; do
		pids=()
		for p in /proc/[0-9]*; do
			[ "$(readlink "$p/root" 2>/dev/null)" = "$r" ] && pids+=("${p#/proc/}")
		done
		[ ${#pids[@]} -gt 0 ] || return 0
		if [ $i = 1 ]; then
			say "ending ${#pids[@]} process(es) left in the root: ${pids[*]}"
			kill -TERM "${pids[@]}" 2>/dev/null || true
			sleep 2
		else
			kill -KILL "${pids[@]}" 2>/dev/null || true
			sleep 1
		fi
	done
}
remove_root() {
	local r=$1
	[ -n "$r" ] && [ -d "$r" ] || return 0
	kill_in_root "$r"
	unmount_all "$r"
	if [ -n "$(mounts_under "$r")" ]; then
		say "not removing $r: still mounted: $(mounts_under "$r" | tr '\n' ' ')"
		return 1
	fi
	rm -rf --one-file-system "$r"
}

mount_all() {   # ROOT SUITE: what a command in the root needs
	local r=$1 suite=$2
	mount -t proc proc "$r/proc"
	mount --bind /dev "$r/dev"
	mount --make-private "$r/dev"
	mount --bind /dev/pts "$r/dev/pts"
	mount --make-private "$r/dev/pts"
	mkdir -p "$r/dev/shm"
	mount -t tmpfs -o mode=1777,nosuid,nodev shm "$r/dev/shm"
	link_debs "$cache/apt/$suite" "$r/var/cache/apt/archives"
	if [ -n "${FINLIVE_ROOT_OUT:-}" ]; then
		mkdir -p "$FINLIVE_ROOT_OUT" "$r/out"
		mount --bind "$FINLIVE_ROOT_OUT" "$r/out"
		mount --make-private "$r/out"
	fi
	# the host's resolver, so that apt in the root reaches the mirror
	cat /etc/resolv.conf >"$r/etc/resolv.conf" 2>/dev/null || true
}

# All mounts live in a private mount namespace when unshare allows it: they
# cannot leak to the host, and vanish with the namespace whatever happens.
# The trap below unmounts them in any case.
if [ -z "${_FINLIVE_ROOTS_NS:-}" ] && command -v unshare >/dev/null 2>&1 &&
	unshare --mount --propagation private true 2>/dev/null; then
	export _FINLIVE_ROOTS_NS=1
	exec unshare --mount --propagation private -- bash "${BASH_SOURCE[0]}" "$@"
fi

active_root=      # the root to clean up on exit
keep_root=0
child=
group=            # a background step in a process group of its own (bg_step)
on_exit() {
	local rc=$?
	trap - EXIT INT TERM ERR
	set +eE          # clean up as far as possible, whatever fails
	if [ -n "$child" ] && kill -0 "$child" 2>/dev/null; then kill -TERM "$child" 2>/dev/null || true; fi
	if [ -n "$group" ]; then
		kill -TERM -- "-$group" 2>/dev/null || true
		wait "$group" 2>/dev/null || true
	fi
	if [ -n "$active_root" ]; then
		rm -rf "$active_root.debootstrap-cache"
		[ "$rc" = 3 ] || rm -f "$active_root.create.log" "$active_root.create.log.apt"
	fi
	if [ -n "$active_root" ]; then
		save_debs "$active_root"
		if [ "$keep_root" = 1 ]; then
			kill_in_root "$active_root"
			unmount_all "$active_root"
			say "root kept (unmounted): $active_root"
		else
			remove_root "$active_root" || rc=1
		fi
	fi
	exit $rc
}
trap on_exit EXIT
set -E
trap 'echo "roots: failed (line $LINENO): $BASH_COMMAND" >&2; exit 3' ERR
trap 'say "interrupted"; exit 130' INT
trap 'say "terminated"; exit 143' TERM

host_deps() {
	local need=()
	command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
	[ -f /usr/share/keyrings/debian-archive-keyring.gpg ] || need+=(debian-archive-keyring)
	if [ ${#need[@]} -gt 0 ]; then
		say "installing on the host: ${need[*]}"
		DEBIAN_FRONTEND=noninteractive apt-get update -qq
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
	fi
}

# bg_step CMD...: run a step of the creation in the background, in a process
# group of its own, so that a signal reaches the trap at once and the trap
# ends the whole step (debootstrap's downloads and dpkg runs too).
bg_step() {
	local rc=0
	setsid "$@" </dev/null &
	group=$!
	wait "$group" || rc=$?
	group=
	return $rc
}

in_root() {    # ROOT CMD...: run a command inside, with a clean environment
	local r=$1; shift
	chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		DEBIAN_FRONTEND=noninteractive "$@"
}

# -- create -------------------------------------------------------------------------
create_root() {     # DIR VERSION
	local r=$1 v=$2 suite dist mirror t0 log
	suite=$(suite_of "$v")
	dist=$suite
	[ "$suite" = experimental ] && dist=sid
	mirror=${FINLIVE_ROOT_MIRROR:-$(host_mirror)}
	mirror=${mirror%/}
	if [ -e "$r" ] && [ -n "$(ls -A "$r" 2>/dev/null)" ]; then
		echo "roots: $r exists and is not empty" >&2
		exit 2
	fi
	host_deps
	mkdir -p "$r" "$cache/debootstrap/$dist" "$cache/apt/$suite"
	r=$(realpath "$r")
	chmod 755 "$r"      # the root's "/" (mktemp -d makes it 0700): postgres must get in
	active_root=$r
	t0=$(now)
	log=$r.create.log
	say "creating a $suite root for PostgreSQL $v in $r (mirror $mirror)"

	local debs=$r.debootstrap-cache
	rm -rf "$debs"
	link_debs "$cache/debootstrap/$dist" "$debs"
	rmdir "$debs/partial"
	if ! bg_step debootstrap --variant=minbase --cache-dir="$debs" \
		"$dist" "$r" "$mirror" >"$log" 2>&1; then
		tail -n 30 "$log"
		rm -rf "$debs"
		say "debootstrap $dist failed (log: $log)"
		exit 3
	fi
	link_debs "$debs" "$cache/debootstrap/$dist"
	rmdir "$cache/debootstrap/$dist/partial" 2>/dev/null || true
	rm -rf "$debs"
	rm -f "$r"/var/cache/apt/archives/*.deb
	say "debootstrap $dist: $(( $(now) - t0 )) s"

	# apt: the suite(s), no flags needed inside
	{
		echo "deb $mirror $dist main"
		[ "$suite" = experimental ] && echo "deb $mirror experimental main"
		if [ "${FINLIVE_ROOT_DEB_SRC:-0}" = 1 ]; then
			echo "deb-src $mirror $dist main"
			[ "$suite" = experimental ] && echo "deb-src $mirror experimental main"
		fi
	} >"$r/etc/apt/sources.list"
	{
		echo "// finlive test/roots.sh"
		echo 'APT::Keep-Downloaded-Packages "true";'
		echo 'Acquire::Languages "none";'
		case $dist in
		sid) echo 'Acquire::Check-Valid-Until "false";   // a frozen mirror: sid and experimental are past Valid-Until' ;;
		esac
	} >"$r/etc/apt/apt.conf.d/90finlive-root"
	if [ "$suite" = experimental ]; then
		cat >"$r/etc/apt/preferences.d/finlive-postgresql-$v" <<EOF
# finlive test/roots.sh: PostgreSQL $v is only in experimental; take its
# packages (and the libpq they need) from there, everything else from sid.
Package: postgresql-$v postgresql-client-$v postgresql-server-dev-$v libpq-dev libpq5
Pin: release a=experimental
Pin-Priority: 500
EOF
	fi
	echo "force-unsafe-io" >"$r/etc/dpkg/dpkg.cfg.d/90finlive-root"
	printf '#!/bin/sh\n# finlive test/roots.sh: no services start in this root\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
	chmod 755 "$r/usr/sbin/policy-rc.d"
	[ -s "$r/etc/hosts" ] || printf '127.0.0.1\tlocalhost\n::1\t\tlocalhost ip6-localhost ip6-loopback\n' >"$r/etc/hosts"

	printf 'version=%s\nsuite=%s\nmirror=%s\n' "$v" "$suite" "$mirror" >"$r/etc/finlive-root"
	mount_all "$r" "$suite"
	local t1
	t1=$(now)
	if ! bg_step chroot "$r" /usr/bin/env -i HOME=/root LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive \
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
		sh -c "apt-get update && apt-get install -y --no-install-recommends postgresql-$v" >"$log.apt" 2>&1; then
		tail -n 40 "$log.apt"
		say "installing postgresql-$v in the $suite root failed (log: $log.apt)"
		exit 3
	fi
	save_debs "$r"
	unmount_all "$r"
	say "apt-get install postgresql-$v: $(( $(now) - t1 )) s"

	# what the root must be: this one server, its client, the postgres user
	local servers
	servers=$(cd "$r/usr/lib/postgresql" && ls -d */bin/postgres 2>/dev/null | cut -d/ -f1 | tr '\n' ' ')
	if [ "$servers" != "$v " ]; then
		say "the root has PostgreSQL server(s) '$servers', expected exactly $v"
		exit 3
	fi
	[ -x "$r/usr/lib/postgresql/$v/bin/psql" ] || { say "no psql $v in the root"; exit 3; }
	in_root "$r" id postgres >/dev/null || { say "no postgres user in the root"; exit 3; }
	echo "ready=1" >>"$r/etc/finlive-root"
	rm -f "$log" "$log.apt"
	say "PostgreSQL $v ($suite) root ready in $(( $(now) - t0 )) s: $(in_root "$r" "/usr/lib/postgresql/$v/bin/postgres" --version 2>/dev/null || echo "postgres $v")"
	active_root=
}

# -- the tree ----------------------------------------------------------------------
copy_tree() {    # DEST
	local dest=$1
	local excl=(--exclude=.git --exclude='*.o' --exclude='*.so' --exclude='*.bc'
		--exclude=tmp_check --exclude='tmp_regress' --exclude='tmp_isolation'
		--exclude=results --exclude=output_iso --exclude=log --exclude=__pycache__
		--exclude=regression.diffs --exclude=regression.out
		--exclude=debian/.debhelper --exclude='debian/postgresql-*-finlive'
		--exclude=debian/files --exclude='debian/*.substvars' --exclude='debian/*.debhelper.log')
	mkdir -p "$dest"
	if command -v git >/dev/null 2>&1 && [ -e "$here/.git" ] &&
		git -C "$here" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		# tracked files as they are in the working tree, and new files not ignored
		git -C "$here" ls-files -z --cached --others --exclude-standard |
			(cd "$here" && while IFS= read -r -d '' f; do
				[ -e "$f" ] || [ -L "$f" ] && printf '%s\0' "$f"
			done) |
			tar -C "$here" "${excl[@]}" --null --no-recursion -T - -cf - |
			tar -C "$dest" -xf -
	else
		tar -C "$here" "${excl[@]}" -cf - . | tar -C "$dest" -xf -
	fi
}

# -- run ------------------------------------------------------------------------------
cmd_rc=0
run_in() {      # DIR CMD...: sets cmd_rc (called outside any || or if, so that set -e holds)
	local r=$1; shift
	grep -qx 'ready=1' "$r/etc/finlive-root" 2>/dev/null ||
		{ echo "roots: $r is not a root made by test/roots.sh --create" >&2; exit 2; }
	r=$(realpath "$r")
	active_root=$r
	[ "${FINLIVE_ROOT_KEEP:-0}" = 1 ] && keep_root=1
	local v suite
	v=$(sed -n 's/^version=//p' "$r/etc/finlive-root")
	suite=$(sed -n 's/^suite=//p' "$r/etc/finlive-root")
	[ $# -gt 0 ] || set -- bash test/run.sh

	rm -rf --one-file-system "$r/finlive"
	copy_tree "$r/finlive"
	mount_all "$r" "$suite"

	local envs=(FINLIVE_ROOT_VERSION="$v") name
	for name in $(compgen -e); do
		case $name in
		FINLIVE_ROOT_*) ;;
		CI | TERM | SUITES | FINLIVE_* | CHAOS_* | FUZZ_* | ASAN_* | PROVE_*) envs+=("$name=${!name}") ;;
		esac
	done
	for name in ${FINLIVE_ROOT_ENV:-}; do
		[ -n "${!name+set}" ] && envs+=("$name=${!name}")
	done

	say "=== PostgreSQL $v ($suite root): $* ==="
	local t0
	t0=$(now)
	cmd_rc=0
	# In the background, so that a signal reaches the trap at once.
	if { true <&0; } 2>/dev/null; then exec 3<&0; else exec 3</dev/null; fi
	(
		trap - EXIT INT TERM ERR
		set +eE
		in_root "$r" "${envs[@]}" /bin/bash -c 'cd /finlive && exec "$@"' roots "$@" <&3
	) &
	child=$!
	wait "$child" || cmd_rc=$?
	child=
	say "=== PostgreSQL $v ($suite root): exit $cmd_rc after $(( $(now) - t0 )) s: $* ==="
}

# -- main -------------------------------------------------------------------------------
[ "$(id -u)" = 0 ] || { echo "roots: run as root" >&2; exit 2; }
[ $# -gt 0 ] || usage
case $1 in
--create)
	[ $# = 3 ] || usage
	create_root "$2" "$3"
	;;
--run)
	[ $# -ge 2 ] || usage
	dir=$2; shift 2
	if [ $# -gt 0 ]; then [ "$1" = -- ] || usage; shift; fi
	run_in "$dir" "$@"
	exit $cmd_rc
	;;
--remove)
	[ $# = 2 ] || usage
	remove_root "$(realpath "$2")"
	;;
-h | --help) usage ;;
[0-9]*)
	v=$1; shift
	suite_of "$v" >/dev/null
	if [ $# -gt 0 ]; then [ "$1" = -- ] || usage; shift; fi
	mkdir -p "$base_dir"
	dir=$(mktemp -d "$base_dir/pg$v.XXXXXX")
	create_root "$dir" "$v"
	run_in "$dir" "$@"
	exit $cmd_rc
	;;
*) usage ;;
esac
