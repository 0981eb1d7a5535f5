//! What churn_risk and value at risk are, and which band a risk falls in.
//! `score`, `report` and `backtest` all speak of them, and a list, a report
//! and a backtest that disagreed on what "high risk" means would contradict
//! each other in the same meeting; so each is defined here, once.

use crate::base::named::Named;

/// The probability that the customer has churned: 1 − P(alive).
pub fn churn_risk(p_alive: f64) -> f64 {
    1.0 - p_alive
}

/// The value lost if the customer has churned, weighted by how likely that
/// is: churn_risk × the CLV the customer would have if still alive.
pub fn value_at_risk(p_alive: f64, clv_if_alive: f64) -> f64 {
    churn_risk(p_alive) * clv_if_alive
}

crate::named_enum! {
    /// A churn-risk band, from the most at risk to the least.
    pub enum Band {
        High = ("high", ""),
        Medium = ("medium", ""),
        Low = ("low", ""),
    }
}

impl Band {
    /// 0 for the highest band, upward for the lower ones.
    pub fn rank(self) -> u16 {
        Band::ALL.iter().position(|&b| b == self).expect("every band is listed") as u16
    }
}

/// The churn_risk thresholds of the high and medium bands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bands {
    high: f64,
    medium: f64,
}

impl Default for Bands {
    fn default() -> Self {
        Bands { high: 0.7, medium: 0.4 }
    }
}

impl Bands {
    /// Thresholds with 0 <= medium <= high <= 1.
    pub fn new(high: f64, medium: f64) -> Result<Bands, String> {
        if (0.0..=1.0).contains(&high) && (0.0..=1.0).contains(&medium) && medium <= high {
            Ok(Bands { high, medium })
        } else {
            Err(format!("{high},{medium}: give HIGH,MEDIUM with 0 <= MEDIUM <= HIGH <= 1"))
        }
    }

    pub fn high(self) -> f64 {
        self.high
    }

    /// The band of a churn_risk: high at or above the high threshold, medium
    /// at or above the medium one, low below.
    pub fn of(self, churn_risk: f64) -> Band {
        match churn_risk {
            r if r >= self.high => Band::High,
            r if r >= self.medium => Band::Medium,
            _ => Band::Low,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_belong_to_the_band_above() {
        let b = Bands::default();
        assert_eq!(b.of(0.7), Band::High);
        assert_eq!(b.of(0.6999), Band::Medium);
        assert_eq!(b.of(0.4), Band::Medium);
        assert_eq!(b.of(0.3999), Band::Low);
        assert_eq!(b.of(1.0), Band::High);
        assert_eq!(b.of(0.0), Band::Low);
        let one = Bands::new(0.5, 0.5).unwrap();
        assert_eq!((one.of(0.5), one.of(0.49)), (Band::High, Band::Low));
        assert!(Bands::new(0.4, 0.7).is_err());
        assert!(Bands::new(1.2, 0.4).is_err());
        assert!(Bands::new(f64::NAN, 0.4).is_err());
    }

    #[test]
    fn value_at_risk_is_the_clv_lost_weighted_by_risk() {
        assert_eq!(churn_risk(0.25), 0.75);
        assert_eq!(value_at_risk(0.25, 200.0), 150.0);
        assert_eq!(value_at_risk(1.0, 200.0), 0.0);
        assert_eq!(Band::High.rank(), 0);
        assert_eq!(Band::Low.rank(), 2);
    }
}
