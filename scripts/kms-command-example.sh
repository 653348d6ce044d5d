#!/bin/sh
# An example program for `repo --kms-command` (README, "Keys": the protocol). It keeps one
# secret per key id in a directory, $REPO_EXAMPLE_KMS_DIR/<key id>.key, and wraps a slot's
# secret with `openssl enc` under that file's contents and the repository id.
#
# It shows the protocol and is what the tests use; it is not a key management service. A real
# deployment points --kms-command at a program that asks one: HashiCorp Vault's transit engine
#   wrap:   vault write -field=ciphertext transit/encrypt/"$REPO_KMS_KEY_ID" plaintext="$(cat)"
#   unwrap: vault write -field=plaintext  transit/decrypt/"$REPO_KMS_KEY_ID" ciphertext="$(cat)"
# (both print one line: Vault takes and returns the secret in base64), a cloud KMS's CLI, or an
# HSM's client.
#
# The protocol: /bin/sh -c CMD with REPO_KMS_OPERATION (wrap | unwrap), REPO_KMS_KEY_ID and
# REPO_KMS_CONTEXT (the repository id, 64 hex digits) set. wrap reads the base64 of a 32-byte
# secret on stdin and prints one line of ciphertext (printable ASCII); unwrap reads that line
# and prints the base64 of the secret. Exit 0 on success; otherwise the last lines of stderr
# are the reason repo reports (exit 12).
set -eu
dir="${REPO_EXAMPLE_KMS_DIR:?set REPO_EXAMPLE_KMS_DIR to the directory of key files}"
key="$dir/${REPO_KMS_KEY_ID:?}.key"
[ -r "$key" ] || { echo "example KMS: no key \"$REPO_KMS_KEY_ID\" in $dir" >&2; exit 1; }
# The pass phrase is the key file plus the repository id, so a ciphertext made for one
# repository does not unwrap for another. Given through the environment, not argv (ps shows argv).
EXAMPLE_KMS_PASS="$(cat "$key"):${REPO_KMS_CONTEXT:?}"
export EXAMPLE_KMS_PASS
case "${REPO_KMS_OPERATION:?}" in
    wrap)   openssl enc -aes-256-cbc -pbkdf2 -iter 10000 -salt -pass env:EXAMPLE_KMS_PASS -a -A; echo ;;
    unwrap) openssl enc -d -aes-256-cbc -pbkdf2 -iter 10000 -pass env:EXAMPLE_KMS_PASS -a -A ;;
    *)      echo "example KMS: unknown operation $REPO_KMS_OPERATION" >&2; exit 2 ;;
esac
