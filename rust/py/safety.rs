//! Python bindings of `crate::safety`: read the state's attributes once, check array shapes,
//! return fresh NumPy arrays. See `hrl.safety` for the documented Python API.

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use super::arrays::matrix;
use crate::error::CoreError;
use crate::safety::{self, Offer, Range, RoundItem, SafetyState, Side, Verdict};
use crate::stock::{self, ModelDay, StockModel};

/// A `SafetyState` read off any Python object with the same attribute names (normally
/// `hrl.safety.SafetyState`).
struct OwnedState {
    current_step: i64,
    n_steps: i64,
    n_lines: i64,
    inventory_input: i64,
    supplies: Vec<i64>,
    sales: Vec<i64>,
    balance: f64,
    committed_payables: f64,
    production_cost: f64,
    trading_price_in: f64,
    trading_price_out: f64,
    buy_quantity: Range,
    buy_price: Range,
    sell_quantity: Range,
    sell_price: Range,
    expected_supplies: Vec<i64>,
    stock_model: StockModel,
}

fn attr_int(obj: &Bound<'_, PyAny>, name: &str) -> Result<i64, CoreError> {
    obj.getattr(name)
        .and_then(|v| v.extract::<i64>())
        .map_err(|e| CoreError::invalid(name, format!("expected an int attribute: {e}")))
}

fn attr_float(obj: &Bound<'_, PyAny>, name: &str) -> Result<f64, CoreError> {
    obj.getattr(name)
        .and_then(|v| v.extract::<f64>())
        .map_err(|e| CoreError::invalid(name, format!("expected a float attribute: {e}")))
}

fn attr_ints(obj: &Bound<'_, PyAny>, name: &str) -> Result<Vec<i64>, CoreError> {
    obj.getattr(name)
        .and_then(|v| v.extract::<Vec<i64>>())
        .map_err(|e| CoreError::invalid(name, format!("expected a sequence of ints: {e}")))
}

fn attr_range(obj: &Bound<'_, PyAny>, name: &str) -> Result<Range, CoreError> {
    obj.getattr(name)
        .and_then(|v| v.extract::<(i64, i64)>())
        .map(|(lo, hi)| Range::new(lo, hi))
        .map_err(|e| CoreError::invalid(name, format!("expected an (int, int) pair: {e}")))
}

impl OwnedState {
    fn read(obj: &Bound<'_, PyAny>) -> Result<Self, CoreError> {
        Ok(Self {
            current_step: attr_int(obj, "current_step")?,
            n_steps: attr_int(obj, "n_steps")?,
            n_lines: attr_int(obj, "n_lines")?,
            inventory_input: attr_int(obj, "inventory_input")?,
            supplies: attr_ints(obj, "supplies")?,
            sales: attr_ints(obj, "sales")?,
            balance: attr_float(obj, "balance")?,
            committed_payables: attr_float(obj, "committed_payables")?,
            production_cost: attr_float(obj, "production_cost")?,
            trading_price_in: attr_float(obj, "trading_price_in")?,
            trading_price_out: attr_float(obj, "trading_price_out")?,
            buy_quantity: attr_range(obj, "buy_quantity")?,
            buy_price: attr_range(obj, "buy_price")?,
            sell_quantity: attr_range(obj, "sell_quantity")?,
            sell_price: attr_range(obj, "sell_price")?,
            // Optional attributes: absent means no expected supply and scml 0.8.4's stock model.
            expected_supplies: if obj.hasattr("expected_supplies").unwrap_or(false) {
                attr_ints(obj, "expected_supplies")?
            } else {
                Vec::new()
            },
            stock_model: if obj.hasattr("stock_model").unwrap_or(false) {
                StockModel::from_code(attr_int(obj, "stock_model")?, "stock_model")?
            } else {
                StockModel::Persistent
            },
        })
    }

    fn view(&self) -> SafetyState<'_> {
        SafetyState {
            current_step: self.current_step,
            n_steps: self.n_steps,
            n_lines: self.n_lines,
            inventory_input: self.inventory_input,
            supplies: &self.supplies,
            sales: &self.sales,
            balance: self.balance,
            committed_payables: self.committed_payables,
            production_cost: self.production_cost,
            trading_price_in: self.trading_price_in,
            trading_price_out: self.trading_price_out,
            buy_quantity: self.buy_quantity,
            buy_price: self.buy_price,
            sell_quantity: self.sell_quantity,
            sell_price: self.sell_price,
            expected_supplies: &self.expected_supplies,
            stock_model: self.stock_model,
        }
    }
}

fn offer_rows<'py>(
    obj: &Bound<'py, PyAny>,
    arg: &str,
    width: usize,
) -> Result<PyReadonlyArray2<'py, i64>, CoreError> {
    let array = matrix::<i64>(obj, arg, "int64")?;
    if array.shape()[1] != width {
        return Err(CoreError::shape(
            arg,
            format!("[m, {width}]"),
            format!("{:?}", array.shape()),
        ));
    }
    Ok(array)
}

fn rows<'a>(array: &'a PyReadonlyArray2<'_, i64>, arg: &str) -> Result<&'a [i64], CoreError> {
    array
        .as_slice()
        .map_err(|_| CoreError::shape(arg, "C-contiguous", "strided"))
}

fn side_offers(flat: &[i64], arg: &str) -> Result<Vec<(Side, Offer)>, CoreError> {
    flat.chunks_exact(4)
        .enumerate()
        .map(|(k, r)| {
            Ok((
                Side::from_code(r[3], &format!("{arg}[{k}, 3]"))?,
                Offer::new(r[0], r[1], r[2]),
            ))
        })
        .collect()
}

/// The day's caps, price bounds and cash budget (see `hrl.safety`). Made by `derive_limits`;
/// `reserve` charges an outstanding offer against them.
#[pyclass(module = "hrl._core")]
pub struct Limits {
    inner: safety::Limits,
}

#[pymethods]
impl Limits {
    /// The safe version of offer `(quantity, day, price)` on `side` (0 buy, 1 sell), or None.
    fn clip(
        &self,
        quantity: i64,
        day: i64,
        price: i64,
        side: i64,
    ) -> PyResult<Option<(i64, i64, i64)>> {
        let side = Side::from_code(side, "side")?;
        Ok(self
            .inner
            .clip(side, Offer::new(quantity, day, price))
            .map(|o| (o.quantity, o.day, o.price)))
    }

    /// True iff accepting `(quantity, day, price)` on `side` breaks no rule.
    fn is_safe_to_accept(&self, quantity: i64, day: i64, price: i64, side: i64) -> PyResult<bool> {
        let side = Side::from_code(side, "side")?;
        Ok(self
            .inner
            .is_safe_to_accept(side, Offer::new(quantity, day, price)))
    }

    /// Charges `(quantity, day, price)` on `side` as if signed (caps and budget shrink).
    fn reserve(&mut self, quantity: i64, day: i64, price: i64, side: i64) -> PyResult<()> {
        let side = Side::from_code(side, "side")?;
        self.inner.reserve(side, Offer::new(quantity, day, price));
        Ok(())
    }

    /// Clips int64 `[m, 4]` rows `(quantity, day, price, side)` independently. Returns
    /// `(int64 [m, 3] clipped rows, zeros where dropped; bool [m] kept)`.
    #[allow(clippy::type_complexity)]
    fn clip_many<'py>(
        &self,
        py: Python<'py>,
        offers: &Bound<'py, PyAny>,
    ) -> PyResult<(Bound<'py, PyArray2<i64>>, Bound<'py, PyArray1<bool>>)> {
        let offers = offer_rows(offers, "offers", 4)?;
        let m = offers.shape()[0];
        let out = PyArray2::<i64>::zeros(py, [m, 3], false);
        let ok = PyArray1::<bool>::from_vec(py, vec![false; m]);
        {
            let flat = rows(&offers, "offers")?;
            let mut out_view = out.readwrite();
            let mut ok_view = ok.readwrite();
            let out_slice = out_view
                .as_slice_mut()
                .map_err(|_| CoreError::shape("out", "C-contiguous", "strided"))?;
            let ok_slice = ok_view
                .as_slice_mut()
                .map_err(|_| CoreError::shape("ok", "C-contiguous", "strided"))?;
            let inner = &self.inner;
            py.detach(|| inner.clip_many(flat, out_slice, ok_slice))?;
        }
        Ok((out, ok))
    }

    /// `is_safe_to_accept` over int64 `[m, 4]` rows `(quantity, day, price, side)`: bool `[m]`.
    fn accept_many<'py>(
        &self,
        py: Python<'py>,
        offers: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray1<bool>>> {
        let offers = offer_rows(offers, "offers", 4)?;
        let items = side_offers(rows(&offers, "offers")?, "offers")?;
        let inner = &self.inner;
        let safe: Vec<bool> = py.detach(|| {
            items
                .iter()
                .map(|&(side, o)| inner.is_safe_to_accept(side, o))
                .collect()
        });
        Ok(PyArray1::from_vec(py, safe))
    }

    /// Buy caps per day of the delivery window (index 0 = `first_day`).
    #[getter]
    fn buy_caps(&self) -> Vec<i64> {
        self.inner.buy_caps().to_vec()
    }

    /// Sell caps per day of the delivery window (index 0 = `first_day`).
    #[getter]
    fn sell_caps(&self) -> Vec<i64> {
        self.inner.sell_caps().to_vec()
    }

    /// Sell caps from signed supply only (beyond them, up to `sell_caps`, a sale is exposure).
    #[getter]
    fn hard_sell_caps(&self) -> Vec<i64> {
        self.inner.hard_sell_caps().to_vec()
    }

    /// The stock model the caps use: 0 persistent (scml 0.8.4), 1 consumed.
    #[getter]
    fn stock_model(&self) -> i64 {
        self.inner.stock_model().code()
    }

    /// Safe unit-price interval `(lo, hi)` for buying (empty when `lo > hi`).
    #[getter]
    fn buy_price(&self) -> (i64, i64) {
        let r = self.inner.price_bounds(Side::Buy);
        (r.lo, r.hi)
    }

    /// Safe unit-price interval `(lo, hi)` for selling (empty when `lo > hi`).
    #[getter]
    fn sell_price(&self) -> (i64, i64) {
        let r = self.inner.price_bounds(Side::Sell);
        (r.lo, r.hi)
    }

    /// Quantity issue range `(lo, hi)` for buying, `lo >= 1`.
    #[getter]
    fn buy_quantity(&self) -> (i64, i64) {
        let r = self.inner.quantity_bounds(Side::Buy);
        (r.lo, r.hi)
    }

    /// Quantity issue range `(lo, hi)` for selling, `lo >= 1`.
    #[getter]
    fn sell_quantity(&self) -> (i64, i64) {
        let r = self.inner.quantity_bounds(Side::Sell);
        (r.lo, r.hi)
    }

    /// Money that may still be committed to buys.
    #[getter]
    fn free_cash(&self) -> f64 {
        self.inner.free_cash()
    }

    /// First day of the delivery window (the state's `current_step`).
    #[getter]
    fn first_day(&self) -> i64 {
        self.inner.first_day()
    }

    fn __repr__(&self) -> String {
        format!(
            "Limits(first_day={}, buy_caps={:?}, sell_caps={:?}, buy_price={:?}, sell_price={:?}, free_cash={})",
            self.inner.first_day(),
            self.inner.buy_caps(),
            self.inner.sell_caps(),
            self.buy_price(),
            self.sell_price(),
            self.inner.free_cash()
        )
    }
}

/// Derives the day's `Limits` from a state object (attributes as `hrl.safety.SafetyState`).
#[pyfunction]
pub fn derive_limits(state: &Bound<'_, PyAny>) -> PyResult<Limits> {
    let state = OwnedState::read(state)?;
    Ok(Limits {
        inner: safety::Limits::derive(&state.view())?,
    })
}

/// The per-round L1 step: derive limits from `state`, reserve `open_offers` (int64 `[k, 4]`:
/// quantity, day, price, side), then keep/clip/drop each row of `items` (int64 `[m, 5]`:
/// quantity, day, price, side, kind with kind 0 = propose, 1 = accept) in order, reserving what
/// is kept. Returns int64 `[m, 4]`: the resulting quantity, day, price (zeros when dropped) and the
/// verdict (0 kept, 1 clipped, 2 dropped).
#[pyfunction]
pub fn round_step<'py>(
    py: Python<'py>,
    state: &Bound<'py, PyAny>,
    open_offers: &Bound<'py, PyAny>,
    items: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyArray2<i64>>> {
    let state = OwnedState::read(state)?;
    let open = offer_rows(open_offers, "open_offers", 4)?;
    let open = side_offers(rows(&open, "open_offers")?, "open_offers")?;
    let items_array = offer_rows(items, "items", 5)?;
    let round: Vec<RoundItem> = rows(&items_array, "items")?
        .chunks_exact(5)
        .enumerate()
        .map(|(k, r)| {
            let accept = match r[4] {
                0 => false,
                1 => true,
                code => {
                    return Err(CoreError::invalid(
                        &format!("items[{k}, 4]"),
                        format!("kind must be 0 (propose) or 1 (accept), got {code}"),
                    ))
                }
            };
            Ok(RoundItem {
                side: Side::from_code(r[3], &format!("items[{k}, 3]"))?,
                offer: Offer::new(r[0], r[1], r[2]),
                accept,
            })
        })
        .collect::<Result<_, CoreError>>()?;
    let mut verdicts = vec![(Verdict::Dropped, None); round.len()];
    safety::round_step(&state.view(), &open, &round, &mut verdicts)?;
    let mut flat = Vec::with_capacity(4 * round.len());
    for (verdict, offer) in &verdicts {
        let o = offer.unwrap_or(Offer::new(0, 0, 0));
        flat.extend_from_slice(&[o.quantity, o.day, o.price, verdict.code()]);
    }
    let out = PyArray1::from_vec(py, flat).reshape([round.len(), 4])?;
    Ok(out)
}

/// Counts the rules broken by int64 `[m, 4]` rows `(quantity, day, price, side)` against the
/// limits of `state` (see `hrl.safety.audit_offers`). Returns a dict of counts.
#[pyfunction]
#[pyo3(signature = (state, offers, *, sequential = false))]
pub fn audit_offers<'py>(
    py: Python<'py>,
    state: &Bound<'py, PyAny>,
    offers: &Bound<'py, PyAny>,
    sequential: bool,
) -> PyResult<Bound<'py, PyDict>> {
    let state = OwnedState::read(state)?;
    let offers = offer_rows(offers, "offers", 4)?;
    let offers = side_offers(rows(&offers, "offers")?, "offers")?;
    let counts = safety::audit(&state.view(), &offers, sequential)?;
    let dict = PyDict::new(py);
    dict.set_item("n_offers", counts.n_offers)?;
    dict.set_item("n_unsafe", counts.n_unsafe)?;
    dict.set_item("over_buy", counts.over_buy)?;
    dict.set_item("over_sell", counts.over_sell)?;
    dict.set_item("over_spend", counts.over_spend)?;
    dict.set_item("price_out_of_range", counts.price_out_of_range)?;
    dict.set_item("quantity_out_of_range", counts.quantity_out_of_range)?;
    dict.set_item("day_out_of_window", counts.day_out_of_window)?;
    dict.set_item("exposure", counts.exposure)?;
    Ok(dict)
}

/// The day-by-day stock model (`crate::stock`) over a window: `model` 0 persistent (scml 0.8.4)
/// or 1 consumed, `stock` the input units at the start, `arrivals` / `due` int64 `[W]` input
/// units delivered and output units due per day, `n_lines` the lines. Returns int64 `[W, 3]`:
/// production, shortfall and stock at the end of each day.
#[pyfunction]
pub fn simulate_stock<'py>(
    py: Python<'py>,
    model: i64,
    stock: i64,
    arrivals: Vec<i64>,
    due: Vec<i64>,
    n_lines: i64,
) -> PyResult<Bound<'py, PyArray2<i64>>> {
    let model = StockModel::from_code(model, "model")?;
    let mut days = vec![ModelDay::default(); arrivals.len()];
    stock::simulate(model, stock, &arrivals, &due, n_lines, &mut days)?;
    let flat: Vec<i64> = days
        .iter()
        .flat_map(|d| [d.production, d.shortfall, d.stock_after])
        .collect();
    PyArray1::from_vec(py, flat).reshape([days.len(), 3])
}
