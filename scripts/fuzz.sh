#!/usr/bin/env bash
# Coverage-guided fuzzing (cargo-fuzz + libFuzzer) of the parsers that read hostile input.
# Not part of CI. Usage: scripts/fuzz.sh [target...]   (default: every target)
#   FUZZ_RUNS       inputs per target (default 1000000)
#   FUZZ_SANITIZER  address (default) or none (no ASan: faster, still coverage-guided)
# Seeds are made from real inputs (openssl) into fuzz/corpus/<target>/ when missing.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
FUZZ=$ROOT/fuzz
RUNS=${FUZZ_RUNS:-1000000}
SANITIZER=${FUZZ_SANITIZER:-address}
ALL=(request_field pem csr template ca_bundle_and_key go_duration)
if [ $# -gt 0 ]; then TARGETS=("$@"); else TARGETS=("${ALL[@]}"); fi
# Stable rustc accepts the -Z flags cargo-fuzz passes (-Zsanitizer) with RUSTC_BOOTSTRAP=1.
export RUSTC_BOOTSTRAP=1

have() { command -v "$1" >/dev/null 2>&1; }
if ! have openssl || ! have c++; then apt-get update -qq && apt-get install -y -qq openssl g++ >/dev/null; fi
have cargo-fuzz || cargo install cargo-fuzz --locked

# Real inputs: keys of every accepted kind and encoding, CSRs, CA certificates, durations.
make_seeds() {
  local s=$FUZZ/seeds c=$FUZZ/corpus
  rm -rf "$s" && mkdir -p "$s" && cd "$s"
  local ssl=(openssl req -new -subj "/CN=fuzz.example.com/O=Ferrum")
  local san="subjectAltName=DNS:fuzz.example.com,DNS:*.example.com,IP:10.0.0.1,IP:::1,email:a@example.com,URI:spiffe://example.com/ns/a"
  openssl genrsa -traditional -out rsa.key 2048 2>/dev/null                 # PKCS#1
  openssl pkey -in rsa.key -out rsa8.key                                    # PKCS#8
  openssl ecparam -name prime256v1 -genkey -noout -out p256.key             # SEC1
  openssl ecparam -name secp384r1 -genkey -noout | openssl pkey -out p384.key  # PKCS#8
  openssl ecparam -name secp521r1 -genkey -noout -out p521.key              # SEC1
  openssl genpkey -algorithm ed25519 -out ed.key                            # PKCS#8
  "${ssl[@]}" -key p256.key -out p256.csr
  "${ssl[@]}" -key p384.key -sha384 -addext "$san" -out p384.csr
  "${ssl[@]}" -key p521.key -sha512 -addext "$san" -out p521.csr
  "${ssl[@]}" -key rsa.key -addext "$san" -addext "keyUsage=digitalSignature,keyEncipherment" \
    -addext "extendedKeyUsage=serverAuth" -out rsa.csr
  "${ssl[@]}" -key ed.key -addext "$san" -out ed.csr
  "${ssl[@]}" -key rsa.key -sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:digest -out pss.csr
  openssl req -new -key ed.key -subj "/" -out nosubject.csr \
    -addext "subjectAltName=critical,DNS:a.example.com,otherName:1.3.6.1.4.1.311.20.2.3;UTF8:u@example.com,RID:1.2.3.4"
  openssl req -new -key p256.key -subj "/CN=a/CN=b" -out twocn.csr
  "${ssl[@]}" -key p256.key -addext "basicConstraints=critical,CA:TRUE" -out ca.csr \
    -addext "nameConstraints=critical,permitted;DNS:.example.com,permitted;IP:10.0.0.0/255.0.0.0,excluded;email:.bad.example.com,permitted;URI:.example.com,excluded;IP:2001:db8::/ffff:ffff::"
  "${ssl[@]}" -key ed.key -addext "basicConstraints=critical,CA:TRUE" -out caku.csr \
    -addext "keyUsage=critical,keyCertSign,cRLSign,digitalSignature" -addext "nameConstraints=permitted;DNS:.example.com"
  local ca=(-addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign")
  openssl req -x509 -new -key rsa.key -subj "/CN=Fuzz Root" -days 30 "${ca[@]}" -out root.crt
  openssl req -x509 -new -key p256.key -subj "/CN=Fuzz EC Root" -days 30 "${ca[@]}" -out ecroot.crt
  "${ssl[@]}" -key ed.key -subj "/CN=Fuzz Intermediate" "${ca[@]}" -out inter.csr
  openssl x509 -req -in inter.csr -CA root.crt -CAkey rsa.key -days 30 -copy_extensions copy -out inter.crt 2>/dev/null
  cat inter.crt root.crt > chain.crt
  local csrs=(p256 p384 p521 rsa ed pss nosubject twocn ca caku)
  for t in "${ALL[@]}"; do mkdir -p "$c/$t"; done
  for n in "${csrs[@]}"; do
    openssl req -in $n.csr -outform DER -out $n.der
    cp $n.der "$c/csr/$n"
    cp $n.csr "$c/pem/$n"
    sed 's/$/\r/' $n.csr > "$c/pem/$n-crlf"
    base64 -w 64 $n.csr > "$c/request_field/$n"
    base64 -w 0 $n.csr > "$c/request_field/$n-oneline"
    # template: flags (bit0 isCA, bits1-3 usages, bit4 duration, bit5 all SAN types), length, duration, DER
    { printf '\x00\x00'; cat $n.der; } > "$c/template/$n"
    { printf '\x30\x09%s' 2160h0m0s; cat $n.der; } > "$c/template/$n-dur"
  done
  { printf '\x06\x00'; cat rsa.der; } > "$c/template/rsa-usages"
  { printf '\x01\x00'; cat ca.der; } > "$c/template/ca-isca"
  { printf '\x1b\x05%s' 8760h; cat caku.der; } > "$c/template/caku-isca"
  { printf '\x21\x00'; cat nosubject.der; } > "$c/template/nosubject-all"
  for crt in root ecroot inter chain; do
    for key in rsa rsa8 p256 p384 p521 ed; do
      { cat $crt.crt; printf '\0'; cat $key.key; } > "$c/ca_bundle_and_key/$crt-$key"
    done
  done
  for d in 2160h0m0s 1h30m 1.5h 90s 0 +5m 300ms 1us 1µs 1μs 2h45m30.5s .5h 1.h -1h 1h-5m \
    9223372036854775807ns 2562047h47m16.854775807s 2562047h47m16.854775808s 876000h 0.000000001s; do
    printf %s "$d" > "$c/go_duration/$(printf %s "$d" | od -An -tx1 | tr -d ' \n')"
  done
  cd "$ROOT"
}
[ -d "$FUZZ/corpus/go_duration" ] || make_seeds

# Build every target once (ASan unless FUZZ_SANITIZER=none; sancov coverage either way), so
# that all targets run against the same library even if the work tree changes meanwhile.
nice -n 10 cargo fuzz build --fuzz-dir "$FUZZ" --target-dir "$FUZZ/target" -O -s "$SANITIZER"
BIN=$FUZZ/target/x86_64-unknown-linux-gnu/release
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_odr_violation=0}

SUMMARY=()
for t in "${TARGETS[@]}"; do
  log=$FUZZ/artifacts/$t.log
  mkdir -p "$FUZZ/artifacts/$t"
  echo "== $t: $RUNS runs, sanitizer $SANITIZER (log: $log)"
  start=$(date +%s%N)
  touch "$FUZZ/artifacts/$t.start"
  rc=0
  # One fuzzing process (-jobs=1 -workers=1: libFuzzer forks one child whose fuzz-0.log lands in
  # the artifacts folder and is echoed into $log when it ends); nice, as the machine is shared.
  (cd "$FUZZ/artifacts/$t" && nice -n 10 "$BIN/$t" -artifact_prefix="$FUZZ/artifacts/$t/" -runs="$RUNS" \
    -rss_limit_mb=2048 -jobs=1 -workers=1 -print_final_stats=1 "$FUZZ/corpus/$t") >"$log" 2>&1 || rc=$?
  ms=$((($(date +%s%N) - start) / 1000000))
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rss=$(sed -n 's/^stat::peak_rss_mb: *//p' "$log" | tail -1)
  cov=$(grep -oE 'cov: [0-9]+ ft: [0-9]+' "$log" | tail -1 || true)
  crashes=$(find "$FUZZ/artifacts/$t" -type f -newer "$FUZZ/artifacts/$t.start" \( -name 'crash-*' -o -name 'oom-*' -o -name 'timeout-*' -o -name 'leak-*' \) | wc -l)
  corpus=$(find "$FUZZ/corpus/$t" -type f | wc -l)
  line="$t: exit $rc, ${execs:-?} execs, $((ms / 1000)).$((ms % 1000 / 100))s, peak RSS ${rss:-?} MB, $cov, corpus $corpus, crashes $crashes"
  [ "$rc" -eq 0 ] || tail -n 30 "$log"
  echo "$line"
  SUMMARY+=("$line")
done
echo "== summary"
printf '%s\n' "${SUMMARY[@]}"
