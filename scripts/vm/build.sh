#!/usr/bin/env bash
# Builds, once, the kernel and initramfs that scripts/vm/run.sh boots:
# Debian 12's own kernel (linux-image-amd64, which has kernel TLS as the
# module tls.ko; the sandbox's host kernel has none) and a busybox
# initramfs with the modules for 9p (the host's / shared into the guest),
# TLS and its ciphers. The .debs are fetched with `apt-get download` and
# unpacked with `dpkg-deb -x`; nothing is installed on the host.
# Idempotent: does nothing if the cache is complete and newer than this
# script and ./init; --force rebuilds.
# Cache: $GREGOR_VM_CACHE (default /root/.cache/gregor/vm).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cache="${GREGOR_VM_CACHE:-/root/.cache/gregor/vm}"

if [[ "${1:-}" != --force && -s "$cache/vmlinuz" && -s "$cache/initramfs.cpio" &&
      ! "$here/init" -nt "$cache/initramfs.cpio" && ! "$0" -nt "$cache/initramfs.cpio" ]]; then
    exit 0
fi

# Modules the guest's /init loads (with their dependencies): virtio + 9p
# for the root, tls, and the AEADs kTLS uses (AES-GCM/CCM, ChaCha20-Poly1305)
# with their x86 SIMD implementations.
modules="virtio_pci 9pnet_virtio 9p tls gcm ccm aesni-intel ghash-clmulni-intel
         chacha20poly1305 chacha-x86_64 poly1305-x86_64"
# Directories copied whole so the kernel can load other ciphers on demand.
module_dirs="kernel/crypto kernel/arch/x86/crypto kernel/lib/crypto kernel/net/tls"

mkdir -p "$cache/debs"
rm -rf "$cache/extract" "$cache/initramfs"
cd "$cache/debs"
resolve() {
    apt-cache depends linux-image-amd64 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-[0-9].*-amd64\)$/\1/p' | head -1
}
image="$(resolve)"
if [[ -z "$image" ]]; then    # a machine whose package lists were never fetched
    apt-get update -qq >&2
    image="$(resolve)"
fi
[[ -n "$image" ]] || { echo "build.sh: cannot resolve linux-image-amd64" >&2; exit 1; }
if ! ls "$image"_*.deb busybox-static_*.deb >/dev/null 2>&1; then
    echo "build.sh: downloading $image and busybox-static" >&2
    apt-get download -q -o APT::Sandbox::User=root "$image" busybox-static >&2
fi
mkdir -p "$cache/extract"
dpkg-deb -x "$(ls -t "$image"_*.deb | head -1)" "$cache/extract/kernel"
dpkg-deb -x "$(ls -t busybox-static_*.deb | head -1)" "$cache/extract/busybox"

kver="$(ls "$cache/extract/kernel/lib/modules")"
bb="$cache/extract/busybox/bin/busybox"
kmods="$cache/extract/kernel/lib/modules/$kver"
"$bb" depmod -b "$cache/extract/kernel" "$kver"     # the .deb ships no modules.dep

# Initramfs tree: busybox, the modules (and everything they depend on,
# from modules.dep), /init.
root="$cache/initramfs"
mkdir -p "$root"/{bin,dev,proc,sys,newroot,lib/modules/"$kver"}
cp "$bb" "$root/bin/busybox"
ln -s busybox "$root/bin/sh"        # for /init's #!; it links the other applets
cp "$here/init" "$root/init"
chmod 755 "$root/init"
files=()
for m in $modules; do
    line="$(grep -E "/$m\.ko(\.xz|\.zst)?:" "$kmods/modules.dep")" \
        || { echo "build.sh: module $m not in $kver" >&2; exit 1; }
    files+=(${line/:/})
done
for d in $module_dirs; do
    files+=($(cd "$kmods" && find "$d" -name '*.ko*'))
done
for f in $(printf '%s\n' "${files[@]}" | sort -u); do
    mkdir -p "$root/lib/modules/$kver/$(dirname "$f")"
    cp "$kmods/$f" "$root/lib/modules/$kver/$f"
    case "$f" in               # busybox insmod may not read compressed modules
        *.xz) xz -d "$root/lib/modules/$kver/$f" ;;
        *.zst) zstd -q -d --rm "$root/lib/modules/$kver/$f" ;;
    esac
done
cp "$kmods"/modules.{builtin,order} "$root/lib/modules/$kver/"
"$bb" depmod -b "$root" "$kver"

cp "$cache/extract/kernel/boot/vmlinuz-$kver" "$cache/vmlinuz.new"
(cd "$root" && find . | "$bb" cpio -o -H newc 2>/dev/null) > "$cache/initramfs.cpio.new"
mv "$cache/vmlinuz.new" "$cache/vmlinuz"
mv "$cache/initramfs.cpio.new" "$cache/initramfs.cpio"
echo "$kver" > "$cache/kernel-version"
rm -rf "$cache/initramfs" "$cache/extract"
echo "build.sh: kernel $kver, initramfs $(du -h "$cache/initramfs.cpio" | cut -f1) in $cache" >&2
