# Sourced by .ci/run, scripts/test.sh and scripts/demo.sh: the system tools the build and the
# tests need beyond Rust and Go, installed with apt-get when missing if we are root, else said.
#
# - the openssl CLI: the tests' independent oracle (`openssl verify`, `openssl req`);
# - make and perl (with IPC::Cmd): the openssl crate builds OpenSSL 3 from its bundled sources
#   (the `vendored` feature; crates/ferrum/src/x509/verify.rs validates every issued certificate
#   with it), statically linked, so Ferrum does not depend on the system's libssl;
# - softhsm2 and opensc (pkcs11-tool): the tokens the `pkcs11` backend's tests sign with.
ferrum_need=()
command -v openssl >/dev/null || ferrum_need+=(openssl)
command -v make >/dev/null || ferrum_need+=(make)
perl -MIPC::Cmd -e1 2>/dev/null || ferrum_need+=(perl)
command -v softhsm2-util >/dev/null || ferrum_need+=(softhsm2)
command -v pkcs11-tool >/dev/null || ferrum_need+=(opensc)
if [ ${#ferrum_need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "${ferrum_need[@]}"
  else
    echo "missing: ${ferrum_need[*]}; install them, e.g.: sudo apt-get install ${ferrum_need[*]}" >&2
    exit 1
  fi
fi
unset ferrum_need
