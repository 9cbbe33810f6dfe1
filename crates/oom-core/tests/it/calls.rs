//! Each call has its own context: two passes running at once on two
//! threads, one cancelled, the other finishing with its own progress.

use std::sync::Arc;

use oom_core::exec::map_blocks;
use oom_core::kernels::sums::axis_sums;
use oom_core::plan::View;
use oom_core::storage::{open_matrix, H5File};
use oom_core::{Ctx, OomError};

use crate::fixtures::{dense_matrix, write_sparse, Opts};

#[test]
fn two_concurrent_passes_one_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.h5ad");
    let m = dense_matrix(600, 20);
    let o = Opts {
        csc: false,
        gzip: true,
        chunk: 64,
        indptr64: false,
    };
    write_sparse(&p, &m, &o);
    let view = View::new(Arc::new(
        open_matrix(&H5File::open(&p).unwrap(), "X").unwrap(),
    ));
    let (stopped, running) = (Ctx::new(), Ctx::new());
    let (cut, sums) = std::thread::scope(|s| {
        let cut = s.spawn(|| {
            // blocks of ~40 values: many blocks, the first one cancels
            map_blocks(&stopped, &view, 40, |a, b, _| {
                stopped.cancel();
                Ok(b - a)
            })
        });
        let sums = s.spawn(|| axis_sums(&running, &view));
        (cut.join().unwrap(), sums.join().unwrap())
    });
    assert!(matches!(cut, Err(OomError::Interrupted)));
    let (done, total) = stopped.progress();
    assert!(
        done < total,
        "the cancelled pass stopped early: {done} of {total}"
    );

    let sums = sums.expect("the other pass is not cancelled");
    let expected: Vec<f64> = m.iter().map(|r| r.iter().sum()).collect();
    assert_eq!(sums.row_sum, expected);
    assert_eq!(running.progress(), (600, 600));
    assert!(running.check().is_ok());
}
