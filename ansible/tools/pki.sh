#!/usr/bin/env bash
# The private CA behind the mutual TLS between cinemo's tiers, with plain
# openssl (on every admin host and in CI; nothing to build). One CA per
# environment signs the internal tier's server certificate and the public
# tier's client certificate. See docs/security.md, "Certificates".
#
#   ansible/tools/pki.sh ca     DIR [CN]          DIR/ca.key + DIR/ca.crt (10 years)
#   ansible/tools/pki.sh server DIR DNS_NAME...   DIR/server.key + DIR/server.crt (serverAuth)
#   ansible/tools/pki.sh client DIR NAME          DIR/client.key + DIR/client.crt (clientAuth)
#
# Leaf certificates last CINEMO_CERT_DAYS (default 397) days. Keys are EC
# P-256 in PKCS#8, written 0600. ca.key never goes to a host: keep it in the
# vault (or offline) and use it only here.
set -euo pipefail
umask 077

days=${CINEMO_CERT_DAYS:-397}
usage() { sed -n '6,9p' "$0" >&2; exit 2; }
(($# >= 2)) || usage
cmd=$1 dir=$2
shift 2
mkdir -p "$dir"

newkey() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }

# leaf NAME EXTENSIONS CN: a key and a certificate signed by DIR/ca.*
leaf() {
  local name=$1 ext=$2 cn=$3
  [ -f "$dir/ca.key" ] && [ -f "$dir/ca.crt" ] || { echo "no CA in $dir: run '$0 ca $dir' first" >&2; exit 1; }
  newkey "$dir/$name.key"
  openssl req -new -key "$dir/$name.key" -subj "/CN=$cn" -out "$dir/$name.csr"
  openssl x509 -req -in "$dir/$name.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" \
    -set_serial "0x$(openssl rand -hex 16)" -days "$days" -sha256 \
    -extfile <(printf '%s\n' "$ext" 'basicConstraints=critical,CA:FALSE' 'keyUsage=critical,digitalSignature') \
    -out "$dir/$name.crt" 2>/dev/null
  rm -f "$dir/$name.csr"
  chmod 0644 "$dir/$name.crt"
  openssl x509 -in "$dir/$name.crt" -noout -subject -enddate
}

case $cmd in
  ca)
    newkey "$dir/ca.key"
    openssl req -x509 -new -key "$dir/ca.key" -sha256 -days 3650 \
      -subj "/CN=${1:-cinemo tiers CA}" \
      -addext 'basicConstraints=critical,CA:TRUE,pathlen:0' \
      -addext 'keyUsage=critical,keyCertSign,cRLSign' \
      -out "$dir/ca.crt"
    chmod 0644 "$dir/ca.crt"
    openssl x509 -in "$dir/ca.crt" -noout -subject -enddate
    ;;
  server)
    (($# >= 1)) || usage
    sans=$(printf 'DNS:%s,' "$@")
    leaf server "subjectAltName=${sans%,}"$'\n''extendedKeyUsage=serverAuth' "$1"
    ;;
  client)
    (($# == 1)) || usage
    leaf client "subjectAltName=DNS:$1"$'\n''extendedKeyUsage=clientAuth' "$1"
    ;;
  *) usage ;;
esac
