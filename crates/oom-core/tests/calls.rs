//! Concurrent calls share the cancel flag: one starting beside a running
//! one must not clear it. (Its own test binary: the flag is process-wide and
//! would interrupt the library's other tests.)

use oom_core::exec::{begin_call, cancel, check_cancel};

#[test]
fn a_call_starting_beside_a_cancelled_one_keeps_the_flag() {
    let first = begin_call();
    cancel();
    let second = begin_call();
    assert!(
        check_cancel().is_err(),
        "the second call cleared the first call's Ctrl-C"
    );
    drop(first);
    assert!(check_cancel().is_err());
    drop(second);
    let third = begin_call();
    assert!(
        check_cancel().is_ok(),
        "a call starting alone begins uncancelled"
    );
    drop(third);
}
