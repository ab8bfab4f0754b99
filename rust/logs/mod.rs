//! Log readers for negmas/SCML world logs: Python-literal cells (`pylit`), offers out of
//! `history` cells (`history`), many rows in parallel (`batch`) and `negotiations.csv` (`csv`).

pub mod batch;
pub mod csv;
pub mod history;
pub mod pylit;
pub mod values;
