//! Python binding of `crate::replay`: read the agent-days (`hrl.safety.replay.replay_micro`:
//! per-day facts as tuples, negotiations, offers and rows as NumPy columns), replay them
//! without the GIL, return NumPy columns.

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1};
use pyo3::prelude::*;

use crate::error::CoreError;
use crate::replay::{
    self, AgentDay, BaselineOptions, DayFacts, LoggedOffer, Names, Negotiation, RowRequest,
    TodayContract,
};
use crate::safety::{Range, Side};
use crate::stock::StockModel;

fn item<'py, T: FromPyObjectOwned<'py>>(
    obj: &Bound<'py, PyAny>,
    i: usize,
    what: &str,
) -> Result<T, CoreError> {
    obj.get_item(i)
        .and_then(|v| v.extract::<T>().map_err(Into::into))
        .map_err(|e| CoreError::invalid(what, format!("item {i}: {e}")))
}

fn range(obj: &Bound<'_, PyAny>, i: usize, what: &str) -> Result<Range, CoreError> {
    let (lo, hi): (i64, i64) = item(obj, i, what)?;
    Ok(Range::new(lo, hi))
}

fn read_facts(obj: &Bound<'_, PyAny>) -> Result<DayFacts, CoreError> {
    let w = "facts";
    Ok(DayFacts {
        n_steps: item(obj, 0, w)?,
        n_lines: item(obj, 1, w)?,
        inventory_input: item(obj, 2, w)?,
        balance: item(obj, 3, w)?,
        cost: item(obj, 4, w)?,
        trading_price_in: item(obj, 5, w)?,
        trading_price_out: item(obj, 6, w)?,
        buy_quantity: range(obj, 7, w)?,
        buy_price: range(obj, 8, w)?,
        sell_quantity: range(obj, 9, w)?,
        sell_price: range(obj, 10, w)?,
        exo_in_quantity: item(obj, 11, w)?,
        exo_in_total: item(obj, 12, w)?,
        exo_out_quantity: item(obj, 13, w)?,
        expected_supplies: item(obj, 14, w)?,
        stock_model: StockModel::from_code(item(obj, 15, w)?, "stock_model")?,
    })
}

/// A read-only int64/float64/bool column (`arg` names it in errors).
fn column<'py, T: numpy::Element>(
    obj: &Bound<'py, PyAny>,
    arg: &str,
) -> Result<PyReadonlyArray1<'py, T>, CoreError> {
    obj.extract::<PyReadonlyArray1<'py, T>>()
        .map_err(|e| CoreError::invalid(arg, format!("expected a 1-D array: {e}")))
}

fn slice<'a, T: numpy::Element>(
    array: &'a PyReadonlyArray1<'_, T>,
    arg: &str,
) -> Result<&'a [T], CoreError> {
    array
        .as_slice()
        .map_err(|_| CoreError::shape(arg, "C-contiguous", "strided"))
}

/// `offsets[k] .. offsets[k + 1]` for `k < n`, checked against `len`.
fn span(
    offsets: &[i64],
    k: usize,
    len: usize,
    arg: &str,
) -> Result<std::ops::Range<usize>, CoreError> {
    let (Some(&a), Some(&b)) = (offsets.get(k), offsets.get(k + 1)) else {
        return Err(CoreError::invalid(arg, format!("no offsets for item {k}")));
    };
    match (usize::try_from(a), usize::try_from(b)) {
        (Ok(a), Ok(b)) if a <= b && b <= len => Ok(a..b),
        _ => Err(CoreError::invalid(
            arg,
            format!("bad span {a}..{b} of {len}"),
        )),
    }
}

type Columns<'py> = (
    Bound<'py, PyArray1<u8>>,
    Bound<'py, PyArray2<i64>>,
    Bound<'py, PyArray2<bool>>,
    Bound<'py, PyArray2<i64>>,
    Bound<'py, PyArray1<bool>>,
    Bound<'py, PyArray2<i64>>,
);

/// The L1 columns of `n_rows` micro rows (see `hrl.safety.replay.replay_micro` for the
/// arguments). Returns `(kind uint8 [n], offer int64 [n, 3], day mask bool [n, n_days],
/// caps int64 [n, n_days], accept safe bool [n], bounds int64 [n, 4])`.
#[pyfunction]
#[pyo3(signature = (
    days, names, hashes, views, offers, rows, *,
    productivity, today_share, quirks, stock_target, future_buy_divisor,
    future_sell_divisor, keep_selling, own_sell_days, n_rows, n_days
))]
#[allow(clippy::too_many_arguments)]
pub fn replay_micro<'py>(
    py: Python<'py>,
    days: &Bound<'py, PyAny>,
    names: Vec<String>,
    hashes: Vec<i64>,
    views: &Bound<'py, PyAny>,
    offers: &Bound<'py, PyAny>,
    rows: &Bound<'py, PyAny>,
    productivity: f64,
    today_share: f64,
    quirks: bool,
    stock_target: f64,
    future_buy_divisor: f64,
    future_sell_divisor: f64,
    keep_selling: bool,
    own_sell_days: bool,
    n_rows: usize,
    n_days: usize,
) -> PyResult<Columns<'py>> {
    // Views: (day offsets [D + 1], partner [V], side [V], offer offsets [V + 1]).
    let (v_days, v_partner, v_side, v_offers) = (
        column::<i64>(&views.get_item(0)?, "views[0]")?,
        column::<i64>(&views.get_item(1)?, "views[1]")?,
        column::<i64>(&views.get_item(2)?, "views[2]")?,
        column::<i64>(&views.get_item(3)?, "views[3]")?,
    );
    let (v_days, v_partner, v_side, v_offers) = (
        slice(&v_days, "views[0]")?,
        slice(&v_partner, "views[1]")?,
        slice(&v_side, "views[2]")?,
        slice(&v_offers, "views[3]")?,
    );
    // Offers: (seq, by_agent, quantity, has_quantity, day, price), one entry per offer.
    let (o_seq, o_by, o_q, o_has, o_day, o_price) = (
        column::<i64>(&offers.get_item(0)?, "offers[0]")?,
        column::<bool>(&offers.get_item(1)?, "offers[1]")?,
        column::<i64>(&offers.get_item(2)?, "offers[2]")?,
        column::<bool>(&offers.get_item(3)?, "offers[3]")?,
        column::<i64>(&offers.get_item(4)?, "offers[4]")?,
        column::<f64>(&offers.get_item(5)?, "offers[5]")?,
    );
    let (o_seq, o_by, o_q, o_has, o_day, o_price) = (
        slice(&o_seq, "offers[0]")?,
        slice(&o_by, "offers[1]")?,
        slice(&o_q, "offers[2]")?,
        slice(&o_has, "offers[3]")?,
        slice(&o_day, "offers[4]")?,
        slice(&o_price, "offers[5]")?,
    );
    // Rows: (day offsets [D + 1], row, decision slot, partner (-1: none), side).
    let (r_days, r_row, r_slot, r_partner, r_side) = (
        column::<i64>(&rows.get_item(0)?, "rows[0]")?,
        column::<i64>(&rows.get_item(1)?, "rows[1]")?,
        column::<i64>(&rows.get_item(2)?, "rows[2]")?,
        column::<i64>(&rows.get_item(3)?, "rows[3]")?,
        column::<i64>(&rows.get_item(4)?, "rows[4]")?,
    );
    let (r_days, r_row, r_slot, r_partner, r_side) = (
        slice(&r_days, "rows[0]")?,
        slice(&r_row, "rows[1]")?,
        slice(&r_slot, "rows[2]")?,
        slice(&r_partner, "rows[3]")?,
        slice(&r_side, "rows[4]")?,
    );
    let n_views = v_partner.len();
    let n_offers = o_seq.len();
    let n_day_rows = r_row.len();
    if v_side.len() != n_views
        || [
            o_by.len(),
            o_q.len(),
            o_has.len(),
            o_day.len(),
            o_price.len(),
        ]
        .iter()
        .any(|&n| n != n_offers)
        || [r_slot.len(), r_partner.len(), r_side.len()]
            .iter()
            .any(|&n| n != n_day_rows)
    {
        return Err(
            CoreError::shape("views/offers/rows", "columns of one length", "mismatch").into(),
        );
    }
    let mut agent_days = Vec::new();
    for (k, d) in days.try_iter()?.enumerate() {
        let d = d?;
        let w = "day";
        let negotiations = span(v_days, k, n_views, "views[0]")?
            .map(|v| {
                let offers = span(v_offers, v, n_offers, "views[3]")?
                    .map(|o| LoggedOffer {
                        seq: o_seq[o],
                        by_agent: o_by[o],
                        quantity: o_has[o].then_some(o_q[o]),
                        day: Some(o_day[o]),
                        price: Some(o_price[o]),
                    })
                    .collect::<Vec<_>>();
                let (end_slot, end_by_agent) = offers
                    .last()
                    .map_or((0, false), |o| (o.seq + 1, !o.by_agent));
                Ok(Negotiation {
                    partner: usize::try_from(v_partner[v])
                        .map_err(|_| CoreError::invalid("views[1]", "negative partner id"))?,
                    side: Side::from_code(v_side[v], "views[2]")?,
                    end_slot,
                    end_by_agent,
                    offers,
                })
            })
            .collect::<Result<Vec<_>, CoreError>>()?;
        let requests = span(r_days, k, n_day_rows, "rows[0]")?
            .map(|r| {
                Ok(RowRequest {
                    row: usize::try_from(r_row[r])
                        .map_err(|_| CoreError::invalid("rows[1]", "negative row"))?,
                    call: replay::call_of_slot(r_slot[r]),
                    partner: usize::try_from(r_partner[r]).ok(),
                    side: Side::from_code(r_side[r], "rows[4]")?,
                })
            })
            .collect::<Result<Vec<_>, CoreError>>()?;
        let today = d
            .get_item(7)?
            .try_iter()?
            .map(|c| {
                let (delivery, quantity, price, code, seen_from) = c?
                    .extract::<(i64, i64, f64, i64, i64)>()
                    .map_err(|e| CoreError::invalid("today", e.to_string()))?;
                Ok(TodayContract {
                    delivery,
                    quantity,
                    price,
                    side: Side::from_code(code, "today side")?,
                    seen_from,
                })
            })
            .collect::<PyResult<Vec<_>>>()?;
        agent_days.push(AgentDay {
            world: item(&d, 0, w)?,
            agent: item(&d, 1, w)?,
            day: item(&d, 2, w)?,
            facts: read_facts(&d.get_item(3)?)?,
            supplies: item(&d, 4, w)?,
            sales: item(&d, 5, w)?,
            payables: item(&d, 6, w)?,
            today,
            negotiations,
            suppliers: item(&d, 8, w)?,
            consumers: item(&d, 9, w)?,
            rows: requests,
        });
    }
    let opts = BaselineOptions {
        productivity,
        today_share,
        quirks,
        stock_target,
        future_buy_divisor,
        future_sell_divisor,
        keep_selling,
        own_sell_days,
    };
    let names = Names {
        names: &names,
        hashes: &hashes,
    };
    let out = py.detach(|| replay::replay_micro(&agent_days, names, opts, n_rows, n_days))?;
    let mut kind = vec![2u8; n_rows];
    let mut offer = vec![0i64; 3 * n_rows];
    let mut mask = vec![false; n_days * n_rows];
    let mut caps = vec![0i64; n_days * n_rows];
    let mut safe = vec![false; n_rows];
    let mut bounds = vec![0i64; 4 * n_rows];
    for (i, r) in out.iter().enumerate() {
        let Some(r) = r else {
            return Err(CoreError::invalid("rows", format!("no agent-day fills row {i}")).into());
        };
        kind[i] = r.kind;
        offer[3 * i..3 * i + 3].copy_from_slice(&r.offer);
        mask[n_days * i..n_days * (i + 1)].copy_from_slice(&r.day_mask);
        caps[n_days * i..n_days * (i + 1)].copy_from_slice(&r.caps);
        safe[i] = r.accept_safe;
        bounds[4 * i..4 * i + 4].copy_from_slice(&r.bounds);
    }
    let shape = |w: usize| [n_rows, w];
    Ok((
        PyArray1::from_vec(py, kind),
        PyArray1::from_vec(py, offer).reshape(shape(3))?,
        PyArray1::from_vec(py, mask).reshape(shape(n_days))?,
        PyArray1::from_vec(py, caps).reshape(shape(n_days))?,
        PyArray1::from_vec(py, safe),
        PyArray1::from_vec(py, bounds).reshape(shape(4))?,
    ))
}
