//! Generates the Rust types of `alyx/v1/*.proto` with the protoc shipped by the
//! protoc-bin-vendored crate, so no system protoc is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protoc = protoc_bin_vendored::protoc_bin_path()?;
    let mut config = tonic_prost_build::Config::new();
    config.protoc_executable(protoc);
    // The descriptor set serves gRPC server reflection (grpcurl lists and calls services).
    let descriptors =
        std::path::PathBuf::from(std::env::var("OUT_DIR")?).join("alyx_v1_descriptor.bin");
    tonic_prost_build::configure()
        .file_descriptor_set_path(&descriptors)
        .compile_with_config(
            config,
            &[
                "alyx/v1/event.proto",
                "alyx/v1/events.proto",
                "alyx/v1/admin.proto",
            ],
            &["."],
        )?;
    println!("cargo:rerun-if-changed=alyx/v1");
    Ok(())
}
