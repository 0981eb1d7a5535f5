//! Closed sets of named values (a period, a unit, a format) as the layers
//! below the command line define them: each type lists its values with the
//! name a flag or a settings file spells and a line of help, and parses from
//! that name. `app` turns the list into clap's possible values, so only the
//! command line knows clap and `--help` still lists every value.

/// A type whose values are named.
pub trait Named: Copy + PartialEq + Sized + 'static {
    /// Every value, in the order help lists them.
    const ALL: &'static [Self];
    /// The name flags and settings spell.
    fn name(self) -> &'static str;
    /// One line for `--help` ("" when the name says it all).
    fn help(self) -> &'static str;

    /// The value of a name; the error lists the names there are.
    fn parse_name(s: &str) -> Result<Self, String> {
        Self::ALL.iter().copied().find(|v| v.name() == s).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|v| v.name()).collect();
            format!("'{s}' is not one of {}", names.join(", "))
        })
    }
}

/// Defines an enum whose variants are named (`Variant = ("name", "help")`),
/// with `Named` and `FromStr`.
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = ($text:literal, $help:literal), )+
        }
    ) => {
        $(#[$meta])*
        pub enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $crate::base::named::Named for $name {
            const ALL: &'static [Self] = &[$( $name::$variant ),+];

            fn name(self) -> &'static str {
                match self {
                    $( $name::$variant => $text, )+
                }
            }

            fn help(self) -> &'static str {
                match self {
                    $( $name::$variant => $help, )+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                <Self as $crate::base::named::Named>::parse_name(s)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::Named;

    crate::named_enum! {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub enum Shade {
            Light = ("light", "Pale."),
            Dark = ("dark", ""),
        }
    }

    #[test]
    fn names_parse_back_and_a_wrong_one_lists_the_names() {
        for &v in Shade::ALL {
            assert_eq!(v.name().parse::<Shade>(), Ok(v));
        }
        assert_eq!(Shade::Light.help(), "Pale.");
        assert_eq!("grey".parse::<Shade>(), Err("'grey' is not one of light, dark".to_string()));
    }
}
