// node validate.js KEDA_CRD.yaml K8S_DIR: validates every manifest that
// K8S_DIR/kustomization.yaml lists, offline: built-in kinds against the
// Kubernetes OpenAPI schemas (kubernetes-models), the KEDA ScaledObject
// against KEDA's own CRD schema (vendored under third_party/keda) with ajv.
// Then checks what ties them together: every file of the directory listed,
// selectors that select, the ScaledObject's target and query, the worker's
// grace period against its drain timeout. Prints one line per problem and
// exits 1 when there is any.
'use strict';
const fs = require('fs');
const path = require('path');
const YAML = require('yaml');
const Ajv = require('ajv');

const models = {
  'v1/Namespace': require('kubernetes-models/v1/Namespace').Namespace,
  'v1/Service': require('kubernetes-models/v1/Service').Service,
  'v1/Secret': require('kubernetes-models/v1/Secret').Secret,
  'v1/ConfigMap': require('kubernetes-models/v1/ConfigMap').ConfigMap,
  'apps/v1/Deployment': require('kubernetes-models/apps/v1/Deployment').Deployment,
  'apps/v1/StatefulSet': require('kubernetes-models/apps/v1/StatefulSet').StatefulSet,
  'policy/v1/PodDisruptionBudget':
    require('kubernetes-models/policy/v1/PodDisruptionBudget').PodDisruptionBudget,
};

const problems = [];
const problem = (where, what) => problems.push(`${where}: ${what}`);

// The API server prunes fields a structural schema does not declare: a
// misspelt field would be dropped without a word. Here it is an error:
// objects with declared properties accept no others, unless the schema keeps
// unknown fields.
function closed(schema) {
  if (Array.isArray(schema)) return schema.map(closed);
  if (!schema || typeof schema !== 'object') return schema;
  const out = {};
  for (const [k, v] of Object.entries(schema)) out[k] = closed(v);
  if (out.properties && out.additionalProperties === undefined &&
      !out['x-kubernetes-preserve-unknown-fields']) {
    out.additionalProperties = false;
  }
  return out;
}

function crdValidator(crdPath) {
  const crd = YAML.parse(fs.readFileSync(crdPath, 'utf8'));
  const versions = {};
  // Kubernetes' structural-schema extensions (x-kubernetes-*) are not JSON
  // Schema keywords; ajv is told to ignore unknown keywords, not to accept
  // unknown fields.
  const ajv = new Ajv({strict: false, allErrors: true});
  ajv.addFormat('int32', {type: 'number', validate: (n) => Number.isInteger(n) && Math.abs(n) < 2 ** 31});
  ajv.addFormat('int64', {type: 'number', validate: (n) => Number.isInteger(n)});
  ajv.addFormat('date-time', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i);
  for (const v of crd.spec.versions) {
    versions[`${crd.spec.group}/${v.name}`] = ajv.compile(closed(v.schema.openAPIV3Schema));
  }
  return {kind: crd.spec.names.kind, versions};
}

function main() {
  const [crdPath, dir] = process.argv.slice(2);
  if (!crdPath || !dir) {
    console.error('usage: node validate.js KEDA_CRD.yaml K8S_DIR');
    process.exit(2);
  }
  const keda = crdValidator(crdPath);
  const kustomization = YAML.parse(fs.readFileSync(path.join(dir, 'kustomization.yaml'), 'utf8'));
  const listed = kustomization.resources || [];
  for (const f of fs.readdirSync(dir)) {
    if (f.endsWith('.yaml') && f !== 'kustomization.yaml' && !listed.includes(f)) {
      problem(f, 'not listed in kustomization.yaml resources');
    }
  }
  const objects = [];
  for (const f of listed) {
    const file = path.join(dir, f);
    if (!fs.existsSync(file)) {
      problem('kustomization.yaml', `lists ${f}, which does not exist`);
      continue;
    }
    for (const doc of YAML.parseAllDocuments(fs.readFileSync(file, 'utf8'))) {
      if (doc.errors.length) {
        problem(f, doc.errors.map((e) => e.message).join('; '));
        continue;
      }
      const obj = doc.toJSON();
      if (!obj) continue;
      const where = `${f}: ${obj.kind} ${obj.metadata && obj.metadata.name}`;
      objects.push({where, obj});
      const key = `${obj.apiVersion}/${obj.kind}`;
      if (obj.kind === keda.kind && keda.versions[obj.apiVersion]) {
        const check = keda.versions[obj.apiVersion];
        if (!check(obj)) {
          for (const e of check.errors) problem(where, `${e.instancePath || '/'} ${e.message}`);
        }
      } else if (models[key]) {
        try {
          new models[key](obj).validate();
        } catch (e) {
          problem(where, e.message);
        }
      } else {
        problem(where, `no schema for ${key}`);
      }
      if (kustomization.namespace && obj.kind !== 'Namespace' &&
          obj.metadata.namespace !== kustomization.namespace) {
        problem(where, `namespace ${obj.metadata.namespace}, not ${kustomization.namespace}`);
      }
    }
  }
  checkTies(objects.map((o) => o.obj));
  for (const p of problems) console.log(p);
  console.log(`${objects.length} objects in ${listed.length} files; ${problems.length} problems`);
  process.exit(problems.length ? 1 : 0);
}

const selects = (selector, labels) =>
  Object.entries(selector || {}).every(([k, v]) => labels && labels[k] === v);

function checkTies(objs) {
  const byKind = (k) => objs.filter((o) => o.kind === k);
  const workloads = [...byKind('Deployment'), ...byKind('StatefulSet')];
  for (const svc of byKind('Service')) {
    if (!workloads.some((w) => selects(svc.spec.selector, w.spec.template.metadata.labels))) {
      problem(`Service ${svc.metadata.name}`, 'selects no workload');
    }
  }
  for (const w of workloads) {
    if (!selects(w.spec.selector.matchLabels, w.spec.template.metadata.labels)) {
      problem(`${w.kind} ${w.metadata.name}`, 'selector does not match its pod template');
    }
  }
  for (const pdb of byKind('PodDisruptionBudget')) {
    if (!workloads.some((w) => selects(pdb.spec.selector.matchLabels, w.spec.template.metadata.labels))) {
      problem(`PodDisruptionBudget ${pdb.metadata.name}`, 'selects no workload');
    }
  }
  for (const so of byKind('ScaledObject')) {
    const ref = so.spec.scaleTargetRef;
    const target = workloads.find((w) => w.kind === (ref.kind || 'Deployment') && w.metadata.name === ref.name);
    if (!target) problem(`ScaledObject ${so.metadata.name}`, `targets ${ref.name}, which is not here`);
    const trigger = (so.spec.triggers || []).find((t) => t.type === 'prometheus');
    if (!trigger || !/longshore_scheduler_queue_depth/.test(trigger.metadata.query)) {
      problem(`ScaledObject ${so.metadata.name}`, 'has no prometheus trigger on longshore_scheduler_queue_depth');
    }
    if (!(so.spec.minReplicaCount >= 0 && so.spec.maxReplicaCount >= so.spec.minReplicaCount &&
          so.spec.cooldownPeriod > 0)) {
      problem(`ScaledObject ${so.metadata.name}`, 'needs minReplicaCount, maxReplicaCount and cooldownPeriod');
    }
  }
  // The worker's grace period must outlast its drain.
  for (const d of byKind('Deployment')) {
    for (const c of d.spec.template.spec.containers) {
      const drain = (c.args || []).map((a) => /^--drain-timeout=(\d+)m$/.exec(a)).find(Boolean);
      if (!drain) continue;
      const grace = d.spec.template.spec.terminationGracePeriodSeconds || 30;
      if (grace <= Number(drain[1]) * 60) {
        problem(`Deployment ${d.metadata.name}`,
                `terminationGracePeriodSeconds ${grace} does not outlast --drain-timeout=${drain[1]}m`);
      }
    }
  }
}

main();
