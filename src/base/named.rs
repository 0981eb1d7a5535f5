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
    /// Other spellings that parse to the value, not listed in help.
    fn aliases(self) -> &'static [&'static str] {
        &[]
    }

    /// The value of a name; the error lists the names there are.
    fn parse_name(s: &str) -> Result<Self, String> {
        let named = |v: &Self| v.name() == s || v.aliases().contains(&s);
        Self::ALL.iter().copied().find(named).ok_or_else(|| {
            let names: Vec<_> = Self::ALL.iter().map(|v| v.name()).collect();
            format!("'{s}' is not one of {}", names.join(", "))
        })
    }
}

/// Defines an enum whose variants are named (`Variant = ("name", "help")`,
/// or `("name", "help", "alias")`), copied and compared by value, with
/// `Named`, `FromStr`, and serde as the name (settings files and
/// saved models spell the values as flags do).
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = ($text:literal, $help:literal $(, $alias:literal)?), )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
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

            fn aliases(self) -> &'static [&'static str] {
                match self {
                    $( $name::$variant => &[$($alias)?], )+
                }
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;

            fn from_str(s: &str) -> Result<Self, String> {
                <Self as $crate::base::named::Named>::parse_name(s)
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str($crate::base::named::Named::name(*self))
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                <Self as $crate::base::named::Named>::parse_name(&name).map_err(serde::de::Error::custom)
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::Named;

    crate::named_enum! {
        pub enum Shade {
            Light = ("light", "Pale."),
            Dark = ("dark", "", "black"),
        }
    }

    #[test]
    fn names_parse_back_and_a_wrong_one_lists_the_names() {
        for &v in Shade::ALL {
            assert_eq!(v.name().parse::<Shade>(), Ok(v));
        }
        assert_eq!(Shade::Light.help(), "Pale.");
        assert_eq!("black".parse::<Shade>(), Ok(Shade::Dark));
        assert_eq!("grey".parse::<Shade>(), Err("'grey' is not one of light, dark".to_string()));
    }

    #[test]
    fn serde_spells_the_name() {
        assert_eq!(serde_json::to_string(&Shade::Dark).unwrap(), "\"dark\"");
        assert_eq!(serde_json::from_str::<Shade>("\"light\"").unwrap(), Shade::Light);
        let err = serde_json::from_str::<Shade>("\"Dark\"").unwrap_err().to_string();
        assert!(err.contains("'Dark' is not one of light, dark"), "{err}");
    }
}
