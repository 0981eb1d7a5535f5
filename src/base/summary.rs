//! The per-customer purchase summary of the buy-till-you-die models (x, t_x,
//! T, monetary value), as the local summary, the `--summary` reader and the
//! SQL queries produce it.

/// Per customer with at least one purchase, in customer code order.
#[derive(Clone, Debug, Default)]
pub struct Summary {
    pub customer: Vec<u32>,
    /// Repeat purchase days: distinct purchase days − 1.
    pub x: Vec<u32>,
    /// Days from the first to the last purchase day.
    pub t_x_days: Vec<i32>,
    /// Days from the first purchase day to the as-of day (0 for a customer
    /// whose first purchase is on the as-of day; a purchase on the as-of day
    /// has t_x = T), as lifetimes, BTYD and CLVTools measure it.
    pub t_days: Vec<i32>,
    /// Mean amount of the repeat purchase days (0 when x = 0).
    pub monetary_avg: Vec<f64>,
}

impl Summary {
    pub fn len(&self) -> usize {
        self.customer.len()
    }

    pub fn is_empty(&self) -> bool {
        self.customer.is_empty()
    }

    pub fn reserve_exact(&mut self, more: usize) {
        self.customer.reserve_exact(more);
        self.x.reserve_exact(more);
        self.t_x_days.reserve_exact(more);
        self.t_days.reserve_exact(more);
        self.monetary_avg.reserve_exact(more);
    }

    /// Appends other customers' histories, whose codes count from `code_base`.
    pub fn append(&mut self, other: Summary, code_base: u32) {
        self.customer.extend(other.customer.iter().map(|c| c + code_base));
        self.x.extend(other.x);
        self.t_x_days.extend(other.t_x_days);
        self.t_days.extend(other.t_days);
        self.monetary_avg.extend(other.monetary_avg);
    }
}

/// The columns of the summary, in order.
pub const SUMMARY_COLUMNS: [&str; 8] = [
    "customer_id",
    "first_purchase",
    "last_purchase",
    "purchases",
    "monetary",
    "repeat_days",
    "repeat_amount",
    "as_of",
];
