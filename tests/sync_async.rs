#![allow(clippy::unwrap_used, clippy::expect_used)]
//! Stream as futures::io::AsyncRead + AsyncSeek, on two executors.

use std::io::{self, SeekFrom};
use std::thread;
use std::time::Duration;

use futures::io::{AsyncReadExt, AsyncSeekExt};
use kithara_stream::cancel::CancelToken;
use kithara_stream::storage::StorageResource;

mod sync_common;
use sync_common::{LIMIT, assert_cancelled, body, spawn, stream_over, within};

fn async_read_all(res: &StorageResource) -> Vec<u8> {
    let mut s = stream_over(res);
    let mut out = Vec::new();
    futures::executor::block_on(async {
        s.read_to_end(&mut out).await.unwrap();
        // AsyncSeek: back to a known point.
        assert_eq!(s.seek(SeekFrom::Start(1)).await.unwrap(), 1);
        let mut b = [0u8; 1];
        s.read_exact(&mut b).await.unwrap();
        assert_eq!(b[0], out[1]);
        assert_eq!(
            s.seek(SeekFrom::End(-1)).await.unwrap(),
            out.len() as u64 - 1
        );
        let e = s.seek(SeekFrom::End(1)).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
    });
    out
}

#[test]
fn async_reader_on_futures_block_on() {
    let data = body(200_000, 3);
    let res = StorageResource::memory(CancelToken::new());
    let w = res.clone();
    let d = data.clone();
    let writer = spawn("writer", move || {
        for (i, c) in d.chunks(10_000).enumerate() {
            thread::sleep(Duration::from_millis(1));
            w.write_at((i * 10_000) as u64, c).unwrap();
        }
        w.commit(None).unwrap();
    });
    let r = res.clone();
    let out = within(Duration::from_secs(20), "async reader", move || {
        async_read_all(&r)
    });
    assert!(out == data);
    writer.join(LIMIT);
}

/// Reader and writer as two tasks on ONE thread: if `poll_read` blocked the
/// thread, the writer could never run and this would hang.
#[test]
fn async_reader_does_not_block_a_single_threaded_executor() {
    use futures::task::LocalSpawnExt;
    let data = body(100_000, 5);
    let res = StorageResource::memory(CancelToken::new());
    let out = within(
        Duration::from_secs(20),
        "reader and writer on one thread",
        {
            let data = data.clone();
            let res = res.clone();
            move || {
                let mut pool = futures::executor::LocalPool::new();
                let spawner = pool.spawner();
                let w = res.clone();
                spawner
                    .spawn_local(async move {
                        for (i, c) in data.chunks(4096).enumerate() {
                            w.write_at((i * 4096) as u64, c).unwrap();
                            yield_now().await;
                        }
                        w.commit(None).unwrap();
                    })
                    .unwrap();
                let mut s = stream_over(&res);
                pool.run_until(async move {
                    // Length unknown at first: AsyncSeek waits for it.
                    let end = s.seek(SeekFrom::End(0)).await.unwrap();
                    s.seek(SeekFrom::Start(0)).await.unwrap();
                    let mut out = Vec::new();
                    s.read_to_end(&mut out).await.unwrap();
                    assert_eq!(end, out.len() as u64);
                    out
                })
            }
        },
    );
    assert!(out == data);
}

async fn yield_now() {
    let mut yielded = false;
    futures::future::poll_fn(|cx| {
        if yielded {
            std::task::Poll::Ready(())
        } else {
            yielded = true;
            cx.waker().wake_by_ref();
            std::task::Poll::Pending
        }
    })
    .await;
}

#[test]
fn async_cancel_wakes_reader() {
    let res = StorageResource::memory(CancelToken::new());
    let r = res.clone();
    let h = spawn("block_on(read)", move || {
        let mut s = stream_over(&r);
        futures::executor::block_on(s.read(&mut [0u8; 4]))
    });
    h.assert_blocked(Duration::from_millis(30));
    res.cancel_token().cancel();
    let e = h.join(LIMIT).unwrap_err();
    assert_cancelled(&e);
}

#[cfg(feature = "tokio")]
#[test]
fn async_reader_on_tokio() {
    let data = body(150_000, 11);
    let res = StorageResource::memory(CancelToken::new());
    // Current-thread runtime: writer and reader share the one thread.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let w = res.clone();
    let d = data.clone();
    let r = res.clone();
    let out = rt.block_on(async move {
        let writer = tokio::spawn(async move {
            for (i, c) in d.chunks(8192).enumerate() {
                w.write_at((i * 8192) as u64, c).unwrap();
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            w.commit(None).unwrap();
        });
        let mut s = stream_over(&r);
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), s.read_to_end(&mut out))
            .await
            .expect("hang")
            .unwrap();
        writer.await.unwrap();
        out
    });
    assert!(out == data);

    // Multi-thread runtime, reader as a spawned task.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_time()
        .build()
        .unwrap();
    let res = StorageResource::memory(CancelToken::new());
    let w = res.clone();
    let d = data.clone();
    let out = rt.block_on(async move {
        let reader = tokio::spawn(async move {
            let mut s = stream_over(&res);
            let mut out = Vec::new();
            s.read_to_end(&mut out).await.unwrap();
            out
        });
        for (i, c) in d.chunks(8192).enumerate() {
            w.write_at((i * 8192) as u64, c).unwrap();
            tokio::task::yield_now().await;
        }
        w.commit(None).unwrap();
        tokio::time::timeout(Duration::from_secs(20), reader)
            .await
            .expect("hang")
            .unwrap()
    });
    assert!(out == data);
}
