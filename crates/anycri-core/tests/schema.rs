//! The operation list that generates every implementation (`ops::op::ALL`) must match the
//! services in `proto/runtime/v1/api.proto` exactly: same RPC names, services and shapes.

use std::collections::BTreeSet;

use anycri_core::ops::{Service, Shape, op};

#[test]
fn operations_match_the_proto_services() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../anycri-api/proto");
    let fds = protox::compile(["runtime/v1/api.proto"], [root]).expect("the schema compiles");
    let mut from_proto = BTreeSet::new();
    for file in &fds.file {
        for service in &file.service {
            let svc = match service.name() {
                "RuntimeService" => Service::Runtime,
                "ImageService" => Service::Image,
                other => panic!("unexpected service {other}"),
            };
            for m in &service.method {
                assert!(!m.client_streaming(), "{} streams requests", m.name());
                let shape = if m.server_streaming() {
                    Shape::ServerStreaming
                } else {
                    Shape::Unary
                };
                from_proto.insert((
                    format!("{svc:?}"),
                    m.name().to_owned(),
                    format!("{shape:?}"),
                ));
            }
        }
    }
    let ours: BTreeSet<_> = op::ALL
        .iter()
        .map(|o| {
            (
                format!("{:?}", o.service),
                o.name.to_owned(),
                format!("{:?}", o.shape),
            )
        })
        .collect();
    assert_eq!(ours, from_proto);
    assert_eq!(op::ALL.len(), 41);
}
