# Command agent of the KVM test box. Runs under busybox ash; stdin and stdout are the raw,
# non-echoing serial port ttyS1 that QEMU connects to the host runner (tests/kvmbox/box.py).
#
# Protocol (one request at a time, lines end with \n):
#   box  -> host   VIREO-BOX-READY agent <uptime> kvm=<yes|no>
#   host -> box    RUN <token> <timeout-seconds> <base64 of the sh script>
#   box  -> host   <token> BEGIN
#                  <base64 of the command's stdout+stderr (gzip'd when not empty), in lines>
#                  <token> END <exit status|timeout|error> <centiseconds inside the box> <plain|gzip>
# The token is random per request and contains characters that base64 never produces, so the
# frame lines cannot collide with the output. The command runs as `sh script` in a new session
# (its own process group), stdin /dev/null, cwd /; on timeout its whole process group is killed
# with SIGKILL and the status is "timeout". Processes it leaves in the background keep running.
#
# Few processes per command (each costs ~10 ms under TCG), so builtins where possible.
dir=/run/vireo-agent
mkdir -p "$dir"
# A fifo nobody writes: `read -t N <>fifo` is a sleep without a process (the watchdog below).
[ -p "$dir/never" ] || mkfifo "$dir/never"

now_cs() {
    read -r u _ </proc/uptime
    cs="${u%.*}${u#*.}"
}

if [ -c /dev/kvm ]; then kvm=yes; else kvm=no; fi
read -r u _ </proc/uptime
echo "VIREO-BOX-READY agent $u kvm=$kvm"
while read -r verb tok tmo b64; do
    case "$verb" in
        RUN) ;;
        EXIT) break ;;
        *) continue ;;
    esac
    case "$tmo" in ''|*[!0-9]*) tmo=60 ;; esac
    now_cs; t0=$cs
    : >"$dir/out"
    if ! printf '%s\n' "$b64" | base64 -d >"$dir/cmd.sh" 2>/dev/null; then
        echo "agent: cannot decode the command" >"$dir/out"
        status=error
    else
        setsid sh "$dir/cmd.sh" </dev/null >"$dir/out" 2>&1 &
        pid=$!
        (
            read -t "$tmo" _ <>"$dir/never"
            : >"$dir/timedout.$tok"
            kill -KILL -- "-$pid" "$pid"
        ) </dev/null >/dev/null 2>&1 &
        wd=$!
        wait "$pid"
        status=$?
        kill -KILL "$wd" 2>/dev/null
        wait "$wd" 2>/dev/null
        if [ -f "$dir/timedout.$tok" ]; then
            status=timeout
            rm -f "$dir/timedout.$tok"
        fi
    fi
    now_cs; t1=$cs
    printf '\n%s BEGIN\n' "$tok"
    # Serial output is slow (~150 KB/s): non-empty outputs go gzip-compressed.
    enc=plain
    if [ -s "$dir/out" ]; then
        if gzip -c "$dir/out" >"$dir/out.gz"; then
            enc=gzip
            base64 "$dir/out.gz"
        else
            base64 "$dir/out"
        fi
    fi
    printf '\n%s END %s %s %s\n' "$tok" "$status" "$((t1 - t0))" "$enc"
done
echo "VIREO-BOX-AGENT-EXIT"
