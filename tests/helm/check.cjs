// Checks the objects `helm template` rendered from the claimd chart, one rendering per
// (values file, rendered YAML) pair given:
//  1. every object against the Kubernetes 1.33 API schema (kubernetes-models 4.5.1,
//     the API's OpenAPI compiled into validators; ServiceMonitor and PrometheusRule
//     against the Prometheus Operator's CRD schemas), and, since those schemas allow
//     fields the API does not know (the API server's strict field validation refuses
//     them), every field name too: the objects are typed against the same package's
//     generated TypeScript types and compiled with tsc, whose excess-property check
//     names any unknown or misspelt field;
//  2. the chart's promises (docs/kubernetes.md): the key Secrets mounted in the signer
//     container and in no other; every container non-root, with the Deployment's
//     containers under distinct uids, read-only root filesystems, no capabilities,
//     RuntimeDefault seccomp and no service account token; the probes; the migration
//     hook; the PodDisruptionBudget and NetworkPolicy; no `latest` image.
// Prints one line per check and exits 1 if any failed.
//   node check.cjs TOOLS_DIR WORK_DIR CHART_VALUES VALUES RENDERED [VALUES RENDERED...]
"use strict";
const fs = require("fs");
const path = require("path");
const { execFileSync } = require("child_process");

const [tools, work, chartValuesFile, ...pairs] = process.argv.slice(2);
const req = (m) => require(path.join(tools, "node_modules", m));
const YAML = req("yaml");

let failures = 0;
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures++;
}

// apiVersion + kind -> the module of the model that validates it.
function modelModule(apiVersion, kind) {
  if (apiVersion.startsWith("monitoring.coreos.com/"))
    return `@kubernetes-models/prometheus-operator/${apiVersion}/${kind}`;
  return `kubernetes-models/${apiVersion}/${kind}`;
}

const chartValues = YAML.parse(fs.readFileSync(chartValuesFile, "utf8"));
const tsLines = [];
let tsCount = 0;

// Every container of a pod spec, with which list it is in.
function containersOf(spec) {
  return [
    ...(spec.initContainers || []).map((c) => ({ c, init: true })),
    ...(spec.containers || []).map((c) => ({ c, init: false })),
  ];
}

// The secret names a volume brings in (a secret volume, or a projected one's sources).
function secretsOfVolume(v) {
  if (v.secret) return [v.secret.secretName];
  if (v.projected)
    return (v.projected.sources || []).filter((s) => s.secret).map((s) => s.secret.name);
  return [];
}

// The containers (by name) that mount any volume bringing in one of `secrets`, and
// those whose environment reads one of them.
function secretUsers(spec, secrets) {
  const vols = new Set(
    (spec.volumes || [])
      .filter((v) => secretsOfVolume(v).some((s) => secrets.has(s)))
      .map((v) => v.name)
  );
  const users = new Set();
  for (const { c } of containersOf(spec)) {
    if ((c.volumeMounts || []).some((m) => vols.has(m.name))) users.add(c.name);
    for (const e of c.env || [])
      if (e.valueFrom && e.valueFrom.secretKeyRef && secrets.has(e.valueFrom.secretKeyRef.name))
        users.add(c.name);
    for (const e of c.envFrom || [])
      if (e.secretRef && secrets.has(e.secretRef.name)) users.add(c.name);
  }
  return users;
}

function effective(c, spec, field) {
  const sc = c.securityContext || {};
  if (sc[field] !== undefined) return sc[field];
  return (spec.securityContext || {})[field];
}

// JSON with every object's keys sorted: equal data compare equal whatever the order.
function canonical(x) {
  if (Array.isArray(x)) return `[${x.map(canonical).join(",")}]`;
  if (x && typeof x === "object")
    return `{${Object.keys(x).sort().map((k) => `${JSON.stringify(k)}:${canonical(x[k])}`).join(",")}}`;
  return JSON.stringify(x);
}

function probePath(p) {
  return p && p.httpGet ? p.httpGet.path : p && p.exec ? "exec" : undefined;
}

function checkRendering(valuesFile, renderedFile) {
  const name = path.basename(valuesFile);
  const values = valuesFile === chartValuesFile ? chartValues : YAML.parse(fs.readFileSync(valuesFile, "utf8")) || {};
  const pick = (f) => f(values) ?? f(chartValues);
  const docs = YAML.parseAllDocuments(fs.readFileSync(renderedFile, "utf8"))
    .map((d) => d.toJS())
    .filter((o) => o);
  console.log(`== ${name}: ${docs.length} objects`);

  // 1. The API schema, and the field names through the TypeScript types.
  for (const o of docs) {
    const id = `${o.kind}/${o.metadata && o.metadata.name}`;
    let mod;
    try {
      mod = req(modelModule(o.apiVersion, o.kind));
    } catch (e) {
      check(false, `${name}: ${id}: no schema for ${o.apiVersion} ${o.kind}`);
      continue;
    }
    try {
      new mod[o.kind](o).validate();
      check(true, `${name}: ${id} valid (${o.apiVersion})`);
    } catch (e) {
      check(false, `${name}: ${id}: ${e.message}`);
    }
    const v = `o${tsCount++}`;
    tsLines.push(`// ${name}: ${id}`);
    tsLines.push(`import type { I${o.kind} as T${v} } from "${modelModule(o.apiVersion, o.kind)}";`);
    tsLines.push(`export const ${v}: T${v} = ${JSON.stringify(o)};`);
  }

  // 2. The chart's promises.
  const deps = docs.filter((o) => o.kind === "Deployment");
  const jobs = docs.filter((o) => o.kind === "Job");
  check(deps.length === 1, `${name}: one Deployment`);
  if (deps.length !== 1) return;
  const dep = deps[0];
  const spec = dep.spec.template.spec;
  const podLabels = dep.spec.template.metadata.labels;
  const selects = (sel) =>
    sel && sel.matchLabels && Object.entries(sel.matchLabels).every(([k, v]) => podLabels[k] === v);

  const keySecrets = new Set([pick((x) => x.existingSecret && x.existingSecret.keys)]);
  for (const v of pick((x) => x.signer && x.signer.extraVolumes) || [])
    for (const s of secretsOfVolume(v)) keySecrets.add(s);
  for (const o of [dep, ...jobs]) {
    const users = [...secretUsers(o.spec.template.spec, keySecrets)];
    const want = o === dep ? ["signer"] : [];
    check(
      JSON.stringify(users.sort()) === JSON.stringify(want),
      `${name}: ${o.kind}/${o.metadata.name}: key Secret(s) ${[...keySecrets].join(", ")} reach ` +
        `${want.length ? "the signer container only" : "no container"} (got: ${users.join(", ") || "none"})`
    );
  }

  const uids = [];
  for (const o of [dep, ...jobs]) {
    const ps = o.spec.template.spec;
    check(ps.automountServiceAccountToken === false, `${name}: ${o.kind}: no service account token`);
    for (const { c } of containersOf(ps)) {
      const who = `${name}: ${o.kind}/${c.name}`;
      const uid = effective(c, ps, "runAsUser");
      check(Number.isInteger(uid) && uid > 0, `${who}: runs as uid ${uid}, not root`);
      check(effective(c, ps, "runAsNonRoot") === true, `${who}: runAsNonRoot`);
      const gid = effective(c, ps, "runAsGroup");
      check(Number.isInteger(gid) && gid > 0, `${who}: runs as gid ${gid}, not root`);
      const sc = c.securityContext || {};
      check(sc.readOnlyRootFilesystem === true, `${who}: read-only root filesystem`);
      check(sc.allowPrivilegeEscalation === false, `${who}: no privilege escalation`);
      check(
        !!sc.capabilities && JSON.stringify(sc.capabilities.drop) === '["ALL"]' && !sc.capabilities.add,
        `${who}: all capabilities dropped, none added`
      );
      const seccomp = (sc.seccompProfile || (ps.securityContext || {}).seccompProfile || {}).type;
      check(seccomp === "RuntimeDefault", `${who}: seccomp ${seccomp}`);
      const img = c.image || "";
      const tagged = /@sha256:[0-9a-f]{64}$/.test(img) || /:[^/:@]+$/.test(img);
      check(tagged && !/:latest$/.test(img), `${who}: image ${img} has a tag or digest, not latest`);
      if (o === dep) uids.push(uid);
    }
  }
  check(new Set(uids).size === uids.length, `${name}: the Deployment's containers have distinct uids (${uids.join(", ")})`);

  const byName = Object.fromEntries(containersOf(spec).map(({ c, init }) => [c.name, { c, init }]));
  const claimd = byName.claimd && byName.claimd.c;
  const signer = byName.signer;
  check(!!claimd && !!signer, `${name}: containers claimd and signer`);
  if (claimd && signer) {
    check(probePath(claimd.startupProbe) !== undefined, `${name}: claimd has a startup probe`);
    check(probePath(claimd.livenessProbe) === "/healthz", `${name}: claimd's liveness probe is /healthz`);
    check(probePath(claimd.readinessProbe) === "/readyz", `${name}: claimd's readiness probe is /readyz`);
    check(
      !!signer.c.startupProbe && !!signer.c.livenessProbe,
      `${name}: the signer has startup and liveness probes`
    );
    check(
      signer.init && signer.c.restartPolicy === "Always",
      `${name}: the signer is a native sidecar (init container, restartPolicy Always)`
    );
    const pre = (((claimd.lifecycle || {}).preStop || {}).exec || {}).command || [];
    const sleep = pre[0] === "sleep" ? Number(pre[1]) : 0;
    check(
      spec.terminationGracePeriodSeconds > sleep + 10,
      `${name}: terminationGracePeriodSeconds ${spec.terminationGracePeriodSeconds} > preStop ${sleep} s + 10 s drain`
    );
    const vol = (n) => (spec.volumes || []).find((v) => v.name === n) || {};
    const shared = (claimd.volumeMounts || [])
      .filter((m) => (signer.c.volumeMounts || []).some((s) => s.name === m.name && s.mountPath === m.mountPath))
      .filter((m) => vol(m.name).emptyDir && vol(m.name).emptyDir.medium === "Memory");
    check(shared.length === 1, `${name}: one in-memory emptyDir shared by claimd and the signer (the socket)`);
  }
  const ru = (dep.spec.strategy || {}).rollingUpdate || {};
  check(
    dep.spec.strategy.type === "RollingUpdate" && (ru.maxUnavailable === 0 || ru.maxUnavailable === "0%"),
    `${name}: rolling update with maxUnavailable 0`
  );

  const hooks = jobs.filter((j) => {
    const h = ((j.metadata.annotations || {})["helm.sh/hook"] || "").split(",");
    const cmd = j.spec.template.spec.containers
      .map((c) => [...(c.command || []), ...(c.args || [])].join(" "))
      .join(" ");
    return h.includes("pre-install") && h.includes("pre-upgrade") && /claimctl .*\bmigrate\b/.test(cmd);
  });
  check(hooks.length === 1, `${name}: a pre-install,pre-upgrade Job runs claimctl migrate`);
  check(
    !containersOf(spec).some(({ c }) => / migrate\b/.test([...(c.command || []), ...(c.args || [])].join(" "))),
    `${name}: the replicas do not migrate`
  );

  const root = path.join(__dirname, "../..");
  for (const o of docs.filter((x) => x.kind === "PrometheusRule")) {
    const rules = YAML.parse(fs.readFileSync(path.join(root, "config/prometheus/claimd-alerts.yml"), "utf8"));
    check(
      canonical(o.spec) === canonical(rules),
      `${name}: the PrometheusRule carries config/prometheus/claimd-alerts.yml unchanged`
    );
  }
  for (const o of docs.filter((x) => x.kind === "ConfigMap" && x.data && x.data["claimd-dashboard.json"])) {
    const file = fs.readFileSync(path.join(root, "config/grafana/claimd-dashboard.json"), "utf8");
    check(
      canonical(JSON.parse(o.data["claimd-dashboard.json"])) === canonical(JSON.parse(file)),
      `${name}: the dashboard ConfigMap carries config/grafana/claimd-dashboard.json unchanged`
    );
  }

  const pdb = docs.filter((o) => o.kind === "PodDisruptionBudget" && selects(o.spec.selector));
  check(pdb.length === 1, `${name}: a PodDisruptionBudget selects the pods`);
  const np = docs.filter((o) => o.kind === "NetworkPolicy" && selects(o.spec.podSelector));
  check(
    np.length === 1 &&
      (np[0].spec.policyTypes || []).includes("Ingress") &&
      (np[0].spec.policyTypes || []).includes("Egress"),
    `${name}: a NetworkPolicy (ingress and egress) selects the pods`
  );
}

for (let i = 0; i < pairs.length; i += 2) checkRendering(pairs[i], pairs[i + 1]);

// The field names: one TypeScript file typing every object, compiled without output.
const ts = path.join(work, "objects.ts");
fs.writeFileSync(ts, tsLines.join("\n") + "\n");
try {
  execFileSync(
    process.execPath,
    [
      path.join(tools, "node_modules/typescript/bin/tsc"),
      "--noEmit", "--strict", "--skipLibCheck", "--target", "es2020",
      "--module", "commonjs", "--moduleResolution", "node",
      "--typeRoots", "[]", "--baseUrl", path.join(tools, "node_modules"), ts,
    ],
    { cwd: tools, stdio: ["ignore", "pipe", "pipe"] }
  );
  check(true, `every field of the ${tsCount} objects is one the API knows (tsc)`);
} catch (e) {
  process.stdout.write(String(e.stdout || "") + String(e.stderr || ""));
  check(false, `every field of the ${tsCount} objects is one the API knows (tsc; ${ts})`);
}

console.log(failures ? `helm check: ${failures} failed` : "helm check: all passed");
process.exit(failures ? 1 : 0);
