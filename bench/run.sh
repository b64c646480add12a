#!/usr/bin/env bash
# End-to-end benchmark: the same workloads against Garage directly, through
# sealgate, and through the peer (rclone serve s3 over an rclone crypt remote),
# all over the same Garage, in one run. One command:
#
#   bench/run.sh                                         # full run, ~20-30 min on 2 cores
#   BENCH_MB=64 BENCH_SMALL_N=50 BENCH_LIST_N=200 REPEATS=1 bench/run.sh   # smoke run, ~2 min
#
# Workloads (every timed one REPEATS times, endpoints interleaved within a repetition):
#   aws_up / aws_down   BENCH_MB MiB file, aws cli v2 (/usr/bin/aws), default multipart settings
#   fast_up / fast_down the same size with sealgate-bench (aws-sdk-s3, 8 MiB parts, 16 at a time)
#   ranged              BENCH_RANGED_N random 4 KiB ranged GETs of that multipart object, one at a time
#   small_*             BENCH_SMALL_N x 4 KiB: aws cli (cp --recursive, ls --recursive) and sealgate-bench (16 at a time)
#   list                ListObjectsV2 over BENCH_LIST_N objects, every other one multipart
#                       (sealgate also as a new instance without any listing index, as a
#                       new instance reading the index at the store, and just restarted
#                       with its own; peak RSS after the listings)
#   latency             GET of a 4 KiB object: first one after a fresh sealgate start (one RSA unwrap)
#                       and warm ones, for RSA-2048/3072/4096 identities
#   memory              peak RSS (VmHWM) during BENCH_CONC_N concurrent BENCH_CONC_MB MiB multipart uploads
#                       (8 MiB parts, one at a time each, as aws cli sends a file), then GETs
#
# Env: BENCH_MB (1024), BENCH_SMALL_N (1000), BENCH_RANGED_N (1000), BENCH_LIST_N (10000),
# BENCH_CONC_N (16), BENCH_CONC_MB (256), BENCH_LAT_SAMPLES (2 x REPEATS + 1), REPEATS (3),
# BENCH_RSA_BITS (3072: the identity of the throughput runs), BENCH_DIR (/tmp/sealgate-bench),
# BENCH_DOC (1 for a full-size run, else 0: write docs/PERFORMANCE.md and docs/performance.png),
# BENCH_SKIP (space-separated workloads to skip: aws fast ranged small list latency memory),
# BENCH_ENDPOINTS (default "direct sealgate peer"; direct and sealgate are needed).
# Results: $BENCH_DIR/results.txt (every sample), summary.md, performance.png.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=$ROOT/../shared/tools
MB=${BENCH_MB:-1024}
SMALL_N=${BENCH_SMALL_N:-1000}
RANGED_N=${BENCH_RANGED_N:-1000}
LIST_N=${BENCH_LIST_N:-10000}
CONC_N=${BENCH_CONC_N:-16}
CONC_MB=${BENCH_CONC_MB:-256}
REPEATS=${REPEATS:-3}
LAT_SAMPLES=${BENCH_LAT_SAMPLES:-$((REPEATS * 2 + 1))}
RSA_BITS=${BENCH_RSA_BITS:-3072}
SKIP=" ${BENCH_SKIP:-} "
W=${BENCH_DIR:-/tmp/sealgate-bench}
AWS=${AWS_BIN:-/usr/bin/aws}
if [ -z "${BENCH_DOC:-}" ]; then
  if [ "$MB" -ge 1024 ] && [ "$REPEATS" -ge 3 ] && [ "$LIST_N" -ge 10000 ]; then BENCH_DOC=1; else BENCH_DOC=0; fi
fi
want() { [[ $SKIP != *" $1 "* ]]; }
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }
now() { date +%s.%N; }
secs() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }

SG=$ROOT/target/release/sealgate
SB=$ROOT/target/release/sealgate-bench
if [ -z "${BENCH_IN_NETNS:-}" ]; then
  [ -x "$AWS" ] || { echo "aws cli v2 not found at $AWS (apt-get install awscli)" >&2; exit 2; }
  command -v rclone >/dev/null || bash "$TOOLS/backend.sh" install rclone
  bash "$TOOLS/backend.sh" install garage
  python3 -c 'import matplotlib' 2>/dev/null || python3 -m pip install -q matplotlib
  log "building sealgate (release)"
  cargo build --release --locked --bin sealgate --bin sealgate-bench >&2
  # Three ports free here, each with +1 and +3 free (Garage's RPC and admin), and
  # no pid file of backend.sh or the peer script for them (those live in the
  # shared /tmp, whatever network namespace their process is in).
  BENCH_PORTS=$(python3 -c '
import os, socket
out = []
while len(out) < 3:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    ok = p < 60000 and p not in out and not any(os.path.exists(f"/tmp/{n}-{p}.pid") for n in ("s3-backend", "peer-rclone-crypt"))
    for d in (1, 3):
        try:
            t = socket.socket(); t.bind(("127.0.0.1", p + d)); t.close()
        except OSError:
            ok = False
    if ok: out.append(p)
print(*out)')
  export BENCH_PORTS
  # Garage does not set TCP_NODELAY on its S3 connections: a small response on a
  # kept-alive connection then waits for the client's delayed ACK (40 ms), which
  # swamps every small-object figure (see docs/PERFORMANCE.md). By default the run
  # happens in a private network namespace whose loopback routes carry
  # `quickack 1`; BENCH_NETNS=0 runs on the host's loopback as it is.
  if [ "${BENCH_NETNS:-1}" = 1 ]; then
    if unshare --net true 2>/dev/null; then
      exec unshare --net -- env BENCH_IN_NETNS=1 bash "$0" "$@"
    fi
    log "cannot create a network namespace (not root?): running on the host loopback"
  fi
  BENCH_IN_NETNS=host
fi
if [ "$BENCH_IN_NETNS" = 1 ]; then
  ip link set lo up
  for net in 127.0.0.1 127.0.0.0/8; do
    ip route replace local "$net" dev lo table local proto kernel scope host src 127.0.0.1 quickack 1
  done
  NET="private network namespace, loopback routes with quickack 1"
else
  NET="host loopback, default delayed ACKs"
fi

rm -rf "$W"; mkdir -p "$W/keys" "$W/small"
RES=$W/results.txt; : > "$RES"
export AWS_DEFAULT_REGION=us-east-1 AWS_PAGER="" AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=$W/aws-config AWS_SHARED_CREDENTIALS_FILE=$W/aws-credentials
: > "$AWS_CONFIG_FILE"; : > "$AWS_SHARED_CREDENTIALS_FILE"
unset AWS_PROFILE

# ---- ports, processes, cleanup -------------------------------------------------------
read -r GP SP PP <<<"$BENCH_PORTS"
read -r GAK GSK <<<"$(bash "$TOOLS/backend.sh" garage-key sealgate-bench)"
AK=benchuser; SK=bench-secret-key-0123456789abcdef
SG_PID=; STARTED_GARAGE=; STARTED_PEER=
cleanup() {
  [ -n "$SG_PID" ] && kill "$SG_PID" 2>/dev/null || true
  [ -n "$STARTED_PEER" ] && bash "$TOOLS/peer-rclone-crypt.sh" stop "$PP" >/dev/null 2>&1 || true
  [ -n "$STARTED_GARAGE" ] && bash "$TOOLS/backend.sh" stop "$GP" >/dev/null 2>&1 || true
  rm -rf "$W/garage" "$W/big.bin" "$W/big.back" "$W/small" "$W/small.back"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wait_port() {  # port pid
  for _ in $(seq 1 300); do
    kill -0 "$2" 2>/dev/null || { echo "process $2 died; see $W/*.log" >&2; return 1; }
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.05
  done
  echo "nothing listening on $1" >&2; return 1
}

# ---- machine ---------------------------------------------------------------------------
{
  echo "cpus=$(nproc)"
  echo "cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')"
  echo "ram_gib=$(awk '/MemTotal/ {printf "%.1f", $2/1048576}' /proc/meminfo)"
  echo "os=$(. /etc/os-release; echo "$PRETTY_NAME")"
  echo "kernel=$(uname -r)"
  echo "rustc=$(rustc --version | cut -d' ' -f2)"
  echo "aws=$($AWS --version 2>&1 | cut -d' ' -f1)"
  echo "rclone=$(rclone version 2>/dev/null | head -n1 | cut -d' ' -f2)"
  echo "garage=$("$(command -v garage || echo ~/.cargo/bin/garage)" --version 2>/dev/null | head -n1 || echo '?')"
  echo "sealgate=$(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src Cargo.toml || echo +dirty)"
  echo "date=$(date -u +%Y-%m-%dT%H:%MZ)"
  echo "load_start=$(cut -d' ' -f1-3 /proc/loadavg)"
  echo "net=$NET"
  echo "sizes=MB=$MB SMALL_N=$SMALL_N RANGED_N=$RANGED_N LIST_N=$LIST_N CONC=${CONC_N}x${CONC_MB}MiB REPEATS=$REPEATS RSA=$RSA_BITS"
} > "$W/machine.txt"
log "machine: $(tr '\n' ' ' < "$W/machine.txt")"

# ---- Garage, keys, sealgate, the peer ------------------------------------------------
log "starting Garage on $GP"
bash "$TOOLS/backend.sh" start "$GP" "$GAK" "$GSK" "$W/garage" garage >/dev/null
STARTED_GARAGE=1
G_PID=$(head -n1 "/tmp/s3-backend-$GP.pid")

export SEALGATE_PASSPHRASE=bench-passphrase-not-secret
(umask 077; printf %s "$SEALGATE_PASSPHRASE" > "$W/keys/pass")
for bits in 2048 3072 4096; do
  "$SG" keygen --name "rsa$bits" --bits "$bits" --out "$W/keys" >/dev/null
done
CFG=$W/sealgate.toml
{
  cat <<EOF
[server]
listen = "127.0.0.1:$SP"
shutdown_grace_secs = 2
[[users]]
access_key = "$AK"
secret_key = "$SK"
[store]
kind = "s3"
endpoint = "http://127.0.0.1:$GP"
region = "us-east-1"
access_key = "$GAK"
secret_key = "$GSK"
[gateway]
secret = "bench-gateway-secret-0123456789abcdef0123"
# the persistent listing index (listing-index.redb) lives here
state_dir = "$W/state"
EOF
  for bits in 2048 3072 4096; do
    printf '[[identities]]\nname = "rsa%s"\nkey_file = "%s"\npassphrase_file = "%s"\n' \
      "$bits" "$W/keys/rsa$bits.key.pem" "$W/keys/pass"
    printf '[[policies]]\nbucket = "lat-rsa%s"\nrecipients = ["rsa%s"]\n' "$bits" "$bits"
  done
  printf '[[policies]]\nbucket = "*"\nrecipients = ["rsa%s"]\n' "$RSA_BITS"
} > "$CFG"
"$SG" check-config --config "$CFG" >/dev/null

# The same gateway keeping no listing index at the store (the old floor).
CFG_NOIX=$W/sealgate-noix.toml
sed 's/^\[gateway\]$/[gateway]\nstore_index_secs = 0/' "$CFG" > "$CFG_NOIX"
grep -q '^store_index_secs = 0$' "$CFG_NOIX"

start_sealgate() {
  SEALGATE_LOG=warn "$SG" serve --config "${1:-$CFG}" >>"$W/sealgate.log" 2>&1 &
  SG_PID=$!
  wait_port "$SP" "$SG_PID"
}
stop_sealgate() {
  kill "$SG_PID" 2>/dev/null || true
  wait "$SG_PID" 2>/dev/null || true
  SG_PID=
}
log "starting sealgate on $SP (RSA-$RSA_BITS identity)"
start_sealgate

log "starting the peer on $PP"
PEER_PID=$(bash "$TOOLS/peer-rclone-crypt.sh" start "$PP" "$AK" "$SK" "http://127.0.0.1:$GP" "$GAK" "$GSK" peerstore)
STARTED_PEER=1

read -r -a ENDPOINTS <<< "${BENCH_ENDPOINTS:-direct sealgate peer}"
url() { case $1 in direct) echo "http://127.0.0.1:$GP" ;; sealgate) echo "http://127.0.0.1:$SP" ;; peer) echo "http://127.0.0.1:$PP" ;; esac; }
creds() { if [ "$1" = direct ]; then echo "$GAK $GSK"; else echo "$AK $SK"; fi; }
pid_of() { case $1 in direct) echo "$G_PID" ;; sealgate) echo "$SG_PID" ;; peer) echo "$PEER_PID" ;; esac; }
awsx() {  # endpoint args...
  local e=$1; shift
  read -r AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY <<<"$(creds "$e")"
  AWS_ACCESS_KEY_ID=$AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$AWS_SECRET_ACCESS_KEY \
    "$AWS" --endpoint-url "$(url "$e")" "$@"
}
sb() {  # endpoint bucket args...: sealgate-bench, given up on after BENCH_STEP_TIMEOUT s
  local e=$1 b=$2; shift 2
  read -r ak sk <<<"$(creds "$e")"
  AWS_ACCESS_KEY_ID=$ak AWS_SECRET_ACCESS_KEY=$sk timeout "${BENCH_STEP_TIMEOUT:-900}" \
    "$SB" --endpoint "$(url "$e")" --bucket "$b" "$@"
}
rec() {  # rep endpoint workload value: one sample (none when the value is empty)
  [ -z "$4" ] || echo "$1 $2 $3 $4" >> "$RES"
}
kv() {  # "a=1 b=2" key -> value
  tr ' ' '\n' <<<"$1" | sed -n "s/^$2=//p"
}
bucket() { echo "bench-$1"; }
hwm_kib() { awk '/VmHWM/ {print $2}' "/proc/$1/status"; }
# CPU time (user + system) of the store and of the gateway, from /proc: what a
# workload costs the servers, whatever else runs on the machine.
HZ=$(getconf CLK_TCK)
ticks() { local t=0 p; for p in "$@"; do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo "$t"; }
gw_pid() { case $1 in sealgate) echo "$SG_PID" ;; peer) echo "$PEER_PID" ;; esac; }
cpu_mark() {  # endpoint
  CM_STORE=$(ticks "$G_PID"); CM_GW=$(ticks $(gw_pid "$1"))
}
cpu_rec() {  # rep endpoint workload: CPU seconds since cpu_mark, store + gateway, and the gateway alone
  local s g
  s=$(( $(ticks "$G_PID") - CM_STORE )); g=$(( $(ticks $(gw_pid "$2")) - CM_GW ))
  rec "$1" "$2" "cpu_$3" "$(awk -v a="$s" -v b="$g" -v h="$HZ" 'BEGIN { printf "%.2f", (a + b) / h }')"
  [ "$2" = direct ] || rec "$1" "$2" "gwcpu_$3" "$(awk -v b="$g" -v h="$HZ" 'BEGIN { printf "%.2f", b / h }')"
}

for e in "${ENDPOINTS[@]}"; do sb "$e" "$(bucket "$e")" mb; done

# ---- the repetitions -----------------------------------------------------------------
for r in $(seq 1 "$REPEATS"); do
  log "repetition $r of $REPEATS (load $(cut -d' ' -f1-3 /proc/loadavg))"
  # Every repetition starts with a fresh sealgate (empty caches: a cold listing
  # at the end of the previous one fills them).
  [ "$r" = 1 ] || { stop_sealgate; start_sealgate; }
  if want aws; then
    head -c $((MB * 1048576)) /dev/urandom > "$W/big.bin"  # fresh bytes: Garage deduplicates blocks
    for e in "${ENDPOINTS[@]}"; do
      b=$(bucket "$e")
      cpu_mark "$e"
      t0=$(now); awsx "$e" s3 cp --only-show-errors "$W/big.bin" "s3://$b/aws.bin"; t1=$(now)
      cpu_rec "$r" "$e" aws_up; cpu_mark "$e"
      t1b=$(now); awsx "$e" s3 cp --only-show-errors "s3://$b/aws.bin" "$W/big.back"; t2=$(now)
      cpu_rec "$r" "$e" aws_down
      cmp -s "$W/big.bin" "$W/big.back" || { echo "download from $e differs" >&2; exit 1; }
      rm -f "$W/big.back"
      awsx "$e" s3 rm --only-show-errors "s3://$b/aws.bin"
      rec "$r" "$e" aws_up "$(secs "$t0" "$t1")"
      rec "$r" "$e" aws_down "$(secs "$t1b" "$t2")"
      log "  aws cli $e: up $(secs "$t0" "$t1") s, down $(secs "$t1b" "$t2") s"
    done
  fi
  if want fast || want ranged; then
    for e in "${ENDPOINTS[@]}"; do
      b=$(bucket "$e"); seed=$((r * 10 + ${#e}))
      cpu_mark "$e"
      o=$(sb "$e" "$b" --seed "$seed" put-big --key fast.bin --mb "$MB")
      cpu_rec "$r" "$e" fast_up
      [ "$r" = 1 ] && sb "$e" "$b" --seed "$seed" get-big --key fast.bin --verify >/dev/null
      cpu_mark "$e"
      g=$(sb "$e" "$b" --seed "$seed" get-big --key fast.bin)
      cpu_rec "$r" "$e" fast_down
      rec "$r" "$e" fast_up "$(kv "$o" put_s)"; rec "$r" "$e" fast_down "$(kv "$g" get_s)"
      log "  fast client $e: $o $g"
      if want ranged; then
        cpu_mark "$e"
        o=$(sb "$e" "$b" --seed "$seed" ranged --key fast.bin --n "$RANGED_N")
        cpu_rec "$r" "$e" ranged
        rec "$r" "$e" ranged "$(kv "$o" ranged_s)"; rec "$r" "$e" ranged_p50_ms "$(kv "$o" p50_ms)"
        log "  ranged $e: $o"
      fi
      sb "$e" "$b" rb >/dev/null; sb "$e" "$b" mb
    done
  fi
  # peak RSS so far of each process (sealgate restarts in the listing part below)
  for e in "${ENDPOINTS[@]}"; do rec "$r" "$e" rss_big_mib "$(( $(hwm_kib "$(pid_of "$e")") / 1024 ))"; done
  if want small; then
    rm -rf "$W/small"; mkdir -p "$W/small"
    python3 - "$W/small" "$SMALL_N" <<'EOF'
import os, sys
for i in range(int(sys.argv[2])):
    with open(os.path.join(sys.argv[1], f"f{i:05d}"), "wb") as f:
        f.write(os.urandom(4096))
EOF
    for e in "${ENDPOINTS[@]}"; do
      b=$(bucket "$e")
      cpu_mark "$e"
      t0=$(now); awsx "$e" s3 cp --only-show-errors --recursive "$W/small" "s3://$b/small/"; t1=$(now)
      cpu_rec "$r" "$e" aws_small_put
      rm -rf "$W/small.back"
      cpu_mark "$e"
      t1b=$(now); awsx "$e" s3 cp --only-show-errors --recursive "s3://$b/small/" "$W/small.back"; t2=$(now)
      cpu_rec "$r" "$e" aws_small_get
      cnt=$(awsx "$e" s3 ls --recursive "s3://$b/small/" | wc -l); t3=$(now)
      [ "$cnt" = "$SMALL_N" ] || { echo "$e listed $cnt of $SMALL_N" >&2; exit 1; }
      diff -rq "$W/small" "$W/small.back" >/dev/null || { echo "small objects from $e differ" >&2; exit 1; }
      rec "$r" "$e" aws_small_put "$(secs "$t0" "$t1")"
      rec "$r" "$e" aws_small_get "$(secs "$t1b" "$t2")"
      rec "$r" "$e" aws_small_list "$(secs "$t2" "$t3")"
      cpu_mark "$e"
      o=$(sb "$e" "$b" --seed "$((r * 10 + ${#e}))" small --n "$SMALL_N" --prefix fast-small/)
      cpu_rec "$r" "$e" fast_small
      rec "$r" "$e" fast_small_put "$(kv "$o" put_s)"; rec "$r" "$e" fast_small_get "$(kv "$o" get_s)"
      rec "$r" "$e" fast_small_list "$(kv "$o" list_s)"
      log "  small $e: aws put $(secs "$t0" "$t1") get $(secs "$t1b" "$t2") list $(secs "$t2" "$t3"); fast $o"
      sb "$e" "$b" rb >/dev/null; sb "$e" "$b" mb
    done
  fi
  if want list; then
    for e in "${ENDPOINTS[@]}"; do
      b=list-$e
      if [ "$r" = 1 ]; then
        sb "$e" "$b" mb
        o=$(sb "$e" "$b" fill --n "$LIST_N" --prefix o/)
        rec 1 "$e" list_fill "$(kv "$o" fill_s)"
        log "  filled $b: $o"
      fi
      if [ "$e" = sealgate ]; then
        # first: a new instance, nothing cached and no listing index, neither
        # its own nor at the store (one RSA unwrap and a tail read per object,
        # a manifest read per multipart one)
        stop_sealgate; rm -rf "$W/state"; start_sealgate "$CFG_NOIX"
        cpu_mark "$e"
        o=$(sb "$e" "$b" list)
        cpu_rec "$r" "$e" list_first
        rec "$r" sealgate list_first "$(kv "$o" list_s)"
        log "  list sealgate, new instance without any index: $o"
        # fresh: a new instance (no state directory) reading the listing index
        # the instances before it kept at the store
        stop_sealgate; rm -rf "$W/state"; start_sealgate
        cpu_mark "$e"
        o=$(sb "$e" "$b" list)
        cpu_rec "$r" "$e" list_fresh
        rec "$r" sealgate list_fresh "$(kv "$o" list_s)"
        log "  list sealgate, new instance: $o"
        # restart: the same instance restarted, its listing index kept
        stop_sealgate; start_sealgate
        cpu_mark "$e"
        o=$(sb "$e" "$b" list)
        cpu_rec "$r" "$e" list_cold
        rec "$r" sealgate list_cold "$(kv "$o" list_s)"
        log "  list sealgate, just restarted: $o"
      fi
      cpu_mark "$e"
      o=$(sb "$e" "$b" list)
      cpu_rec "$r" "$e" list
      [ "$(kv "$o" listed)" = "$LIST_N" ] || { echo "$e listed $(kv "$o" listed) of $LIST_N" >&2; exit 1; }
      rec "$r" "$e" list "$(kv "$o" list_s)"
      # peak RSS of the process that listed (sealgate: since its restart above)
      rec "$r" "$e" rss_list_mib "$(( $(hwm_kib "$(pid_of "$e")") / 1024 ))"
      log "  list $e: $o"
    done
  fi
done
if want list; then for e in "${ENDPOINTS[@]}"; do sb "$e" "list-$e" rb >/dev/null; done; fi

# ---- cold and warm GETs per RSA size ---------------------------------------------------
if want latency; then
  for bits in 2048 3072 4096; do
    b=lat-rsa$bits
    sb sealgate "$b" mb
    head -c 4096 /dev/urandom > "$W/lat.obj"
    awsx sealgate s3 cp --only-show-errors "$W/lat.obj" "s3://$b/obj"
    for s in $(seq 1 "$LAT_SAMPLES"); do
      stop_sealgate; start_sealgate
      o=$(sb sealgate "$b" latency --key obj)
      rec "$s" sealgate "get_cold_rsa$bits" "$(kv "$o" cold_ms)"
      rec "$s" sealgate "get_warm_rsa$bits" "$(kv "$o" warm_ms)"
      o2=$(sb direct "$b" latency --key obj)
      rec "$s" direct "get_cold_rsa$bits" "$(kv "$o2" cold_ms)"
      rec "$s" direct "get_warm_rsa$bits" "$(kv "$o2" warm_ms)"
      log "  RSA-$bits GET, fresh sealgate: $o; direct: $o2"
    done
    sb sealgate "$b" rb >/dev/null
  done
fi

# ---- peak memory under concurrent transfers --------------------------------------------
if want memory; then
  for e in "${ENDPOINTS[@]}"; do
    b=$(bucket "$e"); pid=$(pid_of "$e")
    echo 5 > "/proc/$pid/clear_refs"  # resets VmHWM to the current RSS
    before=$(hwm_kib "$pid")
    # (rclone serve s3 has been seen to stop reading all 16 uploads for good:
    # a step that does not finish is reported, and the run goes on)
    if ! o=$(BENCH_STEP_TIMEOUT=${BENCH_CONC_TIMEOUT:-300} sb "$e" "$b" concurrent --n "$CONC_N" --mb "$CONC_MB"); then
      o="put_s= get_s= (did not finish within ${BENCH_CONC_TIMEOUT:-300} s)"
      rec 1 "$e" conc_stalled 1
    fi
    after=$(hwm_kib "$pid")
    rec 1 "$e" rss_before_mib "$((before / 1024))"
    rec 1 "$e" rss_peak_mib "$((after / 1024))"
    rec 1 "$e" conc_up "$(kv "$o" put_s)"; rec 1 "$e" conc_down "$(kv "$o" get_s)"
    log "  $CONC_N x $CONC_MB MiB $e: $o; peak RSS $((after / 1024)) MiB (was $((before / 1024)) MiB)"
    sb "$e" "$b" rb >/dev/null || log "  could not empty $b at $e"
  done
fi
echo "load_end=$(cut -d' ' -f1-3 /proc/loadavg)" >> "$W/machine.txt"

# ---- summary, chart, doc -----------------------------------------------------------------
DOC_ARGS=()
[ "$BENCH_DOC" = 1 ] && DOC_ARGS=(--doc "$ROOT/docs/PERFORMANCE.md" --png "$ROOT/docs/performance.png")
python3 "$ROOT/bench/report.py" --results "$RES" --machine "$W/machine.txt" \
  --out "$W/summary.md" --chart "$W/performance.png" "${DOC_ARGS[@]}"
cat "$W/summary.md"
log "samples in $RES; summary $W/summary.md; chart $W/performance.png"
[ "$BENCH_DOC" = 1 ] && log "updated docs/PERFORMANCE.md and docs/performance.png"
exit 0
