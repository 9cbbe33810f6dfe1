//! Row-major dense values for one block.

use super::Values;

#[derive(Debug, Clone, PartialEq)]
pub struct Dense {
    pub nrows: usize,
    pub ncols: usize,
    pub data: Values,
}
