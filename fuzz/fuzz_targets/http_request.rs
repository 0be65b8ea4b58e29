//! Arbitrary bytes as an HTTP/1 request stream to the service of
//! `examples/http-server.rs`, served by hyper on percore through
//! `percore_net::compat::Compat` over a Unix socket pair.
//!
//! Checks: nothing panics (not hyper, not the adapter's buffering, not the
//! service: a panic in the server task fails `JoinHandle::await`); the
//! server always finishes once the client's side is closed; and whatever it
//! sends back starts as an HTTP/1.x response (hyper answers an HTTP/1.0
//! request in kind).

#![no_main]

#[path = "../../examples/common/http.rs"]
mod http;

use std::mem::ManuallyDrop;
use std::net::Shutdown;

use libfuzzer_sys::fuzz_target;
use percore_net::UnixStream;
use percore_net::compat::Compat;

thread_local! {
    /// One runtime (and ring) for all inputs: building one per input would
    /// measure io_uring_setup, not the code under test. Never dropped:
    /// libFuzzer ends with exit(), and a `Runtime` dropped while thread
    /// locals are being destroyed panics (its Drop re-enters the driver's
    /// thread-local context, already gone).
    static RT: ManuallyDrop<percore::Runtime> =
        ManuallyDrop::new(percore::Runtime::new().expect("io_uring is available"));
}

fuzz_target!(|data: &[u8]| {
    let data = data.to_vec();
    RT.with(|rt| {
        rt.block_on(async move {
            let (client, server) = UnixStream::pair().expect("socketpair");
            let served = percore::spawn(async move {
                // Errors are fine (malformed requests); panics are not.
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(percore_net::hyper::Timer)
                    .serve_connection(
                        Compat::new(server),
                        hyper::service::service_fn(http::handle),
                    )
                    .await;
            });
            // The server may close early on a bad request: write errors are fine.
            let _ = client.write_all(data).await;
            let _ = client.shutdown(Shutdown::Write).await;
            let mut response = Vec::new();
            loop {
                let (res, buf) = client.read(Vec::with_capacity(16 * 1024)).await;
                match res {
                    Ok(n) if n > 0 => response.extend_from_slice(&buf),
                    _ => break,
                }
            }
            served.await.expect("the server task does not panic");
            if !response.is_empty() {
                let text = String::from_utf8_lossy(&response);
                assert!(
                    text.starts_with("HTTP/1.1 ") || text.starts_with("HTTP/1.0 "),
                    "not an HTTP/1.x response: {text:?}"
                );
            }
        })
    });
});
