#!/usr/bin/env bash
# The kernel matrix: netwho on the kernels its users run, each booted under
# QEMU by scripts/vmtest (Debian 12's own 6.1, where the payload hooks are
# fexit programs, and Debian's 6.12, with the payload tracepoints), while the
# host kernel runs everything else. On each: `netwho doctor` must say netwho
# can run, on the expected sensor path, and the ground-truth scenarios
# (tests/e2e/tests/foundation.rs: bulk, 500 short connections, 200 one-shot
# datagrams, four users, IPv6 and mapped IPv4, fork hand-off, connections
# older than netwho (one, and sixteen read at once), loopback) must match
# flow by flow, byte for byte. On 6.1 the reduced sock_diag sensor's tests
# run too (tests/e2e/tests/reduced.rs), and the packet capture
# (tests/e2e/tests/pcap.rs: its kernel loop on the oldest verifier).
#
#   tests/kernels.sh [KERNEL...]     default: 6.1 6.12
set -euo pipefail
cd "$(dirname "$0")/.."

kernels=("$@")
[ ${#kernels[@]} -gt 0 ] || kernels=(6.1 6.12)
fail() { echo "FAIL: $*" >&2; exit 1; }

cargo build --locked -q -p netwho -p netwho-e2e
# the path of an e2e test binary, built
test_bin() {
	cargo test --locked -q -p netwho-e2e --test "$1" --no-run --message-format=json 2>/dev/null |
		python3 -c 'import sys, json
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["name"] == sys.argv[1]:
        print(m["executable"])' "$1"
}
foundation=$(test_bin foundation)
[ -x "$foundation" ] || fail "no foundation test binary"
reduced=$(test_bin reduced)
[ -x "$reduced" ] || fail "no reduced-mode test binary"
pcap=$(test_bin pcap)
[ -x "$pcap" ] || fail "no packet-capture test binary"

for k in "${kernels[@]}"; do
	case "$k" in
	6.1) want="payload from fexit" ;;
	*) want="payload tracepoints" ;;
	esac
	echo "== $k: netwho doctor"
	out=$(scripts/vmtest "$k" -- target/debug/netwho doctor) || fail "$k: netwho doctor exits $?: $out"
	echo "$out"
	grep -q "verdict: netwho can run here" <<<"$out" || fail "$k: doctor: netwho cannot run"
	grep -q "sensor path: ebpf: $want" <<<"$out" || fail "$k: doctor: not the $want path"
	echo "== $k: the ground-truth scenarios"
	start=$SECONDS
	scripts/vmtest "$k" --timeout 1500 -- "$foundation" --test-threads=1 ||
		fail "$k: the ground-truth scenarios failed (exit $?)"
	if [ "$k" = 6.1 ]; then
		# the reduced sock_diag sensor on the oldest kernel of the matrix
		echo "== $k: the reduced sensor (--sensor sock-diag)"
		scripts/vmtest "$k" --timeout 900 -- "$reduced" --test-threads=1 ||
			fail "$k: the reduced-sensor tests failed (exit $?)"
		# the packet capture's chunk loop on the oldest verifier
		echo "== $k: netwho pcap"
		scripts/vmtest "$k" --timeout 600 -- "$pcap" --test-threads=1 ||
			fail "$k: the packet-capture test failed (exit $?)"
	fi
	echo "ok: $k in $((SECONDS - start)) s"
done
echo "kernel matrix passed: ${kernels[*]}"
