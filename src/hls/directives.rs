//! Delivery directives of LL-HLS playlist requests (draft-pantos-hls-rfc8216bis §6.2.5):
//! `_HLS_msn`, `_HLS_part` (blocking playlist reload) and `_HLS_skip` (delta updates).
//! Pure parsing and validation; the origin does the waiting.

use std::time::Duration;

use super::packager::PartId;

/// Which delta update the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SkipRequest {
    /// A full playlist.
    #[default]
    No,
    /// `_HLS_skip=YES`: skip old segments.
    Yes,
    /// `_HLS_skip=v2`: skip old segments and old EXT-X-DATERANGE tags.
    V2,
}

/// The directives of one playlist request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Directives {
    /// `_HLS_msn`: hold until this segment (or a part of it) is in the playlist.
    pub msn: Option<u64>,
    /// `_HLS_part`: with `_HLS_msn`, hold until this part of segment `msn` exists.
    pub part: Option<u32>,
    /// `_HLS_skip`.
    pub skip: SkipRequest,
}

/// A request the server must answer with 400 Bad Request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectiveError {
    /// A directive with a value that is not what the spec allows.
    #[error("invalid {name} value `{value}`")]
    Invalid {
        /// The query parameter.
        name: &'static str,
        /// What was sent.
        value: String,
    },
    /// "_HLS_part … without an _HLS_msn … MUST be rejected with 400".
    #[error("_HLS_part requires _HLS_msn")]
    PartWithoutMsn,
    /// "If the _HLS_msn is greater than the Media Sequence Number of the last Media Segment
    /// in the current Playlist plus two … 400".
    #[error("_HLS_msn={requested} is more than 2 segments past the last one ({last})")]
    MsnTooFarAhead {
        /// Requested MSN.
        requested: u64,
        /// MSN of the last segment in the playlist.
        last: u64,
    },
    /// "… or if the _HLS_part exceeds the last Partial Segment in the current Playlist by
    /// the Advance Part Limit … 400".
    #[error("_HLS_part={part} of segment {msn} is more than {limit} parts past the last part")]
    PartTooFarAhead {
        /// Requested MSN.
        msn: u64,
        /// Requested part.
        part: u32,
        /// The Advance Part Limit.
        limit: u64,
    },
}

impl Directives {
    /// Parses the query string of a playlist request. Other parameters are ignored (CDNs
    /// and players add their own); a directive given twice keeps the last value.
    pub fn parse(query: Option<&str>) -> Result<Directives, DirectiveError> {
        let mut directives = Directives::default();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match name {
                "_HLS_msn" => directives.msn = Some(decimal("_HLS_msn", value)?),
                "_HLS_part" => {
                    let part = decimal("_HLS_part", value)?;
                    directives.part =
                        Some(u32::try_from(part).map_err(|_| DirectiveError::Invalid {
                            name: "_HLS_part",
                            value: value.to_string(),
                        })?);
                }
                "_HLS_skip" => {
                    directives.skip = match value {
                        "YES" => SkipRequest::Yes,
                        "v2" => SkipRequest::V2,
                        _ => {
                            return Err(DirectiveError::Invalid {
                                name: "_HLS_skip",
                                value: value.to_string(),
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        if directives.part.is_some() && directives.msn.is_none() {
            return Err(DirectiveError::PartWithoutMsn);
        }
        Ok(directives)
    }

    /// Checks a blocking request against the playlist's current end (`last`: the last
    /// published part) before waiting. `parts_per_segment` estimates how many parts a
    /// segment has (segment target / part target), to measure the distance across segments.
    pub fn check(
        &self,
        last: PartId,
        parts_per_segment: u64,
        part_target: Duration,
    ) -> Result<(), DirectiveError> {
        let Some(msn) = self.msn else {
            return Ok(());
        };
        if msn > last.msn.saturating_add(2) {
            return Err(DirectiveError::MsnTooFarAhead {
                requested: msn,
                last: last.msn,
            });
        }
        if let Some(part) = self.part {
            let limit = advance_part_limit(part_target);
            let requested = msn
                .saturating_mul(parts_per_segment)
                .saturating_add(u64::from(part));
            let current = last
                .msn
                .saturating_mul(parts_per_segment)
                .saturating_add(u64::from(last.part));
            if requested > current.saturating_add(limit) {
                return Err(DirectiveError::PartTooFarAhead { msn, part, limit });
            }
        }
        Ok(())
    }
}

/// The Advance Part Limit: "three divided by the Part Target Duration if the Part Target
/// Duration is less than one second, or three otherwise."
pub fn advance_part_limit(part_target: Duration) -> u64 {
    let seconds = part_target.as_secs_f64();
    if seconds > 0.0 && seconds < 1.0 {
        (3.0 / seconds).ceil() as u64
    } else {
        3
    }
}

fn decimal(name: &'static str, value: &str) -> Result<u64, DirectiveError> {
    if value.is_empty() || value.len() > 19 || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(DirectiveError::Invalid {
            name,
            value: value.chars().take(32).collect(),
        });
    }
    value.parse().map_err(|_| DirectiveError::Invalid {
        name,
        value: value.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PART: Duration = Duration::from_millis(200);

    fn last(msn: u64, part: u32) -> PartId {
        PartId { msn, part }
    }

    #[test]
    fn parses_directives_and_ignores_other_parameters() {
        assert_eq!(Directives::parse(None).unwrap(), Directives::default());
        let d = Directives::parse(Some("_HLS_msn=12&_HLS_part=3&cdn=x&_HLS_skip=YES")).unwrap();
        assert_eq!(d.msn, Some(12));
        assert_eq!(d.part, Some(3));
        assert_eq!(d.skip, SkipRequest::Yes);
        assert_eq!(
            Directives::parse(Some("_HLS_skip=v2")).unwrap().skip,
            SkipRequest::V2
        );
        assert_eq!(Directives::parse(Some("_HLS_msn=4")).unwrap().part, None);
    }

    #[test]
    fn part_without_msn_is_400() {
        assert_eq!(
            Directives::parse(Some("_HLS_part=1")),
            Err(DirectiveError::PartWithoutMsn)
        );
    }

    #[test]
    fn malformed_values_are_400() {
        for query in [
            "_HLS_msn=",
            "_HLS_msn=-1",
            "_HLS_msn=1.5",
            "_HLS_msn=abc",
            "_HLS_msn=99999999999999999999",
            "_HLS_msn=1&_HLS_part=x",
            "_HLS_msn=1&_HLS_part=4294967296",
            "_HLS_skip=yes",
            "_HLS_skip=",
        ] {
            assert!(
                matches!(
                    Directives::parse(Some(query)),
                    Err(DirectiveError::Invalid { .. })
                ),
                "{query}"
            );
        }
    }

    #[test]
    fn msn_more_than_two_ahead_is_400() {
        let d = |msn| Directives {
            msn: Some(msn),
            ..Directives::default()
        };
        assert!(d(12).check(last(10, 4), 10, PART).is_ok());
        assert_eq!(
            d(13).check(last(10, 4), 10, PART),
            Err(DirectiveError::MsnTooFarAhead {
                requested: 13,
                last: 10
            })
        );
    }

    #[test]
    fn part_beyond_the_advance_part_limit_is_400() {
        assert_eq!(advance_part_limit(PART), 15);
        assert_eq!(advance_part_limit(Duration::from_millis(333)), 10);
        assert_eq!(advance_part_limit(Duration::from_secs(1)), 3);
        let d = |msn, part| Directives {
            msn: Some(msn),
            part: Some(part),
            skip: SkipRequest::No,
        };
        // Last part is 10.4; 15 parts ahead is 11.9 with 10 parts per segment.
        assert!(d(11, 9).check(last(10, 4), 10, PART).is_ok());
        assert!(matches!(
            d(12, 0).check(last(10, 4), 10, PART),
            Err(DirectiveError::PartTooFarAhead { limit: 15, .. })
        ));
        assert!(matches!(
            d(10, 20).check(last(10, 4), 10, PART),
            Err(DirectiveError::PartTooFarAhead { .. })
        ));
        // Requests for what already exists are always fine.
        assert!(d(3, 0).check(last(10, 4), 10, PART).is_ok());
    }
}
