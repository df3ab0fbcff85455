#!/usr/bin/env bash
# The Debian package, tested as an administrator uses it: build it
# (scripts/package, lintian-clean), install it with dpkg on this machine,
# read its manual pages, complete with it in bash, zsh and fish, check its
# group, units and conffile, run the installed netwho, upgrade over a changed
# conffile, remove it, purge it. Needs root; changes this machine only
# through dpkg (the package is purged at the end, also on failure).
#
#   tests/package.sh            build the package (release build first)
#   tests/package.sh --no-build package target/release/netwho as it is
set -euo pipefail
cd "$(dirname "$0")/.."

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
[ "$(id -u)" = 0 ] || fail "needs root (dpkg -i)"

deb=$(scripts/package "$@" | tail -1)
[ -f "$deb" ] || fail "scripts/package made no package"
ok "built $deb, lintian-clean"

# a package left by an interrupted run is purged first; nothing else named
# netwho may be installed
if dpkg-query -W -f='${Status}' netwho 2>/dev/null | grep -q installed; then
	dpkg -P netwho >/dev/null
fi
[ ! -e /usr/bin/netwho ] || fail "/usr/bin/netwho exists and is not the package's"
cleanup() {
	dpkg -P netwho >/dev/null 2>&1 || true
	# a group this run created goes too: the machine is left as it was
	[ -n "$group_before" ] || groupdel netwho 2>/dev/null || true
}
group_before=$(getent group netwho || true)
trap cleanup EXIT

# the package holds what it should, owned by root
contents=$(dpkg-deb -c "$deb")
for f in ./usr/bin/netwho ./etc/netwho/netwho.toml ./lib/systemd/system/netwho.service \
	./lib/systemd/system/netwho-log.service ./usr/share/man/man1/netwho.1.gz \
	./usr/share/man/man5/netwho.toml.5.gz ./usr/share/man/man7/netwho-filter.7.gz \
	./usr/share/bash-completion/completions/netwho ./usr/share/zsh/vendor-completions/_netwho \
	./usr/share/fish/vendor_completions.d/netwho.fish ./usr/share/doc/netwho/copyright; do
	grep -q " $f\$" <<<"$contents" || fail "$f is not in the package"
done
if grep -v ' root/root ' <<<"$contents" | grep -q .; then
	fail "files not owned by root: $(grep -v ' root/root ' <<<"$contents" | head -3)"
fi
[ "$(dpkg-deb -f "$deb" Package)" = netwho ] || fail "package name"
dpkg-deb -f "$deb" Depends | grep -q 'libc6' || fail "Depends lacks libc6"
dpkg-deb -e "$deb" /tmp/netwho-pkg-control.$$
grep -qx /etc/netwho/netwho.toml /tmp/netwho-pkg-control.$$/conffiles || fail "netwho.toml is not a conffile"
# the maintainer scripts never enable or start a service
for script in postinst prerm postrm; do
	if grep -v '^[[:space:]]*#' "/tmp/netwho-pkg-control.$$/$script" |
		grep -Eq 'enable|start|deb-systemd-helper'; then
		fail "$script enables or starts a service"
	fi
done
rm -rf /tmp/netwho-pkg-control.$$
ok "contents, ownership, conffiles, dependencies"

dpkg -i "$deb" >/dev/null
ok "dpkg -i"

[ "$(command -v netwho)" = /usr/bin/netwho ] || fail "netwho is not /usr/bin/netwho on PATH"
want=$(sed -n '/^\[workspace.package\]/,/^\[/s/^version *= *"\(.*\)"/\1/p' Cargo.toml)
[ "$(/usr/bin/netwho --version)" = "netwho $want" ] || fail "netwho --version: $(/usr/bin/netwho --version)"
ok "netwho --version: $(/usr/bin/netwho --version)"

for page in netwho netwho-log netwho-top netwho-report netwho-daemon netwho-doctor \
	netwho-completions "5 netwho.toml" "7 netwho-filter"; do
	# shellcheck disable=SC2086 # "5 netwho.toml" is a section and a page
	path=$(man -w $page) || fail "man -w $page"
	case "$path" in /usr/share/man/*) ;; *) fail "man -w $page: $path" ;; esac
	# shellcheck disable=SC2086
	text=$(MANWIDTH=100 man $page 2>/tmp/netwho-man-warn.$$) || fail "man $page"
	[ ! -s /tmp/netwho-man-warn.$$ ] || fail "man $page warns: $(head -3 /tmp/netwho-man-warn.$$)"
	[ "$(wc -l <<<"$text")" -gt 20 ] || fail "man $page is nearly empty"
done
rm -f /tmp/netwho-man-warn.$$
MANWIDTH=100 man netwho-log | grep -q -- '--rotate-size' || fail "netwho-log(1) lacks --rotate-size"
MANWIDTH=100 man 5 netwho.toml | grep -q 'commit_every' || fail "netwho.toml(5) lacks commit_every"
MANWIDTH=100 man 7 netwho-filter | grep -q 'fd.rport' || fail "netwho-filter(7) lacks fd.rport"
ok "manual pages: man -w and man for every page, without warnings"

# completion, in the shells themselves
got=$(bash -c 'source /usr/share/bash-completion/completions/netwho
	COMP_WORDS=(netwho log proc.n); COMP_CWORD=2; _netwho_with_fields netwho proc.n log
	echo "${COMPREPLY[*]}"
	COMP_WORDS=(netwho report top-c); COMP_CWORD=2; _netwho_with_fields netwho top-c report
	echo "${COMPREPLY[*]}"
	COMP_WORDS=(netwho do); COMP_CWORD=1; _netwho_with_fields netwho do netwho
	echo "${COMPREPLY[*]}"')
[ "$got" = $'proc.name\ntop-conns\ndoctor' ] || fail "bash completion gave: $got"
zsh -n /usr/share/zsh/vendor-completions/_netwho || fail "zsh: syntax"
grep -q '_netwho_filter' /usr/share/zsh/vendor-completions/_netwho || fail "zsh: no filter fields"
got=$(fish -c 'complete -C "netwho log fd.rpo"; complete -C "netwho report top-r"; complete -C "netwho com"' | cut -f1)
[ "$got" = $'fd.rport\ntop-remotes\ncompletions' ] || fail "fish completion gave: $got"
ok "completion: bash and fish complete commands, reports and filter fields; zsh parses"

getent group netwho >/dev/null || fail "no group netwho after install"
ok "group netwho: $(getent group netwho)"

[ "$(stat -c %a /etc/netwho/chain.key)" = 600 ] || fail "chain.key mode $(stat -c %a /etc/netwho/chain.key)"
[ "$(stat -c %s /etc/netwho/chain.key)" = 32 ] || fail "chain.key is not 32 bytes"
key_sum=$(sha256sum /etc/netwho/chain.key)
ok "chain key 0600, 32 bytes"

for u in netwho.service netwho-log.service; do
	out=$(systemd-analyze verify "/lib/systemd/system/$u" 2>&1) || fail "systemd-analyze verify $u: $out"
	[ -z "$out" ] || fail "systemd-analyze verify $u says: $out"
	grep -q '^ExecStart=/usr/bin/netwho ' "/lib/systemd/system/$u" || fail "$u does not run /usr/bin/netwho"
	# never enabled by the package
	if compgen -G "/etc/systemd/system/*.wants/$u" >/dev/null; then
		fail "$u was enabled"
	fi
done
ok "units verify (systemd-analyze) and are not enabled"

/usr/bin/netwho daemon --config /etc/netwho/netwho.toml --print-config >/tmp/netwho-pkg-cfg.$$ ||
	fail "the installed configuration does not parse"
# (the first line names the file)
/usr/bin/netwho daemon --print-config -c /dev/null | tail -n +2 |
	diff - <(tail -n +2 /tmp/netwho-pkg-cfg.$$) >/dev/null ||
	fail "the installed configuration is not the defaults"
rm -f /tmp/netwho-pkg-cfg.$$
ok "the conffile parses and is the defaults"

doc=$(/usr/bin/netwho doctor) || fail "netwho doctor (installed) exits $?: $doc"
grep -q 'verdict: netwho can run here' <<<"$doc" || fail "netwho doctor: $doc"
grep -q 'ok    api_group' <<<"$doc" || fail "netwho doctor does not see the group: $doc"
ok "netwho doctor from /usr/bin: can run, sees the group"

# an upgrade (the same package again) keeps a changed conffile and the key
echo '# changed by the administrator' >>/etc/netwho/netwho.toml
dpkg -i --force-confold "$deb" >/dev/null
grep -q 'changed by the administrator' /etc/netwho/netwho.toml || fail "reinstall replaced the changed conffile"
[ "$(sha256sum /etc/netwho/chain.key)" = "$key_sum" ] || fail "reinstall replaced the chain key"
ok "reinstall keeps the changed conffile and the key"

dpkg -r netwho >/dev/null
[ ! -e /usr/bin/netwho ] || fail "dpkg -r left /usr/bin/netwho"
[ ! -e /usr/share/man/man1/netwho.1.gz ] || fail "dpkg -r left the manual"
[ ! -e /lib/systemd/system/netwho.service ] || fail "dpkg -r left the unit"
[ -e /etc/netwho/netwho.toml ] || fail "dpkg -r removed the conffile (only purge may)"
ok "dpkg -r removes the files and keeps the configuration"

dpkg -P netwho >/dev/null
[ ! -e /etc/netwho ] || fail "dpkg -P left /etc/netwho: $(ls -A /etc/netwho)"
dpkg-query -W netwho >/dev/null 2>&1 && fail "dpkg still knows netwho after purge"
getent group netwho >/dev/null || fail "purge removed the group (it is kept, as Debian does)"
if [ -z "$group_before" ]; then
	# this run created it; leave the machine as it found it
	groupdel netwho
fi
trap - EXIT
ok "dpkg -P removes /etc/netwho"
echo "package test passed"
