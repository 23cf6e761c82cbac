//! Pure helpers of the repetitions: the order of the contenders in each repetition, and the
//! median and spread of a figure across repetitions.

/// The median and the range of one figure over the repetitions that produced it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Spread {
    /// The median (the mean of the two middle values for an even count).
    pub median: f64,
    /// The smallest value.
    pub min: f64,
    /// The largest value.
    pub max: f64,
    /// How many values.
    pub count: usize,
}

impl Spread {
    /// The spread of `values`, ignoring NaN; `None` when nothing is left.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Spread> {
        let mut sorted: Vec<f64> = values.into_iter().filter(|v| !v.is_nan()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 { sorted[n / 2] } else { (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0 };
        Some(Spread { median, min: sorted[0], max: sorted[n - 1], count: n })
    }
}

/// The order of the contenders in repetition `repetition` (counted from 1): as given in odd
/// repetitions, reversed in even ones, so that no contender always runs first or last.
pub fn order_for<T: Clone>(contenders: &[T], repetition: usize) -> Vec<T> {
    let mut order = contenders.to_vec();
    if repetition.is_multiple_of(2) {
        order.reverse();
    }
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_range() {
        let s = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!(s, Spread { median: 2.0, min: 1.0, max: 3.0, count: 3 });
        let s = Spread::of([4.0, 1.0, 3.0, 2.0]).unwrap();
        assert_eq!((s.median, s.min, s.max, s.count), (2.5, 1.0, 4.0, 4));
        assert_eq!(Spread::of([7.0]).unwrap().median, 7.0);
        assert_eq!(Spread::of([f64::NAN, 5.0]).unwrap().count, 1);
        assert_eq!(Spread::of([]), None);
        assert_eq!(Spread::of([f64::NAN]), None);
    }

    #[test]
    fn order_alternates() {
        let given = ["ferrum", "cert-manager", "floor"];
        assert_eq!(order_for(&given, 1), given);
        assert_eq!(order_for(&given, 2), ["floor", "cert-manager", "ferrum"]);
        assert_eq!(order_for(&given, 3), given);
        assert_eq!(order_for(&given, 4), ["floor", "cert-manager", "ferrum"]);
        assert_eq!(order_for(&["ferrum"], 2), ["ferrum"]);
    }
}
