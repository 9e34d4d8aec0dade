//! What serving a backend through `anycri-server` adds to a call: `Version` on the in-memory
//! fake called in-process (through `Arc<dyn RuntimeService>`), against the same call made with
//! `GrpcRuntime` over a unix socket to `anycri_server::serve_unix` serving that fake (one
//! criterion group, `version`, with `in_process` and `served`; `served_raw_tonic` is the same
//! socket with the bare tonic client, to tell the server's share from the client's).
//!
//! After criterion, a summary line gives the median of single calls timed one by one
//! (`SAMPLES` each) and the difference, which the issue's target bounds: serving adds at most
//! 150 µs median to a `Version`. No runtime is needed.
//!
//! ```text
//! cargo bench --bench serving
//! ```

use std::{
    hint::black_box,
    sync::Arc,
    time::{Duration, Instant},
};

use anycri::{
    RuntimeService,
    api::{VersionRequest, runtime_service_client::RuntimeServiceClient},
    fake::FakeRuntime,
    grpc::GrpcRuntime,
};
use anycri_server::{CriServer, ServeOptions, serve_unix};
use criterion::Criterion;
use hyper_util::rt::TokioIo;
use tonic::transport::{Endpoint, Uri};

/// Calls timed one by one for the summary's medians.
const SAMPLES: usize = 20_000;

fn request() -> VersionRequest {
    VersionRequest {
        version: "v1".into(),
    }
}

/// The median of `SAMPLES` single calls made by `call`, after a warm-up.
fn median_of<F, Fut>(tokio: &tokio::runtime::Runtime, call: F) -> Duration
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    tokio.block_on(async {
        for _ in 0..SAMPLES / 10 {
            call().await;
        }
        let mut times = Vec::with_capacity(SAMPLES);
        for _ in 0..SAMPLES {
            let start = Instant::now();
            call().await;
            times.push(start.elapsed());
        }
        times.sort();
        times[SAMPLES / 2]
    })
}

fn main() {
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    let fake = Arc::new(FakeRuntime::new());
    let in_process: Arc<dyn RuntimeService> = fake.clone();

    let dir = tempfile::tempdir().expect("a temporary directory");
    let socket = dir.path().join("cri.sock");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio.spawn(serve_unix(
        CriServer::new(fake.clone(), fake),
        socket.clone(),
        ServeOptions::default(),
        async move {
            let _ = stopped.await;
        },
    ));
    let (served, raw) = tokio.block_on(async {
        let mut last = None;
        for _ in 0..500 {
            match GrpcRuntime::connect(format!("unix://{}", socket.display())).await {
                Ok(client) => {
                    let path = socket.clone();
                    let channel = Endpoint::from_static("http://localhost")
                        .connect_with_connector(tower::service_fn(move |_: Uri| {
                            let path = path.clone();
                            async move {
                                let stream = tokio::net::UnixStream::connect(path).await?;
                                Ok::<_, std::io::Error>(TokioIo::new(stream))
                            }
                        }))
                        .await
                        .expect("a raw channel to the server");
                    return (client, RuntimeServiceClient::new(channel));
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("the server never answered: {last:?}");
    });
    let served: Arc<dyn RuntimeService> = Arc::new(served);

    let mut c = Criterion::default().configure_from_args();
    {
        let mut group = c.benchmark_group("version");
        group.bench_function("in_process", |b| {
            b.to_async(&tokio).iter(|| {
                let runtime = in_process.clone();
                async move { black_box(runtime.version(request()).await.expect("Version")) }
            })
        });
        group.bench_function("served", |b| {
            b.to_async(&tokio).iter(|| {
                let runtime = served.clone();
                async move { black_box(runtime.version(request()).await.expect("Version")) }
            })
        });
        group.bench_function("served_raw_tonic", |b| {
            b.to_async(&tokio).iter(|| {
                let mut client = raw.clone();
                async move {
                    black_box(
                        client
                            .version(request())
                            .await
                            .expect("Version")
                            .into_inner(),
                    )
                }
            })
        });
        group.finish();
    }
    c.final_summary();

    let local = median_of(&tokio, || {
        let runtime = in_process.clone();
        async move {
            black_box(runtime.version(request()).await.expect("Version"));
        }
    });
    let remote = median_of(&tokio, || {
        let runtime = served.clone();
        async move {
            black_box(runtime.version(request()).await.expect("Version"));
        }
    });
    let added = remote.saturating_sub(local);
    println!(
        "serving overhead (Version, median of {SAMPLES} single calls): in-process {:.2} µs, \
         through anycri-server {:.2} µs, added {:.2} µs (target: at most 150 µs) {}",
        local.as_secs_f64() * 1e6,
        remote.as_secs_f64() * 1e6,
        added.as_secs_f64() * 1e6,
        if added <= Duration::from_micros(150) {
            "met"
        } else {
            "NOT met"
        },
    );

    drop(served);
    drop(raw);
    let _ = stop.send(());
    if let Err(e) = tokio.block_on(server).expect("the server task") {
        eprintln!("serving bench: the server ended with an error: {e}");
    }
}
