//! Stamps order changes: the last change to a field wins, deterministically, whatever order the log is
//! replayed in.

use std::fmt;
use std::str::FromStr;

/// When and by whom a change was made: microseconds since the Unix epoch, the writer's id, and the change's
/// position inside its commit. Stamps are totally ordered by `(ts, writer, seq)`, which is what breaks ties
/// between writers deterministically.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Stamp {
    pub ts: i64,
    pub writer: String,
    pub seq: u32,
}

impl Stamp {
    pub fn new(ts: i64, writer: impl Into<String>, seq: u32) -> Stamp {
        Stamp { ts, writer: writer.into(), seq }
    }
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}-{}", self.ts, self.writer, self.seq)
    }
}

/// A stamp string that does not have the form `TS-WRITER-SEQ`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid stamp {0:?}: expected TIMESTAMP-WRITER-SEQ")]
pub struct StampError(pub String);

impl FromStr for Stamp {
    type Err = StampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = || StampError(s.to_string());
        let (ts, rest) = s.split_once('-').ok_or_else(err)?;
        let (writer, seq) = rest.rsplit_once('-').ok_or_else(err)?;
        if writer.is_empty() || writer.contains('-') {
            return Err(err());
        }
        Ok(Stamp {
            ts: ts.parse().map_err(|_| err())?,
            writer: writer.to_string(),
            seq: seq.parse().map_err(|_| err())?,
        })
    }
}

impl serde::Serialize for Stamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Stamp {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn order_and_round_trip() {
        let a = Stamp::new(10, "aa", 3);
        let b = Stamp::new(10, "ab", 0);
        let c = Stamp::new(11, "00", 0);
        assert!(a < b && b < c);
        assert_eq!(a.to_string().parse::<Stamp>().unwrap(), a);
        assert!("x".parse::<Stamp>().is_err());
        assert!("1-a-b-2".parse::<Stamp>().is_err());
        let json = serde_json::to_string(&a).unwrap();
        assert_eq!(json, "\"10-aa-3\"");
        assert_eq!(serde_json::from_str::<Stamp>(&json).unwrap(), a);
    }
}
