//! Every operation of the document is a method on the generated `Client`.

#[test]
fn every_operation_is_a_client_method() {
    gpucloud_codegen::assert_every_operation_is_a_method(
        env!("CARGO_MANIFEST_DIR"),
        "../../openapi/primeintellect/generated.json",
        concat!(env!("OUT_DIR"), "/codegen.rs"),
    );
}
