//! Generates the gRPC code of `proto/` at build time with a pure-Rust protobuf compiler
//! (protox), so no system `protoc` is needed; also writes the encoded descriptor set that
//! the reflection service serves.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["warden/v1/authorizer.proto"];
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
    tonic_prost_build::configure()
        // Ordered maps make a request's context iterate in one order, so equal contexts
        // build equal decision-cache keys.
        .btree_map(".")
        .emit_rerun_if_changed(false)
        .compile_fds(compiler.file_descriptor_set())?;
    Ok(())
}
