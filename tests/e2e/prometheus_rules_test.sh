#!/usr/bin/env bash
# Offline checks of ops/prometheus and ops/grafana: promtool loads the config
# and the rules, its unit tests fire (and keep quiet) every alert as
# longshore-rules.test.yml says, and the dashboard's structure and variables
# are what Grafana loads (tests/tools/promql_exprs.py).
set -euo pipefail
fail() { echo "FAIL: $*" >&2; exit 1; }
command -v promtool >/dev/null || fail "promtool is missing: run ops/bootstrap.sh (package: prometheus)"
[[ -x /usr/bin/python3 ]] && /usr/bin/python3 -c 'import yaml' 2>/dev/null ||
  fail "python3-yaml is missing: run ops/bootstrap.sh (package: python3-yaml)"
root="${TEST_SRCDIR}/${TEST_WORKSPACE}"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cp "$root"/ops/prometheus/*.yml "$work/"
cd "$work"
promtool check config prometheus.yml >/dev/null || fail "ops/prometheus/prometheus.yml does not load"
promtool check rules longshore-rules.yml >/dev/null || fail "ops/prometheus/longshore-rules.yml does not load"
promtool test rules longshore-rules.test.yml || fail "promtool test rules longshore-rules.test.yml"
# Every alert has at least one test that expects it to fire.
for alert in $(grep -oP '^\s+- alert: \K\w+' longshore-rules.yml); do
  grep -A4 "alertname: $alert\$" longshore-rules.test.yml | grep -q "exp_labels" ||
    fail "alert $alert has no promtool test in which it fires"
done
# The Kubernetes variant is YAML with the same jobs (Debian's promtool lacks
# Kubernetes discovery, so it cannot load it).
/usr/bin/python3 - prometheus-kubernetes.yml <<'PY' || fail "ops/prometheus/prometheus-kubernetes.yml"
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
jobs = [j["job_name"] for j in d["scrape_configs"]]
assert jobs == ["longshore-scheduler", "longshore-workers"], jobs
assert all("kubernetes_sd_configs" in j for j in d["scrape_configs"])
assert d["rule_files"] == ["longshore-rules.yml"]
PY
/usr/bin/python3 "$root/tests/tools/promql_exprs.py" longshore-rules.yml "$root/ops/grafana/longshore.json" >exprs.txt ||
  fail "the dashboard or rules do not have the structure Grafana and Prometheus load"
panels=$(jq '.panels | length' "$root/ops/grafana/longshore.json")
((panels >= 12)) || fail "the dashboard has $panels panels"
echo "PASS: prometheus rules ($(wc -l <exprs.txt) expressions, $panels panels)"
