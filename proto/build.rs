//! Generates the Rust types of `alyx/v1/*.proto` (and a Spark Connect client) with the protoc shipped by the
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
                "alyx/v1/query.proto",
                "alyx/v1/jobs.proto",
                "alyx/v1/collab.proto",
            ],
            &["."],
        )?;
    println!("cargo:rerun-if-changed=alyx/v1");

    // Spark Connect's protocol (a client only), from the descriptors of pyspark's wheel
    // (spark/dump_descriptors.py): the Spark engine and executor speak it over gRPC.
    let fds = std::fs::read("spark/connect.fds")?;
    let fds = <prost_types::FileDescriptorSet as prost::Message>::decode(fds.as_slice())?;
    tonic_prost_build::configure()
        .build_server(false)
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed=spark/connect.fds");
    Ok(())
}
