#!/vireo/bin/sh
# /init of the KVM test box (see tests/kvmbox/box.py). Runs under busybox ash as PID 1.
# The box's own files live in /vireo (busybox + applet links in /vireo/bin, modules in
# /vireo/modules, this script, the agent); everything else in the initramfs sits at the same
# absolute path as on the host. Per-run settings come from /vireo/box.env.
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/vireo/bin
export HOME=/root
umask 022

mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev 2>/dev/null
mkdir -p /dev/pts /dev/shm /dev/net /tmp /run /var/tmp /root
mount -t devpts -o gid=5,mode=620,ptmxmode=666 devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
chmod 1777 /tmp /var/tmp
exec </dev/console >/dev/console 2>&1

say() { echo "VIREO-BOX: $*"; }
poweroff_now() { sync; poweroff -f; sleep 10; }

VIREO_MODE=agent
[ -f /vireo/box.env ] && . /vireo/box.env

# Modules in dependency order (irqbypass, kvm, kvm-amd first; then optional ones).
while read -r mod; do
    [ -n "$mod" ] || continue
    insmod "/vireo/modules/$mod" 2>/dev/null || say "insmod failed: $mod"
done </vireo/modules.order
ip link set lo up 2>/dev/null
hostname vireo-box

if [ -c /dev/kvm ]; then kvm=yes; else kvm=no; fi
kvm_mods=$(grep -E '^(irqbypass|kvm|kvm_amd) ' /proc/modules | cut -d' ' -f1 | tr '\n' ',')
say "kvm=$kvm modules=${kvm_mods%,} cpus=$(grep -c '^processor' /proc/cpuinfo) uptime=$(cut -d' ' -f1 /proc/uptime)"

stty -F /dev/ttyS1 raw -echo -echoe -echok -echonl -echoctl -echoke -ixon -ixoff -crtscts 2>/dev/null

if [ "$VIREO_MODE" = interactive ]; then
    # The console (ttyS0) is the user's terminal: run the command on it with a controlling tty.
    stty -F /dev/ttyS0 sane 2>/dev/null
    [ -n "$VIREO_ROWS" ] && stty -F /dev/ttyS0 rows "$VIREO_ROWS" cols "$VIREO_COLS" 2>/dev/null
    [ -n "$VIREO_TERM" ] && export TERM="$VIREO_TERM"
    echo "VIREO-BOX-READY interactive" >/dev/ttyS1
    cd "${VIREO_CWD:-/}" 2>/dev/null || cd /
    setsid cttyhack sh /vireo/cmd.sh
    rc=$?
    echo "VIREO-BOX-EXIT $rc" >/dev/ttyS1
    poweroff_now
fi

# Agent mode: one command at a time over ttyS1.
/vireo/bin/sh /vireo/agent.sh </dev/ttyS1 >/dev/ttyS1 2>/dev/console
say "agent exited ($?), powering off"
poweroff_now
