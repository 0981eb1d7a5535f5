//! The Gamma-Gamma spend model (Fader, Hardie & Lee 2005, "RFM and CLV";
//! Fader & Hardie 2013): each purchase's value is Gamma(p, ν) with a
//! customer-level ν ~ Gamma(q, γ), independent of the purchase process.
//! Fitted on customers with at least one repeat purchase, from their number
//! of repeat purchases x and mean repeat purchase value m.

use super::special::{digamma, ln_gamma};

/// Log-likelihood of (x, m) and its gradient in (p, q, γ).
pub fn log_likelihood(params: &[f64; 3], x: f64, m: f64) -> (f64, [f64; 3]) {
    let [p, q, g] = *params;
    let px = p * x;
    let lgm = (g + m * x).ln();
    let ll = ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q)
        + q * g.ln()
        + (px - 1.0) * m.ln()
        + px * x.ln()
        - (px + q) * lgm;
    let grad = [
        x * (digamma(px + q) - digamma(px) + m.ln() + x.ln() - lgm),
        digamma(px + q) - digamma(q) + g.ln() - lgm,
        q / g - (px + q) / (g + m * x),
    ];
    (ll, grad)
}

/// E[value of a purchase | x, m]: the posterior mean, shrinking the
/// customer's mean towards the population's; the population mean p γ / (q − 1)
/// when x = 0 or m = 0. The model's purchase values are positive, so it is
/// fitted on customers with x > 0 and m > 0 only (as lifetimes and CLVTools
/// require), and a customer whose repeat purchases were all free orders is
/// not evidence of a zero spend: they get the population mean too. Needs q > 1.
pub fn expected_spend(params: &[f64; 3], x: f64, m: f64) -> f64 {
    let [p, q, g] = *params;
    if x <= 0.0 || m <= 0.0 {
        return p * g / (q - 1.0);
    }
    p * (g + m * x) / (p * x + q - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gradient_matches_finite_differences() {
        let params = [6.25, 3.74, 15.44];
        for (x, m) in [(1.0, 20.0), (5.0, 35.5), (60.0, 3.2)] {
            let (_, g) = log_likelihood(&params, x, m);
            for i in 0..3 {
                let step = 1e-6 * params[i];
                let (mut up, mut down) = (params, params);
                up[i] += step;
                down[i] -= step;
                let fd =
                    (log_likelihood(&up, x, m).0 - log_likelihood(&down, x, m).0) / (2.0 * step);
                assert!((g[i] - fd).abs() < 1e-5 * fd.abs().max(1.0), "{x} {m} {i}");
            }
        }
    }

    #[test]
    fn expected_spend_shrinks_towards_the_population_mean() {
        // CDNOW estimates (Fader & Hardie 2013): population mean p γ / (q − 1) = 35.22.
        let params = [6.25, 3.74, 15.44];
        assert!((expected_spend(&params, 0.0, 0.0) - 35.22).abs() < 0.005);
        // Repeat purchases that were all free orders: the population mean too.
        assert_eq!(expected_spend(&params, 4.0, 0.0), expected_spend(&params, 0.0, 0.0));
        // The posterior mean lies between the customer's mean and the population mean.
        let pop = expected_spend(&params, 0.0, 0.0);
        for m in [5.0, 100.0] {
            let e = expected_spend(&params, 3.0, m);
            assert!(e > m.min(pop) && e < m.max(pop));
        }
    }
}
