# Command agent of the KVM test box. Runs under busybox ash; stdin and stdout are the raw,
# non-echoing serial port ttyS1 that QEMU connects to the host runner (tests/kvmbox/box.py).
#
# Protocol (one request at a time, lines end with \n):
#   box  -> host   VIREO-BOX-READY agent <uptime>
#   host -> box    RUN <token> <timeout-seconds> <base64 of the sh script>
#   box  -> host   <token> BEGIN
#                  <base64 of the command's stdout+stderr, in lines>
#                  <token> END <exit status|timeout|error> <centiseconds inside the box> <plain|gzip>
# The token is random per request and contains characters that base64 never produces, so the
# frame lines cannot collide with the output. The command runs as `sh script` in a new session
# (its own process group), stdin /dev/null, cwd /; on timeout its whole process group is killed
# with SIGKILL and the status is "timeout".
dir=/run/vireo-agent
mkdir -p "$dir"

uptime_cs() {
    local u
    read -r u _ </proc/uptime
    echo "${u%.*}${u#*.}"
}

echo "VIREO-BOX-READY agent $(cut -d' ' -f1 /proc/uptime)"
while read -r verb tok tmo b64; do
    case "$verb" in
        RUN) ;;
        EXIT) break ;;
        *) continue ;;
    esac
    case "$tmo" in ''|*[!0-9]*) tmo=60 ;; esac
    t0=$(uptime_cs)
    rm -f "$dir"/timedout.* "$dir/out"
    if ! printf '%s\n' "$b64" | base64 -d >"$dir/cmd.sh" 2>/dev/null; then
        echo "agent: cannot decode the command" >"$dir/out"
        status=error
    else
        setsid sh "$dir/cmd.sh" </dev/null >"$dir/out" 2>&1 &
        pid=$!
        setsid sh -c 'sleep "$1"; echo x >"$3"; kill -KILL -- "-$2"' watchdog "$tmo" "$pid" "$dir/timedout.$tok" \
            </dev/null >/dev/null 2>&1 &
        wd=$!
        wait "$pid"
        status=$?
        # The watchdog may not have reached its setsid yet: kill it by pid and by group.
        kill -KILL -- "$wd" 2>/dev/null
        kill -KILL -- "-$wd" 2>/dev/null
        wait "$wd" 2>/dev/null
        [ -f "$dir/timedout.$tok" ] && status=timeout
    fi
    t1=$(uptime_cs)
    # Serial output is slow (~150 KB/s): send large outputs gzip-compressed.
    enc=plain
    if [ "$(stat -c %s "$dir/out" 2>/dev/null || echo 0)" -gt 2048 ] && gzip -c "$dir/out" >"$dir/out.gz"; then
        enc=gzip
        mv "$dir/out.gz" "$dir/out"
    fi
    printf '\n%s BEGIN\n' "$tok"
    base64 "$dir/out"
    printf '\n%s END %s %s %s\n' "$tok" "$status" "$((t1 - t0))" "$enc"
done
echo "VIREO-BOX-AGENT-EXIT"
