//! Generates the gRPC code of `proto/` at build time with a pure-Rust protobuf compiler
//! (protox), so no system `protoc` is needed; also writes the encoded descriptor set that
//! the reflection service serves.
//!
//! Two passes over one descriptor set: the messages and the client (`api/`), then the
//! server (`server/`) with the request messages mapped to `grpc::wire` types that keep
//! the request's bytes, so that the service decodes them itself within its limits
//! (prost's decoding has no limit on the entries of a map or a repeated field), and the
//! answers built on every request (`AuthorizeResponse`, Envoy's `CheckResponse`) mapped
//! to bytes the faces write themselves.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = [
        "warden/v1/authorizer.proto",
        "warden/v1/sts.proto",
        "warden/v1/admin.proto",
        "warden/v1/analysis.proto",
    ];
    println!("cargo:rerun-if-changed=proto");
    let mut compiler = protox::Compiler::new(["proto"])?;
    compiler
        .include_source_info(true)
        .include_imports(true)
        .open_files(protos)?;
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out.join("warden_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    let api = out.join("api");
    let server = out.join("server");
    std::fs::create_dir_all(&api)?;
    std::fs::create_dir_all(&server)?;
    tonic_prost_build::configure()
        // Ordered maps make a context iterate in one order wherever one is built.
        .btree_map(".")
        .build_server(false)
        .out_dir(&api)
        .emit_rerun_if_changed(false)
        .compile_fds(compiler.file_descriptor_set())?;
    tonic_prost_build::configure()
        .build_client(false)
        .out_dir(&server)
        .extern_path(".warden.v1", "crate::grpc::pb")
        .extern_path(
            ".warden.v1.AuthorizeRequest",
            "crate::grpc::wire::AuthorizeBytes",
        )
        .extern_path(
            ".warden.v1.BatchAuthorizeRequest",
            "crate::grpc::wire::BatchAuthorizeBytes",
        )
        .extern_path(
            ".warden.v1.AuthorizeResponse",
            "crate::grpc::wire::AuthorizeResponseBytes",
        )
        .extern_path(".warden.v1.WriteRequest", "crate::grpc::wire::WriteBytes")
        .extern_path(".warden.v1.GetRequest", "crate::grpc::wire::GetBytes")
        .emit_rerun_if_changed(false)
        .compile_fds(compiler.file_descriptor_set())?;
    envoy(&out)?;
    etcd(&out)?;
    Ok(())
}

/// etcd's v3 API (`etcdserverpb`): a client for the etcd source and the admin API, compiled
/// here like the rest so that a first build needs no `protoc` (the `etcd-client` crate's
/// build script runs one).
fn etcd(out: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut compiler = protox::Compiler::new(["proto/etcd-api"])?;
    compiler
        .include_source_info(false)
        .include_imports(true)
        .open_files(["etcd/api/etcdserverpb/rpc.proto"])?;
    let dir = out.join("etcd");
    std::fs::create_dir_all(&dir)?;
    tonic_prost_build::configure()
        .build_server(false)
        .out_dir(&dir)
        .emit_rerun_if_changed(false)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}

/// Envoy's `envoy.service.auth.v3.Authorization`: the descriptors (for reflection) and a
/// server whose `CheckRequest` is its bytes, so that the Check face decodes it only once the
/// request is admitted. The messages are `envoy-types`' own.
fn envoy(out: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    let mut compiler = protox::Compiler::new(["proto/envoy-api"])?;
    compiler
        .include_source_info(false)
        .include_imports(true)
        .open_files(["envoy/service/auth/v3/external_auth.proto"])?;
    std::fs::write(
        out.join("envoy_descriptor.bin"),
        compiler.encode_file_descriptor_set(),
    )?;
    let dir = out.join("envoy");
    std::fs::create_dir_all(&dir)?;
    tonic_prost_build::configure()
        .build_client(false)
        .out_dir(&dir)
        .extern_path(".envoy", "::envoy_types::pb::envoy")
        .extern_path(".google", "::envoy_types::pb::google")
        .extern_path(".udpa", "::envoy_types::pb::udpa")
        .extern_path(".xds", "::envoy_types::pb::xds")
        .extern_path(".validate", "::envoy_types::pb::validate")
        .extern_path(
            ".envoy.service.auth.v3.CheckRequest",
            "crate::grpc::wire::CheckBytes",
        )
        .extern_path(
            ".envoy.service.auth.v3.CheckResponse",
            "crate::grpc::wire::CheckResponseBytes",
        )
        .emit_rerun_if_changed(false)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
