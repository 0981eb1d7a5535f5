//! Maximum likelihood: BFGS on log-parameters, Nelder–Mead as a fallback,
//! and standard errors from the Hessian.
//!
//! Working on θ = ln(parameters) keeps every parameter positive without
//! constraints and makes the problem far better conditioned (α in days can
//! be 100 times α in weeks). The objective is the mean negative
//! log-likelihood, so tolerances do not depend on the number of customers.

/// Objective: value and gradient at θ.
pub trait Objective {
    fn eval(&self, theta: &[f64]) -> (f64, Vec<f64>);
}

impl<F: Fn(&[f64]) -> (f64, Vec<f64>)> Objective for F {
    fn eval(&self, theta: &[f64]) -> (f64, Vec<f64>) {
        self(theta)
    }
}

#[derive(Clone, Debug)]
pub struct Minimum {
    pub theta: Vec<f64>,
    pub value: f64,
    pub converged: bool,
    pub iterations: usize,
    /// BFGS's approximation of the inverse Hessian at `theta` (empty when
    /// BFGS did not find it).
    pub inverse_hessian: Vec<Vec<f64>>,
    /// The gradient at `theta`, when BFGS found it (empty otherwise).
    pub gradient: Vec<f64>,
}

impl Minimum {
    /// A result without BFGS's curvature and gradient.
    fn plain(theta: Vec<f64>, value: f64, converged: bool, iterations: usize) -> Minimum {
        Minimum { theta, value, converged, iterations, inverse_hessian: vec![], gradient: vec![] }
    }
}

fn finite(v: f64, g: &[f64]) -> bool {
    v.is_finite() && g.iter().all(|x| x.is_finite())
}

/// The largest absolute component.
fn largest(v: &[f64]) -> f64 {
    v.iter().fold(0.0f64, |m, x| m.max(x.abs()))
}

/// BFGS with a backtracking (Armijo) line search, from the identity as
/// the inverse Hessian or from `h0` (from a fit of a similar objective).
pub fn bfgs(
    f: &impl Objective,
    theta0: &[f64],
    h0: Option<&[Vec<f64>]>,
    max_iter: usize,
) -> Minimum {
    let n = theta0.len();
    let mut x = theta0.to_vec();
    let (mut fx, mut g) = f.eval(&x);
    if !finite(fx, &g) {
        return Minimum::plain(x, fx, false, 0);
    }
    let mut h = vec![vec![0.0; n]; n]; // inverse Hessian approximation
    for (i, row) in h.iter_mut().enumerate() {
        row[i] = 1.0;
    }
    if let Some(h0) = h0.filter(|h0| h0.len() == n && h0.iter().flatten().all(|v| v.is_finite())) {
        h = h0.to_vec();
    }
    // Where the search stopped: (converged, iterations). It converged when
    // the gradient vanishes, or, once no step makes progress, when it is small.
    let (converged, iterations) = 'search: {
        for iter in 0..max_iter {
            if largest(&g) < 1e-7 {
                break 'search (true, iter);
            }
            let mut d: Vec<f64> =
                (0..n).map(|i| -(0..n).map(|j| h[i][j] * g[j]).sum::<f64>()).collect();
            let mut slope: f64 = d.iter().zip(&g).map(|(a, b)| a * b).sum();
            if slope >= 0.0 {
                // Not a descent direction: restart from steepest descent.
                for (i, row) in h.iter_mut().enumerate() {
                    row.iter_mut().for_each(|v| *v = 0.0);
                    row[i] = 1.0;
                }
                d = g.iter().map(|v| -v).collect();
                slope = -g.iter().map(|v| v * v).sum::<f64>();
            }
            // Keep steps in log space moderate.
            let dmax = largest(&d);
            let mut step = if dmax > 2.0 { 2.0 / dmax } else { 1.0 };
            let mut accepted = None;
            for _ in 0..60 {
                let xn: Vec<f64> = x.iter().zip(&d).map(|(a, b)| a + step * b).collect();
                let (fn_, gn) = f.eval(&xn);
                if finite(fn_, &gn) && fn_ <= fx + 1e-4 * step * slope {
                    accepted = Some((xn, fn_, gn));
                    break;
                }
                step *= 0.5;
            }
            let Some((xn, fn_, gn)) = accepted else {
                break 'search (largest(&g) < 1e-5, iter);
            };
            let s: Vec<f64> = xn.iter().zip(&x).map(|(a, b)| a - b).collect();
            let y: Vec<f64> = gn.iter().zip(&g).map(|(a, b)| a - b).collect();
            let sy: f64 = s.iter().zip(&y).map(|(a, b)| a * b).sum();
            let df = fx - fn_;
            x = xn;
            fx = fn_;
            g = gn;
            if sy > 1e-12 {
                let hy: Vec<f64> = (0..n).map(|i| (0..n).map(|j| h[i][j] * y[j]).sum()).collect();
                let yhy: f64 = y.iter().zip(&hy).map(|(a, b)| a * b).sum();
                for i in 0..n {
                    for j in 0..n {
                        h[i][j] += (sy + yhy) * s[i] * s[j] / (sy * sy)
                            - (hy[i] * s[j] + s[i] * hy[j]) / sy;
                    }
                }
            }
            if df.abs() < 1e-15 * fx.abs().max(1.0) {
                break 'search (largest(&g) < 1e-5, iter + 1);
            }
        }
        (largest(&g) < 1e-5, max_iter)
    };
    Minimum { theta: x, value: fx, converged, iterations, inverse_hessian: h, gradient: g }
}

/// Nelder–Mead on the value alone, for when gradients mislead BFGS.
pub fn nelder_mead(f: &impl Objective, theta0: &[f64], max_iter: usize) -> Minimum {
    let n = theta0.len();
    let val = |x: &[f64]| {
        let v = f.eval(x).0;
        if v.is_finite() {
            v
        } else {
            f64::INFINITY
        }
    };
    let mut simplex: Vec<(Vec<f64>, f64)> = vec![(theta0.to_vec(), val(theta0))];
    for i in 0..n {
        let mut x = theta0.to_vec();
        x[i] += 0.5;
        let v = val(&x);
        simplex.push((x, v));
    }
    let mut iterations = 0;
    for iter in 0..max_iter {
        iterations = iter;
        simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (best, worst) = (simplex[0].1, simplex[n].1);
        if (worst - best).abs() < 1e-13 * best.abs().max(1e-10) {
            break;
        }
        let centroid: Vec<f64> =
            (0..n).map(|j| simplex[..n].iter().map(|p| p.0[j]).sum::<f64>() / n as f64).collect();
        let towards = |t: f64| -> Vec<f64> {
            (0..n).map(|j| centroid[j] + t * (simplex[n].0[j] - centroid[j])).collect()
        };
        let xr = towards(-1.0);
        let fr = val(&xr);
        if fr < simplex[0].1 {
            let xe = towards(-2.0);
            let fe = val(&xe);
            simplex[n] = if fe < fr { (xe, fe) } else { (xr, fr) };
        } else if fr < simplex[n - 1].1 {
            simplex[n] = (xr, fr);
        } else {
            let xc = towards(0.5);
            let fc = val(&xc);
            if fc < simplex[n].1 {
                simplex[n] = (xc, fc);
            } else {
                let b = simplex[0].0.clone();
                for p in simplex.iter_mut().skip(1) {
                    p.0 = p.0.iter().zip(&b).map(|(x, y)| y + 0.5 * (x - y)).collect();
                    p.1 = val(&p.0);
                }
            }
        }
    }
    simplex.sort_by(|a, b| a.1.total_cmp(&b.1));
    let (theta, value) = simplex.swap_remove(0);
    Minimum::plain(theta, value, false, iterations)
}

/// Minimises from `theta0` (and BFGS's inverse Hessian `h0` when known):
/// BFGS, then Nelder–Mead and BFGS again from wherever it got, keeping the
/// best converged result.
pub fn minimize(f: &impl Objective, theta0: &[f64], h0: Option<&[Vec<f64>]>) -> Minimum {
    let first = bfgs(f, theta0, h0, 1000);
    if first.converged {
        return first;
    }
    let start = if first.value.is_finite() { first.theta.clone() } else { theta0.to_vec() };
    let nm = nelder_mead(f, &start, 4000);
    let second = bfgs(f, &nm.theta, None, 1000);
    [first, nm, second]
        .into_iter()
        .filter(|m| m.value.is_finite())
        .min_by(|a, b| (!a.converged).cmp(&!b.converged).then(a.value.total_cmp(&b.value)))
        .unwrap_or_else(|| Minimum::plain(theta0.to_vec(), f64::NAN, false, 0))
}

/// One Newton step from a minimum found by BFGS, with the Hessian `h` at
/// θ: the new θ, if it lowers the largest gradient component without
/// raising the value. BFGS stops once every gradient component is below
/// 1e-7, which leaves the parameters good to about six digits, and where
/// they stop depends on the path taken (a fit from a warm start ends
/// elsewhere than one from the generic start); the step takes them to
/// about twelve.
pub fn newton_step(
    f: &impl Objective,
    theta: &[f64],
    value: f64,
    gradient: &[f64],
    h: &[Vec<f64>],
) -> Option<Vec<f64>> {
    let inv = invert(h)?;
    let n = theta.len();
    let next: Vec<f64> =
        (0..n).map(|i| theta[i] - (0..n).map(|j| inv[i][j] * gradient[j]).sum::<f64>()).collect();
    let (v, g) = f.eval(&next);
    let no_worse = v <= value + 1e-13 * value.abs().max(1.0);
    (finite(v, &g) && no_worse && largest(&g) < largest(gradient)).then_some(next)
}

/// Inverse of a small symmetric positive definite matrix (Gauss–Jordan); None if singular.
pub fn invert(m: &[Vec<f64>]) -> Option<Vec<Vec<f64>>> {
    let n = m.len();
    let mut a: Vec<Vec<f64>> = m.to_vec();
    let mut inv: Vec<Vec<f64>> =
        (0..n).map(|i| (0..n).map(|j| (i == j) as u8 as f64).collect()).collect();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-300 {
            return None;
        }
        a.swap(col, pivot);
        inv.swap(col, pivot);
        let d = a[col][col];
        for j in 0..n {
            a[col][j] /= d;
            inv[col][j] /= d;
        }
        for i in 0..n {
            if i != col {
                let factor = a[i][col];
                for j in 0..n {
                    a[i][j] -= factor * a[col][j];
                    inv[i][j] -= factor * inv[col][j];
                }
            }
        }
    }
    Some(inv)
}

/// Hessian of the objective at θ from differences of its gradient: forward
/// differences from `gradient`, the gradient at θ, when given (one
/// evaluation per parameter; the step's truncation error, about 1e-5
/// relative, is far below the sampling error the standard errors
/// describe), central ones otherwise (two per parameter, for gradients
/// that are themselves finite differences, whose noise forward differences
/// would double).
pub fn hessian(f: &impl Objective, theta: &[f64], gradient: Option<&[f64]>) -> Vec<Vec<f64>> {
    let n = theta.len();
    let mut h = vec![vec![0.0; n]; n];
    for j in 0..n {
        let step = 1e-5 * theta[j].abs().max(1.0);
        let mut up = theta.to_vec();
        up[j] += step;
        let gu = f.eval(&up).1;
        match gradient {
            Some(g) => (0..n).for_each(|i| h[i][j] = (gu[i] - g[i]) / step),
            None => {
                let mut down = theta.to_vec();
                down[j] -= step;
                let gd = f.eval(&down).1;
                (0..n).for_each(|i| h[i][j] = (gu[i] - gd[i]) / (2.0 * step));
            }
        }
    }
    // Symmetrise: average each pair of off-diagonal entries.
    let mut sym = h.clone();
    for (i, row) in sym.iter_mut().enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            *v = 0.5 * (h[i][j] + h[j][i]);
        }
    }
    sym
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minimises_rosenbrock() {
        let f = |x: &[f64]| {
            let (a, b) = (x[0], x[1]);
            (
                (1.0 - a).powi(2) + 100.0 * (b - a * a).powi(2),
                vec![-2.0 * (1.0 - a) - 400.0 * a * (b - a * a), 200.0 * (b - a * a)],
            )
        };
        let m = minimize(&f, &[-1.2, 1.0], None);
        assert!(m.converged);
        assert!((m.theta[0] - 1.0).abs() < 1e-5 && (m.theta[1] - 1.0).abs() < 1e-5, "{m:?}");
        let nm = nelder_mead(&f, &[-1.2, 1.0], 5000);
        assert!((nm.theta[0] - 1.0).abs() < 1e-3, "{nm:?}");
        let h = hessian(&f, &[1.0, 1.0], None);
        assert!((h[0][0] - 802.0).abs() < 1e-3 && (h[0][1] + 400.0).abs() < 1e-3);
        // Forward differences: the error is step/2 × the third derivative
        // (∂³f/∂a³ = 2400 a), about 0.012.
        let h = hessian(&f, &[1.0, 1.0], Some(&f(&[1.0, 1.0]).1));
        assert!((h[0][0] - 802.0).abs() < 0.02 && (h[0][1] + 400.0).abs() < 0.02, "{h:?}");
        let inv = invert(&h).unwrap();
        assert!((inv[0][0] * h[0][0] + inv[0][1] * h[1][0] - 1.0).abs() < 1e-9);
    }
}
