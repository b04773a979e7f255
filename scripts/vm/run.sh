#!/usr/bin/env bash
# Runs one command as root in a KVM guest booted with Debian 12's kernel,
# which has kernel TLS (TCP_ULP "tls", tls.ko) where this sandbox's kernel
# has none. The host's / is the guest's / (9p), so host binaries, venvs and
# the checkout work at the same paths; /tmp, /var/tmp, /dev/shm, /run are
# guest-local tmpfs (RAM). Only loopback networking. The command runs in the
# caller's directory with the caller's PATH and `ulimit -n`, HOME=/root and
# stdin from /dev/null; its stdout/stderr stream to ours; we exit with its
# exit code (124 on --timeout, 125 if the guest failed to run it).
#
#   scripts/vm/run.sh [--cpus N] [--mem MiB] [--timeout SECONDS] [--tcg] -- COMMAND [ARGS...]
#
# Needs hardware KVM (VMX/SVM). A /dev/kvm backed by KVM-PVM (kvm_pvm, as
# in Firecracker sandboxes) cannot run an unmodified kernel at any useful
# speed, so it is refused. --tcg uses qemu's software emulation instead:
# 10-100x slower, fine for functional checks, useless for benchmarks.
#
# Kernel and initramfs: built once by build.sh into /root/.cache/gregor/vm.
# GREGOR_VM_9P_CACHE=loose|mmap|none picks the 9p cache mode (default loose:
# fastest, but host-side changes made while the guest runs may not be seen).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${GREGOR_VM_CACHE:-/root/.cache/gregor/vm}"
export GREGOR_VM_CACHE="$cache"

usage() {
    sed -n 's/^#   //p' "$0" >&2
    exit 2
}
cpus=2 mem=4096 timeout=1800 accel=kvm
while (($#)); do
    case "$1" in
        --cpus) cpus="$2"; shift 2 ;;
        --mem) mem="$2"; shift 2 ;;
        --timeout) timeout="$2"; shift 2 ;;
        --tcg) accel=tcg; shift ;;
        --) shift; break ;;
        *) usage ;;
    esac
done
(($#)) || usage

if [[ $accel == kvm ]]; then
    if [[ ! -r /dev/kvm || ! -w /dev/kvm ]]; then
        echo "run.sh: /dev/kvm is not usable; no KVM (--tcg to emulate, slowly)" >&2
        exit 125
    fi
    if [[ -d /sys/module/kvm_pvm && ! -d /sys/module/kvm_intel && ! -d /sys/module/kvm_amd ]]; then
        echo "run.sh: /dev/kvm is KVM-PVM (no VMX/SVM): it does not boot a stock kernel" \
             "in useful time (no output after 10 min); --tcg to emulate, slowly" >&2
        exit 125
    fi
    cpu=host boot_timeout=60
else
    echo "run.sh: --tcg: software emulation, far too slow for benchmarks" >&2
    cpu=max boot_timeout=300
fi
mkdir -p "$cache/runs"
flock "$cache/.build.lock" "$here/build.sh"

# Per-run directory, on the host's disk (the guest's /tmp is its own):
# cmd.sh for the guest; stdout, stderr, status from it; console.log.
run="$(mktemp -d "$cache/runs/XXXXXX")"
qpid=
trap '[[ -n "$qpid" ]] && kill "$qpid" 2>/dev/null; rm -rf "$run"' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
{
    printf 'export HOME=/root PATH=%q\n' "${PATH:-/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin}"
    printf 'ulimit -n %s\n' "$(ulimit -n)"
    printf 'cd %q || exit 125\n' "$PWD"
    printf 'exec'
    printf ' %q' "$@"
    printf '\n'
} >"$run/cmd.sh"
: >"$run/stdout"
: >"$run/stderr"

timeout -k 10 "$timeout" qemu-system-x86_64 \
    -accel "$accel" -cpu "$cpu" -machine q35 -smp "$cpus" -m "$mem" \
    -nodefaults -no-user-config -display none -no-reboot \
    -serial file:"$run/console.log" \
    -kernel "$cache/vmlinuz" -initrd "$cache/initramfs.cpio" \
    -append "console=ttyS0 quiet loglevel=0 panic=-1 gregor_run=$run gregor_9p_cache=${GREGOR_VM_9P_CACHE:-loose}" \
    -virtfs local,path=/,mount_tag=hostroot,security_model=passthrough,multidevs=remap \
    -virtfs local,path="$run",mount_tag=gregorrun,security_model=passthrough \
    </dev/null &
qpid=$!
# A guest that does not reach /init in time will not: stop it.
for ((i = 0; i < boot_timeout * 5; i++)); do
    sleep 0.2
    [[ -e "$run/booted" ]] || ! kill -0 "$qpid" 2>/dev/null && break
done
if [[ ! -e "$run/booted" ]] && kill -0 "$qpid" 2>/dev/null; then
    echo "run.sh: the guest did not boot within ${boot_timeout}s" >&2
    kill "$qpid"
fi
# Stream the guest's output as it is written; tail stops once qemu is gone.
tail -n +1 -s 0.2 -f --pid="$qpid" "$run/stdout" &
t1=$!
tail -n +1 -s 0.2 -f --pid="$qpid" "$run/stderr" >&2 &
t2=$!
qrc=0
wait "$qpid" || qrc=$?
qpid=
wait "$t1" "$t2" || true

if [[ -s "$run/status" ]]; then
    exit "$(cat "$run/status")"
fi
if ((qrc == 124 || qrc == 137)); then
    echo "run.sh: timed out after ${timeout}s" >&2
    exit 124
fi
echo "run.sh: the guest did not run the command (qemu exit $qrc); its console:" >&2
cat "$run/console.log" >&2 2>/dev/null || true
exit 125
