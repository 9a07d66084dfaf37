#!/usr/bin/env bash
# Makes docker/dev-keys/: the test IdP's key and certificate, ssogate's JWT key
# and session secret, readable by you only (docker/compose.yml hands copies to
# the uid 10001 the containers run as).  For local development only.
set -euo pipefail
cd "$(dirname "$0")"
mkdir -p dev-keys
cd dev-keys
[ -f idp.key ] || openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=ssogate test IdP" \
  -keyout idp.key -out idp.crt 2>/dev/null
[ -f jwt.key ] || openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out jwt.key 2>/dev/null
[ -f secret ] || head -c 32 /dev/urandom | base64 >secret
# Yours only: the compose "keys" service copies them, as root, for uid 10001.
chmod 600 idp.key jwt.key secret
