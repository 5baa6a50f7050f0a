//! How ALYX writes a number for a person to read (the CLI's tables, the desktop's result grid):
//! six significant digits, like a physicist's printout. Total over every `f64`: zeros of both
//! signs, subnormals, the largest finite values, infinities and NaN all have a spelling, and
//! nothing here can overflow or panic.

/// Six significant digits: plain between 10⁻⁴ and 10⁷ with trailing zeros dropped (an
/// integer-valued float prints as an integer), scientific outside that range; `0` for both
/// zeros, `inf`, `-inf` and `NaN` as Rust spells them.
pub fn significant(x: f64) -> String {
    if !x.is_finite() {
        return x.to_string();
    }
    if x == 0.0 {
        return "0".into();
    }
    let magnitude = x.abs();
    if !(1e-4..1e7).contains(&magnitude) {
        return format!("{x:.5e}");
    }
    // log10 of a value in [1e-4, 1e7) lies in [-4, 7): the count is 1..=9, no overflow.
    let decimals = (5.0 - magnitude.log10().floor()).clamp(0.0, 10.0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::significant;
    use proptest::prelude::*;

    #[test]
    fn the_awkward_doubles_have_a_spelling() {
        for (x, s) in [
            (0.0, "0"),
            (-0.0, "0"),
            (f64::INFINITY, "inf"),
            (f64::NEG_INFINITY, "-inf"),
            (f64::NAN, "NaN"),
            (1e300, "1.00000e300"),
            (-1e300, "-1.00000e300"),
            (f64::MIN_POSITIVE / 4.0, "5.56268e-309"),
            (f64::MAX, "1.79769e308"),
            (91.1876, "91.1876"),
            (91.18765432, "91.1877"),
            (2.0, "2"),
            (-125.5, "-125.5"),
            (0.000123456789, "0.000123457"),
            (9_999_999.0, "9999999"),
        ] {
            assert_eq!(significant(x), s, "{x:e}");
        }
    }

    proptest! {
        /// Every double, read back, is the number written to six significant digits.
        #[test]
        fn every_double_reads_back_close(bits in any::<u64>()) {
            let x = f64::from_bits(bits);
            let s = significant(x);
            prop_assert!(!s.is_empty() && s.len() <= 13, "{x:e} → {s:?}");
            let back: f64 = s.parse().expect("parses");
            if x.is_nan() {
                prop_assert!(back.is_nan());
            } else if x.is_infinite() || x == 0.0 {
                prop_assert_eq!(back, x);
            } else {
                let relative = ((back - x) / x).abs();
                prop_assert!(relative <= 5e-6, "{x:e} → {s} ({relative:e})");
            }
        }

        /// The same for the range people see most: plain notation, no exponent.
        #[test]
        fn everyday_values_are_plain(x in prop_oneof![-9.99e6f64..-1e-4, 1e-4f64..9.99e6]) {
            let s = significant(x);
            prop_assert!(!s.contains('e'), "{x} → {s}");
            let back: f64 = s.parse().expect("parses");
            prop_assert!(((back - x) / x).abs() <= 5e-6, "{x} → {s}");
        }
    }
}
