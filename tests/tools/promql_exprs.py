#!/usr/bin/python3
"""promql_exprs.py RULES.yml DASHBOARD.json: every PromQL expression of the
rules file and of the Grafana dashboard, one per line as NAME<TAB>EXPR, ready
to run through Prometheus's query API:

- recording rules: their expression, and the recorded series by name;
- alerts: their expression with each comparison made `bool`, so it returns a
  series (0 or 1) whether or not the alert fires;
- dashboard targets: the expression with the dashboard's variables set
  ($scheduler, $pool, $instance from the environment's LS_SCHEDULER_JOB,
  LS_POOL_JOB, ".*"; $__rate_interval to 1m);
- dashboard variables: the metric selector of each label_values() query.
Fails on a dashboard or rules file whose structure is not what Grafana or
Prometheus load (missing fields, duplicate ids, unknown variables)."""
import json
import os
import re
import sys

import yaml


def fail(msg):
    sys.exit("promql_exprs.py: " + msg)


def boolify(expr):
    # Comparisons between expressions have spaces around the operator here;
    # label matchers (=~, !=, =) never do.
    return re.sub(r"(\s)(==|!=|>=|<=|>|<)(\s)", r"\1\2 bool\3", expr)


def rules(path):
    doc = yaml.safe_load(open(path))
    for group in doc["groups"]:
        for rule in group["rules"]:
            expr = " ".join(rule["expr"].split())
            if "record" in rule:
                yield "record " + rule["record"], expr
                yield "recorded " + rule["record"], rule["record"]
            else:
                yield "alert " + rule["alert"], boolify(expr)


def dashboard(path):
    d = json.load(open(path))
    for key in ("uid", "title", "panels", "templating", "schemaVersion"):
        if key not in d:
            fail(f"{path}: no '{key}'")
    variables = {v["name"]: v for v in d["templating"]["list"]}
    values = {
        "scheduler": os.environ.get("LS_SCHEDULER_JOB", ".*"),
        "pool": os.environ.get("LS_POOL_JOB", ".*"),
        "instance": ".*",
        "__rate_interval": "1m",
        "datasource": "prometheus",
    }
    for name in variables:
        if name not in values:
            fail(f"{path}: variable ${name} has no test value")

    def substitute(expr, where):
        for used in re.findall(r"\$\{?(\w+)\}?", expr):
            if used not in values:
                fail(f"{path}: {where} uses ${used}, which is not defined")
            if used not in variables and not used.startswith("__"):
                fail(f"{path}: {where} uses ${used}, not a dashboard variable")
        return re.sub(r"\$\{?(\w+)\}?", lambda m: values[m.group(1)], expr)

    for name, v in variables.items():
        if v["type"] != "query":
            continue
        q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", q)
        if not m:
            fail(f"{path}: variable ${name}: '{q}' is not label_values(SELECTOR, LABEL)")
        yield f"variable {name} ({m.group(2)})", substitute(m.group(1), "variable " + name)
    ids = set()
    for p in d["panels"]:
        for key in ("id", "type", "title", "gridPos", "targets", "datasource"):
            if key not in p:
                fail(f"{path}: panel {p.get('title', '?')} has no '{key}'")
        if p["id"] in ids:
            fail(f"{path}: panel id {p['id']} used twice")
        ids.add(p["id"])
        g = p["gridPos"]
        if not all(k in g for k in "hwxy") or g["x"] + g["w"] > 24:
            fail(f"{path}: panel {p['title']}: gridPos {g} is not within 24 columns")
        if not p["targets"]:
            fail(f"{path}: panel {p['title']} has no queries")
        refs = set()
        for t in p["targets"]:
            if not t.get("expr") or not t.get("refId") or t["refId"] in refs:
                fail(f"{path}: panel {p['title']}: a target lacks expr or a unique refId")
            refs.add(t["refId"])
            where = f"panel {p['title']} {t['refId']}"
            yield where, substitute(t["expr"], where)


def main():
    if len(sys.argv) != 3:
        fail("usage: promql_exprs.py RULES.yml DASHBOARD.json")
    out = list(rules(sys.argv[1])) + list(dashboard(sys.argv[2]))
    for name, expr in out:
        print(f"{name}\t{expr}")


if __name__ == "__main__":
    main()
