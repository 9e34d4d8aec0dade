#![allow(missing_docs)]
use std::{path::PathBuf, sync::Arc, time::{Duration, Instant}};
use anycri::{RuntimeService, api::{VersionRequest, runtime_service_client::RuntimeServiceClient}, grpc::GrpcRuntime};
use hyper_util::rt::TokioIo;
use tonic::transport::{Endpoint, Uri};

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap();
    let endpoint = "unix:///var/tmp/anycri-env/containerd/containerd.sock";
    let (grpc, chan) = rt.block_on(async {
        let g = GrpcRuntime::connect(endpoint).await.unwrap();
        let path = PathBuf::from("/var/tmp/anycri-env/containerd/containerd.sock");
        let connector = tower::service_fn(move |_: Uri| { let path = path.clone(); async move {
            Ok::<_, std::io::Error>(TokioIo::new(tokio::net::UnixStream::connect(path).await?)) } });
        let c = Endpoint::from_static("http://localhost").tcp_nodelay(true).connect_with_connector(connector).await.unwrap();
        (g, c)
    });
    let dynrt: Arc<dyn RuntimeService> = Arc::new(grpc);
    let raw = RuntimeServiceClient::new(chan);
    let req = VersionRequest { version: "v1".into() };
    let n: usize = std::env::var("N").ok().and_then(|v| v.parse().ok()).unwrap_or(400);
    let rounds: usize = std::env::var("ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(30);
    let names = ["raw", "raw+grpc-timeout", "raw+grpc-timeout+tokio-timeout", "anycri dyn"];
    let mut samples: Vec<Vec<f64>> = vec![vec![]; names.len()];
    rt.block_on(async {
        for round in 0..rounds {
            for k in 0..names.len() {
                let v = (k + round) % names.len();
                let start = Instant::now();
                for _ in 0..n {
                    match v {
                        0 => { std::hint::black_box(raw.clone().version(req.clone()).await.unwrap()); }
                        1 => { let mut r = tonic::Request::new(req.clone()); r.set_timeout(Duration::from_secs(120));
                               std::hint::black_box(raw.clone().version(r).await.unwrap()); }
                        2 => { let mut r = tonic::Request::new(req.clone()); r.set_timeout(Duration::from_secs(120));
                               let mut c = raw.clone();
                               std::hint::black_box(tokio::time::timeout(Duration::from_secs(120), c.version(r)).await.unwrap().unwrap()); }
                        _ => { std::hint::black_box(dynrt.version(req.clone()).await.unwrap()); }
                    }
                }
                samples[v].push(start.elapsed().as_secs_f64() * 1e6 / n as f64);
            }
        }
    });
    let med = |v: &mut Vec<f64>| { v.sort_by(|a, b| a.partial_cmp(b).unwrap()); v[v.len() / 2] };
    // per-round ratios vs raw
    for k in 0..names.len() {
        let mut ratios: Vec<f64> = (0..rounds).map(|r| samples[k][r] / samples[0][r]).collect();
        let m = med(&mut samples[k].clone());
        println!("{:35} median {:8.2} µs   median per-round ratio vs raw {:.4}", names[k], m, med(&mut ratios));
    }
}
