#!/usr/bin/env bash
# Gateway CPU per GiB on big transfers: what sealgate itself spends (user +
# system time of its process, from /proc/PID/stat), not wall time.
#
#   bench/bytes.sh                        # 1 GiB, 3 repetitions, ~3 min
#   BYTES_MB=256 REPEATS=1 bench/bytes.sh # smoke run
#   BYTES_PERF=/tmp/get.perf bench/bytes.sh   # also `perf record` sealgate during one GET
#   (BYTES_PERF_OP: which operation instead, e.g. up_unsigned; BYTES_PERF_ARGS: perf's
#   options, default -g; e.g. "-F 499 --call-graph dwarf,16384")
#
# Per repetition, over one Garage and a release sealgate:
#   up_signed    aws cli v2 (/usr/bin/aws) cp of a BYTES_MB MiB file over http:
#                multipart, SHA-256 payload hashes + Content-MD5
#   up_unsigned  sealgate-bench put-big: aws-sdk-s3, UNSIGNED-PAYLOAD, 8 MiB parts, 16 at a time
#   down         aws cli cp of the aws cli object to stdout (> /dev/null), 3 times
#   down_fast    sealgate-bench get-big of its object (8 MiB ranged GETs, 16 at a time)
# Prints one line per sample and the median of each operation, in gateway
# CPU seconds per GiB, and what one loopback TCP stream each way costs the
# kernel here (the part of a gateway's system time that no code of its avoids).
# Env: BYTES_MB (1024), REPEATS (3), BYTES_DIR (/tmp/sealgate-bytes), BYTES_NETNS
# (1: run in a private network namespace, as bench/run.sh does), BYTES_PERF (a
# perf.data path), AWS_BIN (/usr/bin/aws),
# SG_BIN and SB_BIN (other builds of sealgate and sealgate-bench: nothing is built then).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TOOLS=$ROOT/../shared/tools
MB=${BYTES_MB:-1024}
REPEATS=${REPEATS:-3}
W=${BYTES_DIR:-/tmp/sealgate-bytes}
AWS=${AWS_BIN:-/usr/bin/aws}
SG=${SG_BIN:-$ROOT/target/release/sealgate}
SB=${SB_BIN:-$ROOT/target/release/sealgate-bench}
log() { printf '[%(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

if [ -z "${BYTES_IN_NETNS:-}" ]; then
  [ -n "${SG_BIN:-}" ] || cargo build --release --locked --bin sealgate --bin sealgate-bench >&2
  # As bench/run.sh: a private network namespace whose loopback routes carry
  # `quickack 1` (BYTES_NETNS=0: the host's loopback as it is).
  if [ "${BYTES_NETNS:-1}" = 1 ] && unshare --net true 2>/dev/null; then
    exec unshare --net -- env BYTES_IN_NETNS=1 bash "$0" "$@"
  fi
fi
if [ "${BYTES_IN_NETNS:-}" = 1 ]; then
  ip link set lo up
  for net in 127.0.0.1 127.0.0.0/8; do
    ip route replace local "$net" dev lo table local proto kernel scope host src 127.0.0.1 quickack 1
  done
fi
rm -rf "$W"; mkdir -p "$W/keys"
export AWS_DEFAULT_REGION=us-east-1 AWS_PAGER="" AWS_EC2_METADATA_DISABLED=true
export AWS_CONFIG_FILE=$W/aws-config AWS_SHARED_CREDENTIALS_FILE=$W/aws-credentials
: > "$AWS_CONFIG_FILE"; : > "$AWS_SHARED_CREDENTIALS_FILE"
unset AWS_PROFILE

free_port() {  # a port with +1 and +3 free too (Garage's RPC and admin)
  python3 -c '
import socket
while True:
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close()
    try:
        for d in (1, 3):
            t = socket.socket(); t.bind(("127.0.0.1", p + d)); t.close()
    except OSError:
        continue
    if p < 60000:
        print(p); break'
}
GP=$(free_port); SP=$(free_port)
read -r GAK GSK <<<"$(bash "$TOOLS/backend.sh" garage-key sealgate-bytes)"
AK=bytesuser; SK=bytes-secret-key-0123456789abcdef
SG_PID=; PERF_PID=; PERF_DONE=
cleanup() {
  [ -n "$PERF_PID" ] && kill -INT "$PERF_PID" 2>/dev/null || true
  [ -n "$SG_PID" ] && kill "$SG_PID" 2>/dev/null || true
  bash "$TOOLS/backend.sh" stop "$GP" >/dev/null 2>&1 || true
  rm -rf "$W/garage" "$W/big.bin"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "starting Garage on $GP"
bash "$TOOLS/backend.sh" start "$GP" "$GAK" "$GSK" "$W/garage" garage >/dev/null

export SEALGATE_PASSPHRASE=bytes-passphrase-not-secret
(umask 077; printf %s "$SEALGATE_PASSPHRASE" > "$W/keys/pass")
"$SG" keygen --name me --bits 3072 --out "$W/keys" >/dev/null
CFG=$W/sealgate.toml
cat > "$CFG" <<EOF
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
secret = "bytes-gateway-secret-0123456789abcdef0123"
[[identities]]
name = "me"
key_file = "$W/keys/me.key.pem"
passphrase_file = "$W/keys/pass"
[[policies]]
bucket = "*"
recipients = ["me"]
EOF
SEALGATE_LOG=warn "$SG" serve --config "$CFG" >>"$W/sealgate.log" 2>&1 &
SG_PID=$!
for _ in $(seq 1 200); do (exec 3<>"/dev/tcp/127.0.0.1/$SP") 2>/dev/null && break; sleep 0.05; done
log "sealgate $SG_PID on $SP"

export AWS_ACCESS_KEY_ID=$AK AWS_SECRET_ACCESS_KEY=$SK
awsx() { "$AWS" --endpoint-url "http://127.0.0.1:$SP" "$@"; }
sb() { "$SB" --endpoint "http://127.0.0.1:$SP" --bucket bytes "$@"; }
sb mb

HZ=$(getconf CLK_TCK)
ticks() { awk '{print $14, $15}' "/proc/$SG_PID/stat"; }  # user, system
RES=$W/results.txt; : > "$RES"
measure() {  # name command...: runs it, records sealgate's CPU seconds per GiB (all, user, system)
  local name=$1 u0 s0 u1 s1; shift
  local profile=
  if [ -n "${BYTES_PERF:-}" ] && [ "$name" = "${BYTES_PERF_OP:-down}" ] && [ -z "$PERF_DONE" ]; then
    # shellcheck disable=SC2086 # BYTES_PERF_ARGS is a list of options
    perf record -q -e cpu-clock ${BYTES_PERF_ARGS:--g} -o "$BYTES_PERF" -p "$SG_PID" 2>/dev/null &
    PERF_PID=$!; PERF_DONE=1; profile=1
    sleep 0.5
  fi
  read -r u0 s0 <<<"$(ticks)"; "$@"; read -r u1 s1 <<<"$(ticks)"
  if [ -n "$profile" ]; then
    kill -INT "$PERF_PID"; wait "$PERF_PID" || true; PERF_PID=
    log "profile of $name in $BYTES_PERF"
  fi
  local v; v=$(awk -v u=$((u1 - u0)) -v s=$((s1 - s0)) -v h="$HZ" -v mb="$MB" \
    'BEGIN { g = h * mb / 1024; printf "%.3f %.3f %.3f", (u + s) / g, u / g, s / g }')
  echo "$name $v" >> "$RES"
  log "  $name: $v s/GiB (all, user, system)"
}

for r in $(seq 1 "$REPEATS"); do
  log "repetition $r of $REPEATS (load $(cut -d' ' -f1-3 /proc/loadavg))"
  head -c $((MB * 1048576)) /dev/urandom > "$W/big.bin"  # fresh bytes: Garage deduplicates blocks
  measure up_signed awsx s3 cp --only-show-errors "$W/big.bin" s3://bytes/aws.bin
  measure up_unsigned sb --seed "$r" put-big --key fast.bin --mb "$MB" >/dev/null
  for _ in 1 2 3; do
    measure down sh -c "\"$AWS\" --endpoint-url http://127.0.0.1:$SP s3 cp --only-show-errors s3://bytes/aws.bin - > /dev/null"
  done
  measure down_fast sb --seed "$r" get-big --key fast.bin >/dev/null
done
# Correctness, once: what comes back is what went in.
awsx s3 cp --only-show-errors s3://bytes/aws.bin - | cmp -s - "$W/big.bin" ||
  { echo "the download differs from the upload" >&2; exit 1; }
sb --seed "$REPEATS" get-big --key fast.bin --verify >/dev/null

echo "# sealgate CPU seconds per GiB ($MB MiB, $REPEATS repetitions; load $(cut -d' ' -f1-3 /proc/loadavg))"
echo "# operation  median of all (user + system), and the medians of user and of system alone"
for op in up_signed up_unsigned down down_fast; do
  for col in 2 3 4; do
    awk -v op="$op" -v c="$col" '$1 == op { print $c }' "$RES" | sort -n |
      awk '{ v[++n] = $1 } END { if (n) printf "%.3f ", (n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2) }'
  done | awk -v op="$op" 'NF { printf "%-12s %s (user %s, system %s)\n", op, $1, $2, $3 }'
done
echo "# samples (all user system): $RES"
# The kernel's share that no gateway avoids: one loopback TCP stream in and one
# out per byte (from the store and to the client, or the other way round).
python3 - "$REPEATS" <<'PY'
import os, socket, statistics, sys
N, B = 4096, 256 * 1024  # 1 GiB in 256 KiB system calls, as hyper's reads and writes here
def once():
    ls = socket.socket(); ls.bind(("127.0.0.1", 0)); ls.listen(1)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        c = socket.socket(); c.connect(ls.getsockname()); buf = b"x" * B
        t = os.times()
        for _ in range(N): c.sendall(buf)
        c.close(); os.write(w, str(os.times().system - t.system).encode()); os._exit(0)
    s, _ = ls.accept(); buf = memoryview(bytearray(B)); t = os.times()
    while s.recv_into(buf): pass
    got = os.times().system - t.system
    os.waitpid(pid, 0)
    return float(os.read(r, 64)), got
runs = [once() for _ in range(max(3, int(sys.argv[1])))]
snd, rcv = (statistics.median(x) for x in zip(*runs))
print(f"# loopback TCP, system CPU per GiB: sending {snd:.3f}, receiving {rcv:.3f}, both {snd + rcv:.3f}")
PY
