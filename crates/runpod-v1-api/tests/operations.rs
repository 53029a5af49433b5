//! Every operation of the document is a method on the generated `Client`.

#[test]
fn every_operation_is_a_client_method() {
    let spec = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../openapi/runpod-v1/generated.json");
    let mut expected = gpucloud_codegen::expected_method_names(&spec).unwrap();
    let code = std::fs::read_to_string(concat!(env!("OUT_DIR"), "/codegen.rs")).unwrap();
    let mut generated = gpucloud_codegen::generated_method_names(&code);
    expected.sort();
    generated.sort();
    assert!(!expected.is_empty());
    assert_eq!(generated, expected);
}
