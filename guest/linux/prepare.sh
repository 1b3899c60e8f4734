#!/bin/bash
# Prepare the default Linux test guest: Debian's cloud kernel + a busybox initramfs.
#
# Everything goes to ${VIREO_CACHE:-$HOME/.cache/vireo}/linux (outside the source tree):
#   vmlinuz            the bzImage (for bzImage boot)
#   vmlinux            the uncompressed ELF kernel extracted from it (for PVH boot)
#   initramfs.cpio.gz  busybox initramfs, /init = guest/linux/init
#   kernel-version     e.g. 6.1.0-56-cloud-amd64
#   kernel-package     the Debian package and version the kernel came from
#   config             the kernel's config
#   modules/lib/modules/<version>/   all modules of that kernel, with a modules.dep
# Idempotent: when the stamp matches (same kernel package, same scripts, same busybox) it only
# says so. Needs: apt-get, dpkg, busybox-static, cpio, gzip and the decompressor of the kernel
# payload (lz4 for Debian 12's kernel).
#
# Options: --force  rebuild everything;  --offline  never ask apt, use what is cached.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
cache=${VIREO_CACHE:-$HOME/.cache/vireo}
out=$cache/linux
force=0
offline=0
for a in "$@"; do
    case "$a" in
        --force) force=1 ;;
        --offline) offline=1 ;;
        -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
        *) echo "prepare.sh: unknown option $a" >&2; exit 2 ;;
    esac
done

say() { echo "prepare.sh: $*"; }
die() { echo "prepare.sh: error: $*" >&2; exit 1; }

busybox=/bin/busybox
[ -x "$busybox" ] || die "$busybox missing (apt-get install busybox-static)"
case " $("$busybox" --list | tr '\n' ' ') " in *" acpid "*) ;; *) die "$busybox lacks acpid" ;; esac
for t in cpio gzip dpkg sha256sum od; do
    command -v "$t" >/dev/null || die "$t missing"
done

# Modules wanted in the guest (those that are modules in this kernel; built-ins are fine).
want_modules="button evdev virtio_pci virtio_blk virtio_net virtio-rng virtio_console ext4"

# 1. Which kernel package? The one linux-image-cloud-amd64 depends on.
pkg=""
if [ "$offline" = 0 ]; then
    pkg=$(apt-cache depends linux-image-cloud-amd64 2>/dev/null |
          sed -n 's/^ *Depends: *\(linux-image-[0-9][^ ]*\)$/\1/p' | head -n1) || true
fi
if [ -z "$pkg" ]; then
    [ -f "$out/kernel-package" ] || die "cannot find the kernel package (apt-cache depends linux-image-cloud-amd64 failed) and nothing is cached"
    pkg=$(cut -d' ' -f1 "$out/kernel-package")
    [ "$offline" = 1 ] || say "apt gives no answer, using the cached $pkg"
fi
pkgver=$(apt-cache policy "$pkg" 2>/dev/null | sed -n 's/^ *Candidate: *//p' | head -n1) || true
[ -n "$pkgver" ] && [ "$pkgver" != "(none)" ] || pkgver=$(cut -d' ' -f2 "$out/kernel-package" 2>/dev/null || echo unknown)

# One prepare.sh at a time per cache (concurrent test runs).
mkdir -p "$cache"
exec 9>"$cache/.prepare.lock"
if command -v flock >/dev/null && ! flock -w 900 9; then die "timed out waiting for $cache/.prepare.lock"; fi

stamp_now=$( { echo "$pkg $pkgver"; sha256sum "$here/prepare.sh" "$here/init" "$busybox" | cut -d' ' -f1; } | sha256sum | cut -d' ' -f1)
if [ "$force" = 0 ] && [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp_now" ] &&
   [ -s "$out/vmlinuz" ] && [ -s "$out/vmlinux" ] && [ -s "$out/initramfs.cpio.gz" ]; then
    say "up to date: $out ($pkg $pkgver)"
    exit 0
fi

say "kernel package: $pkg $pkgver"
mkdir -p "$out"
work=$(mktemp -d "${TMPDIR:-/tmp}/vireo-prepare.XXXXXX")
trap 'rm -rf "$work"' EXIT

# 2. Download and unpack it (reuse the unpacked tree if the package did not change).
if [ "$force" = 1 ] || [ ! -f "$out/kernel-package" ] || [ "$(cat "$out/kernel-package")" != "$pkg $pkgver" ] ||
   [ ! -d "$out/modules/lib/modules" ] || [ ! -s "$out/vmlinuz" ]; then
    say "apt-get download $pkg"
    (cd "$work" && apt-get download "$pkg" 2>&1 | grep -v 'unsandboxed' | sed 's/^/  /') || true
    deb=$(ls "$work"/*.deb 2>/dev/null | head -n1)
    [ -n "$deb" ] || die "apt-get download $pkg failed"
    say "dpkg -x $(basename "$deb")"
    dpkg -x "$deb" "$work/x"
    kver=$(ls "$work/x/lib/modules" | head -n1)
    [ -n "$kver" ] || die "no modules in $deb"
    rm -rf "$out/modules" "$out/vmlinux" "$out/stamp"
    mkdir -p "$out/modules/lib/modules"
    mv "$work/x/lib/modules/$kver" "$out/modules/lib/modules/$kver"
    cp "$work/x/boot/vmlinuz-$kver" "$out/vmlinuz"
    cp "$work/x/boot/config-$kver" "$out/config"
    echo "$kver" >"$out/kernel-version"
    echo "$pkg $pkgver" >"$out/kernel-package"
    say "depmod (busybox) for $kver"
    "$busybox" depmod -b "$out/modules" "$kver"
fi
kver=$(cat "$out/kernel-version")
moddir=$out/modules/lib/modules/$kver
[ -f "$moddir/modules.dep" ] || "$busybox" depmod -b "$out/modules" "$kver"

# 3. The uncompressed ELF vmlinux, for PVH boot.
cfg_pvh=$(grep -E '^CONFIG_PVH=' "$out/config" || echo "CONFIG_PVH is not set")
say "kernel config: $cfg_pvh"
[ "$cfg_pvh" = "CONFIG_PVH=y" ] || say "warning: this kernel cannot boot through PVH"
u8()  { od -An -tu1 -j "$(($2))" -N1 "$1" | tr -d ' '; }
u32() { od -An -tu4 -j "$(($2))" -N4 "$1" | tr -d ' '; }
kz=$out/vmlinuz
[ "$(od -An -c -j $((0x202)) -N4 "$kz" | tr -d ' ')" = "HdrS" ] || die "$kz is not a bzImage"
setup_sects=$(u8 "$kz" 0x1f1); [ "$setup_sects" = 0 ] && setup_sects=4
payload_offset=$(u32 "$kz" 0x248)
payload_length=$(u32 "$kz" 0x24c)
start=$(( (setup_sects + 1) * 512 + payload_offset ))
dd if="$kz" of="$work/payload" bs=64K skip="$start" count="$payload_length" iflag=skip_bytes,count_bytes status=none
magic=$(od -An -tx1 -N6 "$work/payload" | tr -d ' \n')
# Every format but gzip has the uncompressed size appended (4 bytes, little endian).
size_le=$(tail -c 4 "$work/payload" | od -An -tu4 | tr -d ' ')
head -c -4 "$work/payload" >"$work/payload.body"
case "$magic" in
    02214c18*) fmt=lz4;   dec=(lz4 -dc);          in=$work/payload.body ;;
    1f8b*)     fmt=gzip;  dec=(gzip -dc);         in=$work/payload ;;
    fd377a585a00) fmt=xz; dec=(xz -dc --single-stream); in=$work/payload ;;
    28b52ffd*) fmt=zstd;  dec=(zstd -dc);         in=$work/payload.body ;;
    425a68*)   fmt=bzip2; dec=(bzip2 -dc);        in=$work/payload.body ;;
    5d0000*)   fmt=lzma;  dec=(xz -dc --format=lzma); in=$work/payload.body ;;
    894c5a4f*) fmt=lzo;   dec=(lzop -dc);         in=$work/payload.body ;;
    *) die "unknown kernel payload magic $magic" ;;
esac
command -v "${dec[0]}" >/dev/null || die "${dec[0]} missing, needed to decompress the $fmt kernel payload"
say "vmlinux: payload at $start, $payload_length bytes, $fmt; ${dec[*]}"
"${dec[@]}" <"$in" >"$work/vmlinux" || die "decompressing the $fmt payload failed"
[ "$(head -c 4 "$work/vmlinux" | od -An -tx1 | tr -d ' ')" = "7f454c46" ] || die "decompressed payload is not ELF"
got=$(stat -c %s "$work/vmlinux")
[ "$fmt" = gzip ] || [ "$got" = "$size_le" ] || die "vmlinux is $got bytes, expected $size_le"
mv "$work/vmlinux" "$out/vmlinux"
if command -v readelf >/dev/null; then
    if readelf -n "$out/vmlinux" 2>/dev/null | grep -q 'Unknown note type: (0x00000012)'; then
        say "vmlinux: ELF, $got bytes, has the PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)"
    else
        say "vmlinux: ELF, $got bytes, warning: no PVH entry note found"
    fi
else
    say "vmlinux: ELF, $got bytes"
fi

# 4. Resolve the modules we want (and their deps) into load order.
# Prints module paths relative to lib/modules/<ver>, dependencies first.
resolve_modules() {
    local dep=$1; shift
    local -A seen=()
    local order=()
    visit() {
        local path=$1 line d
        [ -n "${seen[$path]:-}" ] && return 0
        seen[$path]=1
        line=$(grep -m1 "^$path:" "$dep" || true)
        for d in ${line#*:}; do visit "$d"; done
        order+=("$path")
    }
    local m path
    for m in "$@"; do
        path=$(grep -m1 -E "(^|/)$m\.ko(\.[a-z]+)?:" "$dep" | cut -d: -f1 || true)
        if [ -z "$path" ]; then
            # dashes and underscores are the same in module names
            local alt=${m//-/_}; [ "$alt" = "$m" ] && alt=${m//_/-}
            path=$(grep -m1 -E "(^|/)$alt\.ko(\.[a-z]+)?:" "$dep" | cut -d: -f1 || true)
        fi
        if [ -z "$path" ]; then
            if grep -qE "(^|/)($m|${m//-/_})\.ko" "$moddir/modules.builtin" 2>/dev/null; then
                echo "builtin $m" >&2
            else
                echo "missing $m" >&2
            fi
            continue
        fi
        visit "$path"
    done
    printf '%s\n' "${order[@]}"
}
say "modules wanted: $want_modules"
resolve_modules "$moddir/modules.dep" $want_modules 2>"$work/modnotes" >"$work/modules"
while read -r kind m; do say "  $m: $kind"; done <"$work/modnotes"
say "modules to load: $(tr '\n' ' ' <"$work/modules")"

# 5. The initramfs.
root=$work/root
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,etc/vireo,etc/acpi/PWRF,proc,sys,dev,tmp,run,root,var/log}
cp "$busybox" "$root/bin/busybox"
"$busybox" --list-full | while read -r p; do
    [ "$p" = bin/busybox ] && continue
    case "$p" in
        bin/*) ln -sf busybox "$root/$p" ;;
        *)     ln -sf /bin/busybox "$root/$p" ;;
    esac
done
cp "$here/init" "$root/init"
chmod 755 "$root/init"
mknod -m 600 "$root/dev/console" c 5 1
mknod -m 666 "$root/dev/null" c 1 3
while read -r m; do
    mkdir -p "$root/lib/modules/$(dirname "$m")"
    cp "$moddir/$m" "$root/lib/modules/$m"
done <"$work/modules"
cp "$work/modules" "$root/etc/vireo/modules"
echo "$kver" >"$root/etc/vireo/kernel-version"
# busybox acpid: the power button event runs /etc/acpi/PWRF/00000080
printf '%s\n' '#!/bin/sh' 'echo "VIREO-LINUX: power button, poweroff" >/dev/console' 'sync' 'poweroff -f' \
    >"$root/etc/acpi/PWRF/00000080"
chmod 755 "$root/etc/acpi/PWRF/00000080"
echo 'PWRF PWRF/00000080' >"$root/etc/acpid.conf"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
printf '%s\n' 'PS1="vireo-guest:\w# "' 'export PS1' >"$root/etc/profile"
(cd "$root" && find . -mindepth 1 | LC_ALL=C sort | cpio --quiet -o -H newc -R 0:0) | gzip -9n >"$work/initramfs.cpio.gz"
mv "$work/initramfs.cpio.gz" "$out/initramfs.cpio.gz"
say "initramfs: $(stat -c %s "$out/initramfs.cpio.gz") bytes"

echo "$stamp_now" >"$out/stamp"
say "done: $out/{vmlinuz,vmlinux,initramfs.cpio.gz,kernel-version} (kernel $kver)"
