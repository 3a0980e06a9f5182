//! Compiles the project's .proto files (proto/) for the Hubble and Falco gRPC sources.
//! protoc: `$PROTOC` when set (CI sets Debian's protobuf-compiler), else the one shipped in
//! the protoc-bin-vendored crate, so a fresh clone builds without installing anything.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = match std::env::var_os("PROTOC") {
        Some(p) => PathBuf::from(p),
        None => protoc_bin_vendored::protoc_bin_path()?,
    };
    // The well-known types (Timestamp, BoolValue) come with the vendored crate either way.
    let well_known = protoc_bin_vendored::include_path()?;
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    tonic_prost_build::configure()
        // Servers for the tests' Hubble Relay and Falco stand-ins.
        .build_server(true)
        .compile_with_config(
            config,
            &[
                PathBuf::from("proto/observer/observer.proto"),
                PathBuf::from("proto/falco/outputs.proto"),
            ],
            &[PathBuf::from("proto"), well_known],
        )?;
    println!("cargo:rerun-if-changed=proto");
    println!("cargo:rerun-if-env-changed=PROTOC");
    Ok(())
}
