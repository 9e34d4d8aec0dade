//! A SPDY/3.1 echo server on TCP (no HTTP upgrade), for trying other SPDY implementations
//! against `SpdySession::server`: every stream the client opens gets its bytes back, then FIN.
//!
//! `cargo run -p anycri-spdy --example spdy_echo_server -- 127.0.0.1:7001`

use anycri_spdy::{Role, SessionConfig, SpdySession};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:7001".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    loop {
        let (socket, _) = listener.accept().await?;
        tokio::spawn(async move {
            let mut config = SessionConfig::default();
            // SPDY_WRITE_FRAME=8192 sends smaller DATA frames (for peers with small chunks).
            if let Some(n) = std::env::var("SPDY_WRITE_FRAME")
                .ok()
                .and_then(|v| v.parse().ok())
            {
                config.max_write_frame = n;
            }
            let mut session = SpdySession::new(socket, Role::Server, config);
            while let Some(mut stream) = session.accept().await {
                println!("stream {} headers {:?}", stream.id(), stream.headers());
                tokio::spawn(async move {
                    let mut buf = Vec::new();
                    if stream.read_to_end(&mut buf).await.is_ok() {
                        let _ = stream.write_all(&buf).await;
                        let _ = stream.shutdown().await;
                    }
                });
            }
            println!("session ended: {:?}", session.close_reason());
        });
    }
}
