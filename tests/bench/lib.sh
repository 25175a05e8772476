# Shared by the benchmark scripts (sourced, not run): builds claimd, and sets up a
# private durable PostgreSQL, a development CA, a secrets key and a config in $work.
# Callers set root, work and B first.

# bench_setup CA_KEYTYPE [EXTRA_YAML]: everything up to a migrated database.
bench_setup() {
  local ca=$1 extra=${2:-}
  bash "$root/.ci/deps.sh"
  cmake -S "$root" -B "$B" >/dev/null && cmake --build "$B" -j"$(nproc)" >/dev/null
  rm -rf "$work" && mkdir -p "$work"
  pg=$("$root/tests/pg.sh" start "$work/pg")
  psql "$pg" -qc "CREATE DATABASE claimd"
  "$B/claimctl" dev-ca --out "$work/ca" --key "$ca" >/dev/null
  (umask 077 && "$B/claimctl" keygen >"$work/secrets.key")
  { [ -z "$extra" ] || printf '%s\n' "$extra"
    cat <<YAML
database:
  url: "host=$work/pg user=postgres dbname=claimd"
ca:
  certificate: ca/intermediate.pem
  key: ca/intermediate.key
secrets:
  key_file: secrets.key
YAML
  } >"$work/claimd.yaml"
  "$B/claimctl" -c "$work/claimd.yaml" migrate >/dev/null
}

# gen_devices N SEED FILE: a manufacturing CSV of N chips with random eFuse keys.
gen_devices() {
  awk -v n="$1" -v seed="$2" 'BEGIN { srand(seed); print "mac,platform,efuse_key";
    for (i = 1; i <= n; i++) { k = "";
      for (j = 0; j < 16; j++) k = k sprintf("%02X", int(rand() * 256));
      printf "7C%010X,esp32s3,%s\n", i, k } }' >"$3"
}
