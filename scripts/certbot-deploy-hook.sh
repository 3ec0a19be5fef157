#!/bin/sh
# certbot deploy hook: reload the web server only if the channel's clients accept the renewed
# certificate (docs/rotation.md, "certbot").
#
# certbot runs a --deploy-hook once per renewed certificate, after the new files are live in
# $RENEWED_LINEAGE, with $RENEWED_DOMAINS naming its domains. A hook that fails is reported and
# does not stop certbot's other hooks, so the check and the reload are one hook: the reload runs
# only when `pinwarden preflight` exits 0.
#
#   certbot renew --reuse-key --deploy-hook /usr/local/bin/certbot-deploy-hook.sh
#
# Settings (environment):
#   PINWARDEN_CHANNEL    the channel whose clients must accept the certificate (required)
#   PINWARDEN_KEYRING    the keyring the apps ship (required)
#   PINWARDEN_URL        the pin server (or PINWARDEN_PINSET: a signed pin-set file)
#   PINWARDEN_BOOTSTRAP  the pins the apps ship, as JSON (optional; judged too)
#   PINWARDEN_RELOAD     the reload command (default: systemctl reload nginx)
#   PINWARDEN            the pinwarden command (default: pinwarden)
# Exit status: 0 reloaded; 1 refused by preflight; 2 a setting or file is wrong; 3 the pin
# server could not be reached (nothing reloaded but on 0).
set -u

fail() {
    echo "certbot-deploy-hook: $1" >&2
    exit 2
}

[ -n "${RENEWED_LINEAGE:-}" ] || fail "RENEWED_LINEAGE is not set: run me as certbot's --deploy-hook"
[ -n "${PINWARDEN_CHANNEL:-}" ] || fail "set PINWARDEN_CHANNEL to the channel to check against"
[ -n "${PINWARDEN_KEYRING:-}" ] || fail "set PINWARDEN_KEYRING to the keyring file the apps ship"
chain="$RENEWED_LINEAGE/fullchain.pem"
[ -r "$chain" ] || fail "cannot read $chain"

set -- --channel "$PINWARDEN_CHANNEL" --keyring "$PINWARDEN_KEYRING"
if [ -n "${PINWARDEN_PINSET:-}" ]; then
    set -- "$@" --pinset "$PINWARDEN_PINSET"
fi
if [ -n "${PINWARDEN_BOOTSTRAP:-}" ]; then
    set -- "$@" --bootstrap "$PINWARDEN_BOOTSTRAP"
fi

echo "certbot-deploy-hook: checking the renewed certificate for ${RENEWED_DOMAINS:-its domains}"
"${PINWARDEN:-pinwarden}" preflight "$@" "$chain"
status=$?
case $status in
0) exec sh -c "${PINWARDEN_RELOAD:-systemctl reload nginx}" ;;
1) echo "certbot-deploy-hook: NOT reloading: clients of $PINWARDEN_CHANNEL would refuse the" \
        "new certificate; publish the pin printed above, wait until clients have fetched it" \
        "(pinwarden rotate plan), then reload. The new files are in $RENEWED_LINEAGE already:" \
        "a restart would serve them." >&2 ;;
*) echo "certbot-deploy-hook: NOT reloading: preflight could not decide (exit $status, see" \
        "above)" >&2 ;;
esac
exit "$status"
