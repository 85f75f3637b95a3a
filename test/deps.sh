# Sourced by the test, demo and bench scripts: installs what finlive needs on a
# Debian 12 machine that has only the PostgreSQL 15 server.
finlive_install_deps() {
	local need=()
	command -v pg_config >/dev/null 2>&1 && [ -f /usr/lib/postgresql/15/lib/pgxs/src/makefiles/pgxs.mk ] \
		|| need+=(postgresql-server-dev-15)
	perl -MIPC::Run -e1 >/dev/null 2>&1 || need+=(libipc-run-perl)
	command -v make >/dev/null 2>&1 || need+=(make)
	command -v gcc >/dev/null 2>&1 || need+=(gcc)
	[ -x /usr/lib/postgresql/15/bin/postgres ] || need+=(postgresql-15)
	if [ ${#need[@]} -gt 0 ]; then
		echo "finlive: installing ${need[*]}"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -qq
		apt-get install -y -qq "${need[@]}" >/dev/null
	fi
	export PATH=/usr/lib/postgresql/15/bin:$PATH
}
