//! Special functions the models need, accurate to near machine precision.
//!
//! Likelihoods of heavy buyers involve Γ of arguments in the hundreds and
//! hypergeometric series whose terms first grow for thousands of steps, so
//! everything here works in log space or on transformed series.

use std::f64::consts::PI;

/// ln Γ(x) for x > 0: shifted to x ≥ 15, then Stirling's series.
pub fn ln_gamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    let mut shift = 0.0;
    let mut z = x;
    // ln Γ(x) = ln Γ(x + n) − ln(x (x + 1) ... (x + n − 1))
    let mut prod = 1.0;
    while z < 15.0 {
        prod *= z;
        z += 1.0;
        if prod > 1e280 {
            shift += prod.ln();
            prod = 1.0;
        }
    }
    shift += prod.ln();
    let z2 = 1.0 / (z * z);
    let series = (1.0 / 12.0
        + z2 * (-1.0 / 360.0 + z2 * (1.0 / 1260.0 + z2 * (-1.0 / 1680.0 + z2 * (1.0 / 1188.0)))))
        / z;
    (z - 0.5) * z.ln() - z + 0.5 * (2.0 * PI).ln() + series - shift
}

/// ψ(x) = d/dx ln Γ(x) for x > 0.
pub fn digamma(x: f64) -> f64 {
    if x.is_nan() || x <= 0.0 {
        return f64::NAN;
    }
    let mut z = x;
    let mut acc = 0.0;
    while z < 15.0 {
        acc -= 1.0 / z;
        z += 1.0;
    }
    let z2 = 1.0 / (z * z);
    acc + z.ln()
        - 0.5 / z
        - z2 * (1.0 / 12.0
            - z2 * (1.0 / 120.0 - z2 * (1.0 / 252.0 - z2 * (1.0 / 240.0 - z2 / 132.0))))
}

/// ln(e^a + e^b) without overflow; either may be −∞.
pub fn log_add_exp(a: f64, b: f64) -> f64 {
    if a == f64::NEG_INFINITY {
        return b;
    }
    if b == f64::NEG_INFINITY {
        return a;
    }
    let m = a.max(b);
    m + ((a - m).exp() + (b - m).exp()).ln()
}

/// The Gaussian hypergeometric series ₂F₁(a, b; c; z) for 0 ≤ z < 1 and
/// c > 0, summed directly. Callers pass parameters after Euler's
/// transformation so that the terms shrink quickly (see `bgnbd`).
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> f64 {
    hyp2f1_with_magnitude(a, b, c, z).0
}

/// [`hyp2f1`] and the largest absolute term of its series. When that term
/// dwarfs the sum, terms of both signs cancelled and the sum kept only the
/// digits the ratio leaves (a large negative `a` does this).
pub fn hyp2f1_with_magnitude(a: f64, b: f64, c: f64, z: f64) -> (f64, f64) {
    if z == 0.0 {
        return (1.0, 1.0);
    }
    let mut term = 1.0f64;
    let mut sum = 1.0f64;
    let mut largest = 1.0f64;
    for n in 0..200_000 {
        let n = n as f64;
        term *= (a + n) * (b + n) / ((c + n) * (n + 1.0)) * z;
        sum += term;
        largest = largest.max(term.abs());
        if term.abs() <= 1e-17 * sum.abs() && n > 2.0 {
            break;
        }
        if !sum.is_finite() {
            break;
        }
    }
    (sum, largest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gamma_values() {
        // Γ(1) = Γ(2) = 1, Γ(0.5) = √π, Γ(10) = 9!, ln Γ(200) from tables.
        assert!(ln_gamma(1.0).abs() < 1e-14);
        assert!(ln_gamma(2.0).abs() < 1e-14);
        assert!((ln_gamma(0.5) - PI.sqrt().ln()).abs() < 1e-14);
        assert!((ln_gamma(10.0) - 362_880f64.ln()).abs() < 1e-13);
        assert!((ln_gamma(200.0) - 857.933_669_825_857_5).abs() < 1e-10);
        assert!((ln_gamma(1e-5) - 11.512_919_692_895_828).abs() < 1e-12);
    }

    #[test]
    fn digamma_matches_ln_gamma_slope() {
        for &x in &[0.01f64, 0.3, 1.0, 2.5, 9.9, 10.1, 57.0, 1e4] {
            let h = 1e-5 * x.max(1.0);
            let fd = (ln_gamma(x + h) - ln_gamma(x - h)) / (2.0 * h);
            assert!((digamma(x) - fd).abs() < 1e-6 * fd.abs().max(1.0), "{x}");
        }
        // ψ(1) = −γ (Euler–Mascheroni).
        assert!((digamma(1.0) + 0.577_215_664_901_532_9).abs() < 1e-14);
    }

    #[test]
    fn hypergeometric_closed_forms() {
        // ₂F₁(1, 1; 2; z) = −ln(1 − z) / z
        for &z in &[0.1, 0.5, 0.9] {
            let want = -(1.0f64 - z).ln() / z;
            assert!((hyp2f1(1.0, 1.0, 2.0, z) - want).abs() < 1e-12 * want);
        }
        // ₂F₁(a, b; b; z) = (1 − z)^(−a)
        assert!((hyp2f1(2.5, 3.0, 3.0, 0.3) - 0.7f64.powf(-2.5)).abs() < 1e-12);
        assert_eq!(log_add_exp(f64::NEG_INFINITY, 1.0), 1.0);
        assert!((log_add_exp(1000.0, 1000.0) - (1000.0 + 2f64.ln())).abs() < 1e-12);
    }
}
