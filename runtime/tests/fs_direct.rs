//! O_DIRECT round trips with aligned and registered buffers.

mod support;

use percore::buf::{AlignedBuf, FixedBufPool};
use percore::fs::OpenOptions;
use support::fs::{TempPath, pattern};

#[test]
fn direct_round_trip_with_aligned_buffers() {
    let tmp = TempPath::new("direct");
    let data = pattern(1 << 20, 6);
    percore::run(async {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .direct(true)
            .open(tmp.path())
            .await
            .unwrap();
        let align = file.dio_alignment().unwrap();
        let meta = file.metadata().await.unwrap();
        if let Some(reported) = meta.dio_alignment() {
            assert_eq!(reported, align, "alignment comes from statx STATX_DIOALIGN");
        }
        let mut buf = AlignedBuf::new(data.len());
        buf.extend_from_slice(&data);
        let (res, _) = file.write_all_at(buf, 0).await;
        res.unwrap();
        file.sync_data().await.unwrap();

        let (res, buf) = file.read_exact_at(AlignedBuf::new(data.len()), 0).await;
        res.unwrap();
        assert_eq!(&buf[..], &data[..]);

        // Registered buffers are 4096-aligned: they work with O_DIRECT too.
        let pool = FixedBufPool::new(2, 64 * 1024).unwrap();
        let (n, buf) = file.read_fixed_at(pool.get().await, 128 * 1024).await;
        assert_eq!(n.unwrap(), 64 * 1024);
        assert_eq!(&buf[..], &data[128 * 1024..192 * 1024]);
        file.close().await.unwrap();
    });
    assert_eq!(std::fs::read(tmp.path()).unwrap(), data);
}
