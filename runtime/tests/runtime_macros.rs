//! `#[percore::test]` (and through it the expansion `#[percore::main]`
//! shares): options, return types, panics on one of several cores.

use std::io;
use std::time::Duration;

#[percore::test]
async fn plain_body_runs_on_core_0() {
    percore::time::sleep(Duration::from_millis(1)).await;
    assert_eq!((percore::core_id(), percore::cores()), (0, 1));
}

#[percore::test(entries = 64)]
async fn result_return_and_question_mark() -> io::Result<()> {
    let n = percore::spawn(async { 3 }).await?;
    assert_eq!(n, 3);
    Ok(())
}

#[percore::test(cores = 2)]
async fn every_core_runs_the_body() -> Result<(), percore::JoinError> {
    assert_eq!(percore::cores(), 2);
    let other = 1 - percore::core_id();
    let there = percore::spawn_on(other, || async { percore::core_id() }).await?;
    assert_eq!(there, other);
    Ok(())
}

#[percore::test(cores = 2, pin = false)]
#[should_panic(expected = "core 1 failed: only on core 1")]
async fn a_panic_on_any_core_fails_the_test() {
    if percore::core_id() == 1 {
        panic!("only on core 1");
    }
    // Core 0 waits; the panic on core 1 stops it.
    percore::time::sleep(Duration::from_secs(30)).await;
}

#[percore::test(cores = 2, grace = 100)]
async fn a_graceful_shutdown_ends_every_core() {
    if percore::core_id() == 0 {
        percore::shutdown::request();
    }
    percore::shutdown::requested().await;
}

#[test]
fn err_of_the_lowest_failing_core_wins() {
    use percore::__private::{CoreOutput, merge_core_outputs};
    let merged: Result<u32, &str> = CoreOutput::merge(vec![Ok(1), Err("core 1"), Err("core 2")]);
    assert_eq!(merged, Err("core 1"));
    assert_eq!(
        merge_core_outputs::<Result<u32, &str>>(Ok(vec![Ok(7), Ok(8)])),
        Ok(7)
    );
}
