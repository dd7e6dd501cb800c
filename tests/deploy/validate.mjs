// validate.mjs - checks Kubernetes objects against the Kubernetes OpenAPI
// schemas, offline, with the validators of the npm package kubernetes-models
// (pinned by package-lock.json).
//
//     node tests/deploy/validate.mjs FILE.json
//
// FILE.json holds a JSON array of objects, or a List ({"items": [...]}); the
// deployment test converts `kubectl kustomize` output to it with python3.
// Prints one line per object, "ok KIND NAMESPACE/NAME" or "error KIND
// NAMESPACE/NAME: PATH: PROBLEM" per problem, and exits 1 if any object has
// a problem, 2 on bad usage.
//
// Two kinds of problems are found:
// - what the schema says: types, formats (quantities, int32), required
//   fields, enums;
// - fields the schema does not know ("unknown field"), which
//   kubernetes-models lets through because the OpenAPI schemas do not close
//   their objects (kubectl and the API server reject them). The validators
//   are compiled code, not schemas to read, so the check watches them work:
//   every object is wrapped in a Proxy that records which keys the validator
//   reads. A validator looks up every property its schema declares (present
//   or not) and iterates every key of a map, so a key that it never reads
//   on an object it visited is one the schema does not declare.
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const schemaDir = join(here, "node_modules", "kubernetes-models", "_schemas");

// The schema module of an apiVersion and kind: "apps/v1" + "DaemonSet" ->
// IoK8sApiAppsV1DaemonSet; core "v1" -> IoK8sApiCoreV1...; a group's first
// DNS label names it (rbac.authorization.k8s.io -> Rbac).
function schemaName(apiVersion, kind) {
    const parts = String(apiVersion).split("/");
    const group = parts.length === 2 ? parts[0].split(".")[0] : "core";
    const version = parts[parts.length - 1];
    const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);
    return `IoK8sApi${cap(group)}${cap(version)}${kind}`;
}

async function loadValidator(apiVersion, kind) {
    const file = join(schemaDir, `${schemaName(apiVersion, kind)}.mjs`);
    try {
        const mod = await import(pathToFileURL(file).href);
        return mod.validate;
    } catch (e) {
        if (e.code === "ERR_MODULE_NOT_FOUND") return null;
        throw e;
    }
}

// Wraps value so that every key read on every object inside it is recorded
// in reads (object -> Set of keys). Proxies are cached so that an object
// read twice is the same proxy.
function watch(value, reads, cache) {
    if (value === null || typeof value !== "object") return value;
    if (cache.has(value)) return cache.get(value);
    const proxy = new Proxy(value, {
        get(target, key, receiver) {
            if (typeof key === "string") {
                if (!reads.has(target)) reads.set(target, new Set());
                reads.get(target).add(key);
            }
            return watch(Reflect.get(target, key, receiver), reads, cache);
        },
    });
    cache.set(value, proxy);
    return proxy;
}

// Every key of a plain object (not an array) that the validator visited but
// never read, as JSON-pointer-like paths.
function unknownFields(value, reads, path, out) {
    if (value === null || typeof value !== "object") return;
    if (Array.isArray(value)) {
        value.forEach((v, i) => unknownFields(v, reads, `${path}/${i}`, out));
        return;
    }
    const seen = reads.get(value);
    for (const key of Object.keys(value)) {
        if (seen && !seen.has(key)) {
            out.push(`${path}/${key}`);
            continue;
        }
        unknownFields(value[key], reads, `${path}/${key}`, out);
    }
}

function describe(obj) {
    const md = (obj && obj.metadata) || {};
    const where = md.namespace ? `${md.namespace}/${md.name}` : `${md.name}`;
    return `${obj && obj.kind} ${where}`;
}

async function validateObject(obj) {
    const problems = [];
    if (!obj || typeof obj !== "object" || !obj.apiVersion || !obj.kind) {
        return ["/: not a Kubernetes object (apiVersion and kind missing)"];
    }
    const validate = await loadValidator(obj.apiVersion, obj.kind);
    if (!validate) {
        return [`/: no schema for apiVersion ${obj.apiVersion} kind ${obj.kind}`];
    }
    const reads = new Map();
    const ok = validate(watch(obj, reads, new Map()));
    if (!ok) {
        for (const e of validate.errors || []) {
            problems.push(`${e.instancePath || "/"}: ${e.keyword}: ${ajvMessage(e)}`);
        }
    }
    const unknown = [];
    unknownFields(obj, reads, "", unknown);
    for (const p of unknown) problems.push(`${p}: unknown field`);
    return problems;
}

// The compiled validators leave out ajv's messages; say the common ones.
function ajvMessage(e) {
    const p = e.params || {};
    switch (e.keyword) {
        case "type":
            return `must be ${p.type}`;
        case "required":
            return `must have required property ${p.missingProperty}`;
        case "format":
            return `must match format ${p.format}`;
        case "enum":
            return `must be one of ${JSON.stringify(p.allowedValues)}`;
        default:
            return JSON.stringify(p);
    }
}

async function main() {
    if (process.argv.length !== 3) {
        console.error("usage: node validate.mjs FILE.json");
        process.exit(2);
    }
    let doc;
    try {
        doc = JSON.parse(readFileSync(process.argv[2], "utf8"));
    } catch (e) {
        console.error(`validate.mjs: ${process.argv[2]}: ${e.message}`);
        process.exit(2);
    }
    const objects = Array.isArray(doc) ? doc : doc && Array.isArray(doc.items) ? doc.items : null;
    if (!objects) {
        console.error("validate.mjs: expected a JSON array of objects or a List");
        process.exit(2);
    }
    let bad = 0;
    for (const obj of objects) {
        const problems = await validateObject(obj);
        if (problems.length === 0) {
            console.log(`ok ${describe(obj)}`);
        } else {
            bad++;
            for (const p of problems) console.log(`error ${describe(obj)}: ${p}`);
        }
    }
    console.log(`${objects.length} objects, ${bad} with errors`);
    process.exit(bad ? 1 : 0);
}

await main();
