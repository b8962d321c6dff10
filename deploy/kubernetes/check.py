"""Cross-checks of the deploy files that no schema can see (run by check.sh, in its venv).

- the ConfigMap's mapping files are verbatim copies of the repository's mappings/;
- the Deployment mounts every key the config needs where the config looks for it;
- every credential_env of the config comes from a Secret, and secret.example.yaml has the key;
- teamgate listens on 0.0.0.0 on the port the probes use;
- terminationGracePeriodSeconds covers teamgate's drain grace + shutdown timeout + 5 s;
- `teamgate check` accepts the ConfigMap's config and mappings, laid out as in the pod;
- kustomization.yaml lists every manifest but the example Secret;
- every COPY source of the Dockerfile exists and is let through by .dockerignore.

Usage: check.py REPO_ROOT [TEAMGATE_BINARY]. Prints each finding; exits 1 on any problem.
"""

import fnmatch
import glob
import math
import os
import re
import shlex
import subprocess
import sys
import tempfile
import tomllib

import yaml

ROOT = sys.argv[1]
BINARY = sys.argv[2] if len(sys.argv) > 2 else ""
HERE = os.path.join(ROOT, "deploy", "kubernetes")
MARGIN_S = 5
problems = []


def problem(text):
    problems.append(text)
    print(f"FAIL {text}")


def ok(text):
    print(f"ok   {text}")


def load(name):
    with open(os.path.join(HERE, name), encoding="utf-8") as f:
        return list(yaml.safe_load_all(f))


def one(docs, kind):
    found = [d for d in docs if d and d.get("kind") == kind]
    if len(found) != 1:
        sys.exit(f"expected one {kind}, found {len(found)}")
    return found[0]


configmap = one(load("configmap.yaml"), "ConfigMap")
deployment = one(load("deployment.yaml"), "Deployment")
secret = one(load("secret.example.yaml"), "Secret")
data = configmap["data"]
config = tomllib.loads(data["config.toml"])
pod = deployment["spec"]["template"]["spec"]
sidecars = [c for c in pod.get("initContainers", []) + pod["containers"] if c["name"] == "teamgate"]
if len(sidecars) != 1:
    sys.exit("deployment.yaml: expected one container named teamgate")
teamgate = sidecars[0]

# Where each ConfigMap key lands, relative to the mount point.
volume = next(v for v in pod["volumes"] if v.get("configMap", {}).get("name") == configmap["metadata"]["name"])
mount = next(m for m in teamgate["volumeMounts"] if m["name"] == volume["name"])
items = {i["key"]: i["path"] for i in volume["configMap"].get("items", [])} or {k: k for k in data}
for key in items:
    if key not in data:
        problem(f"deployment.yaml mounts ConfigMap key {key!r}, which configmap.yaml does not have")

# The config file the container is told to read, and the mappings relative to it.
args = teamgate.get("args", [])
config_path = args[args.index("--config") + 1] if "--config" in args else "/etc/teamgate/config.toml"
config_dir = os.path.dirname(config_path)
if os.path.join(mount["mountPath"], items.get("config.toml", "?")) != config_path:
    problem(f"--config {config_path} is not where ConfigMap key config.toml is mounted")
else:
    ok(f"config.toml mounted at {config_path}")
for name, backend in config["backends"].items():
    want = os.path.normpath(os.path.join(config_dir, backend["mapping"]))
    keys = [k for k, p in items.items() if os.path.join(mount["mountPath"], p) == want]
    if not keys:
        problem(f"backend {name}: no ConfigMap key is mounted at {want}")
        continue
    repo_copy = os.path.join(ROOT, "mappings", os.path.basename(want))
    if os.path.exists(repo_copy):
        with open(repo_copy, encoding="utf-8") as f:
            if f.read() != data[keys[0]]:
                problem(f"ConfigMap key {keys[0]} differs from mappings/{os.path.basename(want)}: copy it again")
            else:
                ok(f"ConfigMap key {keys[0]} = mappings/{os.path.basename(want)}, mounted at {want}")

# Credentials: each credential_env from a Secret, and the example Secret has the key.
env = {e["name"]: e for e in teamgate.get("env", [])}
secret_keys = set(secret.get("stringData", {})) | set(secret.get("data", {}))
credential_vars = [b["credential_env"] for b in config["backends"].values() if "credential_env" in b]
for var in credential_vars:
    ref = env.get(var, {}).get("valueFrom", {}).get("secretKeyRef")
    if not ref:
        problem(f"{var} (a credential_env) is not set from a Secret in the teamgate container")
    elif ref["name"] != secret["metadata"]["name"] or ref["key"] not in secret_keys:
        problem(f"{var} comes from secret {ref['name']}/{ref['key']}, which secret.example.yaml does not describe")
    else:
        ok(f"{var} from secret {ref['name']}, key {ref['key']}")

# Listening where kubelet's probes arrive.
listen = args[args.index("--listen") + 1] if "--listen" in args else config.get("listen", "127.0.0.1:8080")
host, _, port = listen.rpartition(":")
ports = {p.get("name"): p["containerPort"] for p in teamgate.get("ports", [])}
if host != "0.0.0.0":
    problem(f"teamgate listens on {listen}: kubelet's probes (from the node, to the pod IP) cannot reach it")
for kind in ("startupProbe", "readinessProbe", "livenessProbe"):
    probe = teamgate.get(kind)
    if not probe:
        problem(f"teamgate has no {kind}")
        continue
    target = probe["httpGet"]["port"]
    target = ports.get(target, target)
    if str(target) != port:
        problem(f"{kind} probes port {target}, teamgate listens on {port}")
    else:
        ok(f"{kind} GET {probe['httpGet']['path']} on port {target}")
if teamgate["livenessProbe"]["httpGet"]["path"] != "/healthz" or teamgate["readinessProbe"]["httpGet"]["path"] != "/readyz":
    problem("liveness must probe /healthz and readiness /readyz")

# Termination: the grace period covers teamgate's whole drain.
server = config.get("server", {})
drain_s = (server.get("drain_grace_ms", 5000) + server.get("shutdown_timeout_ms", 30000)) / 1000
need = math.ceil(drain_s) + MARGIN_S
grace = pod.get("terminationGracePeriodSeconds", 30)
if grace < need:
    problem(f"terminationGracePeriodSeconds {grace} < teamgate's drain {drain_s:g} s + {MARGIN_S} s margin")
else:
    ok(f"terminationGracePeriodSeconds {grace} >= teamgate's drain {drain_s:g} s + {MARGIN_S} s margin")

# Hardening of the teamgate container.
sc = {**pod.get("securityContext", {}), **teamgate.get("securityContext", {})}
for field, want in [("runAsNonRoot", True), ("readOnlyRootFilesystem", True), ("allowPrivilegeEscalation", False)]:
    if sc.get(field) is not want:
        problem(f"teamgate securityContext.{field} is not {want}")
if sc.get("capabilities", {}).get("drop") != ["ALL"] or sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
    problem("teamgate must drop ALL capabilities and use the RuntimeDefault seccomp profile")
if not teamgate.get("resources", {}).get("requests", {}).get("memory"):
    problem("teamgate has no memory request")

# kustomization.yaml applies every manifest here but the example Secret.
with open(os.path.join(HERE, "kustomization.yaml"), encoding="utf-8") as f:
    listed = set(yaml.safe_load(f)["resources"])
present = {n for n in os.listdir(HERE) if n.endswith(".yaml")} - {"kustomization.yaml", "secret.example.yaml"}
if listed != present:
    problem(f"kustomization.yaml lists {sorted(listed)}, the directory has {sorted(present)}")
else:
    ok(f"kustomization.yaml: {', '.join(sorted(listed))}")

# `teamgate check` on the files as the pod sees them.
if BINARY:
    with tempfile.TemporaryDirectory() as tmp:
        for key, path in items.items():
            target = os.path.join(tmp, path)
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "w", encoding="utf-8") as f:
                f.write(data[key])
        run_env = {**os.environ, **{v: "dummy-for-check" for v in credential_vars}}
        result = subprocess.run(
            [BINARY, "check", "--config", os.path.join(tmp, items["config.toml"])],
            env=run_env, capture_output=True, text=True,
        )
        output = (result.stdout + result.stderr).strip().replace(tmp, "<mount>")
        if result.returncode != 0:
            problem(f"teamgate check on the ConfigMap:\n{output}")
        else:
            ok(f"teamgate check: {output}")
else:
    print("skip teamgate check (no binary: build it, or set TEAMGATE_BIN)")

# The Dockerfile: every COPY source exists and .dockerignore lets it through.
with open(os.path.join(ROOT, ".dockerignore"), encoding="utf-8") as f:
    rules = [l.strip() for l in f if l.strip() and not l.startswith("#")]


def ignored(path):
    excluded = False
    for rule in rules:
        negate = rule.startswith("!")
        pattern = rule.lstrip("!").rstrip("/")
        parts = path.split("/")
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        if any(fnmatch.fnmatchcase(p, pattern) for p in prefixes):
            excluded = not negate
    return excluded


with open(os.path.join(ROOT, "Dockerfile"), encoding="utf-8") as f:
    dockerfile = f.read().replace("\\\n", " ")
copies = 0
for line in dockerfile.splitlines():
    words = shlex.split(line.strip()) if line.strip().upper().startswith("COPY ") else []
    if not words or any(w.startswith("--from") for w in words):
        continue
    for source in [w for w in words[1:-1] if not w.startswith("--")]:
        matches = glob.glob(os.path.join(ROOT, source))
        copies += 1
        if not matches:
            problem(f"Dockerfile: COPY {source}: no such file in the repository")
        for m in matches:
            rel = os.path.relpath(m, ROOT)
            if ignored(rel):
                problem(f"Dockerfile: COPY {source}: {rel} is excluded by .dockerignore")
if copies:
    ok(f"Dockerfile: {copies} COPY sources exist and pass .dockerignore")

if problems:
    print(f"{len(problems)} problem(s)")
    sys.exit(1)
