#!/usr/bin/env bash
# ops/k8s validated offline: every object against the Kubernetes OpenAPI
# schemas (the kubernetes-models package) and the ScaledObject against KEDA's
# vendored CRD (third_party/keda), plus the ties between them
# (tests/tools/k8s-validate/validate.js). The validator must also refuse a
# manifest with a wrong type, a misspelt field and a grace period shorter
# than the drain, or it proves nothing.
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v node >/dev/null || fail "node is missing: run ops/bootstrap.sh (package: nodejs)"
root="${TEST_SRCDIR}/${TEST_WORKSPACE}"
crd="$root/third_party/keda/keda.sh_scaledobjects.yaml"
validate="$root/tests/tools/k8s-validate/validate.js"
# node_modules lives in the source tree beside package.json (installed by
# ops/bootstrap.sh), which the runfiles link to.
tools=$(dirname "$(readlink -f "$root/tests/tools/k8s-validate/package.json")")
[[ -d "$tools/node_modules/kubernetes-models" && -d "$tools/node_modules/ajv" ]] ||
  fail "the validator's npm packages are missing from $tools/node_modules: run ops/bootstrap.sh (npm ci there)"
export NODE_PATH="$tools/node_modules"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
mkdir "$work/good" "$work/bad"
cp "$root"/ops/k8s/*.yaml "$work/good/"
out=$(node "$validate" "$crd" "$work/good" 2>&1) || fail "ops/k8s does not validate:
$out"
echo "$out"
grep -q "^6 objects in 5 files; 0 problems" <<<"$out" || fail "unexpected validator summary: $out"

cp "$root"/ops/k8s/*.yaml "$work/bad/"
sed -i 's/^  replicas: 1$/  replicas: one/; s/terminationGracePeriodSeconds: 660/terminationGracePeriodSeconds: 60/' "$work/bad/worker.yaml"
sed -i 's/^  cooldownPeriod: 600$/  coolDownPeriod: 600/' "$work/bad/scaledobject.yaml"
bad=$(node "$validate" "$crd" "$work/bad" 2>&1) && fail "a broken copy of ops/k8s validated"
for want in "spec/replicas must be integer" "/spec must NOT have additional properties" \
  "does not outlast --drain-timeout=10m"; do
  grep -q -- "$want" <<<"$bad" || fail "the validator did not report '$want' in:
$bad"
done
echo "PASS: k8s manifests"
