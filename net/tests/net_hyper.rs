//! hyper 1.x on percore: HTTP/1.1 and HTTP/2 server and client on loopback
//! through `Compat`, the `Executor` (for HTTP/2's `!Send` tasks) and the
//! `Timer` (header read timeout, reset).

use std::convert::Infallible;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::rt::Timer as _;
use hyper::{Request, Response, StatusCode};
use percore::time::timeout;
use percore_net::compat::Compat;
use percore_net::hyper::{Executor, Timer};
use percore_net::{TcpListener, TcpStream};

/// Bounds each wait, so a lost wake-up fails the test instead of hanging it.
const LIMIT: Duration = Duration::from_secs(20);

/// Echoes the method, path and body: `"POST /x: body"`.
async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let head = format!("{} {}: ", req.method(), req.uri().path());
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    let mut out = head.into_bytes();
    match body {
        Ok(b) => out.extend_from_slice(&b),
        Err(e) => out.extend_from_slice(e.to_string().as_bytes()),
    }
    Ok(Response::new(Full::new(Bytes::from(out))))
}

fn request(method: &str, path: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    Request::builder()
        .method(method)
        .uri(path)
        .header("host", "localhost")
        .body(Full::new(body.into()))
        .unwrap()
}

async fn body_string(res: Response<Incoming>) -> String {
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    String::from_utf8(bytes.to_vec()).unwrap()
}

#[percore::test]
async fn http1_keep_alive_requests() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = percore::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        hyper::server::conn::http1::Builder::new()
            .timer(Timer)
            .serve_connection(Compat::new(conn), hyper::service::service_fn(echo))
            .await
    });

    let conn = Compat::new(TcpStream::connect(addr).await.unwrap());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(conn).await.unwrap();
    let client_conn = percore::spawn(connection);
    // Several requests on one connection, one of them large enough to
    // take several reads and sends.
    let big = "x".repeat(300_000);
    for (i, body) in ["", "hello", big.as_str()].into_iter().enumerate() {
        let path = format!("/r{i}");
        let req = request("POST", &path, body.to_string());
        let res = timeout(LIMIT, sender.send_request(req))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(body_string(res).await, format!("POST {path}: {body}"));
    }
    // Closing the client side ends both connections cleanly.
    drop(sender);
    timeout(LIMIT, client_conn).await.unwrap().unwrap().unwrap();
    timeout(LIMIT, server).await.unwrap().unwrap().unwrap();
}

#[percore::test]
async fn http2_concurrent_streams_on_the_percore_executor() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = percore::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        hyper::server::conn::http2::Builder::new(Executor)
            .timer(Timer)
            .serve_connection(Compat::new(conn), hyper::service::service_fn(echo))
            .await
    });

    let conn = Compat::new(TcpStream::connect(addr).await.unwrap());
    let (sender, connection) = hyper::client::conn::http2::Builder::new(Executor)
        .timer(Timer)
        .handshake(conn)
        .await
        .unwrap();
    let client_conn = percore::spawn(connection);
    // Ten requests in flight at once on one connection.
    let handles: Vec<_> = (0..10)
        .map(|i| {
            let mut sender = sender.clone();
            percore::spawn(async move {
                let req = request("PUT", &format!("/s{i}"), "body");
                let res = sender.send_request(req).await.unwrap();
                body_string(res).await
            })
        })
        .collect();
    let bodies = timeout(LIMIT, percore::join_all(handles)).await.unwrap();
    for (i, body) in bodies.into_iter().enumerate() {
        assert_eq!(body.unwrap(), format!("PUT /s{i}: body"));
    }
    drop(sender);
    timeout(LIMIT, client_conn).await.unwrap().unwrap().unwrap();
    timeout(LIMIT, server).await.unwrap().unwrap().unwrap();
}

#[percore::test]
async fn header_read_timeout_closes_a_silent_connection() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = percore::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        hyper::server::conn::http1::Builder::new()
            .timer(Timer)
            .header_read_timeout(Duration::from_millis(20))
            .serve_connection(Compat::new(conn), hyper::service::service_fn(echo))
            .await
    });
    // 1. Connect and send half a request head, then nothing.
    let client = TcpStream::connect(addr).await.unwrap();
    client
        .write_all(&b"GET / HTTP/1.1\r\n"[..])
        .await
        .0
        .unwrap();
    // 2. The server's timer fires: the connection ends with a timeout error.
    let err = timeout(LIMIT, server).await.unwrap().unwrap().unwrap_err();
    assert!(err.is_timeout(), "expected a header timeout, got {err:?}");
    // 3. The client reads the 408 hyper sends, or just the close.
    let (res, buf) = timeout(LIMIT, client.read(Vec::with_capacity(256)))
        .await
        .unwrap();
    res.unwrap();
    assert!(
        buf.is_empty() || buf.starts_with(b"HTTP/1.1 408"),
        "{buf:?}"
    );
}

#[percore::test]
async fn timer_reset_moves_the_deadline() {
    // 1. A sleep far in the future, polled once so its percore timer exists.
    let mut sleep = Timer.sleep(Duration::from_secs(3600));
    assert!(
        timeout(Duration::from_millis(1), sleep.as_mut())
            .await
            .is_err()
    );
    // 2. Reset it to now: it completes, long before the original hour.
    Timer.reset(&mut sleep, Instant::now());
    timeout(LIMIT, sleep).await.unwrap();
    // 3. A sleep reset before its first poll works too.
    let mut fresh = Timer.sleep(Duration::from_secs(3600));
    Timer.reset(&mut fresh, Instant::now());
    timeout(LIMIT, fresh).await.unwrap();
}

/// Serves every connection of `listener` with hyper and `echo`, with a short
/// header read timeout, until dropped.
fn serve_all(listener: TcpListener, header_timeout: Duration) -> percore::JoinHandle<()> {
    percore::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                continue;
            };
            percore::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(Timer)
                    .header_read_timeout(header_timeout)
                    .serve_connection(Compat::new(conn), hyper::service::service_fn(echo))
                    .await;
            });
        }
    })
}

/// Sends `bytes` on a new connection and reads until the server closes it.
async fn send_raw(addr: std::net::SocketAddr, bytes: Vec<u8>) -> Vec<u8> {
    let conn = TcpStream::connect(addr).await.unwrap();
    let _ = conn.write_all(bytes).await;
    let mut got = Vec::new();
    loop {
        let (res, buf) = timeout(LIMIT, conn.read(Vec::with_capacity(1024)))
            .await
            .expect("the server closed the connection");
        match res {
            Ok(0) | Err(_) => return got,
            Ok(_) => got.extend_from_slice(&buf),
        }
    }
}

/// One well-formed request on a fresh connection: the server still serves.
async fn still_serves(addr: std::net::SocketAddr) {
    let got = send_raw(
        addr,
        b"GET /ok HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n".to_vec(),
    )
    .await;
    assert!(
        got.starts_with(b"HTTP/1.1 200"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    assert!(
        got.ends_with(b"GET /ok: "),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
}

/// Live tasks on this core: spawned and not finished.
fn live_tasks() -> u64 {
    let s = percore::stats().executor;
    s.spawned - s.finished
}

/// Waits (bounded by `LIMIT`) until no more than `baseline` tasks live.
async fn tasks_back_to(baseline: u64) {
    let deadline = Instant::now() + LIMIT;
    while live_tasks() > baseline {
        assert!(
            Instant::now() < deadline,
            "{} tasks left",
            live_tasks() - baseline
        );
        percore::time::sleep(Duration::from_millis(5)).await;
    }
}

#[percore::test]
async fn malformed_requests_get_an_error_and_a_close_and_nothing_leaks() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = serve_all(listener, Duration::from_secs(5));
    still_serves(addr).await;
    let baseline = live_tasks();
    let hostile: [&'static [u8]; 6] = [
        b"\x00\x01\x02 garbage\r\n\r\n",
        b"GET / HTTP/9.9\r\n\r\n",
        b"GET / HTTP/1.1\r\nbad header line\r\n\r\n",
        b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: -5\r\n\r\n",
        b"POST / HTTP/1.1\r\nhost: x\r\ncontent-length: 3\r\ntransfer-encoding: chunked\r\n\r\nzz\r\n",
        b"GET /\r\n\r\n",
    ];
    for _ in 0..20 {
        for bytes in hostile {
            let got = send_raw(addr, bytes.to_vec()).await;
            // hyper answers a parse error with 400 (or just closes); a body
            // that breaks mid-way reaches the service as a body error, and
            // the connection is closed after the answer.
            let text = String::from_utf8_lossy(&got);
            assert!(
                got.is_empty()
                    || got.starts_with(b"HTTP/1.1 400")
                    || text.contains("connection: close"),
                "{:?} -> {text:?}",
                String::from_utf8_lossy(bytes),
            );
        }
    }
    // A head far larger than hyper's limit is refused, not buffered.
    let huge = [
        &b"GET / HTTP/1.1\r\nx: "[..],
        &vec![b'a'; 1 << 20],
        b"\r\n\r\n",
    ]
    .concat();
    let got = send_raw(addr, huge).await;
    assert!(
        got.is_empty() || got.starts_with(b"HTTP/1.1 431"),
        "{:?}",
        String::from_utf8_lossy(&got)
    );
    still_serves(addr).await;
    // Every hostile connection's task has ended.
    tasks_back_to(baseline).await;
    server.abort();
}

#[percore::test]
async fn slowloris_connections_are_timed_out_while_others_are_served() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = serve_all(listener, Duration::from_millis(300));
    let baseline = live_tasks();
    // 50 clients dribble a request head, one byte every 50 ms.
    let slow: Vec<_> = (0..50)
        .map(|_| {
            percore::spawn(async move {
                let conn = TcpStream::connect(addr).await.unwrap();
                for &b in b"GET / HTTP/1.1\r\nhost: x\r\nx-slow: aaaaaaaaaaaaaaaaaaaaaaaaa" {
                    if conn.write_all(vec![b]).await.0.is_err() {
                        return true; // the server closed it
                    }
                    percore::time::sleep(Duration::from_millis(50)).await;
                }
                // The head never finished: the server must have closed it.
                let (res, buf) = timeout(LIMIT, conn.read(Vec::with_capacity(256)))
                    .await
                    .unwrap();
                res.is_err() || buf.is_empty() || buf.starts_with(b"HTTP/1.1 408")
            })
        })
        .collect();
    // Meanwhile normal requests are answered.
    for _ in 0..10 {
        still_serves(addr).await;
        percore::time::sleep(Duration::from_millis(20)).await;
    }
    for closed in percore::join_all(slow).await {
        assert!(closed.unwrap(), "a slow connection was never timed out");
    }
    // The server side of every slow connection has ended (the 50 client
    // tasks ended above).
    tasks_back_to(baseline).await;
    server.abort();
}

/// Counts the polls of a future (the server's connection).
struct CountPolls<F> {
    inner: std::pin::Pin<Box<F>>,
    polls: std::rc::Rc<std::cell::Cell<u32>>,
}

impl<F: std::future::Future> std::future::Future for CountPolls<F> {
    type Output = F::Output;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        self.polls.set(self.polls.get() + 1);
        self.inner.as_mut().poll(cx)
    }
}

/// Where a socket send goes out whole (io_uring on 5.19+), hyper's flush
/// does not wait for the send's completion, and that completion wakes
/// nobody: a kept-alive HTTP/1 connection is polled once per request (when
/// the request arrives), not twice. Elsewhere (epoll), it still waits, and
/// only the answers are checked.
#[percore::test]
async fn a_response_costs_one_poll_of_the_connection_where_sends_go_whole() {
    const REQUESTS: u32 = 20;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let polls = std::rc::Rc::new(std::cell::Cell::new(0));
    let counted = polls.clone();
    let server = percore::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        let serve = hyper::server::conn::http1::Builder::new()
            .serve_connection(Compat::new(conn), hyper::service::service_fn(echo));
        CountPolls {
            inner: Box::pin(serve),
            polls: counted,
        }
        .await
    });

    let conn = Compat::new(TcpStream::connect(addr).await.unwrap());
    let (mut sender, connection) = hyper::client::conn::http1::handshake(conn).await.unwrap();
    let client_conn = percore::spawn(connection);
    // Let the server accept and wait for the first request.
    timeout(LIMIT, sender.ready()).await.unwrap().unwrap();
    percore::time::sleep(Duration::from_millis(20)).await;
    let before = polls.get();
    for i in 0..REQUESTS {
        let res = timeout(
            LIMIT,
            sender.send_request(request("GET", &format!("/{i}"), "")),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(body_string(res).await, format!("GET /{i}: "));
    }
    let per_request = polls.get() - before;
    drop(sender);
    timeout(LIMIT, client_conn).await.unwrap().unwrap().unwrap();
    timeout(LIMIT, server).await.unwrap().unwrap().unwrap();
    if percore::capabilities().is_some_and(|c| c.recv_poll_first) {
        // One poll per request; a little slack for a request that arrives
        // in two pieces.
        assert!(
            per_request <= REQUESTS + 2,
            "{per_request} polls of the connection for {REQUESTS} requests"
        );
    }
}

/// A response far larger than the socket buffers, to a client that reads
/// slowly and keeps the connection open: every byte arrives although
/// hyper's flush returned while the last send was still in flight, and
/// hyper then only waits for the next request (the send goes out whole,
/// or the flush waits for it).
#[percore::test]
async fn a_large_response_to_a_slow_reader_arrives_whole() {
    // Not a multiple of the 64 KiB writes: the last one is large too.
    const LEN: usize = (8 << 20) + (60 << 10);
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = percore::spawn(async move {
        let (conn, _) = listener.accept().await.unwrap();
        // A small send buffer: 64 KiB writes can only go out in pieces.
        socket2::SockRef::from(&conn)
            .set_send_buffer_size(16 << 10)
            .unwrap();
        let big = hyper::service::service_fn(|_req: Request<Incoming>| async {
            let body: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
            Ok::<_, Infallible>(Response::new(Full::new(Bytes::from(body))))
        });
        hyper::server::conn::http1::Builder::new()
            .serve_connection(Compat::new(conn), big)
            .await
    });

    let client = TcpStream::connect(addr).await.unwrap();
    let req = b"GET / HTTP/1.1\r\nhost: localhost\r\n\r\n".to_vec();
    client.write_all(req).await.0.unwrap();
    let mut got = Vec::with_capacity(LEN + 1024);
    let mut head_end = None;
    while head_end.is_none_or(|h| got.len() < h + LEN) {
        // Slow: pauses between reads, so the server's sends fill the
        // socket buffers and wait.
        percore::time::sleep(Duration::from_micros(200)).await;
        let (res, buf) = timeout(LIMIT, client.read(Vec::with_capacity(256 << 10)))
            .await
            .expect("the rest of the response never came");
        assert!(res.unwrap() > 0, "the server closed early");
        got.extend_from_slice(&buf);
        if head_end.is_none() {
            head_end = got.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4);
        }
    }
    assert!(got.starts_with(b"HTTP/1.1 200 OK"));
    let body = &got[head_end.unwrap()..];
    assert_eq!(body.len(), LEN);
    assert!(body.iter().enumerate().all(|(i, b)| *b == (i % 251) as u8));
    drop(client); // the server's connection ends
    timeout(LIMIT, server).await.unwrap().unwrap().unwrap();
}

/// hyper's flush on a `Compat` returns while a send is in flight where
/// sends go out whole; the bytes still all arrive although nobody polls the
/// writer again, even when the send cannot go out at once (a small send
/// buffer, a reader that takes its time). On epoll the flush waits.
#[percore::test]
async fn bytes_flushed_for_hyper_all_arrive_without_another_poll() {
    use hyper::rt::Write as _;
    const LEN: usize = 60 << 10;
    let (a, b) = percore_net::UnixStream::pair().unwrap();
    socket2::SockRef::from(&a)
        .set_send_buffer_size(4 << 10)
        .unwrap();
    let mut a = Compat::new(a);
    let data: Vec<u8> = (0..LEN).map(|i| (i % 253) as u8).collect();
    // One write takes what fits the socket straight from `data` (a lone
    // sender's `sendmsg`), the next copies the rest and queues its send.
    let mut taken = 0;
    while taken < LEN {
        let written =
            std::future::poll_fn(|cx| std::pin::Pin::new(&mut a).poll_write(cx, &data[taken..]));
        let n = timeout(LIMIT, written).await.unwrap().unwrap();
        assert!(n > 0);
        taken += n;
    }
    // On epoll this waits for the reader below: read concurrently.
    let reader = percore::spawn(async move {
        let mut got = Vec::with_capacity(LEN);
        while got.len() < LEN {
            percore::time::sleep(Duration::from_millis(1)).await;
            let (res, buf) = timeout(LIMIT, b.read(Vec::with_capacity(4 << 10)))
                .await
                .expect("the rest of the flushed bytes never came");
            assert!(res.unwrap() > 0);
            got.extend_from_slice(&buf);
        }
        got
    });
    let flushed = std::future::poll_fn(|cx| std::pin::Pin::new(&mut a).poll_flush(cx));
    timeout(LIMIT, flushed).await.unwrap().unwrap();
    // `a` is not polled again until every byte arrived.
    assert_eq!(timeout(LIMIT, reader).await.unwrap().unwrap(), data);
    drop(a);
}

/// A client that goes away in the middle of a large response (the response
/// part sent directly, the rest waiting on the ring for room): its
/// connection's task ends, nothing of it is left, and other clients are
/// served meanwhile and after.
#[percore::test]
async fn a_client_gone_mid_response_ends_its_connection_and_hurts_no_other() {
    const LEN: usize = 4 << 20;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let big_or_echo = |req: Request<Incoming>| async move {
        if req.uri().path() == "/big" {
            let body: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
            return Ok(Response::new(Full::new(Bytes::from(body))));
        }
        echo(req).await
    };
    let server = percore::spawn(async move {
        loop {
            let Ok((conn, _)) = listener.accept().await else {
                continue;
            };
            // A small send buffer: the response cannot go out at once.
            socket2::SockRef::from(&conn)
                .set_send_buffer_size(16 << 10)
                .unwrap();
            percore::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(Compat::new(conn), hyper::service::service_fn(big_or_echo))
                    .await;
            });
        }
    });
    still_serves(addr).await;
    let baseline = live_tasks();
    for _ in 0..5 {
        let gone = TcpStream::connect(addr).await.unwrap();
        let req = b"GET /big HTTP/1.1\r\nhost: x\r\n\r\n".to_vec();
        gone.write_all(req).await.0.unwrap();
        // Part of the response, then away with the rest unread.
        let (res, buf) = timeout(LIMIT, gone.read(Vec::with_capacity(4096)))
            .await
            .unwrap();
        assert!(res.unwrap() > 0 && buf.starts_with(b"HTTP/1.1 200"));
        still_serves(addr).await;
        drop(gone);
        still_serves(addr).await;
    }
    // Every abandoned connection's task has ended.
    tasks_back_to(baseline).await;
    server.abort();
}
