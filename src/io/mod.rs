//! Reading exports and writing results: the only layer that knows file
//! formats, and the only home of polars.

pub mod input;
pub mod output;
