//! Property values as Kafka types them: parsing text the way Kafka's
//! `ConfigDef.parseType` does, printing values the way DescribeConfigs
//! shows them (`ConfigDef.convertToString`), and moving them in and out of
//! [`LogConfig`](super::LogConfig)'s typed fields.

use std::fmt;

use super::types::{CleanupPolicy, ConfigType, MessageTimestampType, TopicCompression};

/// A parsed property value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Value {
    Bool(bool),
    /// INT and LONG alike (an INT is range-checked where it is parsed).
    Int(i64),
    Double(f64),
    Text(String),
    List(Vec<String>),
}

impl Value {
    /// Parses `raw` as a value of type `ty`, ignoring surrounding
    /// whitespace; the error is Kafka's reason.
    pub(crate) fn parse(ty: ConfigType, raw: &str) -> Result<Self, String> {
        let s = raw.trim();
        let not_a_number = || format!("Not a number of type {ty}");
        match ty {
            ConfigType::Boolean if s.eq_ignore_ascii_case("true") => Ok(Self::Bool(true)),
            ConfigType::Boolean if s.eq_ignore_ascii_case("false") => Ok(Self::Bool(false)),
            ConfigType::Boolean => Err("Expected value to be either true or false".into()),
            ConfigType::Int => s
                .parse::<i32>()
                .map(|n| Self::Int(n.into()))
                .map_err(|_| not_a_number()),
            ConfigType::Short => s
                .parse::<i16>()
                .map(|n| Self::Int(n.into()))
                .map_err(|_| not_a_number()),
            ConfigType::Long => s.parse::<i64>().map(Self::Int).map_err(|_| not_a_number()),
            ConfigType::Double => s.parse::<f64>().map(Self::Double).map_err(|_| not_a_number()),
            ConfigType::List if s.is_empty() => Ok(Self::List(Vec::new())),
            ConfigType::List => Ok(Self::List(s.split(',').map(|item| item.trim().to_string()).collect())),
            ConfigType::String | ConfigType::Class | ConfigType::Password => Ok(Self::Text(s.to_string())),
        }
    }

    /// Whether the value can be held by type `ty` (an INT field may hold
    /// more than 32 bits when set in code).
    pub(crate) fn fits(&self, ty: ConfigType) -> bool {
        match (self, ty) {
            (Self::Int(n), ConfigType::Int) => i32::try_from(*n).is_ok(),
            (Self::Int(n), ConfigType::Short) => i16::try_from(*n).is_ok(),
            _ => true,
        }
    }
}

/// Kafka's text of the value: lists comma-separated, doubles as Java prints them.
impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Bool(b) => write!(f, "{b}"),
            Self::Int(n) => write!(f, "{n}"),
            Self::Double(x) => f.write_str(&java_double(*x)),
            Self::Text(s) => f.write_str(s),
            Self::List(items) => f.write_str(&items.join(",")),
        }
    }
}

/// `x` as Java's `Double.toString` writes it: the shortest digits that
/// read back as `x`, with at least one digit after the point, in plain
/// notation for magnitudes in [10⁻³, 10⁷) and as `d.dddE±n` otherwise.
pub(crate) fn java_double(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    let with_point = |digits: String| {
        if digits.contains('.') {
            digits
        } else {
            digits + ".0"
        }
    };
    let magnitude = x.abs();
    if magnitude == 0.0 || (1e-3..1e7).contains(&magnitude) {
        return with_point(format!("{x}"));
    }
    let scientific = format!("{x:e}");
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    format!("{}E{exponent}", with_point(mantissa.to_string()))
}

/// A type a [`LogConfig`](super::LogConfig) field has, moved to and from
/// a [`Value`].
pub(crate) trait FieldValue: Sized {
    /// The field's value.
    fn to_value(&self) -> Value;
    /// The field's value from a parsed (and validated) one.
    fn from_value(value: Value) -> Result<Self, String>;
}

fn wrong_type(value: &Value) -> String {
    format!("value {value} has the wrong type")
}

/// A field held as one [`Value`] variant as it is.
macro_rules! variant_field {
    ($($ty:ty => $variant:ident),*) => {$(
        impl FieldValue for $ty {
            fn to_value(&self) -> Value {
                Value::$variant(self.clone())
            }
            fn from_value(value: Value) -> Result<Self, String> {
                match value {
                    Value::$variant(v) => Ok(v),
                    other => Err(wrong_type(&other)),
                }
            }
        }
    )*};
}

variant_field!(bool => Bool, i64 => Int, f64 => Double, String => Text, Vec<String> => List);

/// A narrower integer field, held as an INT/LONG [`Value`].
macro_rules! int_field {
    ($($ty:ty),*) => {$(
        impl FieldValue for $ty {
            fn to_value(&self) -> Value {
                Value::Int((*self).into())
            }
            fn from_value(value: Value) -> Result<Self, String> {
                let n = i64::from_value(value)?;
                Self::try_from(n).map_err(|_| format!("{n} is out of range"))
            }
        }
    )*};
}

int_field!(i32, u32);

impl FieldValue for CleanupPolicy {
    fn to_value(&self) -> Value {
        Value::List(self.names().iter().map(|n| n.to_string()).collect())
    }
    fn from_value(value: Value) -> Result<Self, String> {
        let names = Vec::<String>::from_value(value)?;
        Self::from_names(&names).ok_or_else(|| "gregor needs at least one of compact, delete".to_string())
    }
}

/// One choice of a `NAMES` list, held as Kafka's name (a STRING property).
macro_rules! choice_field {
    ($($ty:ty),*) => {$(
        impl FieldValue for $ty {
            fn to_value(&self) -> Value {
                Value::Text(self.name().to_string())
            }
            fn from_value(value: Value) -> Result<Self, String> {
                let name = String::from_value(value)?;
                Self::from_name(&name).ok_or_else(|| format!("String must be one of: {}", Self::NAMES.join(", ")))
            }
        }
    )*};
}

choice_field!(MessageTimestampType, TopicCompression);
